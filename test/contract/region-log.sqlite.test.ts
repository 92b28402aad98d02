import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import Database from 'better-sqlite3';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteRegionLog } from '../../src/adapters/sqlite/region-log';
import { SqliteStore, StoreDamagedError, STORE_FILE } from '../../src/adapters/sqlite/store';
import { alertInput, describeRegionLogContract } from './region-log.contract';
import { uniqueRegion } from '../helpers/env';

function tempStoreFile(): { dir: string; file: string } {
  const dir = mkdtempSync(join(tmpdir(), 'cordon-sqlite-'));
  return { dir, file: join(dir, STORE_FILE) };
}

describeRegionLogContract('sqlite', async () => {
  const { dir, file } = tempStoreFile();
  // Two connections to one file: the peer is an independent adapter over the same store.
  const log = new SqliteRegionLog(SqliteStore.open(file), { ownsStore: true });
  const peer = new SqliteRegionLog(SqliteStore.open(file), { ownsStore: true });
  return {
    log,
    peer,
    async cleanup() {
      await Promise.all([log.close(), peer.close()]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

describe('SqliteRegionLog (SQLite specifics)', () => {
  let dir: string;
  let file: string;
  beforeEach(() => ({ dir, file } = tempStoreFile()));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('keeps entries, seq and epoch across a close and a reopen of the file', async () => {
    const region = uniqueRegion();
    const store = SqliteStore.open(file);
    expect(store.created).toBe(true);
    const log = new SqliteRegionLog(store, { ownsStore: true });
    const a = await log.append(alertInput(region));
    const b = await log.append(alertInput(region));
    await log.close();
    const again = SqliteStore.open(file);
    expect(again.created).toBe(false);
    const log2 = new SqliteRegionLog(again, { ownsStore: true });
    const c = await log2.append(alertInput(region));
    if (a.outcome !== 'appended' || b.outcome !== 'appended' || c.outcome !== 'appended') throw new Error('not appended');
    expect(c.entry.seq).toBe(3);
    expect(c.entry.epoch).toBe(a.entry.epoch);
    expect((await log2.read(region, 0, 10)).entries).toEqual([a.entry, b.entry, c.entry]);
    await log2.close();
  });

  it('commits the appends of one event-loop turn in one transaction (one fsync for the batch)', async () => {
    const region = uniqueRegion();
    const store = SqliteStore.open(file);
    const log = new SqliteRegionLog(store, { ownsStore: true });
    const before = store.stats.commits;
    const outcomes = await Promise.all(Array.from({ length: 300 }, () => log.append(alertInput(region))));
    expect(outcomes.every((o) => o.outcome === 'appended')).toBe(true);
    expect(store.stats.commits - before).toBe(1);
    // Answered only once committed: a second connection sees all of them.
    const other = new SqliteRegionLog(SqliteStore.open(file), { ownsStore: true });
    expect((await other.state(region)).latest).toBe(300);
    await Promise.all([log.close(), other.close()]);
  });

  it('rejects every write of a batch that fails, acknowledging none, and stays usable', async () => {
    const region = uniqueRegion();
    const store = SqliteStore.open(file);
    const log = new SqliteRegionLog(store, { ownsStore: true });
    await log.append(alertInput(region));
    const good = log.append(alertInput(region));
    const bad = store.write(() => {
      throw new Error('disk trouble');
    });
    await expect(good).rejects.toThrow('embedded store write failed');
    await expect(bad).rejects.toThrow('disk trouble');
    expect((await log.state(region)).latest).toBe(1);
    const next = await log.append(alertInput(region));
    expect(next.outcome === 'appended' && next.entry.seq).toBe(2);
    await log.close();
  });
});

describe('SqliteStore.open', () => {
  it('refuses a damaged file as damaged, and an unreadable one as unreadable, never creating a new store', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cordon-sqlite-'));
    try {
      const file = join(dir, STORE_FILE);
      writeFileSync(file, 'SQLite format 3\u0000' + 'x'.repeat(5000));
      expect(() => SqliteStore.open(file)).toThrow(StoreDamagedError);
      expect(readFileSync(file, 'utf8').startsWith('SQLite format 3')).toBe(true);
      const other = join(dir, 'other.db');
      const foreign = new Database(other);
      foreign.exec('CREATE TABLE t (a)');
      foreign.close();
      expect(() => SqliteStore.open(other)).toThrow(/application_id 0, not a Cordon store/);
      if (process.getuid?.() !== 0) {
        const locked = join(dir, 'locked');
        mkdirSync(locked);
        await SqliteStore.open(join(locked, STORE_FILE)).close();
        chmodSync(join(locked, STORE_FILE), 0o000);
        expect(() => SqliteStore.open(join(locked, STORE_FILE))).toThrow(/cannot open the embedded store/);
        chmodSync(join(locked, STORE_FILE), 0o600);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
