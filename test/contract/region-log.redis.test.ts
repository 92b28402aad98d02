import net from 'node:net';
import Redis from 'ioredis';
import { LogUnavailableError } from '../../src/ports/region-log';
import { scanAll } from '../helpers/raw-scan';
import { createRedisClient, deleteKeysWithPrefix } from '../../src/adapters/redis/client';
import { RedisRegionLog } from '../../src/adapters/redis/region-log';
import { TEST_REDIS_URL, uniqueKeyPrefix, uniqueRegion } from '../helpers/env';
import { alertInput, describeRegionLogContract, type RegionLogFixture } from './region-log.contract';

/** Two adapters over one Redis under a fresh prefix; cleanup deletes this test's keys only (the database is shared: never flush). */
function redisFixture(opts: { cluster?: boolean } = {}): () => Promise<RegionLogFixture> {
  return async () => {
    const prefix = uniqueKeyPrefix();
    const log = new RedisRegionLog(createRedisClient(TEST_REDIS_URL), { prefix, ownsClient: true, ...opts });
    const peer = new RedisRegionLog(createRedisClient(TEST_REDIS_URL), { prefix, ownsClient: true, ...opts });
    return {
      log,
      peer,
      async cleanup() {
        const admin = new Redis(TEST_REDIS_URL);
        await deleteKeysWithPrefix(admin, prefix);
        await admin.quit();
        await Promise.all([log.close(), peer.close()]);
      },
    };
  };
}

describeRegionLogContract('redis', redisFixture());
// The same contract with the id index claimed by its own command, every script on one slot.
describeRegionLogContract('redis, cluster-safe', redisFixture({ cluster: true }));

