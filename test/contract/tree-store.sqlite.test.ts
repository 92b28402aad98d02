import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { SqliteStore, STORE_FILE } from '../../src/adapters/sqlite/store';
import { SqliteTreeStore } from '../../src/adapters/sqlite/tree-store';
import { describeTreeStoreContract } from './tree-store.contract';

/** Two stores over one file: two connections, as two processes would have (the CAS holds across them). */
describeTreeStoreContract('sqlite', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cordon-sqlite-tree-'));
  const file = join(dir, STORE_FILE);
  const store = new SqliteTreeStore(SqliteStore.open(file), { ownsStore: true });
  const peer = new SqliteTreeStore(SqliteStore.open(file), { ownsStore: true });
  return {
    store,
    peer,
    async cleanup() {
      await Promise.all([store.close(), peer.close()]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

describe('SqliteTreeStore (SQLite specifics)', () => {
  let dir: string;
  let file: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'cordon-sqlite-tree-'));
    file = join(dir, STORE_FILE);
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('keeps tiles, the checkpoint and its cosignatures across a close and a reopen', async () => {
    const tree = { tag: 'KG-CN-01', name: 'e1' };
    const first = new SqliteTreeStore(SqliteStore.open(file), { ownsStore: true });
    await first.writeTiles(tree, [{ tile: { level: 1, n: 1234, width: 5 }, data: Buffer.alloc(160, 7) }]);
    expect(await first.setCheckpoint(tree, 0, { size: 3, note: 'n\n', cosignatures: ['— w1 AAAA'] })).toBe(true);
    await first.close();
    const again = new SqliteTreeStore(SqliteStore.open(file), { ownsStore: true });
    expect(await again.readTiles(tree, [{ level: 1, n: 1234, width: 256 }])).toEqual([Buffer.alloc(160, 7)]);
    expect(await again.checkpoint(tree)).toEqual({ size: 3, note: 'n\n', cosignatures: ['— w1 AAAA'] });
    expect(await again.setCheckpoint(tree, 0, { size: 4, note: 'm\n', cosignatures: [] })).toBe(false);
    expect(again.trees()).toEqual([tree]);
    await again.close();
  });

  it('answers a write only once it is committed: a reader on another connection sees it then', async () => {
    const tree = { tag: 'audit', name: 'audit' };
    const store = SqliteStore.open(file);
    const trees = new SqliteTreeStore(store);
    const commits = store.stats.commits;
    await trees.setCheckpoint(tree, 0, { size: 1, note: 'x\n', cosignatures: [] });
    expect(store.stats.commits).toBe(commits + 1);
    const other = new Database(file, { readonly: true });
    expect(other.prepare('SELECT size, note FROM tlog_checkpoint WHERE tag = ?').get('audit')).toEqual({ size: 1, note: 'x\n' });
    other.close();
    await store.close();
  });

  it('upgrades a store of schema version 1 (no tree tables) in place, keeping its logs', async () => {
    // A version-1 store as the previous release wrote it: the current schema minus the tree tables.
    await SqliteStore.open(file).close();
    const raw = new Database(file);
    raw.exec('DROP TABLE tlog_tile; DROP TABLE tlog_checkpoint;');
    raw.prepare("INSERT INTO audit (n, at, record) VALUES (1, '2026-01-01T00:00:00.000Z', '{}')").run();
    raw.pragma('user_version = 1');
    raw.close();
    // The CLI (upgrade: false) opens it as it is and leaves it so.
    const cli = SqliteStore.open(file, { mustExist: true, upgrade: false });
    expect(cli.schemaVersion).toBe(1);
    expect(() => new SqliteTreeStore(cli)).toThrow('schema version 1');
    await cli.close();
    // The node upgrades it.
    const node = SqliteStore.open(file);
    expect(node.schemaVersion).toBe(2);
    expect(node.db.pragma('user_version', { simple: true })).toBe(2);
    expect(node.db.prepare('SELECT COUNT(*) AS c FROM audit').get()).toEqual({ c: 1 });
    const trees = new SqliteTreeStore(node);
    expect(await trees.checkpoint({ tag: 'audit', name: 'audit' })).toBeNull();
    await node.close();
    // A newer version than this node knows is refused.
    const newer = new Database(file);
    newer.pragma('user_version = 3');
    newer.close();
    expect(() => SqliteStore.open(file)).toThrow('schema version 3, this node knows 2');
  });
});
