import * as nodeCrypto from 'node:crypto';
import { createHash } from 'node:crypto';

/**
 * RFC 6962 / RFC 9162 §2.1 Merkle trees as a few pure functions over hashes, a port of Go's
 * golang.org/x/mod/sumdb/tlog (tlog.go). Hashes are stored in Go's dense "stored hash index"
 * order; a HashReader supplies stored hashes (from tiles, memory, ...) in one batched call.
 * Sizes and indexes are JS numbers: exact up to 2^53, far beyond any region log.
 */

export const HASH_SIZE = 32;
export type Hash = Buffer;

/** SHA-256 of the empty string: the root of the empty tree. */
export const EMPTY_HASH: Hash = createHash('sha256').update(Buffer.alloc(0)).digest();

const ZERO = Buffer.from([0x00]);

/**
 * One scratch buffer for the bytes hashed in one synchronous call (a node's 65 bytes, a leaf's
 * 0x00 || data): hashing a leaf or a node allocates only its result.
 */
let scratch = Buffer.allocUnsafeSlow(4096);

/** Leaf hash: SHA-256(0x00 || data), data given in parts (bytes, or strings as UTF-8). */
export function leafHash(...parts: (Uint8Array | string)[]): Hash {
  if (!oneShot) {
    const h = createHash('sha256').update(ZERO);
    for (const p of parts) h.update(p);
    return h.digest();
  }
  return oneShot('sha256', leafInput(parts), 'buffer');
}

/**
 * A hash's 32 bytes as a 32-character latin1 string. The hot paths (an append's leaves, an
 * integration step's node hashes) take hashes in this form and write them where they are kept:
 * a digest as a Buffer costs an ArrayBuffer each, which the garbage collector then sweeps.
 */
export type BinaryHash = string;

/**
 * The leaf hash of a leaf input already framed by the caller (0x00 || data, as a CanonicalBuffer
 * writes it in place), as a binary string.
 */
export function leafHashOfInput(input: Uint8Array): BinaryHash {
  if (input[0] !== 0x00) throw new TlogError('a leaf input starts with 0x00');
  if (!oneShot) return createHash('sha256').update(input).digest().toString('latin1');
  return oneShot('sha256', input, 'binary');
}

/**
 * Copies one hash (32 bytes) from src at so to dst at at. A loop the JIT compiles beats
 * Buffer#copy's checks and native call for 32 bytes: the integration step copies a few per leaf.
 */
export function copyHash(src: Uint8Array, so: number, dst: Uint8Array, at: number): void {
  for (let i = 0; i < HASH_SIZE; i++) dst[at + i] = src[so + i];
}

/** Writes nodeHash(a[ao..ao+32), b[bo..bo+32)) into out at `at` (out may be a or b). */
export function nodeHashInto(a: Buffer, ao: number, b: Buffer, bo: number, out: Buffer, at: number): void {
  nodeScratch[0] = 0x01;
  copyHash(a, ao, nodeScratch, 1);
  copyHash(b, bo, nodeScratch, 1 + HASH_SIZE);
  if (oneShot) {
    const h = oneShot('sha256', nodeScratch, 'binary');
    for (let i = 0; i < HASH_SIZE; i++) out[at + i] = h.charCodeAt(i);
  } else createHash('sha256').update(nodeScratch).digest().copy(out, at);
}

const nodeScratch = Buffer.allocUnsafeSlow(1 + 2 * HASH_SIZE);

/** 0x00 || parts in the scratch buffer (valid until the next hash). */
function leafInput(parts: readonly (Uint8Array | string)[]): Buffer {
  let need = 1;
  for (const p of parts) need += typeof p === 'string' ? Buffer.byteLength(p, 'utf8') : p.length;
  if (need > scratch.length) scratch = Buffer.allocUnsafeSlow(Math.max(need, scratch.length * 2));
  scratch[0] = 0x00;
  let at = 1;
  for (const p of parts) {
    if (typeof p === 'string') at += scratch.write(p, at, 'utf8');
    else {
      scratch.set(p, at);
      at += p.length;
    }
  }
  return scratch.subarray(0, at);
}

