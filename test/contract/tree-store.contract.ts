import { generateKeyPairSync } from 'node:crypto';
import { checkRecord, checkTree, leafHash, proveRecord, proveTree, treeHash, type Hash } from '../../src/domain/tlog/merkle';
import { tileHashReader, type Tile } from '../../src/domain/tlog/tile';
import { SIG_ED25519, formatVerifierKey, noteSigner, openNote, parseCheckpoint, parseVerifierKey } from '../../src/domain/tlog/note';
import { integrate, type FrontierMemo, type LeafSource } from '../../src/tlog/integrator';
import type { TreeId, TreeStore } from '../../src/ports/tree-store';
import { ReferenceTree } from '../helpers/merkle-reference';

export interface TreeStoreFixture {
  store: TreeStore;
  /** a second store over the same backend (another node); the same instance for memory. */
  peer: TreeStore;
  cleanup(): Promise<void>;
  /** prove every index of every size (the Redis suite); other backends check a sample of sizes. */
  exhaustive?: boolean;
}

/** A leaf source over an array that a test grows. */
export function arraySource(tree: TreeId, origin: string, leaves: Buffer[], limit = () => leaves.length): LeafSource {
  return {
    async head() {
      return limit() === 0 ? null : { tree, origin, size: limit() };
    },
    async leafHashes(_t, from, to) {
      return leaves.slice(from, Math.min(to, limit())).map((l) => leafHash(l));
    },
  };
}

