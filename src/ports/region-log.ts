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
  /**
   * The retention bound (CORDON_RETENTION_MAX_ALERTS): when given, the append also drops the
   * entries older than the newest `maxAlerts`, in the same atomic step, so the bound holds at every
   * append (contract §11 v1.1). Version records stay, as with trim().
   */
  maxAlerts?: number;
}

export type AppendRejection =
  | 'equivocation' // same (id, modified), different content
  | 'stale' // an equal-or-newer modified already exists
  | 'after-revocation' // the alert was revoked
  | 'field-changed' // created or region differs from the first version
  | 'not-issuer'; // another state tries to version the alert

export type AppendOutcome =
  { outcome: 'appended'; receipt: Receipt; entry: LogEntry } | { outcome: 'duplicate'; receipt: Receipt } | { outcome: 'rejected'; reason: AppendRejection };

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

/**
 * One stored entry as bytes, for readers that copy bodies through without decoding them. A view
 * is valid only during the `entry` call that hands it out: its buffer and the view itself are
 * reused for the next entry, so nothing is allocated per entry.
 */
export interface RawEntryView {
  seq: number;
  buf: Buffer;
  /** received_at (UTF-8; ASCII as Redis stamps it) at buf[atStart, atEnd). */
  atStart: number;
  atEnd: number;
  /** the visibility key stored at append (UTF-8) at buf[visStart, visEnd); visStart -1 when none. */
  visStart: number;
  visEnd: number;
  /** the stored body's UTF-8 bytes (exactly as `LogEntry.body` encodes) at buf[bodyStart, bodyEnd). */
  bodyStart: number;
  bodyEnd: number;
}

/** A view of one entry over a buffer of its own (the memory adapter's form, and tests'). */
export function rawEntryView(seq: number, receivedAt: string, visibility: string | undefined, body: string): RawEntryView {
  const at = Buffer.from(receivedAt, 'utf8');
  const vis = Buffer.from(visibility ?? '', 'utf8');
  const buf = Buffer.concat([at, vis, Buffer.from(body, 'utf8')]);
  const bodyStart = at.length + vis.length;
  return {
    seq,
    buf,
    atStart: 0,
    atEnd: at.length,
    visStart: visibility === undefined ? -1 : at.length,
    visEnd: visibility === undefined ? -1 : bodyStart,
    bodyStart,
    bodyEnd: buf.length,
  };
}

/** The consumer of a raw scan. */
export interface RawScanSink {
  /** each entry, in seq order. */
  entry(e: RawEntryView): void;
  /**
   * Called after each run of entries: a promise returned pauses reading until it settles (the
   * consumer's backpressure); a rejected one ends the scan with that error.
   */
  flush(): Promise<void> | undefined;
}

export interface RawScanRange {
  region: string;
  /** the epoch the entries must belong to: a scan stops at the first read that finds another. */
  epoch: string;
  /** entries with after < seq <= top. */
  after: number;
  top: number;
  /** entries per read from the backend. */
  batch: number;
}

export interface TrimPolicy {
  maxAlerts?: number;
  maxAgeMs?: number;
  nowMs: number;
}

/**
 * The per-region append-only log (contract §6). The version rules and the append are one atomic
 * step: two nodes appending to one region concurrently still get seq 1, 2, 3... with no gap.
 * Adapter failures reject with LogUnavailableError when nothing can have been written (backend
 * unreachable, the call never sent), and with its subclass LogOutcomeUnknownError when the call
 * was sent and no answer came (it may have run).
 */
export interface RegionLog {
  append(input: AppendInput): Promise<AppendOutcome>;
  read(region: string, after: number, limit: number): Promise<ReadResult>;
  /**
   * The export path: streams the entries of `range` to `sink` as bytes, with each entry's
   * visibility key, in bounded batches and under the sink's backpressure. Never skips: it resolves
   * with the last seq handed out, which is below `top` when the range has a hole (trimmed while
   * read) or the log's epoch is not `range.epoch`.
   */
  scanRaw(range: RawScanRange, sink: RawScanSink): Promise<number>;
  state(region: string): Promise<RegionState>;
  /**
   * Gives the entries held a new epoch if the region's epoch is still `expected` (compare-and-set),
   * and returns the state after. Used when a node finds the log rolled back under its epoch
   * (contract §6.5): seqs would be reused, so desks must hear `epoch-changed` instead.
   */
  rotateEpoch(region: string, expected: string): Promise<RegionState>;
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

/**
 * The call was sent to the backend but no answer came (the connection stalled or dropped): it may
 * or may not have run. For an append the caller must not say "nothing was accepted": resubmitting
 * the identical submission is idempotent and settles it. A LogUnavailableError too, so readers
 * that only need "not now" treat both alike.
 */
export class LogOutcomeUnknownError extends LogUnavailableError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'LogOutcomeUnknownError';
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
