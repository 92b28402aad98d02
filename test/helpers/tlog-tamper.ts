import Redis from 'ioredis';
import type { TestApp } from './app';
import { TEST_REDIS_URL } from './env';

/**
 * Behind Cordon's back, as an operator with Redis access could: flips bits of byte `at` of the
 * level-0 hash tile 0 of a tree in the test app's Redis (a region's tree of `epoch`, or the audit
 * tree), so the stored hash there is no longer what the log implies.
 */
export async function tamperStoredTile(t: TestApp, tree: { region: string; epoch: string } | 'audit', at: number, mask = 0x01): Promise<void> {
  const prefix = t.deps.config.redisKeyPrefix;
  const key = tree === 'audit' ? `${prefix}{audit}:tlog:audit:t:0:0` : `${prefix}{${tree.region}}:tlog:${tree.epoch}:t:0:0`;
  const admin = new Redis(TEST_REDIS_URL);
  try {
    const tile = await admin.getBuffer(key);
    if (!tile) throw new Error(`no stored tile ${key}`);
    tile[at] ^= mask;
    await admin.set(key, tile);
  } finally {
    await admin.quit();
  }
}
