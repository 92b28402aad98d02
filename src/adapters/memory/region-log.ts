import { randomBytes } from 'node:crypto';
import {
  rawEntryView,
  type AppendInput,
  type AppendOutcome,
  type LogEntry,
  type RawEntryView,
  type RawScanRange,
  type RawScanSink,
  type ReadResult,
  type RegionLog,
  type RegionState,
  type TrimPolicy,
} from '../../ports/region-log';

interface Version {
  contentHash: string;
  seq: number;
  receivedAt: string;
}

interface AlertRecord {
  created: string;
  state: string;
  latest: string;
  revoked: boolean;
  versions: Map<string, Version>;
}

interface Held {
  entry: LogEntry;
  /** received_at, the visibility key and the body as one buffer, and where each sits: what scanRaw hands out. */
  raw: RawEntryView;
}

interface RegionData {
  epoch: string;
  seq: number;
  lastMs: number;
  /** held entries, contiguous: entries[i].entry.seq === entries[0].entry.seq + i. */
  entries: Held[];
  alerts: Map<string, AlertRecord>;
}

/**
 * The region log in process memory, for the embedded default and tests. Same rules and outcomes
 * as the Redis adapter; each method runs synchronously to completion, so appends are atomic.
 */
export class MemoryRegionLog implements RegionLog {
  private readonly regions = new Map<string, RegionData>();
  private readonly alertRegion = new Map<string, string>();

  async append(input: AppendInput): Promise<AppendOutcome> {
    const { region, id, modified } = input;
    const owner = this.alertRegion.get(id);
    if (owner !== undefined && owner !== region) return { outcome: 'rejected', reason: 'field-changed' };
    const data = this.regions.get(region);
    const alert = data?.alerts.get(id);
    // Only the issuing state may touch an alert's id, even with a `modified` already held: another
    // state reusing it is not-issuer, never an equivocation of the caller (issue 8 item 9).
    if (alert && alert.state !== input.issuerState) return { outcome: 'rejected', reason: 'not-issuer' };
    const prior = alert?.versions.get(modified);
    if (prior) {
      if (prior.contentHash !== input.contentHash) return { outcome: 'rejected', reason: 'equivocation' };
      return {
        outcome: 'duplicate',
        receipt: { id, modified, region, seq: prior.seq, epoch: data!.epoch, received_at: prior.receivedAt },
      };
    }
    if (alert) {
      if (alert.created !== input.created) return { outcome: 'rejected', reason: 'field-changed' };
      if (alert.revoked) return { outcome: 'rejected', reason: 'after-revocation' };
      if (modified <= alert.latest) return { outcome: 'rejected', reason: 'stale' };
    }
    const d = data ?? this.newRegion(region);
    const ms = Math.max(Date.now(), d.lastMs);
    d.lastMs = ms;
    const receivedAt = new Date(ms).toISOString();
    const seq = ++d.seq;
    const entry: LogEntry = { region, seq, epoch: d.epoch, receivedAt, body: input.body };
    d.entries.push({
      entry,
      raw: rawEntryView(seq, receivedAt, input.visibility, input.body),
    });
    if (input.maxAlerts !== undefined && d.entries.length > input.maxAlerts) {
      d.entries.splice(0, d.entries.length - Math.max(0, Math.floor(input.maxAlerts)));
    }
    const rec: AlertRecord = alert ?? {
      created: input.created,
      state: input.issuerState,
      latest: modified,
      revoked: false,
      versions: new Map(),
    };
    rec.latest = modified;
    if (input.revoked) rec.revoked = true;
    rec.versions.set(modified, { contentHash: input.contentHash, seq, receivedAt });
    d.alerts.set(id, rec);
    this.alertRegion.set(id, region);
    return {
      outcome: 'appended',
      receipt: { id, modified, region, seq, epoch: d.epoch, received_at: receivedAt },
      entry,
    };
  }

  async read(region: string, after: number, limit: number): Promise<ReadResult> {
    return { ...this.stateOf(region), entries: this.range(region, after, limit).map((h) => h.entry) };
  }

