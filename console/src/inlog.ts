import { canonicalize } from '../../src/domain/jcs';
import type { DeliveredAlert } from '../../src/domain/types';
import { getJson, request } from './api';

/**
 * "In log" in the browser: each alert's inclusion in its region's transparency log (RFC 6962
 * Merkle tree, C2SP signed checkpoints), checked with WebCrypto like the signature. The checkpoint
 * is verified with the log key of GET /v1/trust (`log.vkey`, Ed25519), cached per region and
 * fetched again at most once a second while alerts wait beyond it; the alert's inclusion proof is
 * checked against it with the leaf recomputed from the alert as received (RFC 8785 of
 * `{ region, seq, epoch, received_at, content, sig }`). The algorithms are those of
 * src/domain/tlog (merkle.ts checkRecord, note.ts openNote), over WebCrypto instead of node:crypto;
 * test/unit/console-inlog.test.ts checks them against it.
 */

export type InLogState = 'included' | 'pending' | 'not-included';

export interface InLogResult {
  state: InLogState;
  /** the signed tree size the proof was checked against */
  size?: number;
}

const enc = new TextEncoder();

function b64Bytes(s: string): Uint8Array | null {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(s) || s.length % 4 !== 0) return null;
  try {
    return Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
  } catch {
    return null;
  }
}

async function sha256(...parts: Uint8Array[]): Promise<Uint8Array> {
  const len = parts.reduce((n, p) => n + p.length, 0);
  const buf = new Uint8Array(len);
  let off = 0;
  for (const p of parts) {
    buf.set(p, off);
    off += p.length;
  }
  return new Uint8Array(await crypto.subtle.digest('SHA-256', buf as BufferSource));
}

const LEAF = Uint8Array.of(0x00);
const NODE = Uint8Array.of(0x01);

