import type { Tile } from '../domain/tlog/tile';

/**
 * Where the transparency log keeps its trees (contract §12): hash tiles and the latest signed
 * checkpoint per tree. A tree is named by a hash tag (`tag`: the region, or `audit`) and a name
 * inside it (the epoch, or `audit`), so all keys of one region stay in one Redis Cluster slot.
 *
 * Tiles are a function of the log: two integrators write the same bytes for one tile, except that
 * a partial tile grows. So a stored tile is only ever replaced by a longer one, and a tile is read
 * as its widest stored version (a narrower path is a prefix of it).
 */
export interface TreeId {
  tag: string;
  name: string;
}

export interface StoredCheckpoint {
  size: number;
  /** the signed note, the log's own signature only. */
  note: string;
  /** witness cosignature lines (without newline) collected for this note. */
  cosignatures: string[];
}

export interface TreeStore {
  readTiles(tree: TreeId, tiles: readonly Tile[]): Promise<(Buffer | null)[]>;
  /** stores each tile unless a version at least as long is stored already. */
  writeTiles(tree: TreeId, tiles: readonly { tile: Tile; data: Buffer }[]): Promise<void>;
  checkpoint(tree: TreeId): Promise<StoredCheckpoint | null>;
  /**
   * Compare-and-set: stores `next` only if the stored checkpoint has size `expectedSize` (0: none
   * stored, or one of size 0). Returns whether it was stored. With `expectedSize === next.size` it
   * replaces the same checkpoint (adding cosignatures).
   */
  setCheckpoint(tree: TreeId, expectedSize: number, next: StoredCheckpoint): Promise<boolean>;
  close(): Promise<void>;
}
