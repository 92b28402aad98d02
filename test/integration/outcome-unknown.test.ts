import Redis from 'ioredis';
import type { LightMyRequestResponse } from 'fastify';
import { createRedisClient } from '../../src/adapters/redis/client';
import { RedisRegionLog } from '../../src/adapters/redis/region-log';
import { LogOutcomeUnknownError, LogUnavailableError } from '../../src/ports/region-log';
import type { Submission } from '../../src/domain/types';
import { makeTestApp, type TestApp } from '../helpers/app';
import { TEST_REDIS_URL, uniqueKeyPrefix, uniqueRegion } from '../helpers/env';
import { startProxy, type TcpProxy } from '../helpers/tcp-proxy';
import { validContent } from '../fixtures/alerts';
import { injectDesk } from '../helpers/desk';

/**
 * Issue 8 item 10 (contract §8 v1.1): when an append was sent and no answer came, the answer is
 * `504 OUTCOME_UNKNOWN`, never `503 LOG_UNAVAILABLE` ("nothing was accepted"); resubmitting the
 * identical submission settles it with the receipt, and the alert is in the log once. `503` only
 * when nothing can have been written. Played with a TCP proxy in front of the real Redis that
 * stalls (stops forwarding without closing), as a paused Redis link does.
 */

async function until<T>(what: string, ms: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('an append whose outcome is unknown', () => {
  let proxy: TcpProxy;
  let t: TestApp;
  let direct: Redis;
  let region: string;

  beforeAll(async () => {
    proxy = await startProxy(TEST_REDIS_URL);
    t = await makeTestApp({ backend: 'real', redisUrl: proxy.url });
    direct = new Redis(TEST_REDIS_URL);
    region = t.regions.list()[0].code;
    // warm the connection: the append script is loaded, later calls are one EVALSHA each
    await t.publish(validContent({ region }));
  });

  afterAll(async () => {
    proxy.heal();
    await proxy.resume().catch(() => undefined);
    await t.close();
    await proxy.close();
    await direct.quit();
  });

  const post = (sub: Submission) => t.app.inject({ method: 'POST', url: '/v1/alerts', payload: sub });

  /** Resubmits until the node answers something else than 503/504 (its Redis client reconnecting). */
  const settle = (sub: Submission) =>
    until<LightMyRequestResponse>('a settled answer', 15_000, async () => {
      const res = await post(sub);
      return res.statusCode === 503 || res.statusCode === 504 ? undefined : res;
    });

  /** How many entries of the region log hold alert `id` (read straight from Redis). */
  async function copiesInLog(id: string): Promise<number> {
    const entries = await direct.xrange(`${t.deps.config.redisKeyPrefix}{${region}}:log`, '-', '+');
    return entries.filter(([, fields]) => fields.some((f) => f.includes(`"id":"${id}"`))).length;
  }

  it('answers 504 OUTCOME_UNKNOWN when the append ran but its answer stalled; the resubmission gets 200 and the original receipt', async () => {
    const before = await t.deps.regionLog.state(region);
    const content = validContent({ region });
    const sub = t.sign(content);
    const acceptedBefore = proxy.accepted();
    proxy.stall('replies');
    const started = Date.now();
    const res = await post(sub);
    expect(res.statusCode).toBe(504);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.json()).toMatchObject({ status: 504, code: 'OUTCOME_UNKNOWN' });
    expect(Date.now() - started).toBeLessThan(5000);
    // the append did run: it is in the log although the node could not say so
    expect(await copiesInLog(content.id)).toBe(1);
    // the stalled connection was dropped and the client connects anew (nothing answered later unseen)
    await until('a new connection', 5000, async () => (proxy.accepted() > acceptedBefore ? true : undefined));

    proxy.heal();
    const again = await settle(sub);
    expect(again.statusCode).toBe(200);
    const receipt = again.json();
    expect(receipt).toMatchObject({ id: content.id, modified: content.modified, region });
    expect(await copiesInLog(content.id)).toBe(1);
    // the original receipt: the seq the log holds for it
    const page = await t.deps.regionLog.read(region, receipt.seq - 1, 1);
    expect(JSON.parse(page.entries[0].body).content.id).toBe(content.id);
    expect(page.entries[0].receivedAt).toBe(receipt.received_at);
    // a desk resuming from before the stall gets it once, at the seq of the receipt
    const desk = await injectDesk(t.app, t.token());
    desk.subscribe([region], { [region]: { seq: before.latest, epoch: before.epoch! } });
    await desk.until((d) => d.alerts().some((a) => a.content.id === content.id), 10_000, 'the alert');
    await desk.settle(300);
    expect(
      desk
        .alerts()
        .filter((a) => a.content.id === content.id)
        .map((a) => a.seq),
    ).toEqual([receipt.seq]);
    desk.close();
  });

  it('answers 504 when the append is held on the link too; whether or not it arrives later, the resubmission settles it once', async () => {
    const content = validContent({ region });
    const sub = t.sign(content);
    proxy.stall('both');
    const res = await post(sub);
    expect([res.statusCode, res.json().code]).toEqual([504, 'OUTCOME_UNKNOWN']);
    expect(await copiesInLog(content.id)).toBe(0);
    proxy.heal();
    // bytes held on the link may still reach Redis after the node gave up (as TCP retransmits
    // them when a path heals): that is why the answer was "unknown", never "nothing accepted"
    const again = await settle(sub);
    expect([200, 201]).toContain(again.statusCode);
    expect(again.json()).toMatchObject({ id: content.id, modified: content.modified });
    expect(await copiesInLog(content.id)).toBe(1);
    expect((await post(sub)).statusCode).toBe(200);
    expect(await copiesInLog(content.id)).toBe(1);
  });

  it('gives the NATS door the same status and code', async () => {
    const sub = t.sign(validContent({ region }));
    proxy.stall('replies');
    const reply = await t.deps.bus.requestIngest(region, Buffer.from(JSON.stringify(sub)), 10_000);
    expect(reply).toMatchObject({ status: 504, code: 'OUTCOME_UNKNOWN' });
    proxy.heal();
    await settle(sub);
  });

  it('answers 503 LOG_UNAVAILABLE when Redis refuses connections: nothing can have been written', async () => {
    await proxy.pause();
    // once the client knows the connection is gone, calls are refused before they are sent
    await until('the client to notice', 5000, () =>
      t.deps.regionLog.ping().then(
        () => undefined,
        (err: unknown) => (err instanceof LogOutcomeUnknownError ? undefined : true),
      ),
    );
    const content = validContent({ region });
    const res = await post(t.sign(content));
    expect(res.statusCode).toBe(503);
    expect(res.json()).toMatchObject({ status: 503, code: 'LOG_UNAVAILABLE' });
    expect(await copiesInLog(content.id)).toBe(0);
    await proxy.resume();
    expect((await settle(t.sign(content))).statusCode).toBe(201);
  });
});

