import Redis from 'ioredis';
import { createRedisClient, deleteKeysWithPrefix } from '../../src/adapters/redis/client';
import { RedisAuditLog } from '../../src/adapters/redis/audit-log';
import { keySlot, RedisRegionLog } from '../../src/adapters/redis/region-log';
import { uniqueKeyPrefix, uniqueRegion } from '../helpers/env';
import { scanAll } from '../helpers/raw-scan';
import { HAS_REDIS_SERVER, startRedisCluster, type TestRedisCluster } from '../helpers/redis-cluster';
import { describeAuditLogContract } from './audit-log.contract';
import { alertInput, describeRegionLogContract } from './region-log.contract';

/*
 * The Redis adapters on a real Redis Cluster (three primaries started for this file): the same
 * contracts as on one Redis, every script on one slot, exports read from the primary that owns
 * the region's slot.
 */

jest.setTimeout(60_000);

const maybe = HAS_REDIS_SERVER ? describe : describe.skip;

maybe('on a Redis Cluster', () => {
  let cluster: TestRedisCluster;

  beforeAll(async () => {
    cluster = await startRedisCluster();
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  describeRegionLogContract('redis cluster', async () => {
    const prefix = uniqueKeyPrefix();
    const client = createRedisClient(cluster.url, { cluster: true });
    const log = new RedisRegionLog(client, { prefix, ownsClient: true });
    const peer = new RedisRegionLog(createRedisClient(cluster.url, { cluster: true }), { prefix, ownsClient: true });
    return {
      log,
      peer,
      async cleanup() {
        await deleteKeysWithPrefix(client, prefix);
        await Promise.all([log.close(), peer.close()]);
      },
    };
  });

  describeAuditLogContract('redis cluster', async () => {
    const prefix = uniqueKeyPrefix();
    const log = new RedisAuditLog(createRedisClient(cluster.url, { cluster: true }), { prefix, ownsClient: true });
    return { log, cleanup: () => log.close() };
  });

  it('computes the slot of a key as the cluster does, hash tags included', async () => {
    const node = new Redis(cluster.ports[0], '127.0.0.1');
    try {
      for (const key of ['cordon:{KG-CN-01}:log', 'cordon:alert:alert--x', '{}', 'a{b}c{d}', 'Тюр{🚚}', 'x{}y', uniqueKeyPrefix()]) {
        expect([key, keySlot(key)]).toEqual([key, Number(await node.call('CLUSTER', 'KEYSLOT', key))]);
      }
    } finally {
      node.disconnect();
    }
  });

  it('spreads regions over the primaries and exports each from the primary that owns it', async () => {
    const prefix = uniqueKeyPrefix();
    const client = createRedisClient(cluster.url, { cluster: true });
    const log = new RedisRegionLog(client, { prefix, ownsClient: true });
    try {
      const regions = Array.from({ length: 12 }, () => uniqueRegion());
      for (const r of regions) for (let i = 0; i < 3; i++) await log.append(alertInput(r));
      const owners = new Set(regions.map((r) => (client.slots[keySlot(`${prefix}{${r}}:log`)] ?? [])[0]));
      expect(owners.size).toBeGreaterThan(1);
      for (const r of regions) {
        const { epoch } = await log.state(r);
        expect((await scanAll(log, { region: r, epoch: epoch!, after: 0, top: 3 })).entries.map((e) => e.seq)).toEqual([1, 2, 3]);
      }
      await deleteKeysWithPrefix(client, prefix);
    } finally {
      await log.close();
    }
  });
});
