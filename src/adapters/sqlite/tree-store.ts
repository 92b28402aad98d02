import type Database from 'better-sqlite3';
import type { Tile } from '../../domain/tlog/tile';
import type { StoredCheckpoint, TreeId, TreeStore } from '../../ports/tree-store';
import type { SqliteStore } from './store';

export interface SqliteTreeStoreOptions {
  /** close the store on close() (set when the store is not shared with the logs). */
  ownsStore?: boolean;
}

/**
 * The transparency log's trees in the embedded SQLite store, beside the region logs and the audit
 * trail: table `tlog_tile` (one row per hash tile, `(tag, name, level, n)`, the tile's bytes, 8 KiB
 * when full) and table `tlog_checkpoint` (per tree: size, the signed note, the cosignature lines
 * as a JSON array).
 *
 * Writes share the store's group commit (`SqliteStore.write`: WAL, synchronous=FULL) and resolve
 * only once their transaction is fsync'd, so the integrator stores a checkpoint only after its
 * tiles are durable, and a checkpoint is served (read from committed data) only once it is
 * durable: a restarted node serves the same note and cosignatures and signs nothing twice. The
 * "only a longer tile replaces a tile" rule and the compare-and-set on the checkpoint's size each
 * run inside one transaction (`BEGIN IMMEDIATE`), so they hold against any other connection too.
 */
export class SqliteTreeStore implements TreeStore {
  private readonly ownsStore: boolean;
  private readonly getTile: Database.Statement;
  private readonly putTile: Database.Statement;
  private readonly getCheckpoint: Database.Statement;
  private readonly putCheckpoint: Database.Statement;

  constructor(
    private readonly store: SqliteStore,
    opts: SqliteTreeStoreOptions = {},
  ) {
    if (store.schemaVersion < 2) throw new Error(`the embedded store ${store.file} has schema version ${store.schemaVersion}, without the tree tables`);
    this.ownsStore = opts.ownsStore ?? false;
    const db = store.db;
    this.getTile = db.prepare('SELECT data FROM tlog_tile WHERE tag = ? AND name = ? AND level = ? AND n = ?');
    this.putTile = db.prepare(
      'INSERT INTO tlog_tile (tag, name, level, n, data) VALUES (?, ?, ?, ?, ?) ' +
        'ON CONFLICT (tag, name, level, n) DO UPDATE SET data = excluded.data WHERE length(excluded.data) > length(tlog_tile.data)',
    );
    this.getCheckpoint = db.prepare('SELECT size, note, cosignatures FROM tlog_checkpoint WHERE tag = ? AND name = ?');
    this.putCheckpoint = db.prepare(
      'INSERT INTO tlog_checkpoint (tag, name, size, note, cosignatures) VALUES (?, ?, ?, ?, ?) ' +
        'ON CONFLICT (tag, name) DO UPDATE SET size = excluded.size, note = excluded.note, cosignatures = excluded.cosignatures',
    );
  }

  async readTiles(tree: TreeId, tiles: readonly Tile[]): Promise<(Buffer | null)[]> {
    if (tiles.length === 0) return [];
    return this.store.read(() => tiles.map((t) => (this.getTile.get(tree.tag, tree.name, t.level, t.n) as { data: Buffer } | undefined)?.data ?? null));
  }

  async writeTiles(tree: TreeId, tiles: readonly { tile: Tile; data: Buffer }[]): Promise<void> {
    if (tiles.length === 0) return;
    await this.store.write(() => {
      for (const { tile, data } of tiles) this.putTile.run(tree.tag, tree.name, tile.level, tile.n, data);
    });
  }

  async checkpoint(tree: TreeId): Promise<StoredCheckpoint | null> {
    return this.store.read(() => {
      const row = this.getCheckpoint.get(tree.tag, tree.name) as { size: number; note: string; cosignatures: string } | undefined;
      return row ? { size: row.size, note: row.note, cosignatures: JSON.parse(row.cosignatures) as string[] } : null;
    });
  }

  setCheckpoint(tree: TreeId, expectedSize: number, next: StoredCheckpoint): Promise<boolean> {
    const cosignatures = JSON.stringify(next.cosignatures);
    return this.store.write(() => {
      const row = this.getCheckpoint.get(tree.tag, tree.name) as { size: number } | undefined;
      if ((row?.size ?? 0) !== expectedSize) return false;
      this.putCheckpoint.run(tree.tag, tree.name, next.size, next.note, cosignatures);
      return true;
    });
  }

  /** Every tree the store holds a checkpoint or a tile of (`cordon migrate`). */
  trees(): TreeId[] {
    return this.store.read(
      () => this.store.db.prepare('SELECT tag, name FROM tlog_checkpoint UNION SELECT DISTINCT tag, name FROM tlog_tile ORDER BY tag, name').all() as TreeId[],
    );
  }

  async close(): Promise<void> {
    if (this.ownsStore) await this.store.close();
  }
}
