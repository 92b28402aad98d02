import Redis, { Cluster, ReplyError, type RedisOptions } from 'ioredis';
import { LogOutcomeUnknownError, LogUnavailableError } from '../../ports/region-log';

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
  /**
   * Redis Cluster: `url` is then one or more seed nodes (`redis://a:6379,redis://b:6379`), the
   * first giving the credentials; the client learns the rest of the cluster from them.
   */
  cluster?: boolean;
  /** a pino (or Fastify) logger; only info and warn are used. */
  log?: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
}

/**
 * An ioredis client that fails fast and heals itself: while Redis is unreachable every command
 * rejects at once (no unbounded offline queue, no resend of commands whose outcome is unknown),
 * and the client keeps reconnecting in the background so the service recovers without a restart.
 */
export function createRedisClient(url: string, opts: RedisClientOptions & { cluster: true }): Cluster;
export function createRedisClient(url: string, opts?: RedisClientOptions & { cluster?: false }): Redis;
export function createRedisClient(url: string, opts?: RedisClientOptions): RedisClient;
export function createRedisClient(url: string, opts: RedisClientOptions = {}): RedisClient {
  const log = opts.log;
  const maxDelay = opts.maxReconnectDelayMs ?? 500;
  const common: RedisOptions = {
    connectTimeout: opts.connectTimeoutMs ?? 1000,
    commandTimeout: opts.commandTimeoutMs ?? 1000,
    // Commands sent before the first connect wait for it (bounded by commandTimeout) ...
    enableOfflineQueue: true,
    // ... and a closed connection rejects what is queued or in flight straight away.
    maxRetriesPerRequest: 0,
    // An append in flight when the connection dropped may or may not have run: never run it twice.
    autoResendUnfulfilledCommands: false,
    retryStrategy: (times) => Math.min(times * 50, maxDelay),
  };
  let client: RedisClient;
  if (opts.cluster) {
    const seeds = url.split(',').map((u) => new URL(u.trim()));
    const first = seeds[0];
    client = new Cluster(
      seeds.map((u) => ({ host: u.hostname, port: Number(u.port || 6379) })),
      {
        enableOfflineQueue: true,
        enableAutoPipelining: true,
        clusterRetryStrategy: (times) => Math.min(times * 50, maxDelay),
        redisOptions: {
          ...common,
          username: first.username ? decodeURIComponent(first.username) : undefined,
          password: first.password ? decodeURIComponent(first.password) : undefined,
          tls: first.protocol === 'rediss:' ? {} : undefined,
        },
      },
    );
  } else {
    client = new Redis(url, {
      ...common,
      enableAutoPipelining: true,
      ...(opts.sentinels?.length ? { sentinels: opts.sentinels, name: opts.sentinelName ?? 'mymaster' } : {}),
    });
  }
  const connection = { generation: 0 };
  connections.set(client, connection);
  if (log) loggers.set(client, log);
  let wasReady = false;
  client.on('ready', () => {
    connection.generation++;
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

/** A single Redis (possibly found through Sentinel) or a Redis Cluster. */
export type RedisClient = Redis | Cluster;

/** Quits politely; a client that cannot (already disconnected) is closed at once. */
export async function quitClient(redis: RedisClient): Promise<void> {
  try {
    await redis.quit();
  } catch {
    redis.disconnect();
  }
}

/** Per client: how many times it became ready (each time on a new connection). */
const connections = new WeakMap<RedisClient, { generation: number }>();

const loggers = new WeakMap<RedisClient, NonNullable<RedisClientOptions['log']>>();

/** ioredis' commandTimeout rejection: the command may be on the wire, or even done. */
function isCommandTimeout(err: unknown): boolean {
  return err instanceof Error && err.message === 'Command timed out';
}

/**
 * Rejections whose outcome is known: Redis answered with an error, or the command never reached a
 * connection (disconnected, no offline queue).
 */
function outcomeKnown(err: unknown): boolean {
  return err instanceof Error && (err.message.startsWith("Stream isn't writeable") || err instanceof ReplyError);
}

/**
 * Drops a connection whose command timed out (it stalled without closing): every command still on
 * it is rejected now rather than answered later unseen, and the client reconnects. Only the
 * connection the command was sent on: a newer one that works is left alone.
 */
function dropConnection(client: RedisClient, generation: number, log?: RedisClientOptions['log']): void {
  if (connections.get(client)?.generation !== generation || client.status !== 'ready') return;
  log?.warn({ component: 'redis' }, 'redis command timed out; dropping the connection and reconnecting');
  client.disconnect(true);
}

/**
 * Runs a Redis call. A failure becomes LogUnavailableError naming `what` when nothing can have
 * been written (the client was not connected, and did not connect while the call waited), and
 * LogOutcomeUnknownError when the call went out on a connection and no answer came (timed out,
 * or the connection dropped under it); a timed-out connection is dropped. Both carry the cause.
 */
export async function logCall<T>(what: string, fn: () => Promise<T>, client?: RedisClient): Promise<T> {
  const generation = client ? (connections.get(client)?.generation ?? 0) : 0;
  const ready = client?.status === 'ready';
  try {
    return await fn();
  } catch (err) {
    const reconnected = client !== undefined && (connections.get(client)?.generation ?? 0) !== generation;
    if (client && (ready || reconnected) && !outcomeKnown(err)) {
      if (isCommandTimeout(err)) dropConnection(client, generation, loggers.get(client));
      throw new LogOutcomeUnknownError(`${what}: no answer in time; the call may have run`, { cause: err });
    }
    throw new LogUnavailableError(`${what} unavailable`, { cause: err });
  }
}

/** Deletes every key under `prefix` with SCAN + UNLINK (tests and benchmarks; never FLUSHDB). */
export async function deleteKeysWithPrefix(redis: RedisClient, prefix: string): Promise<number> {
  if (redis instanceof Cluster) {
    // Every primary holds its own share of the keys, and one UNLINK may only name one slot.
    const counts = await Promise.all(redis.nodes('master').map((node) => deleteKeys(node, prefix, true)));
    return counts.reduce((a, b) => a + b, 0);
  }
  return deleteKeys(redis, prefix, false);
}

async function deleteKeys(redis: Redis, prefix: string, oneByOne: boolean): Promise<number> {
  let cursor = '0';
  let deleted = 0;
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    if (keys.length > 0 && !oneByOne) deleted += await redis.unlink(...keys);
    if (keys.length > 0 && oneByOne) {
      const replies = (await keys.reduce((p, k) => p.unlink(k), redis.pipeline()).exec()) ?? [];
      for (const [, n] of replies) deleted += Number(n ?? 0);
    }
    cursor = next;
  } while (cursor !== '0');
  return deleted;
}