/** The shared behaviour of every TreeStore backend (memory, Redis, SQLite). */
export function describeTreeStoreContract(name: string, make: () => Promise<TreeStoreFixture>): void {
  describe(`TreeStore contract: ${name}`, () => {
    jest.setTimeout(60_000);
    let fx: TreeStoreFixture;
    const tree = { tag: 'KG-CN-01', name: 'e1' };
    const signer = noteSigner('cordon.test', SIG_ED25519, generateKeyPairSync('ed25519').privateKey);

    beforeEach(async () => {
      fx = await make();
    });
    afterEach(async () => {
      await fx.cleanup();
    }, 60_000);

    it('reads null for a tile never written and keeps only the longest version of a tile', async () => {
      const t: Tile = { level: 0, n: 3, width: 256 };
      expect(await fx.store.readTiles(tree, [t])).toEqual([null]);
      await fx.store.writeTiles(tree, [{ tile: { ...t, width: 2 }, data: Buffer.alloc(64, 1) }]);
      await fx.peer.writeTiles(tree, [{ tile: { ...t, width: 3 }, data: Buffer.alloc(96, 1) }]);
      await fx.store.writeTiles(tree, [{ tile: { ...t, width: 1 }, data: Buffer.alloc(32, 1) }]);
      expect((await fx.store.readTiles(tree, [t]))[0]?.length).toBe(96);
      // Trees are separate.
      expect(await fx.store.readTiles({ tag: 'KG-CN-01', name: 'e2' }, [t])).toEqual([null]);
    });

    it('stores a checkpoint only over the size it expects (compare-and-set)', async () => {
      expect(await fx.store.checkpoint(tree)).toBeNull();
      const a = { size: 3, note: 'a\n', cosignatures: [] };
      expect(await fx.store.setCheckpoint(tree, 1, a)).toBe(false);
      expect(await fx.store.setCheckpoint(tree, 0, a)).toBe(true);
      expect(await fx.peer.setCheckpoint(tree, 0, { size: 4, note: 'b\n', cosignatures: [] })).toBe(false);
      expect(await fx.peer.setCheckpoint(tree, 3, { ...a, cosignatures: ['— w1 AAAA', '— w2 BBBB'] })).toBe(true);
      expect(await fx.store.checkpoint(tree)).toEqual({ ...a, cosignatures: ['— w1 AAAA', '— w2 BBBB'] });
    });

    it('integrates 1,100 leaves in uneven steps: every index of every size 1..1,100 proves against the reference', async () => {
      // About 605,000 proofs when exhaustive: 20-30 s on an idle 2-core machine.
      const leaves = Array.from({ length: 1100 }, (_, i) => Buffer.from(`leaf-${i}`));
      let limit = 0;
      const source = arraySource(tree, 'cordon.test/KG-CN-01/e1', leaves, () => limit);
      const ref = new ReferenceTree(leaves);
      const key = parseVerifierKey(formatVerifierKey(signer));
      // Most steps extend the right-edge tiles this "node" left in memory (the memo); the third and the
      // eighth have none, and the step after each finds the memo stale: those read the tiles back.
      const memo: { last: FrontierMemo | null } = { last: null };
      for (const [i, step] of [1, 1, 2, 5, 60, 187, 1, 256, 255, 300, 32].entries()) {
        limit += step;
        const r = (await integrate(step % 2 ? fx.store : fx.peer, source, signer, i === 2 || i === 7 ? undefined : memo))!;
        expect(r.to).toBe(limit);
        const cp = parseCheckpoint(openNote(r.checkpoint!.note, [key]).text);
        expect(cp).toEqual({ origin: 'cordon.test/KG-CN-01/e1', size: limit, root: ref.mth(0, limit), extensions: [] });
      }
      expect(limit).toBe(1100);
      // Every tile comes from the backend once; proofs are then computed from its bytes.
      const fetched = new Map<string, Buffer | null>();
      const source2 = {
        async readTiles(ts: readonly Tile[]) {
          const missing = ts.filter((t) => !fetched.has(`${t.level}/${t.n}`));
          const data = await fx.peer.readTiles(tree, missing);
          missing.forEach((t, i) => fetched.set(`${t.level}/${t.n}`, data[i]));
          return ts.map((t) => fetched.get(`${t.level}/${t.n}`) ?? null);
        },
      };
      const leafHashes = leaves.map((l) => leafHash(l));
      const sizes = fx.exhaustive
        ? Array.from({ length: 1100 }, (_, i) => i + 1)
        : [1, 2, 3, 4, 5, 7, 8, 9, 255, 256, 257, 511, 512, 513, 767, 768, 1023, 1024, 1025, 1099, 1100];
      for (const t of sizes) {
        const r = tileHashReader(t, source2);
        const root = ref.mth(0, t);
        expect((await treeHash(t, r)).equals(root)).toBe(true);
        for (let n = 0; n < t; n++) {
          const p = await proveRecord(t, n, r);
          if (!checkRecord(p, t, root, n, leafHashes[n])) throw new Error(`inclusion proof of ${n} in ${t} fails`);
        }
        // Exact equality with RFC 6962's PATH on a sample of indexes.
        for (const n of [0, t >> 1, t - 1]) expect((await proveRecord(t, n, r)).map(hex)).toEqual(ref.path(n, 0, t).map(hex));
      }
      // Consistency for many size pairs.
      for (let t = 1; t <= 1100; t += 7) {
        const r = tileHashReader(t, source2);
        for (const n of [1, 2, 3, t >> 2, t >> 1, t - 1, t].filter((m) => m >= 1 && m <= t)) {
          const p = await proveTree(t, n, r);
          expect(p.map(hex)).toEqual(ref.consistency(n, t).map(hex));
          expect(checkTree(p, t, ref.mth(0, t), n, ref.mth(0, n))).toBe(true);
        }
      }
    }, 600_000);

    it('two integrators racing over one tree sign one checkpoint per size, each extending the last', async () => {
      const leaves = Array.from({ length: 700 }, (_, i) => Buffer.from(`race-${i}`));
      let limit = 0;
      const source = arraySource(tree, 'o', leaves, () => limit);
      const signed: number[] = [];
      while (limit < 700) {
        limit = Math.min(700, limit + 1 + Math.floor(Math.random() * 40));
        const rs = await Promise.all([integrate(fx.store, source, signer), integrate(fx.peer, source, signer)]);
        for (const r of rs) if (r?.checkpoint) signed.push(r.checkpoint.size);
      }
      for (let i = 0; i < 3 && ((await fx.store.checkpoint(tree))?.size ?? 0) < 700; i++) await integrate(fx.store, source, signer);
      // No size was signed twice with different content, and the stored checkpoint is the full tree's.
      expect(new Set(signed).size).toBe(signed.length);
      const cp = (await fx.store.checkpoint(tree))!;
      expect(cp.size).toBe(700);
      expect(parseCheckpoint(openNote(cp.note, [signer]).text).root.equals(new ReferenceTree(leaves).mth(0, 700))).toBe(true);
    });
  });
}

const hex = (h: Hash): string => h.toString('hex');
