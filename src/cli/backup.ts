import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { storeFileOf } from '../adapters/sqlite/compose';
import { SqliteStore } from '../adapters/sqlite/store';
import { SqliteTreeStore } from '../adapters/sqlite/tree-store';
import { AUDIT_TREE } from '../tlog/leaves';
import { CliError, UsageError, defineCommand } from './args';
import type { CliIo } from './command';

/** The embedded store file a CLI command works on: --store, else CORDON_DATA_DIR/cordon.db, else .cordon/cordon.db. */
export function storeFileArg(store: string | undefined, dataDir: string | undefined, io: CliIo): string {
  if (store !== undefined && dataDir !== undefined) throw new UsageError('give --store or --data-dir, not both');
  if (store !== undefined) return resolve(io.cwd, store);
  return storeFileOf(resolve(io.cwd, dataDir ?? io.env.CORDON_DATA_DIR ?? '.cordon'));
}

/**
 * Opens an existing store for reading beside a running node; refuses a missing or damaged one.
 * Never upgrades its schema (the node does that at its start).
 */
export function openExisting(file: string): SqliteStore {
  if (!existsSync(file)) throw new CliError(`no embedded store at ${file}`);
  try {
    return SqliteStore.open(file, { mustExist: true, upgrade: false });
  } catch (err) {
    throw new CliError((err as Error).message, { cause: err });
  }
}

/** Regions, entries and audit records of a store, for the command's summary line. */
export function storeCounts(store: SqliteStore): { regions: number; entries: number; audit: number } {
  const one = (sql: string) => (store.db.prepare(sql).get() as { c: number }).c;
  return {
    regions: one('SELECT COUNT(*) AS c FROM region'),
    entries: one('SELECT COUNT(*) AS c FROM entry'),
    audit: one('SELECT COUNT(*) AS c FROM audit'),
  };
}

/**
 * `cordon backup <file>`: SQLite's online backup of the embedded store, safe while the node runs
 * and writes (the copy is one consistent snapshot); the copy is then opened and checked.
 */
export const backup = defineCommand({
  name: 'backup',
  summary: 'Copy the embedded store (SQLite online backup), safe while the node runs',
  usage: `<file> [--store FILE | --data-dir DIR]
  <file>      where to write the copy (must not exist)
  --store     the store file (default: CORDON_DATA_DIR/cordon.db, CORDON_DATA_DIR defaulting to .cordon)
  --data-dir  the node's CORDON_DATA_DIR (its store is cordon.db in it)`,
  options: { store: { type: 'string' }, 'data-dir': { type: 'string' } },
  positionals: true,
  async run(values, io, positionals) {
    if (positionals.length !== 1) throw new UsageError('give exactly one destination file');
    const source = storeFileArg(values.store, values['data-dir'], io);
    const dest = resolve(io.cwd, positionals[0]);
    if (dest === source) throw new UsageError('the destination is the store itself');
    if (existsSync(dest)) throw new CliError(`${dest} exists; choose a new file name`);
    const store = openExisting(source);
    try {
      await store.backup(dest);
    } catch (err) {
      throw new CliError(`backup of ${source} failed: ${(err as Error).message}`, { cause: err });
    } finally {
      await store.close();
    }
    // The copy must open as a healthy store on its own.
    const copy = openExisting(dest);
    try {
      const c = storeCounts(copy);
      io.stdout.write(`backed up ${source} to ${dest}: ${c.regions} regions, ${c.entries} alerts held, ${c.audit} audit records (checked)\n`);
    } finally {
      await copy.close();
    }
    return 0;
  },
});

/**
 * `cordon restore <backup>`: puts a backup in place of the store of a stopped node. The backup is
 * older than the log it replaces, so every region gets a new epoch (contract §6: a log rolled
 * back under its epoch gets a new one, so desks hear of it with an `epoch-changed` gap and
 * re-sync); seqs continue from the backup's. The replaced files are kept beside it.
 */
