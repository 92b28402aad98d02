import Redis from 'ioredis';
import { createRedisClient, deleteKeysWithPrefix } from '../../src/adapters/redis/client';
import { RedisTreeStore } from '../../src/adapters/redis/tree-store';
import { TEST_REDIS_URL, uniqueKeyPrefix } from '../helpers/env';
import { describeTreeStoreContract } from './tree-store.contract';

/** Two stores (two nodes) over one Redis under a fresh prefix; cleanup deletes this test's keys only. */
describeTreeStoreContract('redis', async () => {
  const prefix = uniqueKeyPrefix();
  const store = new RedisTreeStore(createRedisClient(TEST_REDIS_URL), { prefix, ownsClient: true });
  const peer = new RedisTreeStore(createRedisClient(TEST_REDIS_URL), { prefix, ownsClient: true });
  return {
    store,
    peer,
    exhaustive: true,
    async cleanup() {
      const admin = new Redis(TEST_REDIS_URL);
      await deleteKeysWithPrefix(admin, prefix);
      await admin.quit();
      await Promise.all([store.close(), peer.close()]);
    },
  };
});

describe('RedisTreeStore (Redis specifics)', () => {
  it('keeps one string per tile under the region hash tag', async () => {
    const prefix = uniqueKeyPrefix();
    const store = new RedisTreeStore(createRedisClient(TEST_REDIS_URL), { prefix, ownsClient: true });
    const admin = new Redis(TEST_REDIS_URL);
    const tree = { tag: 'KG-CN-01', name: 'ep' };
    await store.writeTiles(tree, [{ tile: { level: 1, n: 1234, width: 5 }, data: Buffer.alloc(160, 7) }]);
    expect(await admin.strlen(`${prefix}{KG-CN-01}:tlog:ep:t:1:1234`)).toBe(160);
    await deleteKeysWithPrefix(admin, prefix);
    await admin.quit();
    await store.close();
  });
});
