import {
  HASH_SIZE,
  copyHash,
  frontierIndexes,
  leafHash,
  storedHashIndex,
  nodeHashInto,
  storedHashCount,
  treeHash,
  type Hash,
  type HashReader,
} from '../domain/tlog/merkle';
import { TILE_HEIGHT, TILE_WIDTH, newTiles, tileHashReader, type Tile, type TileSource } from '../domain/tlog/tile';
import { formatCheckpoint, signNote, type NoteSigner } from '../domain/tlog/note';
import type { StoredCheckpoint, TreeId, TreeStore } from '../ports/tree-store';

/** What a tree is built from: a region log's epoch, or the audit trail. */
export interface LeafSource {
  /** The tree to extend, its checkpoint origin and how many entries the log holds for it; null when empty. */
  head(): Promise<{ tree: TreeId; origin: string; size: number } | null>;
  /**
   * The leaf hashes of entries [from, to) of `tree`, in order; fewer (possibly none) when the log
   * no longer holds some, or holds another tree by now.
   */
  leafHashes(tree: TreeId, from: number, to: number): Promise<Hash[]>;
}

export interface IntegrationResult {
  tree: TreeId;
  origin: string;
  /** the size before and after this call. */
  from: number;
  to: number;
  /** the checkpoint this node stored (null when it stored none: nothing new, or another node was first). */
  checkpoint: StoredCheckpoint | null;
  /** the log held more entries than the tree, and none of them could be read (trimmed, or another epoch by now) */
  stalled?: boolean;
}

/**
 * What one integration step leaves for the next on this node: the stored hashes of the tree's
 * frontier at `size`. The next step from that size then neither reads tiles for them nor
 * recomputes them from tile data (up to 255 hashes for a frontier hash inside a tile).
 */
export interface FrontierMemo {
  tree: TreeId;
  size: number;
  hashes: Map<number, Hash>;
  /**
   * The partial tile at the right edge of each level at `size` (tile level → its index and bytes):
   * the next step appends to them instead of reading them back and rebuilding them hash by hash.
   */
  edges: Map<number, { n: number; data: Buffer }>;
}

/** Leaves hashed, tiled and signed per checkpoint step: bounds memory and the time between checkpoints. */
export const MAX_STEP = 4096;

/** Tiles read through one integration step, cached (the right edge is read several times). */
function cachingSource(store: TreeStore, tree: TreeId): TileSource {
  const cache = new Map<string, Buffer | null>();
  return {
    async readTiles(tiles) {
      const missing = tiles.filter((t) => !cache.has(`${t.level}/${t.n}`));
      if (missing.length > 0) {
        const data = await store.readTiles(tree, missing);
        missing.forEach((t, i) => cache.set(`${t.level}/${t.n}`, data[i]));
      }
      return tiles.map((t) => cache.get(`${t.level}/${t.n}`) ?? null);
    },
  };
}

/**
 * Sequence, then integrate (as Trillian Tessera does): the region log's atomic append sequences
 * entries; this step hashes entries the tree does not hold yet, writes the tiles that changed and
 * stores a signed checkpoint with compare-and-set on its size. It is idempotent and any node may
 * run it: tiles are a function of the log, Ed25519 signatures are deterministic, and the
 * compare-and-set lets exactly one checkpoint follow each size, so two nodes never sign two roots
 * for one size.
 */