export const restore = defineCommand({
  name: 'restore',
  summary: 'Put a backup in place of the embedded store (node stopped); every region gets a new epoch',
  usage: `<backup> [--store FILE | --data-dir DIR]
  <backup>    a file written by 'cordon backup'
  --store     the store file to replace (default: CORDON_DATA_DIR/cordon.db, CORDON_DATA_DIR defaulting to .cordon)
  --data-dir  the node's CORDON_DATA_DIR (its store is cordon.db in it)
Stop the node first. The replaced store (and its -wal/-shm files) is renamed to
<store>.replaced-<time>, never deleted.`,
  options: { store: { type: 'string' }, 'data-dir': { type: 'string' } },
  positionals: true,
  async run(values, io, positionals) {
    if (positionals.length !== 1) throw new UsageError('give exactly one backup file');
    const target = storeFileArg(values.store, values['data-dir'], io);
    const source = resolve(io.cwd, positionals[0]);
    if (source === target) throw new UsageError('the backup is the store itself');
    // A healthy store, copied next to the target, re-epoched there, then swapped in.
    const checked = openExisting(source);
    const tmp = `${target}.restoring-${process.pid}`;
    rmSync(tmp, { force: true });
    mkdirSync(dirname(target), { recursive: true });
    try {
      await checked.backup(tmp);
    } finally {
      await checked.close();
    }
    // What the replaced store's audit tree was signed up to (when it is readable): the restored
    // trail is shorter, so the audit tree forks after the backup's checkpoint.
    const replacedAudit = existsSync(target) ? auditCheckpointSize(target) : null;
    const copy = openExisting(tmp);
    let epochs: Array<{ region: string; epoch: string }>;
    let backupAudit: number | null;
    try {
      backupAudit = copy.schemaVersion >= 2 ? ((await new SqliteTreeStore(copy).checkpoint(AUDIT_TREE))?.size ?? 0) : null;
      const regions = copy.db.prepare('SELECT region FROM region ORDER BY region').all() as Array<{ region: string }>;
      epochs = regions.map((r) => ({ region: r.region, epoch: randomBytes(9).toString('base64url') }));
      const set = copy.db.prepare('UPDATE region SET epoch = ? WHERE region = ?');
      await copy.write(() => {
        for (const e of epochs) set.run(e.epoch, e.region);
      });
    } finally {
      await copy.close();
    }
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    for (const suffix of ['', '-wal', '-shm']) {
      if (existsSync(target + suffix)) renameSync(target + suffix, `${target}.replaced-${stamp}${suffix}`);
    }
    rmSync(`${tmp}-wal`, { force: true });
    rmSync(`${tmp}-shm`, { force: true });
    renameSync(tmp, target);
    const dfd = openSync(dirname(target), 'r');
    try {
      fsyncSync(dfd);
    } finally {
      closeSync(dfd);
    }
    let out =
      `restored ${source} to ${target}` + (existsSync(`${target}.replaced-${stamp}`) ? ` (the replaced store is ${target}.replaced-${stamp})` : '') + '\n';
    for (const e of epochs) out += `region ${e.region}: new epoch ${e.epoch}\n`;
    out +=
      backupAudit === null
        ? 'transparency log: the backup holds no trees; the node builds them from the log at start\n'
        : `transparency log: the backup's trees are kept (old epochs' as evidence); the new epochs' trees are built from the log at start; the audit tree continues from the backup's checkpoint (size ${backupAudit})\n`;
    if (replacedAudit !== null && replacedAudit > (backupAudit ?? 0)) {
      io.stderr.write(
        `warning: the replaced store had signed the audit tree up to size ${replacedAudit}; the restored node signs other records ` +
          `for sizes after ${backupAudit ?? 0}: its audit checkpoints no longer extend the ones already published, and witnesses ` +
          'that cosigned those refuse them. Record the restore in your incident log (docs/operations.md, "The embedded store").\n',
      );
    }
    io.stdout.write(out);
    return 0;
  },
});

/** The size of the audit tree's checkpoint in a store file, or null when it cannot be read. */
function auditCheckpointSize(file: string): number | null {
  try {
    const store = SqliteStore.open(file, { mustExist: true, upgrade: false });
    try {
      if (store.schemaVersion < 2) return null;
      const row = store.db.prepare('SELECT size FROM tlog_checkpoint WHERE tag = ? AND name = ?').get(AUDIT_TREE.tag, AUDIT_TREE.name) as
        { size: number } | undefined;
      return row?.size ?? 0;
    } finally {
      store.db.close();
    }
  } catch {
    return null; // a damaged store: the reason to restore
  }
}
