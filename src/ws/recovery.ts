import type { FromPosition, GapFrame } from './frames';

/**
 * Resume logic without I/O (contract §6 promises 3-5, §9). The hub and the desk sessions feed it
 * what the log and the bus said; it decides where delivery starts, which gap to announce, and how
 * a page of history joins the live alerts buffered meanwhile (Centrifugo's recovery: buffer live,
 * read history, merge by seq, drop duplicates, check contiguity, then switch to live).
 */

/** What the region log says about itself (RegionState / ReadResult). */
export interface LogBounds {
  epoch: string | null;
  /** oldest seq held, 0 when nothing is held */
  earliest: number;
  /** newest seq, 0 when never written */
  latest: number;
}

/** Anything positioned in a region log. */
export interface Positioned {
  seq: number;
  epoch: string;
}

export type ResumePoint =
  /** deliver from `next`; announce `gap` first when history is missing */
  | { kind: 'start'; next: number; recovered: boolean; gap?: GapFrame }
  /** the desk claims a seq beyond the newest of this epoch: its position belongs to no held log */
  | { kind: 'ahead'; latest: number };

/** The oldest seq still deliverable: earliest held, or just past the top when all was trimmed. */
export function firstHeld(log: LogBounds): number {
  return log.earliest > 0 ? log.earliest : log.latest + 1;
}

/**
 * Where a subscription starts. `from` absent means live only: after the current top. A gap is
 * announced when the epoch differs (the desk's position means nothing in the new log; from/to
 * is the new log's trimmed range, possibly empty: to = from - 1) or when seq + 1 is trimmed.
 * `0` asks for everything from seq 1, so trimmed history there is a gap too, never silence.
 */
export function resumePoint(region: string, from: FromPosition | undefined, log: LogBounds): ResumePoint {
  if (!from) return { kind: 'start', next: log.latest + 1, recovered: false };
  const first = firstHeld(log);
  // Another epoch, or no log at all where the desk held one (a log lost and not yet rewritten):
  // the desk's position means nothing here.
  if (from.epoch !== undefined && from.epoch !== log.epoch) {
    return {
      kind: 'start',
      next: first,
      recovered: false,
      gap: { region, from: 1, to: first - 1, reason: 'epoch-changed', epoch: log.epoch },
    };
  }
  if (from.seq > log.latest) return { kind: 'ahead', latest: log.latest };
  if (from.seq + 1 < first && log.epoch !== null) {
    return {
      kind: 'start',
      next: first,
      recovered: false,
      gap: { region, from: from.seq + 1, to: first - 1, reason: 'trimmed', epoch: log.epoch },
    };
  }
  return { kind: 'start', next: from.seq + 1, recovered: true };
}

export interface RecoveryStep<T extends Positioned> {
  /** to send now, in seq order, contiguous from the `next` given */
  deliver: T[];
  /** the seq expected after `deliver` */
  next: number;
  /** buffered live items beyond a hole: keep them, read more history */
  buffer: T[];
  /** true when the session has reached the live edge and can take live items directly */
  live: boolean;
}

/**
 * One step of a recovery: joins a page of history (`page`, ascending, contiguous as read) with
 * the live items buffered since the recovery began (`buffer`, ascending as the hub delivered
 * them). Drops what is older than `next` or of another epoch, then takes the contiguous run from
 * `next`. The session is live when nothing buffered lies beyond a hole and either the page reached
 * the log's top (`pageAtTop`) or the run went through the newest buffered item (the hub's edge).
 */
export function recoveryStep<T extends Positioned>(
  next: number,
  epoch: string | null,
  page: readonly T[],
  pageAtTop: boolean,
  buffer: readonly T[],
): RecoveryStep<T> {
  const merged = mergeBySeq(page, buffer, next, epoch);
  const deliver: T[] = [];
  let i = 0;
  for (; i < merged.length && merged[i].seq === next; i++) {
    deliver.push(merged[i]);
    next++;
  }
  // What remains lies beyond a hole (buffered live items; a page is contiguous from `next`).
  const rest = merged.slice(i);
  let newestBuffered = 0;
  for (const b of buffer) if (b.seq > newestBuffered && (epoch === null || b.epoch === epoch)) newestBuffered = b.seq;
  const live = rest.length === 0 && (pageAtTop || (newestBuffered > 0 && newestBuffered < next));
  return { deliver, next, buffer: rest, live };
}

/**
 * Merges two ascending runs by seq, keeping items at or after `next` and of `epoch` (when known),
 * the first copy of each seq winning (history before live: same bytes, the log is the truth).
 */
export function mergeBySeq<T extends Positioned>(a: readonly T[], b: readonly T[], next: number, epoch: string | null): T[] {
  const out: T[] = [];
  let i = 0;
  let j = 0;
  let last = next - 1;
  const ok = (x: T): boolean => x.seq > last && (epoch === null || x.epoch === epoch);
  while (i < a.length || j < b.length) {
    let x: T;
    if (j >= b.length || (i < a.length && a[i].seq <= b[j].seq)) x = a[i++];
    else x = b[j++];
    if (ok(x)) {
      out.push(x);
      last = x.seq;
    }
  }
  return out;
}
