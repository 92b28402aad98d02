import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { Cluster, type RedisOptions } from 'ioredis';
import type {
  AppendInput,
  AppendOutcome,
  AppendRejection,
  LogEntry,
  RawScanRange,
  RawScanSink,
  ReadResult,
  RegionLog,
  RegionState,
  TrimPolicy,
} from '../../ports/region-log';
import { LogUnavailableError } from '../../ports/region-log';
import { logCall, quitClient, type RedisClient } from './client';
import { scanRawRange, type RawConnectionOptions } from './raw-scan';
import { APPEND_LUA, READ_LUA, ROTATE_EPOCH_LUA, SEQ_AT_OR_AFTER_LUA, TRIM_LUA, VERSIONS_LUA } from './scripts';

export interface RedisRegionLogOptions {
  /** key prefix; default `cordon:`. */
  prefix?: string;
  /** quit the client on close() (set when the client is not shared). */
  ownsClient?: boolean;
  /**
   * Keep every script on one hash slot (Redis Cluster): the id index is then claimed by its own
   * command before the append script instead of inside it, one more round trip per alert.
   * Default: whether the client is a Cluster client.
   */
  cluster?: boolean;
}

type RawEntry = [id: string, fields: string[]];

interface LogScripts {
  cordonLogAppend(...args: (string | number)[]): Promise<[string, number | string, string?, string?]>;
  cordonLogRead(...args: (string | number)[]): Promise<[string | null, number, number, RawEntry[]]>;
  cordonLogSeqAt(...args: (string | number)[]): Promise<number | null>;
  cordonLogTrim(...args: (string | number)[]): Promise<number>;
  cordonLogVersions(...args: (string | number)[]): Promise<[string | null, RawEntry[]]>;
  cordonLogRotateEpoch(...args: (string | number)[]): Promise<number>;
}

/**
 * The region log on Redis Streams. Keys of one region share the hash tag `{<region>}`:
 * `:meta` (epoch, seq, last_ms), `:log` (stream, entry ID `<seq>-0`, fields `at` (received_at),
 * `b` (body) and `k` (visibility key; absent on entries written before it existed)) and
 * `:v:<id>` (the alert's first-version fields, latest, revoked and `m:<modified>` per version).
 * `<prefix>alert:<id>` maps an alert to its region across regions.
 */
export class RedisRegionLog implements RegionLog {
  private readonly redis: RedisClient & LogScripts;
  private readonly prefix: string;
  private readonly ownsClient: boolean;
  private readonly cluster: boolean;

  constructor(client: RedisClient, opts: RedisRegionLogOptions = {}) {
    this.prefix = opts.prefix ?? 'cordon:';
    this.ownsClient = opts.ownsClient ?? false;
    this.cluster = opts.cluster ?? client instanceof Cluster;
    // ioredis sends EVALSHA once the script is known on the connection and falls back on NOSCRIPT.
    client.defineCommand('cordonLogAppend', { lua: APPEND_LUA });
    client.defineCommand('cordonLogRead', { numberOfKeys: 2, lua: READ_LUA, readOnly: true });
    client.defineCommand('cordonLogSeqAt', { numberOfKeys: 1, lua: SEQ_AT_OR_AFTER_LUA, readOnly: true });
    client.defineCommand('cordonLogTrim', { numberOfKeys: 2, lua: TRIM_LUA });
    client.defineCommand('cordonLogVersions', { numberOfKeys: 3, lua: VERSIONS_LUA, readOnly: true });
    client.defineCommand('cordonLogRotateEpoch', { numberOfKeys: 1, lua: ROTATE_EPOCH_LUA });
    this.redis = client as RedisClient & LogScripts;
  }

  private tag(region: string): string {
    return `${this.prefix}{${region}}`;
  }

  async append(input: AppendInput): Promise<AppendOutcome> {
    const { region, id, modified } = input;
    const tag = this.tag(region);
    const res = await this.call(async () => {
      const indexKey = `${this.prefix}alert:${id}`;
      const keys = [`${tag}:meta`, `${tag}:log`, `${tag}:v:${id}`];
      if (this.cluster) {
        // The id index lives outside the region's slot: claimed before the script runs.
        const prev = await this.redis.set(indexKey, region, 'NX', 'GET');
        if (prev !== null && prev !== region) return null;
      } else {
        keys.push(indexKey);
      }
      return this.redis.cordonLogAppend(
        keys.length,
        ...keys,
        randomBytes(9).toString('base64url'),
        modified,
        input.created,
        input.issuerState,
        input.revoked ? '1' : '0',
        input.contentHash,
        input.body,
        input.visibility ?? '',
        region,
        input.maxAlerts === undefined ? '' : String(Math.max(0, Math.floor(input.maxAlerts))),
      );
    });
    if (res === null) return { outcome: 'rejected', reason: 'field-changed' };
    const [kind, a, receivedAt, epoch] = res;
    if (kind === 'rejected') return { outcome: 'rejected', reason: a as AppendRejection };
    const seq = Number(a);
    const receipt = { id, modified, region, seq, epoch: epoch!, received_at: receivedAt! };
    if (kind === 'duplicate') return { outcome: 'duplicate', receipt };
    return {
      outcome: 'appended',
      receipt,
      entry: { region, seq, epoch: epoch!, receivedAt: receivedAt!, body: input.body },
    };
  }

