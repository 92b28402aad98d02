import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { LogUnavailableError } from '../../ports/region-log';

/**
 * The embedded store: one SQLite database file holding every region log and the audit trail.
 *
 * Durability: WAL journal with `synchronous=FULL`, so a COMMIT returns only after the WAL is
 * fsync'd; callers are answered only after that. Every write goes through `write()`: the writes
 * asked for in one event-loop turn run in ONE transaction (group commit), so a burst of alerts
 * costs one fsync, not one each. Checkpoints are run by the store itself (automatic checkpoints
 * are off), so that `stats` counts every fsync: one per commit, two per checkpoint.
 *
 * A file that exists must be a healthy Cordon store: anything else (not a database, torn,
 * failing `PRAGMA quick_check`, another application's file, a WAL without its database) is
 * refused with StoreDamagedError and never replaced by an empty store.
 */

/** `PRAGMA application_id` of a Cordon store ("CRDN"). */
export const APPLICATION_ID = 0x4352444e;
/** `PRAGMA user_version`: the schema below (1: logs and audit trail; 2: + the transparency log's trees). */
export const SCHEMA_VERSION = 2;
/** The store's file name inside CORDON_DATA_DIR. */
export const STORE_FILE = 'cordon.db';
/** A checkpoint after this many commits (and on a timer while idle). */
const CHECKPOINT_EVERY_COMMITS = 500;
const CHECKPOINT_IDLE_MS = 2000;

/** The transparency log's trees (SqliteTreeStore): hash tiles and each tree's latest checkpoint. */
const TREE_SCHEMA = `
CREATE TABLE tlog_tile (
  tag TEXT NOT NULL,
  name TEXT NOT NULL,
  level INTEGER NOT NULL,
  n INTEGER NOT NULL,
  data BLOB NOT NULL,
  PRIMARY KEY (tag, name, level, n)
);
CREATE TABLE tlog_checkpoint (
  tag TEXT NOT NULL,
  name TEXT NOT NULL,
  size INTEGER NOT NULL,
  note TEXT NOT NULL,
  cosignatures TEXT NOT NULL,
  PRIMARY KEY (tag, name)
) WITHOUT ROWID;
`;

/** What takes a store of version `v` to version `v + 1` (run in one transaction with the new user_version). */
const MIGRATIONS: Record<number, string> = {
  1: TREE_SCHEMA,
};

const SCHEMA = `
CREATE TABLE region (
  region TEXT PRIMARY KEY,
  epoch TEXT NOT NULL,
  seq INTEGER NOT NULL,
  last_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE entry (
  region TEXT NOT NULL,
  seq INTEGER NOT NULL,
  received_at TEXT NOT NULL,
  visibility TEXT,
  body TEXT NOT NULL,
  PRIMARY KEY (region, seq)
);
CREATE INDEX entry_received_at ON entry (region, received_at);
CREATE TABLE alert (
  id TEXT PRIMARY KEY,
  region TEXT NOT NULL,
  created TEXT NOT NULL,
  state TEXT NOT NULL,
  latest TEXT NOT NULL,
  revoked INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE version (
  id TEXT NOT NULL,
  modified TEXT NOT NULL,
  content_hash TEXT NOT NULL,
  seq INTEGER NOT NULL,
  received_at TEXT NOT NULL,
  PRIMARY KEY (id, modified)
) WITHOUT ROWID;
CREATE TABLE audit (
  n INTEGER PRIMARY KEY,
  at TEXT NOT NULL,
  record TEXT NOT NULL
);
${TREE_SCHEMA}`;

/** The store file exists but cannot be trusted: the node refuses to start on it. */
export class StoreDamagedError extends Error {
  constructor(
    readonly file: string,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super(
      `the embedded store ${file} is damaged or not a Cordon store (${detail}); refusing to start on it rather than ` +
        'start an empty log. Restore it from a backup (docs/operations.md, "Embedded store"), or move it and its ' +
        '-wal/-shm files away to start with new epochs.',
      options,
    );
    this.name = 'StoreDamagedError';
  }
}

export interface SqliteStoreStats {
  commits: number;
  checkpoints: number;
  /** fsyncs issued: one per commit (WAL, synchronous=FULL), two per checkpoint (WAL, then database). */
  fsyncs: number;
}

interface Pending {
  op: () => unknown;
  resolve(value: unknown): void;
  reject(err: unknown): void;
}