describe('RedisRegionLog (Redis specifics)', () => {
  let admin: Redis;
  let prefix: string;
  let region: string;
  let log: RedisRegionLog;

  beforeEach(() => {
    admin = new Redis(TEST_REDIS_URL);
    prefix = uniqueKeyPrefix();
    region = uniqueRegion();
    log = new RedisRegionLog(createRedisClient(TEST_REDIS_URL), { prefix, ownsClient: true });
  });

  afterEach(async () => {
    await deleteKeysWithPrefix(admin, prefix);
    await Promise.all([log.close(), admin.quit()]);
  });

  it('keeps every key of a region under one hash tag and the stream entry ID equal to the seq', async () => {
    const input = alertInput(region);
    await log.append(input);
    const keys = (await admin.keys(`${prefix}*`)).sort();
    expect(keys).toEqual([`${prefix}alert:${input.id}`, `${prefix}{${region}}:log`, `${prefix}{${region}}:meta`, `${prefix}{${region}}:v:${input.id}`].sort());
    const [[id, fields]] = await admin.xrange(`${prefix}{${region}}:log`, '-', '+');
    expect(id).toBe('1-0');
    expect(fields[0]).toBe('at');
    expect(fields[2]).toBe('b');
    expect(fields[3]).toBe(input.body);
  });

  it('gives a log lost from Redis a new epoch and restarts seq at 1', async () => {
    const first = await log.append(alertInput(region));
    if (first.outcome !== 'appended') throw new Error('not appended');
    await deleteKeysWithPrefix(admin, `${prefix}{${region}}`);
    const second = await log.append(alertInput(region));
    if (second.outcome !== 'appended') throw new Error('not appended');
    expect(second.entry.seq).toBe(1);
    expect(second.entry.epoch).not.toBe(first.entry.epoch);
  });

  it('keeps the epoch across adapter instances and reconnects', async () => {
    const first = await log.append(alertInput(region));
    const other = new RedisRegionLog(createRedisClient(TEST_REDIS_URL), { prefix, ownsClient: true });
    const second = await other.append(alertInput(region));
    await other.close();
    if (first.outcome !== 'appended' || second.outcome !== 'appended') throw new Error('not appended');
    expect(second.entry.epoch).toBe(first.entry.epoch);
    expect(second.entry.seq).toBe(2);
  });

  /**
   * A proxy to Redis that, once `forget()` is called, rewrites the sha of the next EVALSHA to one
   * no server holds: Redis itself then answers NOSCRIPT, as after a restart or a failover, without
   * flushing the shared server's script cache (state not this test's own).
   */
  async function forgetfulProxy(): Promise<{ url: string; forget(): void; forgotten(): number; close(): Promise<void> }> {
    const target = new URL(TEST_REDIS_URL);
    const sockets = new Set<net.Socket>();
    let armed = false;
    let rewrites = 0;
    const EVALSHA = /evalsha\r\n\$40\r\n/i;
    const server = net.createServer((client) => {
      const upstream = net.connect({ host: target.hostname, port: Number(target.port || 6379) });
      sockets.add(client).add(upstream);
      upstream.pipe(client);
      let held = Buffer.alloc(0);
      client.on('data', (chunk: Buffer) => {
        if (!armed && held.length === 0) return void upstream.write(chunk);
        held = Buffer.concat([held, chunk]);
        const m = EVALSHA.exec(held.toString('latin1'));
        if (m && held.length >= m.index + m[0].length + 40) {
          held.fill('0', m.index + m[0].length, m.index + m[0].length + 40);
          armed = false;
          rewrites++;
        }
        // Keep back a tail that might be the start of the pattern while armed.
        const keep = armed ? Math.min(held.length, 64) : 0;
        upstream.write(held.subarray(0, held.length - keep));
        held = Buffer.from(held.subarray(held.length - keep));
      });
      for (const s of [client, upstream]) s.on('error', () => undefined).on('close', () => (client.destroy(), upstream.destroy()));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = new URL(TEST_REDIS_URL);
    url.hostname = '127.0.0.1';
    url.port = String((server.address() as net.AddressInfo).port);
    return {
      url: url.toString(),
      forget: () => void (armed = true),
      forgotten: () => rewrites,
      close: () => {
        for (const s of sockets) s.destroy();
        return new Promise<void>((r) => server.close(() => r()));
      },
    };
  }

  it('recovers when Redis forgot the loaded script (NOSCRIPT falls back to EVAL)', async () => {
    const proxy = await forgetfulProxy();
    const viaProxy = new RedisRegionLog(createRedisClient(proxy.url), { prefix, ownsClient: true });
    try {
      await viaProxy.append(alertInput(region));
      proxy.forget();
      const o = await viaProxy.append(alertInput(region));
      expect(proxy.forgotten()).toBe(1);
      expect(o.outcome).toBe('appended');
      expect((await log.state(region)).latest).toBe(2);
    } finally {
      await viaProxy.close();
      await proxy.close();
    }
  });

  /** A proxy to Redis that hands its replies back in pieces of 1..13 bytes or up to 4 KB, one piece per turn. */
  async function tricklingProxy(): Promise<{ port: number; close(): Promise<void> }> {
    const target = new URL(TEST_REDIS_URL);
    const sockets = new Set<net.Socket>();
    const server = net.createServer((client) => {
      const upstream = net.connect({ host: target.hostname, port: Number(target.port || 6379) });
      sockets.add(client).add(upstream);
      client.pipe(upstream);
      let queue = Promise.resolve();
      upstream.on('data', (chunk: Buffer) => {
        queue = queue.then(async () => {
          for (let i = 0; i < chunk.length;) {
            const n = 1 + Math.floor(Math.random() * (Math.random() < 0.5 ? 13 : 4096));
            client.write(chunk.subarray(i, i + n));
            i += n;
            await new Promise((r) => setImmediate(r));
          }
        });
      });
      for (const s of [client, upstream]) s.on('error', () => undefined).on('close', () => (client.destroy(), upstream.destroy()));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return {
      port: (server.address() as net.AddressInfo).port,
      close: () => {
        for (const s of sockets) s.destroy();
        return new Promise<void>((r) => server.close(() => r()));
      },
    };
  }

  it('scans raw byte-exact whatever the pieces the replies arrive in, entries larger than its read buffer included', async () => {
    const sizes = [10, 3000, 1, 300_000, 70_000, 5, 600_000, 12];
    for (const [i, n] of sizes.entries()) {
      const body = `{"content":{"t":"${'éx🚚'.repeat(Math.ceil(n / 7)).slice(0, n)}"},"sig":{"protected":"p","signature":"s${i}"}}`;
      await log.append(alertInput(region, { body, visibility: i % 2 ? `KG|CN|secret|${region}` : undefined }));
    }
    const { epoch, entries } = await log.read(region, 0, 100);
    const proxy = await tricklingProxy();
    const viaProxy = new RedisRegionLog(new Redis({ port: proxy.port, host: '127.0.0.1', lazyConnect: true }), { prefix });
    try {
      for (const batch of [1, 3, 100]) {
        const scan = await scanAll(viaProxy, { region, epoch: epoch!, after: 0, top: sizes.length, batch });
        expect(scan.last).toBe(sizes.length);
        expect(scan.entries.map((e) => e.body.toString('utf8'))).toEqual(entries.map((e) => e.body));
        expect(scan.entries.map((e) => e.receivedAt)).toEqual(entries.map((e) => e.receivedAt));
        expect(scan.entries.map((e) => e.visibility)).toEqual(sizes.map((_, i) => (i % 2 ? `KG|CN|secret|${region}` : undefined)));
      }
    } finally {
      await proxy.close();
    }
  });

  it('scans raw from the database the client selected', async () => {
    const url = new URL(TEST_REDIS_URL);
    url.pathname = '/5';
    const other = new RedisRegionLog(createRedisClient(url.toString()), { prefix, ownsClient: true });
    const otherAdmin = new Redis(url.toString());
    try {
      await other.append(alertInput(region));
      await other.append(alertInput(region));
      const { epoch } = await other.state(region);
      expect((await scanAll(other, { region, epoch: epoch!, after: 0, top: 2 })).last).toBe(2);
      // Nothing of it in the default database.
      expect((await scanAll(log, { region, epoch: epoch!, after: 0, top: 2 })).last).toBe(0);
    } finally {
      await deleteKeysWithPrefix(otherAdmin, prefix);
      await Promise.all([other.close(), otherAdmin.quit()]);
    }
  });

  it('scans raw as the ACL user of the client, and refuses with LogUnavailableError on bad credentials', async () => {
    const user = `cordon-test-${uniqueKeyPrefix().replace(/[^a-z0-9]/gi, '')}`;
    const password = `pw-${Date.now()}`;
    // A user of this test's own, removed afterwards; it may only touch this test's keys.
    await admin.call('ACL', 'SETUSER', user, 'on', `>${password}`, `~${prefix}*`, '+@all');
    const url = new URL(TEST_REDIS_URL);
    url.username = user;
    url.password = password;
    const asUser = new RedisRegionLog(createRedisClient(url.toString()), { prefix, ownsClient: true });
    url.password = 'wrong';
    const wrong = new RedisRegionLog(new Redis(url.toString(), { lazyConnect: true }), { prefix });
    try {
      await asUser.append(alertInput(region));
      await asUser.append(alertInput(region));
      const { epoch } = await asUser.state(region);
      expect((await scanAll(asUser, { region, epoch: epoch!, after: 0, top: 2 })).last).toBe(2);
      await expect(
        wrong.scanRaw({ region, epoch: epoch!, after: 0, top: 2, batch: 10 }, { entry: () => undefined, flush: () => undefined }),
      ).rejects.toBeInstanceOf(LogUnavailableError);
    } finally {
      await asUser.close();
      await admin.call('ACL', 'DELUSER', user);
    }
  });

  it('rejects a raw scan with LogUnavailableError when Redis cannot be reached', async () => {
    const closed = net.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as net.AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const unreachable = new RedisRegionLog(new Redis({ port, host: '127.0.0.1', lazyConnect: true }), { prefix });
    const scan = unreachable.scanRaw({ region, epoch: 'e', after: 0, top: 5, batch: 2 }, { entry: () => undefined, flush: () => undefined });
    await expect(scan).rejects.toBeInstanceOf(LogUnavailableError);
  });
});
