import Redis from 'ioredis';
import { createRedisClient } from '../../src/adapters/redis/client';
import { RedisRegionLog } from '../../src/adapters/redis/region-log';
import { TEST_REDIS_URL, uniqueKeyPrefix, uniqueRegion } from '../helpers/env';
import { alertInput, describeRegionLogContract } from './region-log.contract';
import { deleteKeysWithPrefix } from '../../src/adapters/redis/client';

/** Deletes this test's keys only (the database is shared: never flush). */

describeRegionLogContract('redis', async () => {
  const prefix = uniqueKeyPrefix();
  const log = new RedisRegionLog(createRedisClient(TEST_REDIS_URL), { prefix, ownsClient: true });
  const peer = new RedisRegionLog(createRedisClient(TEST_REDIS_URL), { prefix, ownsClient: true });
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
});

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
    expect(keys).toEqual(
      [`${prefix}alert:${input.id}`, `${prefix}{${region}}:log`, `${prefix}{${region}}:meta`, `${prefix}{${region}}:v:${input.id}`].sort(),
    );
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

  it('recovers when Redis forgot the loaded script (NOSCRIPT falls back to EVAL)', async () => {
    await log.append(alertInput(region));
    await admin.script('FLUSH');
    const o = await log.append(alertInput(region));
    expect(o.outcome).toBe('appended');
    expect((await log.state(region)).latest).toBe(2);
  });
});
