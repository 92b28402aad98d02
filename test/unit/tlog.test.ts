import { generateKeyPairSync } from 'node:crypto';
import {
  EMPTY_HASH,
  arrayHashReader,
  checkRecord,
  checkTree,
  leafHash,
  proveRecord,
  proveTree,
  splitStoredHashIndex,
  storedHashCount,
  storedHashIndex,
  storedHashesForRecordHash,
  frontierIndexes,
  treeHash,
  type Hash,
} from '../../src/domain/tlog/merkle';
import { newTiles, parseTilePath, readTileData, tileHashReader, tilePath, type Tile } from '../../src/domain/tlog/tile';
import {
  SIG_COSIGNATURE_V1,
  SIG_ED25519,
  cosign,
  formatCheckpoint,
  formatVerifierKey,
  noteSigner,
  openNote,
  parseCheckpoint,
  parseVerifierKey,
  signNote,
} from '../../src/domain/tlog/note';
import { ReferenceTree } from '../helpers/merkle-reference';

/** Stored hashes of a tree of the given leaves, built the way the integrator builds them. */
async function build(leaves: Buffer[]): Promise<Hash[]> {
  const stored: Hash[] = [];
  const r = arrayHashReader(stored);
  for (let n = 0; n < leaves.length; n++) stored.push(...(await storedHashesForRecordHash(n, leafHash(leaves[n]), r)));
  return stored;
}

const hex = (h: Buffer): string => h.toString('hex');

describe('RFC 6962 Merkle tree', () => {
  // The test tree of Certificate Transparency's reference implementation (and transparency-dev/merkle).
  const ctLeaves = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f'].map((h) => Buffer.from(h, 'hex'));
  const ctRoots = [
    '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
    'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
    'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
    'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
    '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
    'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
    '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
  ];

  it('computes the roots of the Certificate Transparency test tree', async () => {
    const stored = await build(ctLeaves);
    const r = arrayHashReader(stored);
    expect(hex(await treeHash(0, r))).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(EMPTY_HASH.equals(await treeHash(0, r))).toBe(true);
    for (let n = 1; n <= 8; n++) expect(hex(await treeHash(n, r))).toBe(ctRoots[n - 1]);
    const ref = new ReferenceTree(ctLeaves);
    for (let n = 1; n <= 8; n++) expect(hex(ref.mth(0, n))).toBe(ctRoots[n - 1]);
  });

  it('maps stored hash indexes both ways and counts them', () => {
    // Go's TestSplitStoredHashIndex: every index of the first 100,000 records round-trips.
    for (let level = 0; level < 8; level++) {
      for (let n = 0; n < 300; n++) {
        const x = storedHashIndex(level, n);
        expect(splitStoredHashIndex(x)).toEqual([level, n]);
      }
    }
    expect(storedHashIndex(0, 0)).toBe(0);
    expect(storedHashIndex(0, 1)).toBe(1);
    expect(storedHashIndex(1, 0)).toBe(2);
    expect([1, 2, 3, 4, 5, 8].map(storedHashCount)).toEqual([1, 3, 4, 7, 8, 15]);
  });

  it("appends from any size reading only the old frontier, with the same stored hashes as Go's storedHashesForRecordHash", async () => {
    const leaves = Array.from({ length: 300 }, (_, i) => leafHash(`leaf ${i}`));
    const all: Hash[] = [];
    for (let n = 0; n < leaves.length; n++) all.push(...(await storedHashesForRecordHash(n, leaves[n], arrayHashReader(all))));
    for (const from of [0, 1, 2, 3, 5, 8, 13, 64, 127, 128, 129, 255, 299]) {
      const frontier = new Set(frontierIndexes(from));
      const fresh = new Map<number, Hash>();
      for (const x of frontier) fresh.set(x, all[x]);
      for (let n = from; n < leaves.length; n++) {
        const got = await storedHashesForRecordHash(n, leaves[n], {
          readHashes: async (indexes) =>
            indexes.map((x) => {
              if (x < storedHashCount(from) && !frontier.has(x)) throw new Error(`read old hash ${x} outside the frontier of ${from}`);
              return fresh.get(x)!;
            }),
        });
        let x = storedHashIndex(0, n);
        for (const h of got) {
          expect(h.equals(all[x])).toBe(true);
          fresh.set(x++, h);
        }
      }
    }
  });

  it('proves every index of every tree up to 130 leaves as RFC 6962 PATH does, and checks them', async () => {
    const leaves = Array.from({ length: 130 }, (_, i) => Buffer.from(`leaf ${i}`));
    const stored = await build(leaves);
    expect(stored.length).toBe(storedHashCount(130));
    const r = arrayHashReader(stored);
    const ref = new ReferenceTree(leaves);
    for (let t = 1; t <= 130; t++) {
      const root = await treeHash(t, r);
      expect(hex(root)).toBe(hex(ref.mth(0, t)));
      for (let n = 0; n < t; n++) {
        const p = await proveRecord(t, n, r);
        expect(p.map(hex)).toEqual(ref.path(n, 0, t).map(hex));
        expect(checkRecord(p, t, root, n, leafHash(leaves[n]))).toBe(true);
      }
    }
  });

  it('proves consistency between every pair of sizes up to 70 as RFC 6962 PROOF does', async () => {
    const leaves = Array.from({ length: 70 }, (_, i) => Buffer.from(`entry-${i}`));
    const r = arrayHashReader(await build(leaves));
    const ref = new ReferenceTree(leaves);
    for (let t = 1; t <= 70; t++) {
      for (let n = 1; n <= t; n++) {
        const p = await proveTree(t, n, r);
        expect(p.map(hex)).toEqual(ref.consistency(n, t).map(hex));
        expect(checkTree(p, t, ref.mth(0, t), n, ref.mth(0, n))).toBe(true);
      }
    }
  });

  it('rejects proofs that are altered, truncated, extended or for another index, size or root', async () => {
    const leaves = Array.from({ length: 37 }, (_, i) => Buffer.from(`x${i}`));
    const r = arrayHashReader(await build(leaves));
    const root = await treeHash(37, r);
    const p = await proveRecord(37, 20, r);
    const h = leafHash(leaves[20]);
    expect(checkRecord(p, 37, root, 20, h)).toBe(true);
    const flipped = p.map((x, i) => (i === 2 ? Buffer.from(x.map((b, j) => (j === 0 ? b ^ 1 : b))) : x));
    expect(checkRecord(flipped, 37, root, 20, h)).toBe(false);
    expect(checkRecord(p.slice(0, -1), 37, root, 20, h)).toBe(false);
    expect(checkRecord([...p, p[0]], 37, root, 20, h)).toBe(false);
    expect(checkRecord(p, 37, root, 21, h)).toBe(false);
    expect(checkRecord(p, 32, root, 20, h)).toBe(false);
    expect(checkRecord(p, 37, leafHash('other'), 20, h)).toBe(false);
    expect(checkRecord(p, 37, root, 37, h)).toBe(false);
    const c = await proveTree(37, 11, r);
    const old = await treeHash(11, r);
    expect(checkTree(c, 37, root, 11, old)).toBe(true);
    expect(checkTree(c, 37, root, 11, root)).toBe(false);
    expect(checkTree(c, 37, root, 12, old)).toBe(false);
    expect(checkTree(c.slice(1), 37, root, 11, old)).toBe(false);
    expect(checkTree([], 37, root, 37, root)).toBe(true);
  });
});

