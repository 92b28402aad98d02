import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { RemoteTiles, tileBytes, MAX_TILE_BYTES } from '../../src/cli/tiles';
import { arrayHashReader, checkRecord, leafHash, proveRecord, storedHashesForRecordHash, treeHash, type Hash } from '../../src/domain/tlog/merkle';
import { newTiles, readTileData, tilePath } from '../../src/domain/tlog/tile';

/** A tree of `n` leaves, its stored hashes and its tiles by path (as a node serves them). */
async function tree(n: number): Promise<{ root: Hash; tiles: Map<string, Buffer>; leaves: Hash[] }> {
  const stored: Hash[] = [];
  const leaves: Hash[] = [];
  for (let i = 0; i < n; i++) {
    const h = leafHash(`leaf ${i}`);
    leaves.push(h);
    stored.push(...(await storedHashesForRecordHash(i, h, arrayHashReader(stored))));
  }
  const tiles = new Map<string, Buffer>();
  for (const t of newTiles(0, n)) tiles.set(tilePath(t), await readTileData(t, arrayHashReader(stored)));
  return { root: await treeHash(n, arrayHashReader(stored)), tiles, leaves };
}

describe('RemoteTiles: inclusion proofs made on the client from hash tiles', () => {
  test('proofs from tiles equal the reference proofs and check against the root; each tile is fetched once', async () => {
    const n = 1000;
    const { root, tiles, leaves } = await tree(n);
    const fetched: string[] = [];
    const remote = new RemoteTiles(async (path) => {
      fetched.push(path);
      const data = tiles.get(path.replace(/^log\//, ''));
      if (!data) throw new Error(`no ${path}`);
      return data;
    });
    const stored: Hash[] = [];
    for (let i = 0; i < n; i++) stored.push(...(await storedHashesForRecordHash(i, leaves[i], arrayHashReader(stored))));
    for (let i = 0; i < n; i += 7) {
      const p = await remote.prove({ path: 'log/', key: 'x' }, n, i);
      expect(p).toEqual(await proveRecord(n, i, arrayHashReader(stored)));
      expect(checkRecord(p, n, root, i, leaves[i])).toBe(true);
    }
    expect(new Set(fetched).size).toBe(fetched.length);
    expect(fetched.length).toBeLessThanOrEqual(tiles.size);
  });

  test('concurrent proofs share one fetch per tile; a failed fetch is not kept; at most `max` tiles are held', async () => {
    const n = 600;
    const { tiles } = await tree(n);
    let calls = 0;
    let fail = true;
    const remote = new RemoteTiles(async (path) => {
      calls++;
      const down = fail;
      await new Promise((r) => setTimeout(r, 5));
      if (down) throw new Error('down');
      return tiles.get(path)!;
    }, 3);
    await expect(remote.prove({ path: '', key: 'x' }, n, 0)).rejects.toThrow('down');
    await new Promise((r) => setTimeout(r, 20)); // the other two failed fetches end too
    fail = false;
    calls = 0;
    await Promise.all(Array.from({ length: 20 }, (_, i) => remote.prove({ path: '', key: 'x' }, n, i)));
    // Leaves 0..19 of a tree of 600 need tile/0/000, tile/1/000.p/2 (leaves 256-511) and
    // tile/0/002.p/88 (512-599): each fetched once (the failed fetches were not kept).
    expect(calls).toBe(3);
    // Leaf 300 needs tile/0/001 besides the last two: one fetch, and tile/0/000 goes (three held).
    calls = 0;
    await remote.prove({ path: '', key: 'x' }, n, 300);
    expect(calls).toBe(1);
    calls = 0;
    await remote.prove({ path: '', key: 'x' }, n, 301);
    expect(calls).toBe(0);
    // Leaf 0 again: tile/0/000 was let go (unbounded, nothing would be fetched).
    await remote.prove({ path: '', key: 'x' }, n, 0);
    expect(calls).toBeGreaterThan(0);
  });

  test('a tile of another length than its width is refused', async () => {
    const { tiles } = await tree(300);
    const remote = new RemoteTiles(async (path) => {
      const d = tiles.get(path)!;
      return path === 'tile/0/001.p/44' ? Buffer.concat([d, d.subarray(0, 32)]) : d;
    });
    await expect(remote.prove({ path: '', key: 'x' }, 300, 290)).rejects.toThrow('tile/0/001.p/44 has 1440 bytes, not 44 hashes');
  });
});

describe('tileBytes: a hostile node cannot make the client read an endless answer', () => {
  let server: Server;
  let base: string;
  let sentBytes = 0;
  beforeAll(async () => {
    server = createServer((req, res) => {
      if (req.url === '/declared') {
        res.writeHead(200, { 'content-length': String(1 << 30) });
        res.write(Buffer.alloc(1024));
        return; // never ends: the client must not wait for it
      }
      if (req.url === '/chunked') {
        // No Content-Length, then more than a full tile and on without end.
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        const timer = setInterval(() => {
          sentBytes += 4096;
          if (!res.write(Buffer.alloc(4096))) return;
        }, 1);
        res.on('close', () => clearInterval(timer));
        return;
      }
      res.end(Buffer.alloc(64));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  test('a declared length over a full tile is refused before reading', async () => {
    await expect(tileBytes(await fetch(`${base}/declared`))).rejects.toThrow(`a tile answer of ${1 << 30} bytes (at most ${MAX_TILE_BYTES})`);
  });

  test('an undeclared answer is cut off just past a full tile', async () => {
    await expect(tileBytes(await fetch(`${base}/chunked`))).rejects.toThrow(`a tile answer of more than ${MAX_TILE_BYTES} bytes`);
    expect(sentBytes).toBeLessThan(1 << 20);
  });

  test('a normal answer is read whole', async () => {
    expect((await tileBytes(await fetch(`${base}/ok`))).length).toBe(64);
  });
});