/** RFC 6962 leaf hash: SHA-256(0x00 || data). */
export function leafHash(data: string): Promise<Uint8Array> {
  return sha256(LEAF, enc.encode(data));
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/**
 * True when `proof` proves leaf `index` with hash `leaf` in the tree of `size` leaves with root
 * `root` (RFC 9162 §2.1.3.2, the same answers as checkRecord of src/domain/tlog/merkle.ts).
 */
export async function checkInclusion(proof: Uint8Array[], size: number, root: Uint8Array, index: number, leaf: Uint8Array): Promise<boolean> {
  if (!(Number.isSafeInteger(size) && Number.isSafeInteger(index) && index >= 0 && index < size)) return false;
  if (proof.some((p) => p.length !== 32) || leaf.length !== 32 || root.length !== 32) return false;
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = await sha256(NODE, p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      r = await sha256(NODE, r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && equal(r, root);
}

interface LogKey {
  name: string;
  id: number;
  key: Promise<CryptoKey>;
}

/** A C2SP note verifier key `<name>+<hex key ID>+<base64(0x01 || Ed25519 public key)>`, checked. */
export async function parseVkey(vkey: string): Promise<LogKey | null> {
  const m = /^([^+\s]+)\+([0-9a-f]{8})\+(.*)$/s.exec(vkey);
  const raw = m && b64Bytes(m[3]);
  if (!m || !raw || raw.length !== 33 || raw[0] !== 0x01) return null;
  const name = m[1];
  const id = new DataView((await sha256(enc.encode(name), Uint8Array.of(0x0a), raw)).buffer).getUint32(0);
  if (id !== parseInt(m[2], 16)) return null;
  const key = crypto.subtle.importKey('raw', raw.slice(1) as BufferSource, { name: 'Ed25519' }, false, ['verify']);
  return { name, id, key };
}

/** The checkpoint of a signed note that the log key signed: origin, size, root; null otherwise. */
export async function openCheckpoint(note: string, key: LogKey): Promise<{ origin: string; size: number; root: Uint8Array } | null> {
  if (!note.endsWith('\n')) return null;
  const split = note.lastIndexOf('\n\n');
  if (split < 0) return null;
  const text = note.slice(0, split + 1);
  let signed = false;
  for (const line of note.slice(split + 2, -1).split('\n')) {
    const m = /^\u2014 ([^\s+]+) ([A-Za-z0-9+/=]+)$/u.exec(line);
    const raw = m && b64Bytes(m[2]);
    if (!m || !raw || raw.length < 5) return null;
    if (m[1] !== key.name || new DataView(raw.buffer).getUint32(0) !== key.id) continue;
    const sig = raw.slice(4);
    if (sig.length !== 64) return null;
    let ok = false;
    try {
      ok = await crypto.subtle.verify({ name: 'Ed25519' }, await key.key, sig as BufferSource, enc.encode(text) as BufferSource);
    } catch {
      ok = false;
    }
    if (!ok) return null; // a bad signature by the log key rejects the note
    signed = true;
  }
  if (!signed) return null;
  const lines = text.split('\n');
  if (lines.length < 4) return null;
  const [origin, sizeLine, rootLine] = lines;
  const root = b64Bytes(rootLine);
  if (!origin || !/^(0|[1-9][0-9]*)$/.test(sizeLine) || !root || root.length !== 32) return null;
  return { origin, size: Number(sizeLine), root };
}

interface Held {
  epoch: string;
  size: number;
  root: Uint8Array;
}

type Waiter = { alert: DeliveredAlert; done: (r: InLogResult) => void };

/**
 * Checks alerts as they arrive; those beyond the latest checkpoint wait and are checked again in
 * one batch about once a second (one checkpoint per region and round, one proof per alert).
 */
export class LogChecker {
  private readonly key: Promise<LogKey | null>;
  private readonly checkpoints = new Map<string, Held | 'bad'>();
  private readonly fetchedAt = new Map<string, number>();
  private readonly waiting = new Map<string, Waiter>();
  private timer: ReturnType<typeof setInterval> | undefined;
  private running = false;

  constructor(
    private readonly token: string,
    vkey: string,
    private readonly intervalMs = 1000,
  ) {
    this.key = parseVkey(vkey).catch(() => null);
  }

  /** Reports the alert's state now, and again once when a pending one is settled. */
  watch(alert: DeliveredAlert, report: (r: InLogResult) => void): void {
    void this.check(alert, false).then((r) => {
      report(r);
      if (r.state === 'pending') {
        this.waiting.set(`${alert.region}:${alert.epoch}:${alert.seq}`, { alert, done: report });
        this.timer ??= setInterval(() => void this.round(), this.intervalMs);
      }
    });
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    this.waiting.clear();
  }

  private async round(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      const list = [...this.waiting.entries()].sort((a, b) => a[1].alert.seq - b[1].alert.seq);
      const refreshed = new Set<string>();
      for (const [k, w] of list) {
        const fresh = !refreshed.has(w.alert.region);
        refreshed.add(w.alert.region);
        const r = await this.check(w.alert, fresh);
        if (r.state === 'pending') continue;
        this.waiting.delete(k);
        w.done(r);
      }
    } finally {
      this.running = false;
      if (this.waiting.size === 0 && this.timer !== undefined) {
        clearInterval(this.timer);
        this.timer = undefined;
      }
    }
  }

  private async checkpoint(region: string, refresh: boolean): Promise<Held | 'bad' | undefined> {
    const held = this.checkpoints.get(region);
    const age = Date.now() - (this.fetchedAt.get(region) ?? 0);
    if (held && (!refresh || age < this.intervalMs)) return held;
    if (!held && age < this.intervalMs) return undefined;
    this.fetchedAt.set(region, Date.now());
    const key = await this.key;
    if (!key) return 'bad';
    let note: string;
    try {
      note = await (await request(`/v1/regions/${encodeURIComponent(region)}/log/checkpoint`, { token: this.token, accept: 'text/plain' })).text();
    } catch {
      return held; // no checkpoint yet, or the log is out of reach: stay pending
    }
    const cp = await openCheckpoint(note, key);
    if (!cp) {
      this.checkpoints.set(region, 'bad');
      return 'bad';
    }
    const next = { epoch: cp.origin.split('/').pop() ?? '', size: cp.size, root: cp.root };
    // Never back to a smaller tree of the same epoch (a lagging node).
    if (held && held !== 'bad' && held.epoch === next.epoch && held.size > next.size) return held;
    this.checkpoints.set(region, next);
    return next;
  }

  private async check(a: DeliveredAlert, refresh: boolean): Promise<InLogResult> {
    const held = this.checkpoints.get(a.region);
    const beyond = !held || held === 'bad' || held.epoch !== a.epoch || a.seq > held.size;
    const cp = await this.checkpoint(a.region, refresh || beyond);
    if (cp === 'bad') return { state: 'not-included' }; // a checkpoint the log key did not sign
    if (!cp || cp.epoch !== a.epoch || a.seq > cp.size) return { state: 'pending' };
    let proof: Uint8Array[];
    try {
      const p = await getJson<{ proof: string[] }>(`/v1/regions/${encodeURIComponent(a.region)}/log/proof?seq=${a.seq}&size=${cp.size}`, { token: this.token });
      const decoded = p.proof.map(b64Bytes);
      if (decoded.some((x) => x === null)) return { state: 'not-included', size: cp.size };
      proof = decoded as Uint8Array[];
    } catch {
      return { state: 'pending' };
    }
    const leaf = await leafHash(canonicalize({ region: a.region, seq: a.seq, epoch: a.epoch, received_at: a.received_at, content: a.content, sig: a.sig }));
    const ok = await checkInclusion(proof, cp.size, cp.root, a.seq - 1, leaf);
    return { state: ok ? 'included' : 'not-included', size: cp.size };
  }
}
