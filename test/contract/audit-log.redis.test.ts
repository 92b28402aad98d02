import Redis from 'ioredis';
import { createRedisClient } from '../../src/adapters/redis/client';
import { RedisAuditLog } from '../../src/adapters/redis/audit-log';
import { TEST_REDIS_URL, uniqueKeyPrefix } from '../helpers/env';
import { describeAuditLogContract } from './audit-log.contract';
import { deleteKeysWithPrefix } from '../../src/adapters/redis/client';

/** Deletes this test's keys only (the database is shared: never flush). */

describeAuditLogContract('redis', async () => {
  const prefix = uniqueKeyPrefix();
  const log = new RedisAuditLog(createRedisClient(TEST_REDIS_URL), { prefix, ownsClient: true });
  return {
    log,
    async cleanup() {
      const admin = new Redis(TEST_REDIS_URL);
      await deleteKeysWithPrefix(admin, prefix);
      await admin.quit();
      await log.close();
    },
  };
});

describe('RedisAuditLog (Redis specifics)', () => {
  it('keeps the trail and its numbering across adapter instances', async () => {
    const prefix = uniqueKeyPrefix();
    const first = new RedisAuditLog(createRedisClient(TEST_REDIS_URL), { prefix, ownsClient: true });
    const a = await first.append({ kind: 'ack', actor: 'KG/desk-1', region: 'KG-CN-01', seq: 3 });
    await first.close();
    const second = new RedisAuditLog(createRedisClient(TEST_REDIS_URL), { prefix, ownsClient: true });
    const b = await second.append({ kind: 'ack', actor: 'KG/desk-1', region: 'KG-CN-01', seq: 4 });
    expect(b.n).toBe(a.n + 1);
    expect(await second.read(0, 10)).toEqual({ items: [a, b], next: null });
    await second.close();
    const admin = new Redis(TEST_REDIS_URL);
    await deleteKeysWithPrefix(admin, prefix);
    await admin.quit();
  });
});