/** Interior node hash: SHA-256(0x01 || left || right). */
export function nodeHash(left: Hash, right: Hash): Hash {
  if (!oneShot)
    return createHash('sha256')
      .update(Buffer.from([0x01]))
      .update(left)
      .update(right)
      .digest();
  scratch[0] = 0x01;
  left.copy(scratch, 1);
  right.copy(scratch, 1 + HASH_SIZE);
  return oneShot('sha256', scratch.subarray(0, 1 + 2 * HASH_SIZE), 'buffer');
}

/** crypto.hash (Node 20.12+), a one-shot digest several times cheaper than createHash for 65 bytes. */
const oneShot = (nodeCrypto as { hash?: OneShot }).hash;

interface OneShot {
  (alg: string, data: Uint8Array, enc: 'buffer'): Buffer;
  (alg: string, data: Uint8Array, enc: 'binary'): string;
}

/** Reads stored hashes by stored hash index; must return exactly one hash per index. */
export interface HashReader {
  readHashes(indexes: readonly number[]): Promise<Hash[]>;
}

export class TlogError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TlogError';
  }
}

/** k, the largest power of 2 smaller than n, and l = log2 k. */
function maxpow2(n: number): [number, number] {
  if (n <= 0x1_0000_0000) {
    const l = 31 - Math.clz32(n - 1);
    return [2 ** l, l];
  }
  let l = 0;
  while (2 ** (l + 1) < n) l++;
  return [2 ** l, l];
}

function trailingOnes(n: number): number {
  let m = 0;
  while (n % 2 === 1) {
    m++;
    n = Math.floor(n / 2);
  }
  return m;
}

/** Maps tree coordinates (level, n) to the dense linear order of stored hashes. */
export function storedHashIndex(level: number, n: number): number {
  for (let l = level; l > 0; l--) n = 2 * n + 1;
  let i = 0;
  for (; n > 0; n = Math.floor(n / 2)) i += n;
  return i + level;
}

/** The inverse of storedHashIndex. */
export function splitStoredHashIndex(index: number): [level: number, n: number] {
  let n = Math.floor(index / 2);
  let indexN = storedHashIndex(0, n);
  if (indexN > index) throw new TlogError('bad math in splitStoredHashIndex');
  for (;;) {
    const x = indexN + 1 + trailingOnes(n); // record n+1 adds 1 + trailingZeros(n+1) hashes
    if (x > index) break;
    n++;
    indexN = x;
  }
  const level = index - indexN;
  return [level, Math.floor(n / 2 ** level)];
}

/** How many stored hashes a tree of n records has. */
export function storedHashCount(n: number): number {
  if (n === 0) return 0;
  return storedHashIndex(0, n - 1) + 1 + trailingOnes(n - 1);
}

/**
 * The hashes to store when record n (0-based) with leaf hash h is appended, starting at
 * storedHashIndex(0, n): the leaf hash, then one hash per subtree that record completes.
 */
export async function storedHashesForRecordHash(n: number, h: Hash, r: HashReader): Promise<Hash[]> {
  const m = trailingOnes(n);
  const indexes: number[] = new Array<number>(m);
  for (let i = 0; i < m; i++) indexes[m - 1 - i] = storedHashIndex(i, Math.floor(n / 2 ** i) - 1);
  const old = m === 0 ? [] : await r.readHashes(indexes);
  if (old.length !== m) throw new TlogError(`readHashes(${m} indexes) returned ${old.length} hashes`);
  const hashes = [h];
  for (let i = 0; i < m; i++) {
    h = nodeHash(old[m - 1 - i], h);
    hashes.push(h);
  }
  return hashes;
}

/**
 * The stored hash indexes of the complete subtrees a tree of size m is made of (its right
 * frontier). Appending records n >= m reads only these stored hashes of the old tree; every other
 * hash it reads it produced itself (src/tlog/integrator.ts hashes in memory from them).
 */
export function frontierIndexes(m: number): number[] {
  const out: number[] = [];
  for (let i = 0; 2 ** i <= m; i++) {
    const k = Math.floor(m / 2 ** i);
    if (k % 2 === 1) out.push(storedHashIndex(i, k - 1));
  }
  return out;
}

