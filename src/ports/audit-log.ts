/**
 * The audit trail (contract §8 GET /v1/audit): append-only, ordered, `n` grows by one per record.
 */
export type AuditKind = 'published' | 'rejected' | 'security' | 'ack' | 'replayed';

export interface AuditInput {
  kind: AuditKind;
  /** who: a state+kid for gateways, iss/sub for desks and ops. */
  actor: string;
  [field: string]: unknown;
}

export interface AuditRecord extends AuditInput {
  n: number;
  at: string;
}

export interface AuditPage {
  items: AuditRecord[];
  /** the `after` for the following page, null at the top. */
  next: number | null;
}

export interface AuditLog {
  append(record: AuditInput): Promise<AuditRecord>;
  read(after: number, limit: number): Promise<AuditPage>;
  ping(): Promise<void>;
  close(): Promise<void>;
}
