import { createHash } from 'node:crypto';

/**
 * RFC 6962 §2.1 written straight from its recursive definitions (MTH, PATH, PROOF/SUBPROOF), with
 * none of the stored-hash machinery of src/domain/tlog: the reference the port is checked against.
 */
export class ReferenceTree {
  private readonly memo = new Map<string, Buffer>();
  constructor(readonly leaves: readonly Buffer[]) {}

  /** MTH(D[lo:hi]) */
  mth(lo: number, hi: number): Buffer {
    const key = `${lo}:${hi}`;
    const hit = this.memo.get(key);
    if (hit) return hit;
    let h: Buffer;
    if (hi - lo === 0) h = sha256(Buffer.alloc(0));
    else if (hi - lo === 1) h = sha256(Buffer.concat([Buffer.from([0]), this.leaves[lo]]));
    else {
      const k = split(hi - lo);
      h = sha256(Buffer.concat([Buffer.from([1]), this.mth(lo, lo + k), this.mth(lo + k, hi)]));
    }
    this.memo.set(key, h);
    return h;
  }

  /** PATH(m, D[lo:hi]) */
  path(m: number, lo: number, hi: number): Buffer[] {
    if (hi - lo <= 1) return [];
    const k = split(hi - lo);
    if (m < k) return [...this.path(m, lo, lo + k), this.mth(lo + k, hi)];
    return [...this.path(m - k, lo + k, hi), this.mth(lo, lo + k)];
  }

  /** PROOF(m, D[0:n]) */
  consistency(m: number, n: number): Buffer[] {
    return this.subproof(m, 0, n, true);
  }

  private subproof(m: number, lo: number, hi: number, b: boolean): Buffer[] {
    const n = hi - lo;
    if (m === n) return b ? [] : [this.mth(lo, hi)];
    const k = split(n);
    if (m <= k) return [...this.subproof(m, lo, lo + k, b), this.mth(lo + k, hi)];
    return [...this.subproof(m - k, lo + k, hi, false), this.mth(lo, lo + k)];
  }
}

/** the largest power of two smaller than n */
function split(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

function sha256(b: Buffer): Buffer {
  return createHash('sha256').update(b).digest();
}
