import { CordonError } from '../errors';
import type { ReadResult, RegionLog, RegionState } from '../ports/region-log';
import type * as S from '../types/generated/schemas';

/**
 * Where a history read starts and how it goes on (contract §8): a region log read forward in
 * bounded batches that never skips. Used by the page and the export of src/http/replay.ts.
 */

/** The query schema's defaults are filled in by the validator (parseQuery). */
export type ReplayQuery = S.ReplayQuery & Required<Pick<S.ReplayQuery, 'limit'>>;

/** The oldest seq held, or latest + 1 when nothing is held: the held range is [earliest, latest]. */
export function effectiveEarliest(s: RegionState): number {
  return s.earliest > 0 ? s.earliest : s.latest + 1;
}

export function historyTrimmed(s: RegionState, detail: string): CordonError {
  return new CordonError('HISTORY_TRIMMED', detail, { extra: { earliest: effectiveEarliest(s), epoch: s.epoch } });
}

/**
 * Reads one region log forward in bounded batches and never skips: a hole (history trimmed under
 * the reader, or before the position asked for) or a change of epoch is a HISTORY_TRIMMED error.
 */
export class LogReader {
  /** the last seq read (or the position asked for, before the first read). */
  cursor: number;
  /** the position the reading really started after, once first() has run. */
  start = 0;
  private epoch: string | null = null;

  constructor(
    private readonly log: RegionLog,
    private readonly region: string,
    private readonly from: { after: number; fromOldest?: boolean; sinceSeq?: number; epoch?: string },
  ) {
    this.cursor = from.after;
  }

  async first(limit: number): Promise<ReadResult> {
    let r = await this.fetch(limit);
    const { epoch, fromOldest, sinceSeq } = this.from;
    if (epoch !== undefined && r.epoch !== epoch) {
      throw historyTrimmed(r, `The region log's epoch is now ${String(r.epoch)}; positions in epoch ${epoch} mean nothing in it`);
    }
    if (this.hasGap(r)) {
      // No position asked for: start at whatever is oldest now.
      if (fromOldest) {
        this.cursor = effectiveEarliest(r) - 1;
        r = await this.fetch(limit);
      }
      if (this.hasGap(r)) {
        throw historyTrimmed(r, `History after seq ${this.cursor} is no longer held; the oldest alert held is seq ${effectiveEarliest(r)}`);
      }
    }
    // The first alert at or after `since` is the oldest held: older ones, trimmed, may have been too.
    const earliest = effectiveEarliest(r);
    if (sinceSeq !== undefined && sinceSeq <= earliest && earliest > 1) {
      throw historyTrimmed(r, `History before seq ${earliest} is no longer held and may have been received after since`);
    }
    this.start = this.cursor;
    this.epoch = r.epoch;
    this.advance(r);
    return r;
  }

  async read(limit: number): Promise<ReadResult> {
    const r = await this.fetch(limit);
    if (this.epoch !== null && r.epoch !== this.epoch) {
      throw historyTrimmed(r, 'The region log was replaced (new epoch) while it was being read; start again from earliest');
    }
    this.epoch ??= r.epoch;
    if (this.hasGap(r)) throw historyTrimmed(r, `History after seq ${this.cursor} was trimmed while it was being read`);
    this.advance(r);
    return r;
  }

  /** A store outage rejects with LogUnavailableError: 503 LOG_UNAVAILABLE (src/http/problem.ts). */
  private fetch(limit: number): Promise<ReadResult> {
    return this.log.read(this.region, this.cursor, limit);
  }

  private hasGap(r: ReadResult): boolean {
    const want = this.cursor + 1;
    return want <= r.latest && (r.entries.length === 0 || r.entries[0].seq !== want);
  }

  private advance(r: ReadResult): void {
    if (r.entries.length > 0) this.cursor = r.entries[r.entries.length - 1].seq;
  }
}

/** Where reading starts: `after`, the first alert at or after `since`, or the oldest held. */
export async function startOf(log: RegionLog, region: string, q: ReplayQuery): Promise<LogReader> {
  if (q.since === undefined) {
    return new LogReader(log, region, { after: q.after ?? 0, fromOldest: q.after === undefined, epoch: q.epoch });
  }
  const sinceMs = Date.parse(q.since);
  // State first: when nothing held is at or after `since`, everything up to this latest is older.
  const before: RegionState = await log.state(region);
  const seq = await log.seqAtOrAfter(region, sinceMs);
  if (seq === null) {
    if (before.earliest === 0 && before.latest > 0) {
      throw historyTrimmed(before, 'Every alert of this region was trimmed; some may have been received after since');
    }
    return new LogReader(log, region, { after: before.latest, epoch: q.epoch });
  }
  return new LogReader(log, region, { after: seq - 1, sinceSeq: seq, epoch: q.epoch });
}
