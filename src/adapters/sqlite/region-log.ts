import { randomBytes } from 'node:crypto';
import type Database from 'better-sqlite3';
import {
  rawEntryView,
  type AppendInput,
  type AppendOutcome,
  type LogEntry,
  type RawScanRange,
  type RawScanSink,
  type ReadResult,
  type RegionLog,
  type RegionState,
  type TrimPolicy,
} from '../../ports/region-log';
import type { SqliteStore } from './store';

interface RegionRow {
  epoch: string;
  seq: number;
  last_ms: number;
}
interface AlertRow {
  region: string;
  created: string;
  state: string;
  latest: string;
  revoked: number;
}
interface VersionRow {
  content_hash: string;
  seq: number;
  received_at: string;
}
interface EntryRow {
  seq: number;
  received_at: string;
  body: string;
}
interface RawRow {
  seq: number;
  received_at: string;
  visibility: string | null;
  body: string;
}

export interface SqliteRegionLogOptions {
  /** close the store on close() (set when the store is not shared with an audit log). */
  ownsStore?: boolean;
}

/**
 * The region log in the embedded SQLite store. Tables: `region` (epoch, seq, last_ms: created
 * with the region's first append and never deleted, so the epoch is kept), `entry` (one row per
 * held seq), `alert` (first-version fields, latest, revoked) and `version` (content hash, seq and
 * received_at per (id, modified); kept on trim, so a trimmed version is still a duplicate). The
 * version rules and the append run in one transaction (see SqliteStore.write).
 */
export class SqliteRegionLog implements RegionLog {
  private readonly ownsStore: boolean;
  private readonly q: Record<string, Database.Statement>;

  constructor(
    private readonly store: SqliteStore,
    opts: SqliteRegionLogOptions = {},
  ) {
    this.ownsStore = opts.ownsStore ?? false;
    const db = store.db;
    this.q = {
      region: db.prepare('SELECT epoch, seq, last_ms FROM region WHERE region = ?'),
      newRegion: db.prepare('INSERT INTO region (region, epoch, seq, last_ms) VALUES (?, ?, 0, 0)'),
      bump: db.prepare('UPDATE region SET seq = ?, last_ms = ? WHERE region = ?'),
      earliest: db.prepare('SELECT MIN(seq) AS s FROM entry WHERE region = ?'),
      alert: db.prepare('SELECT region, created, state, latest, revoked FROM alert WHERE id = ?'),
      newAlert: db.prepare('INSERT INTO alert (id, region, created, state, latest, revoked) VALUES (?, ?, ?, ?, ?, ?)'),
      updAlert: db.prepare('UPDATE alert SET latest = ?, revoked = ? WHERE id = ?'),
      version: db.prepare('SELECT content_hash, seq, received_at FROM version WHERE id = ? AND modified = ?'),
      newVersion: db.prepare('INSERT INTO version (id, modified, content_hash, seq, received_at) VALUES (?, ?, ?, ?, ?)'),
      newEntry: db.prepare('INSERT INTO entry (region, seq, received_at, visibility, body) VALUES (?, ?, ?, ?, ?)'),
      page: db.prepare('SELECT seq, received_at, body FROM entry WHERE region = ? AND seq > ? ORDER BY seq LIMIT ?'),
      raw: db.prepare('SELECT seq, received_at, visibility, body FROM entry WHERE region = ? AND seq > ? AND seq <= ? ORDER BY seq LIMIT ?'),
      atOrAfter: db.prepare('SELECT seq FROM entry WHERE region = ? AND received_at >= ? ORDER BY received_at, seq LIMIT 1'),
      versions: db.prepare(
        `SELECT e.seq AS seq, e.received_at AS received_at, e.body AS body
           FROM version v JOIN entry e ON e.region = ? AND e.seq = v.seq
          WHERE v.id = ? ORDER BY e.seq`,
      ),
      trim: db.prepare('DELETE FROM entry WHERE region = ? AND seq < ?'),
      rotate: db.prepare('UPDATE region SET epoch = ? WHERE region = ? AND epoch = ?'),
    };
  }

  append(input: AppendInput): Promise<AppendOutcome> {
    return this.store.write(() => this.appendNow(input));
  }

