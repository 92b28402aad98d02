import { createHash, createPrivateKey, createPublicKey, sign as cryptoSign, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { HASH_SIZE, type Hash } from './merkle';

/**
 * C2SP signed-note (Ed25519, type 0x01), tlog-checkpoint bodies and tlog-cosignature
 * (cosignature/v1, Ed25519 with timestamp, type 0x04): Go's golang.org/x/mod/sumdb/note verifies
 * what this signs.
 */

export const SIG_ED25519 = 0x01;
export const SIG_COSIGNATURE_V1 = 0x04;
const EM_DASH = '\u2014';
const NAME = /^[^\s+]+$/u;
const MAX_SIGNATURES = 100;

export class NoteError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NoteError';
  }
}

export interface NoteKey {
  name: string;
  /** signature type: 0x01 (note signature) or 0x04 (cosignature/v1). */
  type: number;
  /** the 32 raw Ed25519 public key bytes. */
  publicKey: Buffer;
  keyId: number;
}

export interface NoteSigner extends NoteKey {
  privateKey: KeyObject;
}

export function isKeyName(name: string): boolean {
  return name.length > 0 && NAME.test(name);
}

/** key ID = SHA-256(name || 0x0A || type || public key)[:4], big-endian. */
export function keyId(name: string, type: number, publicKey: Buffer): number {
  return createHash('sha256')
    .update(name, 'utf8')
    .update(Buffer.from([0x0a, type]))
    .update(publicKey)
    .digest()
    .readUInt32BE(0);
}

const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

export function publicKeyObject(raw: Buffer): KeyObject {
  return createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
}

export function noteKey(name: string, type: number, publicKey: Buffer): NoteKey {
  if (!isKeyName(name)) throw new NoteError(`invalid key name ${JSON.stringify(name)}`);
  if (publicKey.length !== 32) throw new NoteError('an Ed25519 public key is 32 bytes');
  return { name, type, publicKey, keyId: keyId(name, type, publicKey) };
}

/** A signer from a 32-byte Ed25519 seed (the JWK `d`) or a KeyObject. */
export function noteSigner(name: string, type: number, key: Buffer | KeyObject): NoteSigner {
  const privateKey: KeyObject = Buffer.isBuffer(key)
    ? createPrivateKey({ key: Buffer.concat([ED25519_PKCS8_PREFIX, key]), format: 'der', type: 'pkcs8' })
    : key;
  const spki = createPublicKey(privateKey).export({ format: 'der', type: 'spki' });
  return { ...noteKey(name, type, spki.subarray(spki.length - 32)), privateKey };
}

/** The vkey: `<name>+<hex key ID>+<base64(type || public key)>`. */
export function formatVerifierKey(k: NoteKey): string {
  return `${k.name}+${k.keyId.toString(16).padStart(8, '0')}+${Buffer.concat([Buffer.from([k.type]), k.publicKey]).toString('base64')}`;
}

export function parseVerifierKey(vkey: string): NoteKey {
  // The base64 part may itself contain '+': split at the first two only.
  const m = /^([^+]*)\+([0-9a-f]{8})\+(.*)$/s.exec(vkey);
  if (!m) throw new NoteError('malformed verifier key');
  const parts = m.slice(1);
  const raw = strictBase64(parts[2]);
  if (!raw || raw.length !== 33 || (raw[0] !== SIG_ED25519 && raw[0] !== SIG_COSIGNATURE_V1)) {
    throw new NoteError('verifier key is not an Ed25519 key');
  }
  const k = noteKey(parts[0], raw[0], raw.subarray(1));
  if (k.keyId !== parseInt(parts[1], 16)) throw new NoteError('verifier key ID does not match its key');
  return k;
}

/** Standard base64 that must re-encode to itself (no junk, no stray bits); null otherwise. */
export function strictBase64(s: string): Buffer | null {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(s) || s.length % 4 !== 0) return null;
  const b = Buffer.from(s, 'base64');
  return b.toString('base64') === s ? b : null;
}

export interface NoteSignature {
  name: string;
  keyId: number;
  /** the bytes after the key ID. */
  sig: Buffer;
  /** the whole line, without its newline. */
  line: string;
}

export interface Note {
  /** the text, ending in a newline. */
  text: string;
  sigs: NoteSignature[];
}

function signatureLine(name: string, id: number, sig: Buffer): string {
  const b = Buffer.alloc(4 + sig.length);
  b.writeUInt32BE(id >>> 0, 0);
  sig.copy(b, 4);
  return `${EM_DASH} ${name} ${b.toString('base64')}`;
}

/** Signs `text` (ending in a newline) with an Ed25519 note key: the signed note. */
export function signNote(text: string, signer: NoteSigner): string {
  checkText(text);
  const sig = cryptoSign(null, Buffer.from(text, 'utf8'), signer.privateKey);
  return `${text}\n${signatureLine(signer.name, signer.keyId, sig)}\n`;
}

