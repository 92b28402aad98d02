import type { RedisClient } from './client';
import type { AuditInput, AuditLog, AuditPage, AuditRecord } from '../../ports/audit-log';
import { logCall, quitClient } from './client';
import { AUDIT_APPEND_LUA, AUDIT_READ_LUA } from './scripts';

export interface RedisAuditLogOptions {
  /** key prefix; default `cordon:`. */
  prefix?: string;
  /** quit the client on close() (set when the client is not shared). */
  ownsClient?: boolean;
}

type RawEntry = [id: string, fields: string[]];

/** Bound on the records of one append script call. */
const MAX_BATCH = 256;

interface PendingAppend {
  input: AuditInput;
  json: string;
  resolve(record: AuditRecord): void;
  reject(err: unknown): void;
}

interface AuditScripts {
  cordonAuditAppend(...args: string[]): Promise<[number, string]>;
  cordonAuditRead(...args: (string | number)[]): Promise<[number, RawEntry[]]>;
}

/**
 * The audit trail as one Redis stream, entry ID `<n>-0`, the record as JSON in field `r`.
 * Keys `<prefix>{audit}` (stream) and `<prefix>{audit}:n` (counter) share a hash tag so the
 * append script (INCR + XADD) also runs on Redis Cluster. Failures reject with LogUnavailableError.
 */
export class RedisAuditLog implements AuditLog {
  private readonly redis: RedisClient & AuditScripts;
  private readonly streamKey: string;
  private readonly counterKey: string;
  private readonly ownsClient: boolean;
  private pending: PendingAppend[] = [];

  constructor(client: RedisClient, opts: RedisAuditLogOptions = {}) {
    const prefix = opts.prefix ?? 'cordon:';
    this.streamKey = `${prefix}{audit}`;
    this.counterKey = `${prefix}{audit}:n`;
    this.ownsClient = opts.ownsClient ?? false;
    client.defineCommand('cordonAuditAppend', { numberOfKeys: 2, lua: AUDIT_APPEND_LUA });
    client.defineCommand('cordonAuditRead', { numberOfKeys: 2, lua: AUDIT_READ_LUA, readOnly: true });
    this.redis = client as RedisClient & AuditScripts;
  }

  /**
   * Records appended in one event-loop turn go to Redis in one script call (each ingest writes one,
   * so under load this halves the commands per alert); each caller still gets its own n, in order.
   */
  append(input: AuditInput): Promise<AuditRecord> {
    return new Promise((resolve, reject) => {
      this.pending.push({ input, json: JSON.stringify(input), resolve, reject });
      if (this.pending.length === 1) setImmediate(() => void this.flush());
    });
  }

  private async flush(): Promise<void> {
    const batch = this.pending.splice(0, MAX_BATCH);
    if (this.pending.length > 0) setImmediate(() => void this.flush());
    try {
      const [first, at] = await this.call(() => this.redis.cordonAuditAppend(this.streamKey, this.counterKey, ...batch.map((p) => p.json)));
      batch.forEach((p, i) => p.resolve(auditRecord(first + i, at, p.input)));
    } catch (err) {
      for (const p of batch) p.reject(err);
    }
  }

  async read(after: number, limit: number): Promise<AuditPage> {
    const [top, raw] = await this.call(() =>
      this.redis.cordonAuditRead(this.streamKey, this.counterKey, Math.max(0, Math.floor(after)) + 1, Math.max(0, limit)),
    );
    const items = raw.map(([id, fields]) => {
      let at = '';
      let json = '{}';
      for (let i = 0; i < fields.length; i += 2) {
        if (fields[i] === 'at') at = fields[i + 1];
        else if (fields[i] === 'r') json = fields[i + 1];
      }
      return auditRecord(parseInt(id, 10), at, JSON.parse(json) as AuditInput);
    });
    const last = items.length > 0 ? items[items.length - 1].n : 0;
    return { items, next: items.length > 0 && last < top ? last : null };
  }

  async ping(): Promise<void> {
    await this.call(() => this.redis.ping());
  }

  async close(): Promise<void> {
    if (this.ownsClient) await quitClient(this.redis);
  }

  private call<T>(fn: () => Promise<T>): Promise<T> {
    return logCall('audit log', fn, this.redis);
  }
}

/** `{ n, at, kind, actor, ... }`; n and at win over same-named input fields. */
function auditRecord(n: number, at: string, input: AuditInput): AuditRecord {
  return Object.assign({ n, at }, input, { n, at });
}