describe('C2SP tlog-tiles', () => {
  it('encodes and parses tile paths as the spec shows', () => {
    expect(tilePath({ level: 0, n: 1234067, width: 256 })).toBe('tile/0/x001/x234/067');
    expect(tilePath({ level: 4, n: 1234067, width: 1 })).toBe('tile/4/x001/x234/067.p/1');
    expect(tilePath({ level: 1, n: 0, width: 17 })).toBe('tile/1/000.p/17');
    expect(tilePath({ level: 0, n: 1000, width: 256 })).toBe('tile/0/x001/000');
    expect(parseTilePath('tile/0/x001/x234/067')).toEqual({ level: 0, n: 1234067, width: 256 });
    expect(parseTilePath('tile/2/005.p/255')).toEqual({ level: 2, n: 5, width: 255 });
    for (const bad of [
      'tile/0/1234067',
      'tile/00/000',
      'tile/0/000.p/0',
      'tile/0/000.p/256',
      'tile/0/000.p/07',
      'tile/64/000',
      'tile/0/x000/001',
      'tile/data/000',
      '../tile/0/000',
    ]) {
      expect(parseTilePath(bad)).toBeNull();
    }
  });

  it('lays out a tree of size 70,000 as the spec says', () => {
    const t = newTiles(0, 70_000);
    const byLevel = (l: number): Tile[] => t.filter((x) => x.level === l);
    expect(byLevel(0).filter((x) => x.width === 256)).toHaveLength(273);
    expect(byLevel(0).filter((x) => x.width < 256)).toEqual([{ level: 0, n: 273, width: 112 }]);
    expect(byLevel(1)).toEqual([
      { level: 1, n: 0, width: 256 },
      { level: 1, n: 1, width: 17 },
    ]);
    expect(byLevel(2)).toEqual([{ level: 2, n: 0, width: 1 }]);
    expect(newTiles(0, 256).map(tilePath)).toEqual(['tile/0/000', 'tile/1/000.p/1']);
    expect(newTiles(256, 256)).toEqual([]);
  });

  it('serves every stored hash from tiles as from the stored hashes themselves', async () => {
    const leaves = Array.from({ length: 600 }, (_, i) => Buffer.from(`t${i}`));
    const stored = await build(leaves);
    const r = arrayHashReader(stored);
    const tiles = new Map<string, Buffer>();
    for (const t of newTiles(0, 600)) tiles.set(`${t.level}/${t.n}`, await readTileData(t, r));
    const source = { readTiles: async (ts: readonly Tile[]) => ts.map((t) => tiles.get(`${t.level}/${t.n}`) ?? null) };
    for (const size of [1, 2, 255, 256, 257, 511, 512, 513, 600]) {
      const tr = tileHashReader(size, source);
      expect(hex(await treeHash(size, tr))).toBe(hex(await treeHash(size, r)));
      for (const n of [0, 1, size >> 1, size - 1].filter((x) => x < size)) {
        expect((await proveRecord(size, n, tr)).map(hex)).toEqual((await proveRecord(size, n, r)).map(hex));
      }
    }
  });
});