  async read(region: string, after: number, limit: number): Promise<ReadResult> {
    const tag = this.tag(region);
    const [epoch, latest, earliest, raw] = await this.call(() =>
      this.redis.cordonLogRead(`${tag}:meta`, `${tag}:log`, Math.max(0, Math.floor(after)) + 1, Math.max(0, limit)),
    );
    return {
      region,
      epoch: epoch ?? null,
      latest,
      earliest,
      entries: raw.map((e) => toEntry(region, epoch ?? '', e)),
    };
  }

  /**
   * Over a connection of its own that parses replies in place (raw-scan.ts), not through ioredis:
   * an export allocates nothing per entry. Plain XRANGE rather than a script, which would copy
   * every body into Lua strings and back.
   */
  scanRaw(range: RawScanRange, sink: RawScanSink): Promise<number> {
    const tag = this.tag(range.region);
    const target = this.scanTarget(`${tag}:log`);
    if (target instanceof Error) return Promise.reject(new LogUnavailableError(`region log unavailable: ${target.message}`));
    return scanRawRange(target, { meta: `${tag}:meta`, log: `${tag}:log` }, range, sink);
  }

  /**
   * Where the export connection goes: the server the shared client reaches for `key`. Through
   * Sentinel that is the primary the client is connected to now; on a Cluster, the primary that
   * owns the key's slot.
   */
  private scanTarget(key: string): RawConnectionOptions | Error {
    const r = this.redis;
    if (r instanceof Cluster) {
      const o: RedisOptions = r.options.redisOptions ?? {};
      const owner = (r.slots[keySlot(key)] ?? [])[0];
      if (!owner) return new Error(`no cluster node is known for the slot of ${key}`);
      const i = owner.lastIndexOf(':');
      return { ...credentials(o), host: owner.slice(0, i), port: Number(owner.slice(i + 1)) };
    }
    const o = r.options;
    if (o.sentinels?.length) {
      const primary = r.stream as Socket | undefined;
      if (r.status !== 'ready' || !primary?.remoteAddress) return new Error('no connection to the Redis primary');
      return { ...credentials(o), host: primary.remoteAddress, port: primary.remotePort };
    }
    return { ...credentials(o), host: o.host, port: o.port, path: o.path ?? undefined };
  }

  async state(region: string): Promise<RegionState> {
    const { entries: _entries, ...state } = await this.read(region, 0, 0);
    return state;
  }

  async rotateEpoch(region: string, expected: string): Promise<RegionState> {
    const tag = this.tag(region);
    await this.call(() => this.redis.cordonLogRotateEpoch(`${tag}:meta`, expected, randomBytes(9).toString('base64url')));
    return this.state(region);
  }

  async seqAtOrAfter(region: string, timeMs: number): Promise<number | null> {
    const target = new Date(timeMs).toISOString();
    const seq = await this.call(() => this.redis.cordonLogSeqAt(`${this.tag(region)}:log`, target));
    return seq ?? null;
  }

  async versions(id: string): Promise<LogEntry[]> {
    return this.call(async () => {
      const region = await this.redis.get(`${this.prefix}alert:${id}`);
      if (region === null) return [];
      const tag = this.tag(region);
      const [epoch, raw] = await this.redis.cordonLogVersions(`${tag}:meta`, `${tag}:log`, `${tag}:v:${id}`);
      return raw.map((e) => toEntry(region, epoch ?? '', e));
    });
  }

  async trim(region: string, policy: TrimPolicy): Promise<number> {
    const tag = this.tag(region);
    const maxAlerts = policy.maxAlerts === undefined ? '' : String(Math.max(0, Math.floor(policy.maxAlerts)));
    const cutoff = policy.maxAgeMs === undefined ? '' : new Date(policy.nowMs - policy.maxAgeMs).toISOString();
    if (maxAlerts === '' && cutoff === '') return 0;
    return this.call(() => this.redis.cordonLogTrim(`${tag}:meta`, `${tag}:log`, maxAlerts, cutoff));
  }

  async ping(): Promise<void> {
    await this.call(() => this.redis.ping());
  }

  async close(): Promise<void> {
    if (this.ownsClient) await quitClient(this.redis);
  }

  private call<T>(fn: () => Promise<T>): Promise<T> {
    return logCall('region log', fn, this.redis);
  }
}

function toEntry(region: string, epoch: string, [id, fields]: RawEntry): LogEntry {
  let receivedAt = '';
  let body = '';
  for (let i = 0; i < fields.length; i += 2) {
    if (fields[i] === 'at') receivedAt = fields[i + 1];
    else if (fields[i] === 'b') body = fields[i + 1];
  }
  return { region, seq: parseInt(id, 10), epoch, receivedAt, body };
}

function credentials(o: RedisOptions): RawConnectionOptions {
  return { username: o.username, password: o.password, db: o.db, tls: o.tls, connectTimeout: o.connectTimeout };
}

/** The Redis Cluster hash slot of a key: CRC16 (XMODEM) of its hash tag, or of the key, mod 16384. */
export function keySlot(key: string): number {
  let s = key;
  const open = key.indexOf('{');
  if (open !== -1) {
    const close = key.indexOf('}', open + 1);
    if (close > open + 1) s = key.slice(open + 1, close);
  }
  let crc = 0;
  for (const byte of Buffer.from(s, 'utf8')) {
    crc ^= byte << 8;
    for (let b = 0; b < 8; b++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc % 16384;
}
