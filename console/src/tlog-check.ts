/**
 * The transparency log's checks for the console, over WebCrypto: RFC 6962 leaf hashes and
 * inclusion proofs (the answers of checkRecord in src/domain/tlog/merkle.ts) and C2SP signed
 * checkpoints (openNote and parseCheckpoint in src/domain/tlog/note.ts).
 * test/unit/console-inlog.test.ts checks them against src/domain/tlog. No DOM here.
 */

const enc = new TextEncoder();

/** The bytes as an ArrayBuffer of exactly their length (what WebCrypto takes). */
function own(b: Uint8Array): ArrayBuffer {
  return (b.byteOffset === 0 && b.byteLength === b.buffer.byteLength ? b.buffer : b.slice().buffer) as ArrayBuffer;
}

export function b64Bytes(s: string): Uint8Array | null {
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
  return new Uint8Array(await crypto.subtle.digest('SHA-256', own(buf)));
}

const LEAF = Uint8Array.of(0x00);
const NODE = Uint8Array.of(0x01);

/** RFC 6962 leaf hash: SHA-256(0x00 || data). */
export function leafHash(data: string): Promise<Uint8Array> {
  return sha256(LEAF, enc.encode(data));
}

export function equal(a: Uint8Array, b: Uint8Array): boolean {
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

export interface LogKey {
  name: string;
  id: number;
  key: ReturnType<typeof crypto.subtle.importKey>;
}

/** A C2SP note verifier key `<name>+<hex key ID>+<base64(0x01 || Ed25519 public key)>`, checked. */
export async function parseVkey(vkey: string): Promise<LogKey | null> {
  const m = /^([^+\s]+)\+([0-9a-f]{8})\+(.*)$/s.exec(vkey);
  const raw = m && b64Bytes(m[3]);
  if (!m || !raw || raw.length !== 33 || raw[0] !== 0x01) return null;
  const name = m[1];
  const id = new DataView((await sha256(enc.encode(name), Uint8Array.of(0x0a), raw)).buffer).getUint32(0);
  if (id !== parseInt(m[2], 16)) return null;
  const key = crypto.subtle.importKey('raw', own(raw.slice(1)), { name: 'Ed25519' }, false, ['verify']);
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
    if (m[1] !== key.name || new DataView(raw.buffer, raw.byteOffset).getUint32(0) !== key.id) continue;
    const sig = raw.slice(4);
    if (sig.length !== 64) return null;
    let ok = false;
    try {
      ok = await crypto.subtle.verify({ name: 'Ed25519' }, await key.key, own(sig), own(enc.encode(text)));
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
