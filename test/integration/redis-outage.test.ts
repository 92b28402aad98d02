import Redis from 'ioredis';
import { createRedisClient } from '../../src/adapters/redis/client';
import { RedisAuditLog } from '../../src/adapters/redis/audit-log';
import { RedisRegionLog } from '../../src/adapters/redis/region-log';
import { LogUnavailableError, type AppendInput, type RegionLog } from '../../src/ports/region-log';
import { TEST_REDIS_URL, uniqueKeyPrefix, uniqueRegion } from '../helpers/env';
import { startProxy, type TcpProxy } from '../helpers/tcp-proxy';

let n = 0;
function input(region: string): AppendInput {
  const id = `alert--00000000-0000-4000-8000-${String(++n).padStart(12, '0')}-${Math.random().toString(16).slice(2, 8)}`;
  const t = '2026-03-01T10:00:00.000Z';
  return {
    region,
    id,
    created: t,
    modified: t,
    issuerState: 'KG',
    revoked: false,
    contentHash: `h-${id}`,
    body: `{"content":{"id":"${id}"},"sig":{"protected":"p","signature":"s"}}`,
  };
}

/** Resolves with how long `p` took to reject, failing if it resolves. */
async function rejectionTime(p: Promise<unknown>): Promise<{ ms: number; err: unknown }> {
  const start = Date.now();
  try {
    await p;
  } catch (err) {
    return { ms: Date.now() - start, err };
  }
  throw new Error('expected a rejection');
}

async function untilAppended(log: RegionLog, inp: AppendInput, withinMs: number) {
  const deadline = Date.now() + withinMs;
  for (;;) {
    try {
      return await log.append(inp);
    } catch (err) {
      expect(err).toBeInstanceOf(LogUnavailableError);
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

describe('Redis outage', () => {
  let proxy: TcpProxy;
  let direct: Redis;
  let client: Redis;
  let log: RedisRegionLog;
  let audit: RedisAuditLog;
  const prefix = uniqueKeyPrefix();
  const region = uniqueRegion();
  const meta = `${prefix}{${region}}:meta`;
  const stream = `${prefix}{${region}}:log`;

  beforeAll(async () => {
    proxy = await startProxy(TEST_REDIS_URL);
    direct = new Redis(TEST_REDIS_URL);
    client = createRedisClient(proxy.url);
    log = new RedisRegionLog(client, { prefix });
    audit = new RedisAuditLog(client, { prefix });
  });

  afterAll(async () => {
    await client.quit().catch(() => client.disconnect());
    await proxy.close();
    const keys = await direct.keys(`${prefix}*`);
    if (keys.length > 0) await direct.del(...keys);
    await direct.quit();
  });

  it('rejects promptly with LogUnavailableError, writes nothing, and recovers without a restart', async () => {
    const first = await log.append(input(region));
    expect(first.outcome).toBe('appended');
    await audit.append({ kind: 'ack', actor: 'KG/desk-1' });

    await proxy.pause();
    const lost = input(region);
    const { ms, err } = await rejectionTime(log.append(lost));
    expect(err).toBeInstanceOf(LogUnavailableError);
    expect((err as LogUnavailableError).cause).toBeInstanceOf(Error);
    expect(ms).toBeLessThan(2000);

    // every method fails fast the same way while Redis is unreachable
    const calls: Promise<unknown>[] = [
      log.append(input(region)),
      log.read(region, 0, 10),
      log.state(region),
      log.seqAtOrAfter(region, 0),
      log.versions(lost.id),
      log.trim(region, { maxAlerts: 1, nowMs: Date.now() }),
      log.ping(),
      audit.append({ kind: 'ack', actor: 'KG/desk-1' }),
      audit.read(0, 10),
      audit.ping(),
    ];
    const results = await Promise.all(calls.map((p) => rejectionTime(p)));
    for (const r of results) {
      expect(r.err).toBeInstanceOf(LogUnavailableError);
      expect(r.ms).toBeLessThan(2000);
    }

    // nothing was written while paused
    expect(await direct.hget(meta, 'seq')).toBe('1');
    expect(await direct.xlen(stream)).toBe(1);
    expect(await direct.exists(`${prefix}alert:${lost.id}`)).toBe(0);

    await proxy.resume();
    const next = await untilAppended(log, input(region), 5000);
    expect(next.outcome).toBe('appended');
    if (next.outcome === 'appended' && first.outcome === 'appended') {
      expect(next.entry.seq).toBe(2);
      expect(next.entry.epoch).toBe(first.entry.epoch);
    }
    expect(await direct.xlen(stream)).toBe(2);
    const rec = await audit.append({ kind: 'ack', actor: 'KG/desk-1' });
    expect(rec.n).toBe(2);
  });

  it('rejects commands sent before the first connect once the connect fails, then connects when Redis is there', async () => {
    const p = await startProxy(TEST_REDIS_URL);
    await p.pause();
    const c = createRedisClient(p.url);
    const l = new RedisRegionLog(c, { prefix });
    const { ms, err } = await rejectionTime(l.state(region));
    expect(err).toBeInstanceOf(LogUnavailableError);
    expect(ms).toBeLessThan(2000);
    await p.resume();
    const deadline = Date.now() + 5000;
    let state;
    while (!state) {
      state = await l.state(region).catch((e) => {
        if (Date.now() > deadline) throw e;
        return new Promise<undefined>((r) => setTimeout(() => r(undefined), 50));
      });
    }
    expect(state.latest).toBe(2);
    await c.quit();
    await p.close();
  });
});