function checkText(text: string): void {
  if (!text.endsWith('\n')) throw new NoteError('note text must end in a newline');
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u0009\u000b-\u001f]/.test(text)) throw new NoteError('note text has control characters');
}

/** Splits a signed note into text and signature lines (no verification). */
export function parseNote(msg: string): Note {
  if (msg.length > 1_000_000) throw new NoteError('note too large');
  if (!msg.endsWith('\n')) throw new NoteError('note must end in a newline');
  const split = msg.lastIndexOf('\n\n');
  if (split < 0) throw new NoteError('note has no signatures');
  const text = msg.slice(0, split + 1);
  checkText(text);
  const lines = msg.slice(split + 2, -1).split('\n');
  if (lines.length > MAX_SIGNATURES) throw new NoteError('too many signatures');
  const sigs = lines.map(parseSignatureLine);
  return { text, sigs };
}

export function parseSignatureLine(line: string): NoteSignature {
  const m = /^\u2014 ([^\s+]+) ([A-Za-z0-9+/=]+)$/u.exec(line);
  const raw = m && strictBase64(m[2]);
  if (!m || !raw || raw.length < 5) throw new NoteError('malformed signature line');
  return { name: m[1], keyId: raw.readUInt32BE(0), sig: raw.subarray(4), line };
}

/**
 * Verifies a signed note against known keys: signatures of unknown keys are ignored, a known
 * key's bad signature rejects the whole note, and at least one known key must have signed.
 * Returns the text and the verified signatures.
 */
export function openNote(msg: string, keys: readonly NoteKey[]): { text: string; verified: NoteSignature[] } {
  const note = parseNote(msg);
  const verified: NoteSignature[] = [];
  for (const s of note.sigs) {
    const k = keys.find((x) => x.name === s.name && x.keyId === s.keyId);
    if (!k) continue;
    if (!verifySignature(note.text, k, s.sig)) throw new NoteError(`invalid signature by ${k.name}`);
    verified.push(s);
  }
  if (verified.length === 0) throw new NoteError('no signature by a known key');
  return { text: note.text, verified };
}

function verifySignature(text: string, k: NoteKey, sig: Buffer): boolean {
  const pub = publicKeyObject(k.publicKey);
  if (k.type === SIG_ED25519) {
    return sig.length === 64 && cryptoVerify(null, Buffer.from(text, 'utf8'), pub, sig);
  }
  if (k.type === SIG_COSIGNATURE_V1) {
    if (sig.length !== 72) return false;
    const ts = sig.readBigUInt64BE(0);
    if (ts >= 2n ** 63n) return false;
    return cryptoVerify(null, cosignedMessage(text, ts), pub, sig.subarray(8));
  }
  return false;
}

/** The message a cosignature/v1 signs: header, time line, then the checkpoint text. */
export function cosignedMessage(text: string, timestamp: bigint | number): Buffer {
  return Buffer.from(`cosignature/v1\ntime ${BigInt(timestamp).toString()}\n${text}`, 'utf8');
}

/** A cosignature/v1 signature line over a checkpoint text, made at `timestampS` (POSIX seconds, > 0). */
export function cosign(text: string, signer: NoteSigner, timestampS: number): string {
  if (signer.type !== SIG_COSIGNATURE_V1) throw new NoteError('not a cosignature key');
  if (!Number.isSafeInteger(timestampS) || timestampS <= 0) throw new NoteError('cosignature timestamp must be positive');
  checkText(text);
  const ts = Buffer.alloc(8);
  ts.writeBigUInt64BE(BigInt(timestampS));
  const sig = cryptoSign(null, cosignedMessage(text, timestampS), signer.privateKey);
  return signatureLine(signer.name, signer.keyId, Buffer.concat([ts, sig]));
}

/** The timestamp of a cosignature/v1 signature (seconds). */
export function cosignatureTime(s: NoteSignature): number {
  return Number(s.sig.readBigUInt64BE(0));
}

export interface Checkpoint {
  origin: string;
  size: number;
  root: Hash;
}

/** The tlog-checkpoint note text: origin, size, base64 root, each ending in a newline. */
export function formatCheckpoint(c: Checkpoint): string {
  return `${c.origin}\n${c.size}\n${c.root.toString('base64')}\n`;
}

export function parseCheckpoint(text: string): Checkpoint & { extensions: string[] } {
  const lines = text.split('\n');
  if (lines.length < 4 || lines[lines.length - 1] !== '') throw new NoteError('malformed checkpoint');
  const [origin, sizeLine, rootLine, ...rest] = lines.slice(0, -1);
  if (origin === '' || !/^(0|[1-9][0-9]*)$/.test(sizeLine) || rest.some((l) => l === '')) {
    throw new NoteError('malformed checkpoint');
  }
  const size = Number(sizeLine);
  const root = strictBase64(rootLine);
  if (!Number.isSafeInteger(size) || !root || root.length !== HASH_SIZE) throw new NoteError('malformed checkpoint');
  return { origin, size, root, extensions: rest };
}