export async function integrate(
  store: TreeStore,
  source: LeafSource,
  signer: NoteSigner,
  memo?: { last: FrontierMemo | null },
): Promise<IntegrationResult | null> {
  const head = await source.head();
  if (!head) return null;
  const { tree, origin } = head;
  const current = await store.checkpoint(tree);
  const from = current?.size ?? 0;
  if (head.size <= from) return { tree, origin, from, to: from, checkpoint: null };
  const to = Math.min(head.size, from + MAX_STEP);
  const hashes = await source.leafHashes(tree, from, to);
  if (hashes.length === 0) return { tree, origin, from, to: from, checkpoint: null, stalled: true };
  const size = from + hashes.length;

  // New stored hashes in memory over the tiles of the old tree. The hashes appending leaves
  // [from, size) stores are one contiguous run of stored hash indexes, so they go to one slab.
  const oldTiles = cachingSource(store, tree);
  const old = tileHashReader(from, oldTiles);
  const base = storedHashIndex(0, from);
  const slab = Buffer.allocUnsafe((storedHashCount(size) - base) * HASH_SIZE);
  const inSlab = (x: number) => slab.subarray((x - base) * HASH_SIZE, (x - base + 1) * HASH_SIZE);
  // The old tree's frontier is all the new leaves combine with: read it once (or take it from the
  // memo the previous step on this node left), then hash in memory.
  const frontier = frontierIndexes(from);
  const known = memo?.last && memo.last.size === from && memo.last.tree.tag === tree.tag && memo.last.tree.name === tree.name ? memo.last.hashes : null;
  const frontierHashes = known ? frontier.map((x) => known.get(x)!) : frontier.length > 0 ? await old.readHashes(frontier) : [];
  const edge = new Map(frontier.map((x, i) => [x, frontierHashes[i]]));
  const get = (x: number): Hash | undefined => (x >= base ? inSlab(x) : edge.get(x));
  let at = 0;
  for (let n = from; n < size; n++) {
    copyHash(hashes[n - from], 0, slab, at);
    let right = at;
    at += HASH_SIZE;
    // One hash per subtree leaf n completes (Go's StoredHashesForRecordHash), hashed in place.
    for (let i = 0, k = n; k % 2 === 1; i++, k = (k - 1) / 2) {
      const x = storedHashIndex(i, k - 1);
      if (x >= base) nodeHashInto(slab, (x - base) * HASH_SIZE, slab, right, slab, at);
      else {
        const left = edge.get(x);
        if (!left) throw new Error(`stored hash of level ${i} at ${k - 1} is not at hand`);
        nodeHashInto(left, 0, slab, right, slab, at);
      }
      right = at;
      at += HASH_SIZE;
    }
  }
  const reader: HashReader = {
    async readHashes(indexes) {
      const need = indexes.filter((x) => x < base && !edge.has(x));
      const got = need.length > 0 ? await old.readHashes(need) : [];
      const byIndex = new Map(need.map((x, i) => [x, got[i]]));
      return indexes.map((x) => get(x) ?? byIndex.get(x)!);
    },
  };
  // The tiles that changed. A tile's hashes the old tree did not have were all made by this step
  // (a stored hash completes with the leaf that completes its subtree), so they are copied from the
  // slab; the ones it had are the old partial tile's bytes, which tiles only ever extend.
  const edges = known ? memo!.last!.edges : new Map<number, { n: number; data: Buffer }>();
  const nextEdges = new Map(edges);
  const tiles: { tile: Tile; data: Buffer }[] = [];
  for (const tile of newTiles(from, size)) {
    const data = Buffer.allocUnsafe(tile.width * HASH_SIZE);
    const start = tile.n * TILE_WIDTH;
    const had = Math.max(0, Math.min(tile.width, Math.floor(from / TILE_WIDTH ** tile.level) - start));
    if (had > 0) {
      const e = edges.get(tile.level);
      const prefix = e && e.n === tile.n && e.data.length >= had * HASH_SIZE ? e.data : await oldTilePrefix(oldTiles, old, tile, had);
      prefix.copy(data, 0, 0, had * HASH_SIZE);
    }
    for (let i = had; i < tile.width; i++) {
      const x = storedHashIndex(TILE_HEIGHT * tile.level, start + i) - base;
      copyHash(slab, x * HASH_SIZE, data, i * HASH_SIZE);
    }
    tiles.push({ tile, data });
    if (tile.width < TILE_WIDTH) nextEdges.set(tile.level, { n: tile.n, data });
    else nextEdges.delete(tile.level);
  }
  await store.writeTiles(tree, tiles);

  const root = await treeHash(size, reader);
  const note = signNote(formatCheckpoint({ origin, size, root }), signer);
  const checkpoint = { size, note, cosignatures: [] };
  const stored = await store.setCheckpoint(tree, from, checkpoint);
  // Copies: the memo must not keep the whole slab alive.
  if (memo) memo.last = { tree, size, hashes: new Map(frontierIndexes(size).map((x) => [x, Buffer.from(get(x)!)])), edges: nextEdges };
  return { tree, origin, from, to: size, checkpoint: stored ? checkpoint : null };
}

/**
 * The first `had` hashes of a tile as the old tree left them: the stored partial tile (another node
 * may have extended it since: tiles only grow, so its prefix is the same), read through the step's
 * tile cache (the frontier read has usually fetched it already), or, when the store has no such
 * bytes, the hashes one by one from the old tree's tiles.
 */
async function oldTilePrefix(oldTiles: TileSource, old: HashReader, tile: Tile, had: number): Promise<Buffer> {
  const [stored] = await oldTiles.readTiles([{ level: tile.level, n: tile.n, width: had }]);
  if (stored && stored.length >= had * HASH_SIZE) return stored;
  const indexes = Array.from({ length: had }, (_v, i) => storedHashIndex(TILE_HEIGHT * tile.level, tile.n * TILE_WIDTH + i));
  return Buffer.concat(await old.readHashes(indexes));
}

/** Reads stored hashes of `tree` at `size` from the store's tiles (proofs, tree hashes). */
export function storeHashReader(store: TreeStore, tree: TreeId, size: number, cache?: TileCache): HashReader {
  const source: TileSource = {
    async readTiles(tiles) {
      const out: (Buffer | null)[] = tiles.map((t) => cache?.get(tree, t) ?? null);
      const missing = tiles.map((_t, i) => (out[i] ? -1 : i)).filter((i) => i >= 0);
      if (missing.length > 0) {
        const data = await store.readTiles(
          tree,
          missing.map((i) => tiles[i]),
        );
        missing.forEach((i, j) => {
          const t = tiles[i];
          const d = data[j];
          // A tile path (width included) never changes: keep exactly that width, so its subtree
          // hashes are computed once per cached tile.
          const exact = d && d.length >= t.width * HASH_SIZE ? d.subarray(0, t.width * HASH_SIZE) : d;
          out[i] = exact;
          if (exact && cache && exact.length === t.width * HASH_SIZE) cache.set(tree, t, exact);
        });
      }
      return out;
    },
  };
  return tileHashReader(size, source);
}

/** Full tiles never change: a bounded cache of them serves most proof reads from memory. */
export class TileCache {
  private readonly map = new Map<string, Buffer>();
  constructor(private readonly maxTiles = 8192) {}

  get(tree: TreeId, t: Tile): Buffer | undefined {
    const k = `${tree.tag}/${tree.name}/${t.level}/${t.n}/${t.width}`;
    const hit = this.map.get(k);
    if (hit) {
      this.map.delete(k);
      this.map.set(k, hit);
    }
    return hit;
  }

  set(tree: TreeId, t: Tile, data: Buffer): void {
    this.map.set(`${tree.tag}/${tree.name}/${t.level}/${t.n}/${t.width}`, data);
    if (this.map.size > this.maxTiles) this.map.delete(this.map.keys().next().value as string);
  }
}

export { leafHash };
