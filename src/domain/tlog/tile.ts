import { HASH_SIZE, TlogError, nodeHash, splitStoredHashIndex, storedHashIndex, type Hash, type HashReader } from './merkle';

/**
 * C2SP tlog-tiles hash tiles of height 8, a port of Go's sumdb/tlog tile.go. A tile at level L,
 * index N, width W lists W consecutive hashes of tree level 8L starting at N*256. Paths are C2SP's
 * `tile/<L>/<N>[.p/<W>]` (Go's sumdb paths carry the height too: `tile/8/<L>/...`).
 */

export const TILE_HEIGHT = 8;
export const TILE_WIDTH = 256;

export interface Tile {
  level: number;
  n: number;
  /** 1..256; 256 is a full tile. */
  width: number;
}

/** The tile of least width holding stored hash `index`, and the byte range in it whose tile hash is that hash. */
export function tileForIndex(index: number): { tile: Tile; start: number; end: number } {
  const [treeLevel, n0] = splitStoredHashIndex(index);
  const level = Math.floor(treeLevel / TILE_HEIGHT);
  const within = treeLevel - level * TILE_HEIGHT; // tree level inside the tile
  const span = 2 ** within;
  const n = Math.floor((n0 * span) / TILE_WIDTH);
  const nIn = n0 - (n * TILE_WIDTH) / span; // n within the tile, at tree level `within`
  return {
    tile: { level, n, width: (nIn + 1) * span },
    start: nIn * span * HASH_SIZE,
    end: (nIn + 1) * span * HASH_SIZE,
  };
}

/**
 * The subtree hashes inside tile data, per tree level within the tile, computed once per data
 * buffer: a proof reads siblings at every level of a tile, which would otherwise cost up to 255
 * hashes per level-7 sibling, per proof.
 */
const levelsOf = new WeakMap<Buffer, Buffer[]>();

/** Level `within` of the tile's subtrees, one contiguous buffer per level (few objects to keep). */
function subtreeHash(data: Buffer, within: number, nIn: number): Hash {
  let levels = levelsOf.get(data);
  if (!levels) {
    levels = [data.subarray(0, Math.floor(data.length / HASH_SIZE) * HASH_SIZE)];
    levelsOf.set(data, levels);
  }
  while (levels.length <= within) {
    const below = levels[levels.length - 1];
    const count = Math.floor(below.length / HASH_SIZE / 2);
    const next = Buffer.allocUnsafe(count * HASH_SIZE);
    for (let i = 0; i < count; i++) {
      nodeHash(below.subarray(2 * i * HASH_SIZE, (2 * i + 1) * HASH_SIZE), below.subarray((2 * i + 1) * HASH_SIZE, (2 * i + 2) * HASH_SIZE)).copy(
        next,
        i * HASH_SIZE,
      );
    }
    levels.push(next);
  }
  return levels[within].subarray(nIn * HASH_SIZE, (nIn + 1) * HASH_SIZE);
}

/** The stored hash `index` computed from `data`, the hashes of tile t (or a wider version of it). */
export function hashFromTile(t: Tile, data: Buffer, index: number): Hash {
  if (data.length < t.width * HASH_SIZE) throw new TlogError(`tile data too short for ${tilePath(t)}`);
  const { tile, start, end } = tileForIndex(index);
  if (tile.level !== t.level || tile.n !== t.n || t.width < tile.width) {
    throw new TlogError(`stored hash ${index} is in ${tilePath(tile)}, not ${tilePath(t)}`);
  }
  const span = (end - start) / HASH_SIZE;
  return Buffer.from(subtreeHash(data, Math.log2(span), start / HASH_SIZE / span));
}

/** The tiles (full and partial) to publish when a tree grows from oldSize to newSize. */
export function newTiles(oldSize: number, newSize: number): Tile[] {
  const tiles: Tile[] = [];
  for (let level = 0; Math.floor(newSize / TILE_WIDTH ** level) > 0; level++) {
    const oldN = Math.floor(oldSize / TILE_WIDTH ** level);
    const newN = Math.floor(newSize / TILE_WIDTH ** level);
    if (oldN === newN) continue;
    for (let n = Math.floor(oldN / TILE_WIDTH); n < Math.floor(newN / TILE_WIDTH); n++) {
      tiles.push({ level, n, width: TILE_WIDTH });
    }
    const n = Math.floor(newN / TILE_WIDTH);
    const w = newN - n * TILE_WIDTH;
    if (w > 0) tiles.push({ level, n, width: w });
  }
  return tiles;
}