export interface OpenOptions {
  /** open only: never create the file (the CLI). */
  mustExist?: boolean;
  readonly?: boolean;
  /**
   * bring a store of an older schema version up to this one (default true; the node). The CLI
   * passes false: it must not change the schema under a running node of the older version.
   */
  upgrade?: boolean;
}

export class SqliteStore {
  readonly db: Database.Database;
  /** true when this open created the file (every region then starts a new epoch). */
  readonly created: boolean;
  /** the schema version of the file (SCHEMA_VERSION unless opened with `upgrade: false`). */
  readonly schemaVersion: number;
  readonly stats: SqliteStoreStats = { commits: 0, checkpoints: 0, fsyncs: 0 };
  private queue: Pending[] = [];
  private closed = false;
  private flushing: Promise<void> | undefined;
  private sinceCheckpoint = 0;
  private idleTimer: NodeJS.Timeout | undefined;
  private readonly begin: Database.Statement;
  private readonly commit: Database.Statement;
  private readonly rollback: Database.Statement;

  private constructor(
    readonly file: string,
    db: Database.Database,
    created: boolean,
    schemaVersion: number,
  ) {
    this.db = db;
    this.created = created;
    this.schemaVersion = schemaVersion;
    this.begin = db.prepare('BEGIN IMMEDIATE');
    this.commit = db.prepare('COMMIT');
    this.rollback = db.prepare('ROLLBACK');
  }

  /** Opens (creating it if absent, unless `mustExist`) and checks the store file. */
  static open(file: string, opts: OpenOptions = {}): SqliteStore {
    let created = false;
    if (!existsSync(file)) {
      if (opts.mustExist || opts.readonly) throw new Error(`no embedded store at ${file}`);
      if (existsSync(`${file}-wal`)) {
        throw new StoreDamagedError(file, 'its -wal file exists but the database file is missing');
      }
      createStoreFile(file);
      created = true;
    }
    let db: Database.Database | undefined;
    let version = SCHEMA_VERSION;
    try {
      if (statSync(file).size === 0) throw new Error('the file is empty');
      db = new Database(file, { fileMustExist: true, readonly: opts.readonly ?? false });
      db.pragma('busy_timeout = 10000');
      const appId = db.pragma('application_id', { simple: true });
      if (appId !== APPLICATION_ID) throw new Error(`application_id ${String(appId)}, not a Cordon store`);
      version = db.pragma('user_version', { simple: true }) as number;
      if (!Number.isInteger(version) || version < 1 || version > SCHEMA_VERSION) {
        throw new Error(`schema version ${String(version)}, this node knows ${SCHEMA_VERSION}`);
      }
      if (!opts.readonly) {
        const mode = db.pragma('journal_mode = WAL', { simple: true });
        if (mode !== 'wal') throw new Error(`journal mode ${String(mode)} instead of wal`);
      }
      const check = db.pragma('quick_check', { simple: false }) as Array<{ quick_check: string }>;
      const problems = check.map((r) => r.quick_check).filter((r) => r !== 'ok');
      if (problems.length > 0) throw new Error(`quick_check: ${problems.slice(0, 3).join('; ')}`);
      db.pragma('synchronous = FULL');
      db.pragma('wal_autocheckpoint = 0');
      if (version < SCHEMA_VERSION && !opts.readonly && opts.upgrade !== false) {
        // Each step and its new version number in one transaction: a crash leaves the old or the new schema.
        const conn = db;
        conn
          .transaction(() => {
            for (let v = version; v < SCHEMA_VERSION; v++) conn.exec(MIGRATIONS[v]);
            conn.pragma(`user_version = ${SCHEMA_VERSION}`);
          })
          .immediate();
        version = SCHEMA_VERSION;
      }
    } catch (err) {
      db?.close();
      if (err instanceof StoreDamagedError) throw err;
      // Permissions, locks, a full or failing disk: the file may be fine; say what happened.
      const code = (err as { code?: unknown }).code;
      if (typeof code === 'string' && /^SQLITE_(CANTOPEN|READONLY|PERM|BUSY|LOCKED|IOERR|FULL|NOMEM)/.test(code)) {
        throw new Error(`cannot open the embedded store ${file}: ${(err as Error).message} (${code})`, { cause: err });
      }
      throw new StoreDamagedError(file, (err as Error).message, { cause: err });
    }
    return new SqliteStore(file, db, created, version);
  }

