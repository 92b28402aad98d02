import { CanonicalBuffer, canonicalize } from '../domain/jcs';
import { HASH_SIZE, copyHash, leafHash, leafHashOfInput, type BinaryHash, type Hash } from '../domain/tlog/merkle';
import type { LogEntry, RegionLog } from '../ports/region-log';
import type { AuditLog, AuditRecord } from '../ports/audit-log';
import type { LeafSource } from './integrator';

/**
 * A region tree's leaf data (contract §12): the RFC 8785 form of the delivered alert
 * `{ region, seq, epoch, received_at, content, sig }`, so a desk recomputes it from the frame it got.
 */
export function alertLeafData(e: LogEntry): string {
  const { content, sig } = JSON.parse(e.body) as { content: unknown; sig: unknown };
  return canonicalize({ region: e.region, seq: e.seq, epoch: e.epoch, received_at: e.receivedAt, content, sig });
}

/**
 * Where an append's leaf inputs (0x00 || data) are written: no string is built for them, and the
 * bytes go to the digest from here. Synchronous use only (each hash is taken before returning).
 */
const leafInput = new CanonicalBuffer();

/**
 * The leaf hash of an alert just appended, from the RFC 8785 form of its content that the signature
 * check produced: equal to `leafHash(alertLeafData(e))` without parsing or canonicalising the alert
 * again. RFC 8785 orders the members content, epoch, received_at, region, seq, sig (UTF-16 code
 * units).
 */
export function alertLeafHash(e: { region: string; seq: number; epoch: string; receivedAt: string }, canonicalContent: Uint8Array, sig: unknown): BinaryHash {
  leafInput.reset().byte(0x00).ascii('{"content":').bytes(canonicalContent);
  leafInput.ascii(',"epoch":').value(e.epoch).ascii(',"received_at":').value(e.receivedAt).ascii(',"region":').value(e.region);
  leafInput.ascii(',"seq":').value(e.seq).ascii(',"sig":').value(sig).byte(0x7d);
  return hashLeafInput();
}

/** The leaf hash of an audit record (leaf n - 1): its RFC 8785 form, written in place. */
export function auditLeafHash(r: AuditRecord): BinaryHash {
  leafInput.reset().byte(0x00).value(r);
  return hashLeafInput();
}

/** Hashes what leafInput holds, and lets its buffer go if one large alert grew it. */
function hashLeafInput(): BinaryHash {
  try {
    return leafHashOfInput(leafInput.view());
  } finally {
    leafInput.shrink();
  }
}

/** The same from a delivered alert as a client holds it (any extra frame fields such as `type` dropped). */
export function deliveredLeafData(d: { region: string; seq: number; epoch: string; received_at: string; content: unknown; sig: unknown }): string {
  return canonicalize({ region: d.region, seq: d.seq, epoch: d.epoch, received_at: d.received_at, content: d.content, sig: d.sig });
}

/** Audit record n is leaf n - 1; its data is the RFC 8785 form of the record. */
export function auditLeafData(r: AuditRecord): string {
  return canonicalize(r);
}

const READ_BATCH = 1000;

/**
 * Leaf hashes by leaf index, kept until integrated: the hashes side by side in one buffer and a
 * map of smi offsets, so the quarter second a hash waits for its integration step leaves nothing
 * per hash for the garbage collector to copy or sweep.
 */
export class PendingHashes {
  private buf = Buffer.allocUnsafeSlow(1024 * HASH_SIZE);
  private readonly at = new Map<number, number>();
  private end = 0;

  get size(): number {
    return this.at.size;
  }

  set(index: number, h: Hash | BinaryHash): void {
    const known = this.at.get(index);
    if (known !== undefined) {
      this.put(h, known);
      return;
    }
    if (this.end + HASH_SIZE > this.buf.length) this.compact();
    this.put(h, this.end);
    this.at.set(index, this.end);
    this.end += HASH_SIZE;
  }

  private put(h: Hash | BinaryHash, at: number): void {
    const buf = this.buf;
    if (typeof h === 'string') for (let i = 0; i < HASH_SIZE; i++) buf[at + i] = h.charCodeAt(i);
    else copyHash(h, 0, buf, at);
  }

  /** A view of the stored hash (valid until the next set or deleteBelow: callers use it at once or copy it). */
  get(index: number): Hash | undefined {
    const o = this.at.get(index);
    return o === undefined ? undefined : this.buf.subarray(o, o + HASH_SIZE);
  }

  deleteBelow(size: number): void {
    for (const k of this.at.keys()) if (k < size) this.at.delete(k);
    if (this.at.size === 0) this.end = 0;
  }