/** The stored hash indexes whose hashes make up tile t. */
export function tileHashIndexes(t: Tile): number[] {
  const start = t.n * TILE_WIDTH;
  const out: number[] = new Array<number>(t.width);
  for (let i = 0; i < t.width; i++) out[i] = storedHashIndex(TILE_HEIGHT * t.level, start + i);
  return out;
}

/** Tile t's bytes, read from r. */
export async function readTileData(t: Tile, r: HashReader): Promise<Buffer> {
  const hashes = await r.readHashes(tileHashIndexes(t));
  if (hashes.length !== t.width) throw new TlogError(`readHashes returned ${hashes.length} hashes for ${tilePath(t)}`);
  return Buffer.concat(hashes);
}

/** C2SP path: `tile/<L>/<N>[.p/<W>]`, N in 3-digit groups, all but the last prefixed with x. */
export function tilePath(t: Tile): string {
  let n = t.n;
  let s = String(n % 1000).padStart(3, '0');
  while (n >= 1000) {
    n = Math.floor(n / 1000);
    s = `x${String(n % 1000).padStart(3, '0')}/${s}`;
  }
  return `tile/${t.level}/${s}${t.width === TILE_WIDTH ? '' : `.p/${t.width}`}`;
}

/** Parses a C2SP hash tile path (without a prefix); null unless it is exactly canonical. */
export function parseTilePath(path: string): Tile | null {
  const m = /^tile\/(0|[1-9][0-9]?)\/((?:x[0-9]{3}\/)*)([0-9]{3})(?:\.p\/([1-9][0-9]{0,2}))?$/.exec(path);
  if (!m) return null;
  const level = Number(m[1]);
  if (level > 63) return null;
  let n = 0;
  for (const g of m[2].split('/').filter(Boolean)) n = n * 1000 + Number(g.slice(1));
  n = n * 1000 + Number(m[3]);
  const width = m[4] === undefined ? TILE_WIDTH : Number(m[4]);
  if (width < 1 || width >= TILE_WIDTH + (m[4] === undefined ? 1 : 0)) return null;
  const t = { level, n, width };
  return tilePath(t) === path && Number.isSafeInteger(n) ? t : null;
}

/** Reads tile bytes; a partial tile's data may be longer than asked (a wider version of it). */
export interface TileSource {
  readTiles(tiles: readonly Tile[]): Promise<(Buffer | null)[]>;
}

/**
 * A HashReader over tiles for a tree of `size`: each stored hash is computed from the smallest
 * tile holding it, at the width the tree of that size has. Trusted storage: the server's side.
 * (Clients check proofs against a signed root instead.)
 */
export function tileHashReader(size: number, source: TileSource): HashReader {
  return {
    async readHashes(indexes) {
      const want = indexes.map((x) => {
        const { tile } = tileForIndex(x);
        return { ...tile, width: widthIn(tile, size) };
      });
      const keys = new Map<string, number>();
      const tiles: Tile[] = [];
      const order = want.map((t) => {
        const k = `${t.level}/${t.n}`;
        let i = keys.get(k);
        if (i === undefined) {
          i = tiles.length;
          keys.set(k, i);
          tiles.push(t);
        } else if (tiles[i].width < t.width) {
          tiles[i] = t;
        }
        return i;
      });
      const data = await source.readTiles(tiles);
      return indexes.map((x, j) => {
        const t = tiles[order[j]];
        const d = data[order[j]];
        if (!d) throw new TlogError(`${tilePath(t)} is not stored`);
        return hashFromTile(t, d, x);
      });
    },
  };
}

/** The width tile t has in the tree of `size` (full when the tree has passed it). */
export function widthIn(t: Tile, size: number): number {
  const hashesAtLevel = Math.floor(size / TILE_WIDTH ** t.level);
  return Math.max(1, Math.min(TILE_WIDTH, hashesAtLevel - t.n * TILE_WIDTH));
}