  /**
   * Runs `op` inside the transaction of this turn's batch; resolves with its result once the
   * transaction is committed (fsync'd). If anything in the batch fails, the batch is rolled back
   * and every write of it rejects with LogUnavailableError: nothing of it was acknowledged.
   */
  write<T>(op: () => T): Promise<T> {
    if (this.closed) return Promise.reject(new LogUnavailableError('the embedded store is closed'));
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ op, resolve, reject });
      if (this.queue.length === 1) this.flushing = new Promise((done) => setImmediate(() => (this.flush(), done())));
    });
  }

  /** Reads run on committed data only (writes happen whole, inside flush). */
  read<T>(op: () => T): T {
    if (this.closed) throw new LogUnavailableError('the embedded store is closed');
    try {
      return op();
    } catch (err) {
      throw new LogUnavailableError(`embedded store read failed: ${(err as Error).message}`, { cause: err });
    }
  }

  private flush(): void {
    const batch = this.queue;
    this.queue = [];
    if (batch.length === 0) return;
    const results: unknown[] = new Array(batch.length);
    try {
      this.begin.run();
      for (let i = 0; i < batch.length; i++) results[i] = batch[i].op();
      this.commit.run();
    } catch (err) {
      try {
        if (this.db.inTransaction) this.rollback.run();
      } catch {
        /* the connection is unusable; every later write fails too */
      }
      const e = new LogUnavailableError(`embedded store write failed: ${(err as Error).message}`, { cause: err });
      for (const p of batch) p.reject(e);
      return;
    }
    this.stats.commits++;
    this.stats.fsyncs++;
    for (let i = 0; i < batch.length; i++) batch[i].resolve(results[i]);
    if (++this.sinceCheckpoint >= CHECKPOINT_EVERY_COMMITS) this.checkpoint();
    else this.armIdleCheckpoint();
  }

  private armIdleCheckpoint(): void {
    if (this.idleTimer) this.idleTimer.refresh();
    else {
      this.idleTimer = setTimeout(() => {
        this.idleTimer = undefined;
        if (!this.closed && this.sinceCheckpoint > 0) this.checkpoint();
      }, CHECKPOINT_IDLE_MS);
      this.idleTimer.unref();
    }
  }

  /** Copies the WAL into the database file (PASSIVE: never waits for readers). */
  checkpoint(): void {
    this.sinceCheckpoint = 0;
    try {
      this.db.pragma('wal_checkpoint(PASSIVE)');
      this.stats.checkpoints++;
      this.stats.fsyncs += 2;
    } catch {
      /* retried after the next commits; the WAL keeps every commit meanwhile */
    }
  }

  ping(): void {
    this.read(() => this.db.prepare('SELECT 1').get());
  }

  /**
   * Online backup (SQLite's backup API) into `dest`: a consistent copy while the store keeps
   * taking writes. Resolves with the number of pages copied.
   */
  async backup(dest: string): Promise<number> {
    // Every remaining page in one step: one read transaction on the source, so a node writing
    // meanwhile (WAL: it is not blocked) can never make the backup restart over and over.
    const r = await this.db.backup(dest, { progress: () => 0x7fffffff });
    return r.totalPages;
  }

  /** Lets queued writes commit, checkpoints and closes the file (the WAL is folded in and removed). */
  async close(): Promise<void> {
    if (this.closed) return;
    while (this.queue.length > 0 || this.flushing) {
      const f = this.flushing;
      this.flushing = undefined;
      await f;
    }
    this.closed = true;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    try {
      // Only a connection that wrote folds the WAL in (a CLI reading beside a node leaves it be).
      if (!this.db.readonly && this.stats.commits > 0) this.db.pragma('wal_checkpoint(TRUNCATE)');
    } catch {
      /* close() folds the WAL in anyway when it can */
    }
    this.db.close();
  }
}

/**
 * Creates an empty store atomically: built under a temporary name, synced, then renamed, so a
 * crash during creation never leaves a half-made file under the store's name.
 */
function createStoreFile(file: string): void {
  const dir = dirname(file);
  mkdirSync(dir, { recursive: true });
  const tmp = `${file}.new-${process.pid}`;
  rmSync(tmp, { force: true });
  const db = new Database(tmp);
  try {
    db.pragma('journal_mode = WAL');
    db.pragma(`application_id = ${APPLICATION_ID}`);
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
    db.exec(SCHEMA);
    db.pragma('wal_checkpoint(TRUNCATE)');
  } finally {
    db.close();
  }
  rmSync(`${tmp}-wal`, { force: true });
  rmSync(`${tmp}-shm`, { force: true });
  const fd = openSync(tmp, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
  const dfd = openSync(dir, 'r');
  try {
    fsyncSync(dfd);
  } finally {
    closeSync(dfd);
  }
}