describe('C2SP signed-note, tlog-checkpoint and tlog-cosignature', () => {
  it('verifies the example note of the signed-note spec', () => {
    const k = parseVerifierKey('example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k');
    const msg =
      'This is an example message.\n\n' + '— example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n';
    expect(openNote(msg, [k]).text).toBe('This is an example message.\n');
    expect(() => openNote(msg.replace('example message', 'exemplary message'), [k])).toThrow(/invalid signature/);
  });

  it("signs Go's sumdb/note example byte for byte from its private key", () => {
    // golang.org/x/mod/sumdb/note package documentation.
    const skey = 'PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz';
    const vkey = 'PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW';
    const text = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
    const seed = Buffer.from(skey.slice('PRIVATE+KEY+PeterNeumann+c74f20a3+'.length), 'base64').subarray(1);
    const signer = noteSigner('PeterNeumann', SIG_ED25519, seed);
    expect(formatVerifierKey(signer)).toBe(vkey);
    const msg = signNote(text, signer);
    expect(msg).toBe(`${text}\n— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n`);
    expect(openNote(msg, [parseVerifierKey(vkey)]).text).toBe(text);
  });

  it('ignores unknown keys, refuses notes no known key signed, and rejects malformed vkeys', () => {
    const a = noteSigner('log.example/a', SIG_ED25519, generateKeyPairSync('ed25519').privateKey);
    const b = noteSigner('log.example/b', SIG_ED25519, generateKeyPairSync('ed25519').privateKey);
    const msg = signNote('hello\n', a);
    expect(() => openNote(msg, [b])).toThrow(/no signature by a known key/);
    const both = msg + signNote('hello\n', b).split('\n\n')[1];
    expect(openNote(both, [b]).verified.map((s) => s.name)).toEqual(['log.example/b']);
    const ka = formatVerifierKey(a);
    expect(() => parseVerifierKey(`${a.name}+00000000+${ka.slice(a.name.length + 10)}`)).toThrow(/does not match/);
    expect(() => parseVerifierKey('a b+00000000+AA==')).toThrow();
  });

  it('formats checkpoints and cosigns them as cosignature/v1 with a timestamp', () => {
    const log = noteSigner('cordon.localhost/KZ-KG-01/e1', SIG_ED25519, generateKeyPairSync('ed25519').privateKey);
    const witness = noteSigner('witness.kz.example/w1', SIG_COSIGNATURE_V1, generateKeyPairSync('ed25519').privateKey);
    const root = leafHash('r');
    const text = formatCheckpoint({ origin: log.name, size: 20852163, root });
    expect(text).toBe(`cordon.localhost/KZ-KG-01/e1\n20852163\n${root.toString('base64')}\n`);
    expect(parseCheckpoint(text)).toEqual({ origin: log.name, size: 20852163, root, extensions: [] });
    for (const bad of ['o\n01\nAA==\n', 'o\n1\n', '\n1\n' + root.toString('base64') + '\n', 'o\n1\nAAAA\n']) {
      expect(() => parseCheckpoint(bad)).toThrow();
    }
    const line = cosign(text, witness, 1679315147);
    const note = signNote(text, log) + line + '\n';
    const v = openNote(note, [log, witness]);
    expect(v.verified.map((s) => s.name)).toEqual([log.name, witness.name]);
    expect(v.verified[1].sig.readBigUInt64BE(0)).toBe(1679315147n);
    // A cosignature over a different timestamp than it carries does not verify.
    const forged = Buffer.from(line.split(' ')[2], 'base64');
    forged.writeBigUInt64BE(1679315148n, 4);
    expect(() => openNote(`${signNote(text, log)}— ${witness.name} ${forged.toString('base64')}\n`, [log, witness])).toThrow(/invalid signature/);
  });
});
