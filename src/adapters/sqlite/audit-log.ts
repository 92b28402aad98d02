import type Database from 'better-sqlite3';
import type { AuditInput, AuditLog, AuditPage, AuditRecord } from '../../ports/audit-log';
import type { SqliteStore } from './store';

export interface SqliteAuditLogOptions {
  /** close the store on close() (set when the store is not shared with a region log). */
  ownsStore?: boolean;
}

/**
 * The audit trail in the embedded SQLite store: table `audit` (n, at, the input as JSON, as the
 * Redis adapter keeps it). Appends share the store's group commit, so the records of one turn
 * are one transaction; n is the previous top + 1 inside it, gap-free.
 */
export class SqliteAuditLog implements AuditLog {
  private readonly ownsStore: boolean;
  private readonly top: Database.Statement;
  private readonly insert: Database.Statement;
  private readonly page: Database.Statement;

  constructor(
    private readonly store: SqliteStore,
    opts: SqliteAuditLogOptions = {},
  ) {
    this.ownsStore = opts.ownsStore ?? false;
    this.top = store.db.prepare('SELECT n, at FROM audit ORDER BY n DESC LIMIT 1');
    this.insert = store.db.prepare('INSERT INTO audit (n, at, record) VALUES (?, ?, ?)');
    this.page = store.db.prepare('SELECT n, at, record FROM audit WHERE n > ? ORDER BY n LIMIT ?');
  }

  append(input: AuditInput): Promise<AuditRecord> {
    const json = JSON.stringify(input);
    return this.store.write(() => {
      const last = this.top.get() as { n: number; at: string } | undefined;
      const n = (last?.n ?? 0) + 1;
      // at never goes backwards along n, whatever the clock does.
      const ms = Math.max(Date.now(), last ? Date.parse(last.at) : 0);
      const at = new Date(ms).toISOString();
      this.insert.run(n, at, json);
      return auditRecord(n, at, input);
    });
  }

  async read(after: number, limit: number): Promise<AuditPage> {
    return this.store.read(() => {
      const top = (this.top.get() as { n: number } | undefined)?.n ?? 0;
      const rows = limit > 0 ? (this.page.all(Math.max(0, Math.floor(after)), Math.floor(limit)) as Array<{ n: number; at: string; record: string }>) : [];
      const items = rows.map((r) => auditRecord(r.n, r.at, JSON.parse(r.record) as AuditInput));
      const last = items.length > 0 ? items[items.length - 1].n : 0;
      return { items, next: items.length > 0 && last < top ? last : null };
    });
  }

  async ping(): Promise<void> {
    this.store.ping();
  }

  async close(): Promise<void> {
    if (this.ownsStore) await this.store.close();
  }
}

/** `{ n, at, kind, actor, ... }`; n and at win over same-named input fields. */
function auditRecord(n: number, at: string, input: AuditInput): AuditRecord {
  return Object.assign({ n, at }, input, { n, at });
}
