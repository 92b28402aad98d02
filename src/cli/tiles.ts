import { HASH_SIZE, TlogError, proveRecord, type Hash } from '../domain/tlog/merkle';
import { TILE_WIDTH, tileHashReader, tilePath, type Tile } from '../domain/tlog/tile';

/** A tree whose tiles are fetched: its URL path (ending in `log/`) and a key naming it with its epoch. */
export interface RemoteTree {
  path: string;
  key: string;
}

/** A tile fetch that failed: the HTTP status (0: no answer) and the problem's code, if any. */
export class TileFetchError extends Error {
  constructor(
    readonly status: number,
    readonly code: string | undefined,
    message: string,
  ) {
    super(message);
    this.name = 'TileFetchError';
  }
}

/**
 * Inclusion proofs made on the client from the log's C2SP tlog-tiles hash tiles
 * (`GET .../log/tile/<L>/<N>[.p/<W>]`), as any tlog-tiles client makes them: alerts next to each
 * other share their tiles, so checking a run of alerts costs about one tile request per 256 of
 * them instead of one proof request each. Nothing fetched is trusted: the caller checks every
 * proof against the root of a checkpoint it verified with the log key, and a tile the node
 * altered makes that check fail. A tile of a given width never changes in an append-only tree, so
 * tiles are kept by tree and path, the `max` most recently used; a failed fetch is not kept.
 */
export class RemoteTiles {
  private readonly held = new Map<string, Promise<Buffer>>();

  constructor(
    private readonly fetchTile: (url: string) => Promise<Buffer>,
    private readonly max = 512,
  ) {}

  /** The inclusion proof of leaf `index` in `tree` at `size`, from its tiles. */
  prove(tree: RemoteTree, size: number, index: number): Promise<Hash[]> {
    return proveRecord(size, index, tileHashReader(size, { readTiles: (tiles) => Promise.all(tiles.map((t) => this.tile(tree, t))) }));
  }

  private tile(tree: RemoteTree, t: Tile): Promise<Buffer> {
    const path = tilePath(t);
    const key = `${tree.key} ${path}`;
    const known = this.held.get(key);
    if (known) {
      this.held.delete(key);
      this.held.set(key, known);
      return known;
    }
    const p = this.fetchTile(tree.path + path).then((data) => {
      // Exactly `width` hashes (C2SP tlog-tiles): anything else is a broken or hostile node.
      if (data.length !== t.width * HASH_SIZE) throw new TlogError(`${path} has ${data.length} bytes, not ${t.width} hashes`);
      return data;
    });
    p.catch(() => {
      if (this.held.get(key) === p) this.held.delete(key);
    });
    this.held.set(key, p);
    if (this.held.size > this.max) this.held.delete(this.held.keys().next().value as string);
    return p;
  }
}

/** The most a tile answer may hold: a full tile. A longer answer is not read. */
export const MAX_TILE_BYTES = TILE_WIDTH * HASH_SIZE;

/** A tile's bytes from a fetch Response: refused past MAX_TILE_BYTES, whatever Content-Length says. */
export async function tileBytes(res: Response): Promise<Buffer> {
  const declared = Number(res.headers.get('content-length'));
  if (declared > MAX_TILE_BYTES) {
    await res.body?.cancel();
    throw new TlogError(`a tile answer of ${declared} bytes (at most ${MAX_TILE_BYTES})`);
  }
  const chunks: Buffer[] = [];
  let n = 0;
  if (res.body) {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      n += chunk.length;
      if (n > MAX_TILE_BYTES) throw new TlogError(`a tile answer of more than ${MAX_TILE_BYTES} bytes`);
      chunks.push(Buffer.from(chunk));
    }
  }
  return Buffer.concat(chunks, n);
}
