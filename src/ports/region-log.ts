import type { Receipt } from '../domain/types';

/**
 * One entry of a region log as stored. `body` is the JSON text `{"content":...,"sig":...}` exactly
 * as verified; the delivered alert is built around it without re-serialising (see deliveredJson).
 */
export interface LogEntry {
  region: string;
  seq: number;
  epoch: string;
  receivedAt: string;
  body: string;
}

/** What the ingest pipeline asks the log to append, after every stateless check has passed. */
export interface AppendInput {
  region: string;
  id: string;
  modified: string;
  created: string;
  issuerState: string;
  revoked: boolean;
  /** base64url SHA-256 of the JCS payload: equal hashes mean an identical version. */
  contentHash: string;
  body: string;
  /**
   * visibilityKey(content), stored beside the body so replays decide entitlement without decoding
   * it. Optional because entries written before it existed have none; readers then parse the body.
   */
  visibility?: string;
}

export type AppendRejection =
  | 'equivocation' // same (id, modified), different content
  | 'stale' // an equal-or-newer modified already exists
  | 'after-revocation' // the alert was revoked
  | 'field-changed' // created or region differs from the first version
  | 'not-issuer'; // another state tries to version the alert

export type AppendOutcome =
  | { outcome: 'appended'; receipt: Receipt; entry: LogEntry }
  | { outcome: 'duplicate'; receipt: Receipt }
  | { outcome: 'rejected'; reason: AppendRejection };

export interface RegionState {
  region: string;
  /** null while the region has never been written. */
  epoch: string | null;
  /** newest seq (0 when empty). */
  latest: number;
  /** oldest seq still held (0 when nothing is held). */
  earliest: number;
}

export interface ReadResult extends RegionState {
  /** entries with seq > after, ascending, at most `limit`. */
  entries: LogEntry[];
}

/** One stored entry as bytes, for readers that copy bodies through without decoding them. */
export interface RawLogEntry {
  seq: number;
  receivedAt: string;
  /** the visibility key stored at append (undefined for entries written without one). */
  visibility: string | undefined;
  /** the stored body's UTF-8 bytes, exactly as `LogEntry.body` encodes. */
  body: Buffer;
}

export interface RawReadResult extends RegionState {
  /** what `read` returns for the same arguments, as bytes. */
  entries: RawLogEntry[];
}

export interface TrimPolicy {
  maxAlerts?: number;
  maxAgeMs?: number;
  nowMs: number;
}

/**
 * The per-region append-only log (contract §6). The version rules and the append are one atomic
 * step: two nodes appending to one region concurrently still get seq 1, 2, 3... with no gap.
 * Adapter failures (backend unreachable) reject with LogUnavailableError.
 */
export interface RegionLog {
  append(input: AppendInput): Promise<AppendOutcome>;
  read(region: string, after: number, limit: number): Promise<ReadResult>;
  /** `read` as bytes, with each entry's visibility key: the export path. */
  readRaw(region: string, after: number, limit: number): Promise<RawReadResult>;
  state(region: string): Promise<RegionState>;
  /** The first seq received at or after `timeMs` (null if none). */
  seqAtOrAfter(region: string, timeMs: number): Promise<number | null>;
  /** Every held version of alert `id`, oldest first ([] when unknown). */
  versions(id: string): Promise<LogEntry[]>;
  /** Drops the oldest entries beyond the policy; returns how many were dropped. */
  trim(region: string, policy: TrimPolicy): Promise<number>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

export class LogUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'LogUnavailableError';
  }
}

/** The delivered alert (contract §8) as JSON text, built around the stored body. */
export function deliveredJson(e: LogEntry): string {
  return (
    `{"region":${JSON.stringify(e.region)},"seq":${e.seq},"epoch":${JSON.stringify(e.epoch)},` +
    `"received_at":${JSON.stringify(e.receivedAt)},${e.body.slice(1)}`
  );
}

export function receiptOf(e: LogEntry, id: string, modified: string): Receipt {
  return { id, modified, region: e.region, seq: e.seq, epoch: e.epoch, received_at: e.receivedAt };
}
