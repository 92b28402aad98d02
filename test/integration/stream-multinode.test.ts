import { makeTestApp, sharedBackend, testRegions, type TestApp } from '../helpers/app';
import { makeTestTrust } from '../helpers/keys';
import { appendDirect, type Desk, injectDesk, socketDesk } from '../helpers/desk';
import { validContent } from '../fixtures/alerts';
import type { AlertContent } from '../../src/domain/types';
import { createRedisClient } from '../../src/adapters/redis/client';
import { TEST_REDIS_URL } from '../helpers/env';

/**
 * Two Cordon nodes in one process sharing the real NATS and Redis of this machine: Redis is the
 * truth, NATS is the doorbell.
 */
describe('the stream across two nodes on real NATS and Redis', () => {
  let a: TestApp;
  let b: TestApp;
  let R: string;
  let R2: string;
  let keyPrefix: string;
  let urlB: string;
  const desks: Desk[] = [];

  beforeAll(async () => {
    const regions = testRegions();
    const trust = makeTestTrust(['KG', 'KZ', 'CN'], regions);
    const shared = sharedBackend();
    keyPrefix = shared.keyPrefix;
    const config = { CORDON_POSITION_CHECK_MS: '100' };
    a = await makeTestApp({ backend: 'real', shared, trust, regions, config });
    b = await makeTestApp({ backend: 'real', shared, trust, regions, config });
    R = regions[0].code;
    R2 = regions[1].code;
    await b.app.listen({ port: 0, host: '127.0.0.1' });
    urlB = `ws://127.0.0.1:${(b.app.server.address() as { port: number }).port}/v1/stream`;
  });
  afterEach(() => {
    for (const d of desks.splice(0)) d.close();
  });
  afterAll(async () => {
    await a.close();
    await b.close();
  });

  const content = (over: Partial<AlertContent> = {}) => validContent({ region: R, ...over });
  const on = async (t: TestApp) => {
    const d = await injectDesk(t.app, t.token());
    desks.push(d);
    return d;
  };
  const seqs = (d: Desk) => d.alerts().map((x) => x.seq);
  const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

  test('an alert accepted on node A reaches a desk on node B, exactly as signed', async () => {
    const d = await socketDesk(urlB, b.token());
    desks.push(d);
    d.subscribe([R]);
    await d.untilFrames('subscribed', 1);
    const sub = a.sign(content());
    const res = await a.app.inject({ method: 'POST', url: '/v1/alerts', payload: sub });
    expect(res.statusCode).toBe(201);
    await d.untilFrames('alert', 1);
    expect(d.alerts()[0]).toMatchObject({ region: R, seq: res.json().seq, content: sub.content, sig: sub.sig });
  });

  test('a desk resumes on node B from the position it took on node A: exactly what it missed, then live', async () => {
    const onA = await on(a);
    onA.subscribe([R]);
    await onA.untilFrames('subscribed', 1);
    const first = await a.publish(content());
    await onA.untilFrames('alert', 1);
    const held = onA.alerts()[0];
    expect(held.seq).toBe(first.seq);
    onA.close();
    await onA.closed;

    const missed = [await a.publish(content()), await b.publish(content()), await a.publish(content())];
    const onB = await on(b);
    onB.subscribe([R], { [R]: { seq: held.seq, epoch: held.epoch } });
    await onB.untilFrames('alert', 3);
    expect(onB.frames[0]).toMatchObject({ type: 'subscribed', recovered: true, epoch: held.epoch });
    const live = await a.publish(content());
    await onB.until((x) => seqs(x).includes(live.seq));
    await onB.settle();
    expect(seqs(onB)).toEqual([...missed.map((m) => m.seq), live.seq]);
  });

  test('an alert that never reached the bus is found by the position check and delivered in order', async () => {
    const d = await on(b);
    d.subscribe([R]);
    await d.untilFrames('subscribed', 1);
    const [lost] = await appendDirect(a.deps, a.sign, [content()]);
    await d.until((x) => seqs(x).includes(lost.seq), 5000, 'the lost alert');
    expect(d.alerts().find((x) => x.seq === lost.seq)!.content.id).toBe(JSON.parse(lost.body).content.id);
    const metrics = await b.metrics();
    expect(metrics).toMatch(new RegExp(`cordon_ws_log_reads_total\\{region="${R}"\\} [1-9]`));
  });

  test('the first alert of an empty region, lost on the bus, is found by the position check (regression)', async () => {
    // A region nobody has written yet: the feed goes live with no epoch and must still catch up.
    const empty = a.regions.list()[1].code;
    const d = await on(b);
    d.subscribe([empty]);
    await d.untilFrames('subscribed', 1);
    expect(d.frames[0]).toMatchObject({ type: 'subscribed', region: empty, seq: 0 });
    const [lost] = await appendDirect(a.deps, a.sign, [
      validContent({ region: empty, issuer: { state: 'KZ', agency: 'kz-border-service', gateway: 'kz-gw-1' } }),
    ]);
    await d.until((x) => x.alerts(empty).some((f) => f.seq === lost.seq), 5000, 'the lost first alert');
    expect(lost.seq).toBe(1);
  });

  test('a seq jump on the bus makes the node read the missing range from the log before delivering', async () => {
    const d = await on(b);
    d.subscribe([R]);
    await d.untilFrames('subscribed', 1);
    // Two appends the bus never hears of, then one it does: the node sees seq jump by three.
    const lost = await appendDirect(a.deps, a.sign, [content(), content()]);
    const rung = await a.publish(content());
    await d.until((x) => seqs(x).includes(rung.seq));
    await d.settle();
    expect(seqs(d)).toEqual(range(lost[0].seq, rung.seq));
  });

  test('two desks on two nodes see the same sequence', async () => {
    const da = await on(a);
    const db = await on(b);
    da.subscribe([R]);
    db.subscribe([R]);
    await da.untilFrames('subscribed', 1);
    await db.untilFrames('subscribed', 1);
    const published = [];
    for (let i = 0; i < 10; i++) published.push(await (i % 2 ? a : b).publish(content()));
    const last = published[published.length - 1].seq;
    await da.until((x) => seqs(x).includes(last));
    await db.until((x) => seqs(x).includes(last));
    expect(seqs(da)).toEqual(seqs(db));
    expect(seqs(da)).toEqual(range(published[0].seq, last));
  });

  test('when the log is lost and starts a new epoch, live desks get an epoch-changed gap, then the new log', async () => {
    const d = await on(b);
    d.subscribe([R2]);
    await d.untilFrames('subscribed', 1);
    const old = [await a.publish(content({ region: R2 })), await a.publish(content({ region: R2 }))];
    await d.untilFrames('alert', 2);
    // Redis loses the region's log (this test's keys only).
    const redis = createRedisClient(TEST_REDIS_URL);
    try {
      await redis.del(`${keyPrefix}{${R2}}:meta`, `${keyPrefix}{${R2}}:log`);
    } finally {
      await redis.quit();
    }
    const fresh = await a.publish(content({ region: R2 }));
    expect(fresh.seq).toBe(1);
    expect(fresh.epoch).not.toBe(old[0].epoch);
    await d.until((x) => x.alerts().some((f) => f.epoch === fresh.epoch), 5000, 'the new epoch');
    const next = await a.publish(content({ region: R2 }));
    await d.until((x) => x.alerts().some((f) => f.epoch === fresh.epoch && f.seq === next.seq));
    await d.settle();
    const after = d.frames.slice(d.frames.findIndex((f) => f.type === 'gap'));
    expect(after.map((f) => [f.type, f.seq ?? null, f.epoch])).toEqual([
      ['gap', null, fresh.epoch],
      ['alert', 1, fresh.epoch],
      ['alert', 2, fresh.epoch],
    ]);
    expect(after[0]).toEqual({ type: 'gap', region: R2, from: 1, to: 0, reason: 'epoch-changed', epoch: fresh.epoch });
  });
});
