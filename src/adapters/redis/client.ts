import Redis from 'ioredis';
import { LogUnavailableError } from '../../ports/region-log';

export interface RedisClientOptions {
  /** bound on one TCP connect attempt. */
  connectTimeoutMs?: number;
  /** bound on any command, for connections that hang without closing. */
  commandTimeoutMs?: number;
  /** upper bound of the delay between reconnect attempts. */
  maxReconnectDelayMs?: number;
  /**
   * Redis Sentinels to ask for the current primary of `sentinelName`; the URL then gives only the
   * credentials and the database.
   */
  sentinels?: Array<{ host: string; port: number }>;
  sentinelName?: string;
  /** a pino (or Fastify) logger; only info and warn are used. */
  log?: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
}

/**
 * An ioredis client that fails fast and heals itself: while Redis is unreachable every command
 * rejects at once (no unbounded offline queue, no resend of commands whose outcome is unknown),
 * and the client keeps reconnecting in the background so the service recovers without a restart.
 */
export function createRedisClient(url: string, opts: RedisClientOptions = {}): Redis {
  const log = opts.log;
  const maxDelay = opts.maxReconnectDelayMs ?? 500;
  const client = new Redis(url, {
    connectTimeout: opts.connectTimeoutMs ?? 1000,
    commandTimeout: opts.commandTimeoutMs ?? 1000,
    // Commands sent before the first connect wait for it (bounded by commandTimeout) ...
    enableOfflineQueue: true,
    // ... and a closed connection rejects what is queued or in flight straight away.
    maxRetriesPerRequest: 0,
    // An append in flight when the connection dropped may or may not have run: never run it twice.
    autoResendUnfulfilledCommands: false,
    retryStrategy: (times) => Math.min(times * 50, maxDelay),
    enableAutoPipelining: true,
    ...(opts.sentinels?.length ? { sentinels: opts.sentinels, name: opts.sentinelName ?? 'mymaster' } : {}),
  });
  let wasReady = false;
  client.on('ready', () => {
    // After the first connect, a disconnected client rejects at once instead of queueing.
    client.options.enableOfflineQueue = false;
    if (wasReady) log?.info({ component: 'redis' }, 'redis reconnected');
    wasReady = true;
  });
  let lastError = '';
  client.on('error', (err: Error) => {
    // Reconnect attempts repeat the same error; log each distinct one once per outage.
    if (err.message !== lastError) log?.warn({ component: 'redis', err: err.message }, 'redis error');
    lastError = err.message;
  });
  client.on('ready', () => {
    lastError = '';
  });
  return client;
}

/** Quits politely; a client that cannot (already disconnected) is closed at once. */
export async function quitClient(redis: Redis): Promise<void> {
  try {
    await redis.quit();
  } catch {
    redis.disconnect();
  }
}

/** Runs a Redis call; any failure becomes LogUnavailableError naming `what`, with the cause. */
export async function logCall<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw new LogUnavailableError(`${what} unavailable`, { cause: err });
  }
}

/** Deletes every key under `prefix` with SCAN + UNLINK (tests and benchmarks; never FLUSHDB). */
export async function deleteKeysWithPrefix(redis: Redis, prefix: string): Promise<number> {
  let cursor = '0';
  let deleted = 0;
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    if (keys.length > 0) deleted += await redis.unlink(...keys);
    cursor = next;
  } while (cursor !== '0');
  return deleted;
}
