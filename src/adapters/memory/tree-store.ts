import type { Tile } from '../../domain/tlog/tile';
import type { StoredCheckpoint, TreeId, TreeStore } from '../../ports/tree-store';

/** The tree store in process memory (embedded mode and tests). */
export class MemoryTreeStore implements TreeStore {
  private readonly tiles = new Map<string, Buffer>();
  private readonly checkpoints = new Map<string, StoredCheckpoint>();

  private key(tree: TreeId, t: Tile): string {
    return `${tree.tag}\u0000${tree.name}\u0000${t.level}/${t.n}`;
  }

  async readTiles(tree: TreeId, tiles: readonly Tile[]): Promise<(Buffer | null)[]> {
    return tiles.map((t) => this.tiles.get(this.key(tree, t)) ?? null);
  }

  async writeTiles(tree: TreeId, tiles: readonly { tile: Tile; data: Buffer }[]): Promise<void> {
    for (const { tile, data } of tiles) {
      const k = this.key(tree, tile);
      const old = this.tiles.get(k);
      if (!old || old.length < data.length) this.tiles.set(k, Buffer.from(data));
    }
  }

  async checkpoint(tree: TreeId): Promise<StoredCheckpoint | null> {
    const c = this.checkpoints.get(`${tree.tag}\u0000${tree.name}`);
    return c ? { ...c, cosignatures: [...c.cosignatures] } : null;
  }

  async setCheckpoint(tree: TreeId, expectedSize: number, next: StoredCheckpoint): Promise<boolean> {
    const k = `${tree.tag}\u0000${tree.name}`;
    if ((this.checkpoints.get(k)?.size ?? 0) !== expectedSize) return false;
    this.checkpoints.set(k, { ...next, cosignatures: [...next.cosignatures] });
    return true;
  }

  async close(): Promise<void> {}
}