function subTreeIndex(lo: number, hi: number, need: number[]): number[] {
  while (lo < hi) {
    const [k, level] = maxpow2(hi - lo + 1);
    if (lo % k !== 0) throw new TlogError('bad math in subTreeIndex');
    need.push(storedHashIndex(level, lo / k));
    lo += k;
  }
  return need;
}

/** Consumes the hashes subTreeIndex(lo, hi) asked for from `hashes` at `pos`; returns [hash, newPos]. */
function subTreeHash(lo: number, hi: number, hashes: Hash[], pos: number): [Hash, number] {
  let numTree = 0;
  while (lo < hi) {
    const [k] = maxpow2(hi - lo + 1);
    if (lo % k !== 0) throw new TlogError('bad math in subTreeHash');
    numTree++;
    lo += k;
  }
  if (hashes.length - pos < numTree) throw new TlogError('bad index math in subTreeHash');
  let h = hashes[pos + numTree - 1];
  for (let i = numTree - 2; i >= 0; i--) h = nodeHash(hashes[pos + i], h);
  return [h, pos + numTree];
}

async function read(r: HashReader, indexes: number[]): Promise<Hash[]> {
  const hashes = await r.readHashes(indexes);
  if (hashes.length !== indexes.length) {
    throw new TlogError(`readHashes(${indexes.length} indexes) returned ${hashes.length} hashes`);
  }
  return hashes;
}

/** The root hash of the tree of n records. */
export async function treeHash(n: number, r: HashReader): Promise<Hash> {
  if (n === 0) return EMPTY_HASH;
  const indexes = subTreeIndex(0, n, []);
  const [h, pos] = subTreeHash(0, n, await read(r, indexes), 0);
  if (pos !== indexes.length) throw new TlogError('bad index math in treeHash');
  return h;
}

function leafProofIndex(lo: number, hi: number, n: number, need: number[]): number[] {
  if (!(lo <= n && n < hi)) throw new TlogError('bad math in leafProofIndex');
  if (lo + 1 === hi) return need;
  const [k] = maxpow2(hi - lo);
  if (n < lo + k) {
    leafProofIndex(lo, lo + k, n, need);
    subTreeIndex(lo + k, hi, need);
  } else {
    subTreeIndex(lo, lo + k, need);
    leafProofIndex(lo + k, hi, n, need);
  }
  return need;
}

function leafProof(lo: number, hi: number, n: number, hashes: Hash[], pos: number): [Hash[], number] {
  if (lo + 1 === hi) return [[], pos];
  const [k] = maxpow2(hi - lo);
  let p: Hash[];
  let th: Hash;
  if (n < lo + k) {
    [p, pos] = leafProof(lo, lo + k, n, hashes, pos);
    [th, pos] = subTreeHash(lo + k, hi, hashes, pos);
  } else {
    [th, pos] = subTreeHash(lo, lo + k, hashes, pos);
    [p, pos] = leafProof(lo + k, hi, n, hashes, pos);
  }
  p.push(th);
  return [p, pos];
}

/** The inclusion proof ("audit path") of record n in the tree of size t. */
export async function proveRecord(t: number, n: number, r: HashReader): Promise<Hash[]> {
  if (!(Number.isSafeInteger(t) && Number.isSafeInteger(n) && n >= 0 && n < t)) {
    throw new TlogError('invalid inputs in proveRecord');
  }
  const indexes = leafProofIndex(0, t, n, []);
  if (indexes.length === 0) return [];
  const [p, pos] = leafProof(0, t, n, await read(r, indexes), 0);
  if (pos !== indexes.length) throw new TlogError('bad index math in proveRecord');
  return p;
}

/** The root a record proof implies, or null when its length does not fit. */
function runRecordProof(p: readonly Hash[], end: number, lo: number, hi: number, n: number, leaf: Hash): Hash | null {
  if (lo + 1 === hi) return end === 0 ? leaf : null;
  if (end === 0) return null;
  const [k] = maxpow2(hi - lo);
  if (n < lo + k) {
    const th = runRecordProof(p, end - 1, lo, lo + k, n, leaf);
    return th && nodeHash(th, p[end - 1]);
  }
  const th = runRecordProof(p, end - 1, lo + k, hi, n, leaf);
  return th && nodeHash(p[end - 1], th);
}