describe('RedisRegionLog: which failures say "outcome unknown"', () => {
  const prefix = uniqueKeyPrefix();
  const region = uniqueRegion();
  let proxy: TcpProxy;
  let direct: Redis;

  beforeAll(async () => {
    proxy = await startProxy(TEST_REDIS_URL);
    direct = new Redis(TEST_REDIS_URL);
  });

  afterAll(async () => {
    await proxy.close();
    const keys = await direct.keys(`${prefix}*`);
    if (keys.length > 0) await direct.del(...keys);
    await direct.quit();
  });

  it('a read that times out on a stalled link is LogOutcomeUnknownError with the cause, and the link is replaced', async () => {
    const client = createRedisClient(proxy.url);
    const log = new RedisRegionLog(client, { prefix });
    try {
      await log.state(region);
      proxy.stall('both');
      const err = await log.state(region).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(LogOutcomeUnknownError);
      expect(err).toBeInstanceOf(LogUnavailableError);
      expect(((err as Error).cause as Error).message).toBe('Command timed out');
      await until('the client to leave the stalled connection', 3000, async () => (client.status !== 'ready' ? true : undefined));
      proxy.heal();
      await until('a working connection', 10_000, () =>
        log.state(region).then(
          () => true,
          () => undefined,
        ),
      );
    } finally {
      proxy.heal();
      client.disconnect();
    }
  });

  it('a call made while the client is disconnected is plain LogUnavailableError (never sent)', async () => {
    await proxy.resume().catch(() => undefined);
    const client = createRedisClient(proxy.url);
    const log = new RedisRegionLog(client, { prefix });
    try {
      await log.state(region);
      await proxy.pause();
      await until('the client to notice', 5000, async () => (client.status !== 'ready' ? true : undefined));
      const err = await log.state(region).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(LogUnavailableError);
      expect(err).not.toBeInstanceOf(LogOutcomeUnknownError);
    } finally {
      client.disconnect();
      await proxy.resume().catch(() => undefined);
    }
  });
});
