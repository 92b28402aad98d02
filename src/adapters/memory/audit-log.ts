import type { AuditInput, AuditLog, AuditPage, AuditRecord } from '../../ports/audit-log';

/** The audit trail in process memory (embedded default and tests): n is the index + 1. */
export class MemoryAuditLog implements AuditLog {
  private readonly records: AuditRecord[] = [];
  private lastMs = 0;

  async append(input: AuditInput): Promise<AuditRecord> {
    this.lastMs = Math.max(Date.now(), this.lastMs);
    return this.push(this.records.length + 1, new Date(this.lastMs).toISOString(), input);
  }

  async read(after: number, limit: number): Promise<AuditPage> {
    const start = Math.max(0, Math.floor(after));
    const items = limit > 0 ? this.records.slice(start, start + limit) : [];
    const last = items.length > 0 ? items[items.length - 1].n : start;
    return { items, next: items.length > 0 && last < this.records.length ? last : null };
  }

  async ping(): Promise<void> {}

  async close(): Promise<void> {}

  private push(n: number, at: string, input: AuditInput): AuditRecord {
    const rec = auditRecord(n, at, input);
    this.records.push(rec);
    return rec;
  }
}

/** `{ n, at, kind, actor, ... }`; n and at win over same-named input fields. */
function auditRecord(n: number, at: string, input: AuditInput): AuditRecord {
  return Object.assign({ n, at }, input, { n, at });
}