/** True when p proves that the tree of size t with root th has record n with leaf hash h. */
export function checkRecord(p: readonly Hash[], t: number, th: Hash, n: number, h: Hash): boolean {
  if (!(Number.isSafeInteger(t) && Number.isSafeInteger(n) && n >= 0 && n < t)) return false;
  if (p.some((x) => x.length !== HASH_SIZE)) return false;
  const root = runRecordProof(p, p.length, 0, t, n, h);
  return root !== null && root.equals(th);
}

function treeProofIndex(lo: number, hi: number, n: number, need: number[]): number[] {
  if (!(lo < n && n <= hi)) throw new TlogError('bad math in treeProofIndex');
  if (n === hi) return lo === 0 ? need : subTreeIndex(lo, hi, need);
  const [k] = maxpow2(hi - lo);
  if (n <= lo + k) {
    treeProofIndex(lo, lo + k, n, need);
    subTreeIndex(lo + k, hi, need);
  } else {
    subTreeIndex(lo, lo + k, need);
    treeProofIndex(lo + k, hi, n, need);
  }
  return need;
}

function treeProof(lo: number, hi: number, n: number, hashes: Hash[], pos: number): [Hash[], number] {
  if (n === hi) {
    if (lo === 0) return [[], pos];
    const [th, next] = subTreeHash(lo, hi, hashes, pos);
    return [[th], next];
  }
  const [k] = maxpow2(hi - lo);
  let p: Hash[];
  let th: Hash;
  if (n <= lo + k) {
    [p, pos] = treeProof(lo, lo + k, n, hashes, pos);
    [th, pos] = subTreeHash(lo + k, hi, hashes, pos);
  } else {
    [th, pos] = subTreeHash(lo, lo + k, hashes, pos);
    [p, pos] = treeProof(lo + k, hi, n, hashes, pos);
  }
  p.push(th);
  return [p, pos];
}

/** The consistency proof that the tree of size t contains the tree of size n (1 <= n <= t) as a prefix. */
export async function proveTree(t: number, n: number, r: HashReader): Promise<Hash[]> {
  if (!(Number.isSafeInteger(t) && Number.isSafeInteger(n) && n >= 1 && n <= t)) {
    throw new TlogError('invalid inputs in proveTree');
  }
  const indexes = treeProofIndex(0, t, n, []);
  if (indexes.length === 0) return [];
  const [p, pos] = treeProof(0, t, n, await read(r, indexes), 0);
  if (pos !== indexes.length) throw new TlogError('bad index math in proveTree');
  return p;
}

function runTreeProof(p: readonly Hash[], end: number, lo: number, hi: number, n: number, old: Hash): [Hash, Hash] | null {
  if (n === hi) {
    if (lo === 0) return end === 0 ? [old, old] : null;
    return end === 1 ? [p[0], p[0]] : null;
  }
  if (end === 0) return null;
  const [k] = maxpow2(hi - lo);
  if (n <= lo + k) {
    const r = runTreeProof(p, end - 1, lo, lo + k, n, old);
    return r && [r[0], nodeHash(r[1], p[end - 1])];
  }
  const r = runTreeProof(p, end - 1, lo + k, hi, n, old);
  return r && [nodeHash(p[end - 1], r[0]), nodeHash(p[end - 1], r[1])];
}

/** True when p proves that the tree of size t with root th contains the tree of size n with root h. */
export function checkTree(p: readonly Hash[], t: number, th: Hash, n: number, h: Hash): boolean {
  if (!(Number.isSafeInteger(t) && Number.isSafeInteger(n) && n >= 1 && n <= t)) return false;
  if (p.some((x) => x.length !== HASH_SIZE)) return false;
  const r = runTreeProof(p, p.length, 0, t, n, h);
  return r !== null && r[0].equals(h) && r[1].equals(th);
}

/** A HashReader over an array of stored hashes (tests, and the integrator's batch). */
export function arrayHashReader(stored: readonly Hash[]): HashReader {
  return {
    async readHashes(indexes) {
      return indexes.map((i) => {
        const h = stored[i];
        if (h === undefined) throw new TlogError(`stored hash ${i} not available`);
        return h;
      });
    },
  };
}
