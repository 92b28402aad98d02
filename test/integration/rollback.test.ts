import type Redis from 'ioredis';
import { createRedisClient } from '../../src/adapters/redis/client';
import { makeTestApp, sharedBackend, testRegions, type TestApp } from '../helpers/app';
import { makeTestTrust } from '../helpers/keys';
import { appendDirect, injectDesk, type Desk } from '../helpers/desk';
import { validContent } from '../fixtures/alerts';
import { TEST_REDIS_URL } from '../helpers/env';
import { startProxy, type TcpProxy } from '../helpers/tcp-proxy';

/**
 * Contract §6.5 (v1.1): a log rolled back under its epoch (Redis restarted from an older snapshot)
 * gets a new epoch, so desks hear of it; a node cut off from its log sends its desks elsewhere.
 * The rollback is made as a snapshot restore makes it: the region's keys are put back, with
 * RESTORE, to what DUMP saved of them earlier.
 */
describe('a region log rolled back under its epoch (real Redis)', () => {
  let redis: Redis;
  const apps: TestApp[] = [];
  const desks: Desk[] = [];

  beforeAll(() => {
    redis = createRedisClient(TEST_REDIS_URL);
  });
  afterEach(async () => {
    for (const d of desks.splice(0)) d.close();
    for (const a of apps.splice(0)) await a.close();
  });
  afterAll(async () => {
    await redis.quit();
  });

  async function node(config: Record<string, string>, redisUrl?: string) {
    const regions = testRegions();
    const app = await makeTestApp({
      backend: 'real',
      shared: sharedBackend(),
      trust: makeTestTrust(['KG', 'KZ', 'CN'], regions),
      regions,
      config,
      redisUrl,
    });
    apps.push(app);
    const R = regions[0].code;
    const keys = [`${app.deps.config.redisKeyPrefix}{${R}}:meta`, `${app.deps.config.redisKeyPrefix}{${R}}:log`];
    return { app, R, keys };
  }

  /** What a snapshot holds of the keys now; restore() puts them back as they were. */
  async function snapshot(keys: string[]) {
    const dumps = await Promise.all(keys.map((k) => redis.dumpBuffer(k)));
    return async () => {
      for (let i = 0; i < keys.length; i++) await redis.restore(keys[i], 0, dumps[i], 'REPLACE');
    };
  }

  async function watching(app: TestApp, R: string) {
    const d = await injectDesk(app.app, app.token());
    desks.push(d);
    d.subscribe([R]);
    await d.untilFrames('subscribed', 1);
    return d;
  }

  test('a top below what was delivered: live desks get epoch-changed, then the log as it now is', async () => {
    const { app, R, keys } = await node({ CORDON_POSITION_CHECK_MS: '100' });
    const content = () => validContent({ region: R });
    const d = await watching(app, R);
    for (let i = 0; i < 3; i++) await app.publish(content());
    const restore = await snapshot(keys);
    const lost = [await app.publish(content()), await app.publish(content())];
    await d.until((x) => x.alerts().length === 5);
    await restore();

    await d.untilFrames('gap', 1, 5000);
    const gap = d.ofType('gap')[0];
    expect(gap).toMatchObject({ type: 'gap', region: R, reason: 'epoch-changed' });
    expect(gap.epoch).not.toBe(lost[0].epoch);
    const next = await app.publish(content());
    // The seq is reused, but in a new epoch: nobody can mistake it for the lost seq 4.
    expect(next).toMatchObject({ seq: 4, epoch: gap.epoch });
    await d.until((x) => x.alerts().some((a) => a.epoch === gap.epoch && a.seq === 4), 5000, 'the new seq 4');
    await d.settle();
    const after = d.frames.slice(d.frames.indexOf(gap) + 1).map((f) => [f.seq, f.epoch]);
    expect(after).toEqual([1, 2, 3, 4].map((s) => [s, gap.epoch]));
    expect(await app.metrics()).toMatch(new RegExp(`cordon_region_rollbacks_total\\{region="${R}"\\} 1`));
  });

  test('seqs reused before the node noticed (another entry at the last delivered seq) are never silent', async () => {
    // No position check during the test: only the doorbell of the new alerts can find it.
    const { app, R, keys } = await node({ CORDON_POSITION_CHECK_MS: '600000' });
    const content = () => validContent({ region: R });
    const d = await watching(app, R);
    for (let i = 0; i < 3; i++) await app.publish(content());
    const restore = await snapshot(keys);
    await app.publish(content());
    await app.publish(content());
    await d.until((x) => x.alerts().length === 5);
    const old = d.alerts().map((a) => a.content.id as string);
    await restore();
    // Three new alerts take seqs 4, 5 (delivered before, with other alerts) and 6.
    const reused = [content(), content(), content()];
    const receipts = [];
    for (const c of reused) receipts.push(await app.publish(c));
    expect(receipts.map((r) => r.seq)).toEqual([4, 5, 6]);

    await d.untilFrames('gap', 1, 5000);
    const gap = d.ofType('gap')[0];
    expect(gap).toMatchObject({ reason: 'epoch-changed' });
    await d.until((x) => x.alerts().some((a) => a.epoch === gap.epoch && a.seq === 6), 5000, 'the new log');
    await d.settle();
    const before = d.frames.slice(0, d.frames.indexOf(gap)).filter((f) => f.type === 'alert');
    // Before the gap only the original five, each once.
    expect(before.map((a) => a.content.id)).toEqual(old);
    const after = d.frames.slice(d.frames.indexOf(gap) + 1);
    expect(after.map((a) => [a.seq, a.epoch])).toEqual([1, 2, 3, 4, 5, 6].map((s) => [s, gap.epoch]));
    expect(after.slice(3).map((a) => a.content.id)).toEqual(reused.map((c) => c.id));
  });

  test('seqs reused up to the very top the node delivered are found by the position check alone', async () => {
    const { app, R, keys } = await node({ CORDON_POSITION_CHECK_MS: '100' });
    const content = () => validContent({ region: R });
    const d = await watching(app, R);
    for (let i = 0; i < 3; i++) await app.publish(content());
    const restore = await snapshot(keys);
    await app.publish(content());
    await app.publish(content());
    await d.until((x) => x.alerts().length === 5);
    await restore();
    // Two alerts written behind every node's back (no doorbell, no local append): seqs 4 and 5
    // again, so the log's top equals what the node delivered.
    const reused = [content(), content()];
    const entries = await appendDirect(app.deps, app.sign, reused);
    expect(entries.map((e) => e.seq)).toEqual([4, 5]);

    await d.untilFrames('gap', 1, 5000);
    const gap = d.ofType('gap')[0];
    expect(gap).toMatchObject({ reason: 'epoch-changed' });
    await d.until((x) => x.alerts().some((a) => a.epoch === gap.epoch && a.seq === 5), 5000, 'the new log');
    const after = d.frames.slice(d.frames.indexOf(gap) + 1);
    expect(after.slice(3).map((a) => a.content.id)).toEqual(reused.map((c) => c.id));
  });
});

