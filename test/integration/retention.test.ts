import Redis from 'ioredis';
import { deleteKeysWithPrefix } from '../../src/adapters/redis/client';
import { makeTestApp, sharedBackend, testRegions, type TestApp } from '../helpers/app';
import { makeTestTrust } from '../helpers/keys';
import { TEST_REDIS_URL } from '../helpers/env';
import { startProxy } from '../helpers/tcp-proxy';
import { validContent } from '../fixtures/alerts';

async function until(check: () => Promise<boolean>, withinMs = 5000): Promise<void> {
  const deadline = Date.now() + withinMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 25));
  }
}

const trimmedMetric = async (t: TestApp, region: string): Promise<number> => {
  const text = await t.deps.metrics.registry.metrics();
  const m = new RegExp(`cordon_retention_trimmed_total\\{region="${region}"\\} (\\d+)`).exec(text);
  return m ? Number(m[1]) : 0;
};

describe('retention on Redis', () => {
  const regions = testRegions();
  const [A, B] = regions.map((r) => r.code);
  const trust = makeTestTrust(['KG', 'KZ', 'CN'], regions);
  const apps: TestApp[] = [];
  const shared = sharedBackend();

  /** A node on the shared backend; retention settings as environment variables. */
  async function node(config: Record<string, string> = {}, now?: () => number, redisUrl?: string): Promise<TestApp> {
    const t = await makeTestApp({ backend: 'real', shared, trust, regions, config, now, redisUrl });
    apps.push(t);
    return t;
  }
  const state = (t: TestApp, region: string) => t.deps.regionLog.state(region);
  const closeNode = async (t: TestApp) => {
    apps.splice(apps.indexOf(t), 1);
    await t.close();
  };

  afterAll(async () => {
    for (const t of apps) await t.close();
    const redis = new Redis(TEST_REDIS_URL);
    await deleteKeysWithPrefix(redis, shared.keyPrefix);
    await redis.quit();
  });

  test('CORDON_RETENTION_MAX_ALERTS holds at every append (contract §11 v1.1); positions before it then answer 410', async () => {
    const t = await node({ CORDON_RETENTION_MAX_ALERTS: '3', CORDON_RETENTION_INTERVAL_MS: '100' });
    for (let i = 0; i < 6; i++) {
      const r = await t.publish(validContent({ region: A }));
      // Right after the receipt, not after a retention pass: the append trimmed in the same step.
      expect(await state(t, A)).toMatchObject({ earliest: Math.max(1, r.seq - 2), latest: r.seq });
    }
    for (let i = 0; i < 2; i++) await t.publish(validContent({ region: B }));
    expect(await state(t, A)).toMatchObject({ earliest: 4, latest: 6 });
    expect(await state(t, B)).toMatchObject({ earliest: 1, latest: 2 });
    // The periodic pass finds nothing beyond the bound left to trim.
    await new Promise((r) => setTimeout(r, 300));
    expect(await trimmedMetric(t, A)).toBe(0);

    const token = t.token({ iss: 'KG' });
    const gone = await t.app.inject({ url: `/v1/regions/${A}/alerts?after=0`, headers: { authorization: `Bearer ${token}` } });
    expect(gone.statusCode).toBe(410);
    expect(gone.json()).toMatchObject({ code: 'HISTORY_TRIMMED', earliest: 4 });
    const held = await t.app.inject({ url: `/v1/regions/${A}/alerts`, headers: { authorization: `Bearer ${token}` } });
    expect(held.json().items.map((i: { seq: number }) => i.seq)).toEqual([4, 5, 6]);
    await closeNode(t);
  });

  test('the timer stops on close: a closed node trims nothing more', async () => {
    const writer = await node();
    const before = await state(writer, B);
    for (let i = 0; i < 4; i++) await writer.publish(validContent({ region: B }));
    await new Promise((r) => setTimeout(r, 400));
    // The node of the first test (max 3 alerts, every 100 ms) is closed: B keeps all six.
    expect(await state(writer, B)).toMatchObject({ earliest: before.earliest, latest: before.latest + 4 });
  });

  test('alerts older than CORDON_RETENTION_MAX_AGE_DAYS are trimmed by several nodes at once, each dropped once', async () => {
    const writer = await node();
    const start = await state(writer, B);
    const inTwoDays = () => Date.now() + 2 * 86_400_000;
    const cfg = { CORDON_RETENTION_MAX_AGE_DAYS: '1', CORDON_RETENTION_INTERVAL_MS: '100' };
    const [n1, n2] = await Promise.all([node(cfg, inTwoDays), node(cfg, inTwoDays)]);
    await until(async () => (await state(writer, B)).earliest === 0);
    const s = await state(writer, B);
    expect(s).toMatchObject({ earliest: 0, latest: start.latest });
    // Both nodes trimmed B; together they dropped every alert exactly once.
    expect((await trimmedMetric(n1, B)) + (await trimmedMetric(n2, B))).toBe(start.latest - start.earliest + 1);
    await Promise.all([closeNode(n1), closeNode(n2)]);

    // The log goes on from the same position.
    const r = await writer.publish(validContent({ region: B }));
    expect(r.seq).toBe(start.latest + 1);
    expect(await state(writer, B)).toMatchObject({ earliest: r.seq, latest: r.seq });
  });

  test('a pass that fails while Redis is unreachable is retried later, and the node keeps serving', async () => {
    const proxy = await startProxy(TEST_REDIS_URL);
    const writer = await node();
    let trimmer: TestApp | undefined;
    try {
      trimmer = await node({ CORDON_RETENTION_MAX_ALERTS: '2', CORDON_RETENTION_INTERVAL_MS: '100' }, undefined, proxy.url);
      for (let i = 0; i < 3; i++) await writer.publish(validContent({ region: A }));
      await until(async () => {
        const s = await state(writer, A);
        return s.earliest > 0 && s.latest - s.earliest + 1 === 2;
      });
      await proxy.pause();
      for (let i = 0; i < 3; i++) await writer.publish(validContent({ region: A }));
      await new Promise((r) => setTimeout(r, 400));
      expect((await trimmer.app.inject({ url: '/healthz' })).statusCode).toBe(200);
      const during = await state(writer, A);
      expect(during.latest - during.earliest + 1).toBe(5);
      await proxy.resume();
      await until(async () => (await state(writer, A)).earliest === during.latest - 1);
    } finally {
      if (trimmer) await closeNode(trimmer);
      await proxy.close();
    }
  });
});