  /** Moves the live hashes to the front of a buffer with room for as many again. */
  private compact(): void {
    const next = Buffer.allocUnsafeSlow(Math.max(1024, this.at.size * 2) * HASH_SIZE);
    let end = 0;
    for (const [k, o] of this.at) {
      this.buf.copy(next, end, o, o + HASH_SIZE);
      this.at.set(k, end);
      end += HASH_SIZE;
    }
    this.buf = next;
    this.end = end;
  }
}
/** Leaf hashes kept per tree while integration cannot keep up (the log stays the truth beyond). */
const MAX_REMEMBERED = 1_000_000;

/**
 * The leaves of one region's tree for its current epoch. Leaf hashes the ingest hook handed over
 * (`remember`) are used first, so entries trimmed by retention right after their append still
 * reach the tree.
 */
export class RegionLeafSource implements LeafSource {
  private readonly pending = new Map<string, PendingHashes>();

  constructor(
    private readonly regionLog: RegionLog,
    readonly region: string,
    private readonly originPrefix: string,
  ) {}

  /** Called right after an append: the entry's leaf hash (computed here unless given), kept until integrated. */
  remember(e: LogEntry, hash?: Hash | BinaryHash): void {
    let m = this.pending.get(e.epoch);
    if (!m) {
      this.pending.clear(); // a new epoch: the old tree is closed
      m = new PendingHashes();
      this.pending.set(e.epoch, m);
    }
    if (m.size < MAX_REMEMBERED) m.set(e.seq - 1, hash ?? leafHash(alertLeafData(e)));
  }

  /** Drops remembered hashes below `size` (integrated). */
  forget(epoch: string, size: number): void {
    const m = this.pending.get(epoch);
    m?.deleteBelow(size);
  }

  async head() {
    const s = await this.regionLog.state(this.region);
    if (s.epoch === null || s.latest === 0) return null;
    return {
      tree: { tag: this.region, name: s.epoch },
      origin: `${this.originPrefix}/${this.region}/${s.epoch}`,
      size: s.latest,
    };
  }

  async leafHashes(tree: { tag: string; name: string }, from: number, to: number): Promise<Hash[]> {
    const out: Hash[] = [];
    const pending = this.pending.get(tree.name);
    let i = from;
    while (i < to) {
      const known = pending?.get(i);
      if (known) {
        out.push(known);
        i++;
        continue;
      }
      const page = await this.regionLog.read(this.region, i, Math.min(READ_BATCH, to - i));
      if (page.epoch !== tree.name) break;
      let progressed = false;
      for (const e of page.entries) {
        if (e.seq !== i + 1) break; // a hole: trimmed before integration (see remember)
        out.push(pending?.get(i) ?? leafHash(alertLeafData(e)));
        i++;
        progressed = true;
        if (i >= to) break;
      }
      if (!progressed) break;
    }
    return out;
  }
}

/**
 * The audit trail's tree (one, origin `<prefix>/audit`). Records this node appended are handed over
 * with their leaf hash (`remember`), so only other nodes' records are read back from the trail.
 */
export class AuditLeafSource implements LeafSource {
  private readonly pending = new PendingHashes();

  constructor(
    private readonly audit: AuditLog,
    private readonly originPrefix: string,
  ) {}

  /** Called right after an append: record n is leaf n - 1. */
  remember(r: AuditRecord): void {
    if (this.pending.size < MAX_REMEMBERED) this.pending.set(r.n - 1, auditLeafHash(r));
  }

  /** Drops remembered hashes below `size` (integrated). */
  forget(size: number): void {
    this.pending.deleteBelow(size);
  }

  async head() {
    // The audit port has no "top": page from the end is not possible, so ask for one page past
    // what the tree holds (the integrator calls leafHashes right after).
    return { tree: AUDIT_TREE, origin: `${this.originPrefix}/audit`, size: Number.MAX_SAFE_INTEGER };
  }

  async leafHashes(_tree: unknown, from: number, to: number): Promise<Hash[]> {
    const out: Hash[] = [];
    let i = from;
    while (i < to) {
      const known = this.pending.get(i);
      if (known) {
        out.push(known);
        i++;
        continue;
      }
      const page = await this.audit.read(i, Math.min(READ_BATCH, to - i));
      let progressed = false;
      for (const r of page.items) {
        if (r.n !== i + 1) break;
        out.push(this.pending.get(i) ?? leafHash(auditLeafData(r)));
        i++;
        progressed = true;
        if (i >= to) break;
      }
      if (!progressed) break;
    }
    return out;
  }
}

export const AUDIT_TREE = { tag: 'audit', name: 'audit' } as const;