describe('a node cut off from its region log', () => {
  let proxy: TcpProxy;
  let app: TestApp;

  beforeAll(async () => {
    proxy = await startProxy(TEST_REDIS_URL);
  });
  afterAll(async () => {
    await proxy.close();
  });

  test('closes its desks with 4003 after CORDON_WS_LOG_LOST_CLOSE_MS, so they resume on a healthy node', async () => {
    const regions = testRegions();
    app = await makeTestApp({
      backend: 'real',
      regions,
      trust: makeTestTrust(['KG', 'KZ', 'CN'], regions),
      redisUrl: proxy.url,
      config: { CORDON_POSITION_CHECK_MS: '100', CORDON_WS_LOG_LOST_CLOSE_MS: '1000' },
    });
    const R = regions[0].code;
    await app.publish(validContent({ region: R }));
    const d = await injectDesk(app.app, app.token());
    d.subscribe([R]);
    await d.untilFrames('subscribed', 1);
    await new Promise((r) => setTimeout(r, 300));
    const cut = Date.now();
    await proxy.pause();
    const { code } = await d.closed;
    const after = Date.now() - cut;
    expect(code).toBe(4003);
    expect(after).toBeGreaterThanOrEqual(900);
    expect(after).toBeLessThan(6000);
    await proxy.resume();
    // Back in reach before the app closes, so its Redis client quits instead of retrying.
    for (let i = 0; i < 100; i++) {
      if (
        await app.deps.regionLog.ping().then(
          () => true,
          () => false,
        )
      )
        break;
      await new Promise((r) => setTimeout(r, 100));
    }
    await app.close();
  });
});