  /** The version rules and the append; runs inside the batch's transaction. */
  private appendNow(input: AppendInput): AppendOutcome {
    const { region, id, modified } = input;
    const q = this.q;
    const alert = q.alert.get(id) as AlertRow | undefined;
    if (alert && alert.region !== region) return { outcome: 'rejected', reason: 'field-changed' };
    let r = q.region.get(region) as RegionRow | undefined;
    if (alert) {
      // Only the issuing state may touch an alert's id, even with a `modified` already held: another
      // state reusing it is not-issuer, never an equivocation of the caller (issue 8 item 9).
      if (alert.state !== input.issuerState) return { outcome: 'rejected', reason: 'not-issuer' };
      const prior = q.version.get(id, modified) as VersionRow | undefined;
      if (prior) {
        if (prior.content_hash !== input.contentHash) return { outcome: 'rejected', reason: 'equivocation' };
        return {
          outcome: 'duplicate',
          receipt: { id, modified, region, seq: prior.seq, epoch: r!.epoch, received_at: prior.received_at },
        };
      }
      if (alert.created !== input.created) return { outcome: 'rejected', reason: 'field-changed' };
      if (alert.revoked) return { outcome: 'rejected', reason: 'after-revocation' };
      if (modified <= alert.latest) return { outcome: 'rejected', reason: 'stale' };
    }
    if (!r) {
      r = { epoch: randomBytes(9).toString('base64url'), seq: 0, last_ms: 0 };
      q.newRegion.run(region, r.epoch);
    }
    const ms = Math.max(Date.now(), r.last_ms);
    const receivedAt = new Date(ms).toISOString();
    const seq = r.seq + 1;
    q.bump.run(seq, ms, region);
    q.newEntry.run(region, seq, receivedAt, input.visibility ?? null, input.body);
    // The retention bound holds at every append, in the same transaction.
    if (input.maxAlerts !== undefined) q.trim.run(region, seq - Math.max(0, Math.floor(input.maxAlerts)) + 1);
    if (alert) q.updAlert.run(modified, alert.revoked || input.revoked ? 1 : 0, id);
    else q.newAlert.run(id, region, input.created, input.issuerState, modified, input.revoked ? 1 : 0);
    q.newVersion.run(id, modified, input.contentHash, seq, receivedAt);
    const entry: LogEntry = { region, seq, epoch: r.epoch, receivedAt, body: input.body };
    return { outcome: 'appended', receipt: { id, modified, region, seq, epoch: r.epoch, received_at: receivedAt }, entry };
  }

  async read(region: string, after: number, limit: number): Promise<ReadResult> {
    return this.store.read(() => {
      const state = this.stateNow(region);
      if (state.epoch === null || limit <= 0) return { ...state, entries: [] };
      const rows = this.q.page.all(region, Math.max(0, Math.floor(after)), Math.floor(limit)) as EntryRow[];
      const epoch = state.epoch;
      return { ...state, entries: rows.map((e) => ({ region, seq: e.seq, epoch, receivedAt: e.received_at, body: e.body })) };
    });
  }

  async scanRaw(range: RawScanRange, sink: RawScanSink): Promise<number> {
    let last = range.after;
    while (last < range.top) {
      const rows = this.store.read(() => {
        const r = this.q.region.get(range.region) as RegionRow | undefined;
        if (!r || r.epoch !== range.epoch) return [];
        return this.q.raw.all(range.region, last, range.top, Math.max(1, range.batch)) as RawRow[];
      });
      for (const row of rows) {
        if (row.seq !== last + 1) return last;
        sink.entry(rawEntryView(row.seq, row.received_at, row.visibility ?? undefined, row.body));
        last++;
      }
      if (rows.length === 0) break;
      // Between batches: the sink may hold the scan back.
      await sink.flush();
    }
    return last;
  }

  async state(region: string): Promise<RegionState> {
    return this.store.read(() => this.stateNow(region));
  }

  /** Compare-and-set in the write transaction, as the Redis script does (a file restored from an old copy is rolled back too). */
  rotateEpoch(region: string, expected: string): Promise<RegionState> {
    return this.store.write(() => {
      this.q.rotate.run(randomBytes(9).toString('base64url'), region, expected);
      return this.stateNow(region);
    });
  }

  async seqAtOrAfter(region: string, timeMs: number): Promise<number | null> {
    return this.store.read(() => {
      const row = this.q.atOrAfter.get(region, new Date(timeMs).toISOString()) as { seq: number } | undefined;
      return row ? row.seq : null;
    });
  }

  async versions(id: string): Promise<LogEntry[]> {
    return this.store.read(() => {
      const alert = this.q.alert.get(id) as AlertRow | undefined;
      if (!alert) return [];
      const r = this.q.region.get(alert.region) as RegionRow | undefined;
      if (!r) return [];
      const rows = this.q.versions.all(alert.region, id) as EntryRow[];
      return rows.map((e) => ({ region: alert.region, seq: e.seq, epoch: r.epoch, receivedAt: e.received_at, body: e.body }));
    });
  }

  trim(region: string, policy: TrimPolicy): Promise<number> {
    return this.store.write(() => {
      const r = this.q.region.get(region) as RegionRow | undefined;
      if (!r || r.seq === 0) return 0;
      let cut = 0;
      if (policy.maxAlerts !== undefined) cut = r.seq - Math.max(0, Math.floor(policy.maxAlerts)) + 1;
      if (policy.maxAgeMs !== undefined) {
        const row = this.q.atOrAfter.get(region, new Date(policy.nowMs - policy.maxAgeMs).toISOString()) as { seq: number } | undefined;
        cut = Math.max(cut, row ? row.seq : r.seq + 1);
      }
      if (cut <= 1) return 0;
      return this.q.trim.run(region, cut).changes;
    });
  }

  async ping(): Promise<void> {
    this.store.ping();
  }

  async close(): Promise<void> {
    if (this.ownsStore) await this.store.close();
  }

  private stateNow(region: string): RegionState {
    const r = this.q.region.get(region) as RegionRow | undefined;
    if (!r) return { region, epoch: null, latest: 0, earliest: 0 };
    const e = this.q.earliest.get(region) as { s: number | null };
    return { region, epoch: r.epoch, latest: r.seq, earliest: e.s ?? 0 };
  }
}