  async scanRaw(range: RawScanRange, sink: RawScanSink): Promise<number> {
    let last = range.after;
    while (last < range.top) {
      const d = this.regions.get(range.region);
      if (!d || d.epoch !== range.epoch) break;
      const held = this.range(range.region, last, Math.min(Math.max(1, range.batch), range.top - last));
      for (const h of held) {
        if (h.entry.seq !== last + 1) return last;
        sink.entry(h.raw);
        last++;
      }
      if (held.length === 0) break;
      // Between batches, as the Redis adapter does: the sink may hold the scan back.
      await sink.flush();
    }
    return last;
  }

  async state(region: string): Promise<RegionState> {
    return this.stateOf(region);
  }

  async rotateEpoch(region: string, expected: string): Promise<RegionState> {
    const d = this.regions.get(region);
    if (d && d.epoch === expected) {
      d.epoch = randomBytes(9).toString('base64url');
      for (const h of d.entries) h.entry = { ...h.entry, epoch: d.epoch };
    }
    return this.stateOf(region);
  }

  async seqAtOrAfter(region: string, timeMs: number): Promise<number | null> {
    const d = this.regions.get(region);
    if (!d) return null;
    const i = firstAtOrAfter(d.entries, new Date(timeMs).toISOString());
    return i < d.entries.length ? d.entries[i].entry.seq : null;
  }

  async versions(id: string): Promise<LogEntry[]> {
    const region = this.alertRegion.get(id);
    const d = region === undefined ? undefined : this.regions.get(region);
    const alert = d?.alerts.get(id);
    if (!d || !alert || d.entries.length === 0) return [];
    const earliest = d.entries[0].entry.seq;
    return [...alert.versions.values()]
      .map((v) => v.seq)
      .filter((s) => s >= earliest)
      .sort((a, b) => a - b)
      .map((s) => d.entries[s - earliest].entry);
  }

  async trim(region: string, policy: TrimPolicy): Promise<number> {
    const d = this.regions.get(region);
    if (!d || d.entries.length === 0) return 0;
    const earliest = d.entries[0].entry.seq;
    let cut = 0;
    if (policy.maxAlerts !== undefined) cut = d.seq - Math.max(0, Math.floor(policy.maxAlerts)) + 1;
    if (policy.maxAgeMs !== undefined) {
      const cutoff = new Date(policy.nowMs - policy.maxAgeMs).toISOString();
      cut = Math.max(cut, earliest + firstAtOrAfter(d.entries, cutoff));
    }
    const drop = Math.min(d.entries.length, Math.max(0, cut - earliest));
    // Version records stay: a resubmission of a trimmed version is still a duplicate.
    if (drop > 0) d.entries.splice(0, drop);
    return drop;
  }

  async ping(): Promise<void> {}

  async close(): Promise<void> {}

  private newRegion(region: string): RegionData {
    const d: RegionData = {
      epoch: randomBytes(9).toString('base64url'),
      seq: 0,
      lastMs: 0,
      entries: [],
      alerts: new Map(),
    };
    this.regions.set(region, d);
    return d;
  }

  private stateOf(region: string): RegionState {
    const d = this.regions.get(region);
    if (!d) return { region, epoch: null, latest: 0, earliest: 0 };
    return { region, epoch: d.epoch, latest: d.seq, earliest: d.entries.length > 0 ? d.entries[0].entry.seq : 0 };
  }

  /** Held entries with seq > after, ascending, at most `limit`. */
  private range(region: string, after: number, limit: number): Held[] {
    const d = this.regions.get(region);
    if (!d || d.entries.length === 0 || limit <= 0) return [];
    const start = Math.max(0, Math.floor(after) + 1 - d.entries[0].entry.seq);
    return d.entries.slice(start, start + limit);
  }
}

/** Index of the first entry received at or after `iso` (entries.length if none); received_at is monotonic. */
function firstAtOrAfter(entries: Held[], iso: string): number {
  let lo = 0;
  let hi = entries.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (entries[mid].entry.receivedAt >= iso) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}
