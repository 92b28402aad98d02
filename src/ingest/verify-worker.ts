import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { createHash } from 'node:crypto';
import { canonicalBytes } from '../domain/jcs';
import { b64uDecode } from '../domain/base64url';

/**
 * The signature check of a submission as a worker thread runs it (src/ingest/verify-pool.ts): from
 * the submission's bytes as received, the RFC 8785 form of `content`, its SHA-256 (the content
 * hash) and the Ed25519 check over `protected || "." || base64url(JCS)` with libsodium. The event
 * loop has already parsed, validated and screened the same bytes; it keeps only that, and this
 * thread does the rest.
 *
 * A batch is one buffer: u32 job count, then per job u32 length, the 32-byte public key and the
 * submission's bytes. The answer: per job one status byte, the 32-byte content hash and the u32
 * length of the RFC 8785 form of content (0 unless valid); after all jobs, those forms one after
 * the other. The event loop builds the transparency log's leaf from that form without parsing or
 * canonicalising the alert again (src/tlog/leaves.ts alertLeafHash).
 */

export const JOB_HEADER = 4 + 32;
/** workerData of a verification thread: this module listens only in such a thread. */
export const WORKER_ROLE = 'cordon-verify';
export const ANSWER_BYTES = 37;

export const STATUS = {
  /** the signature does not verify (or the bytes are not a submission) */
  INVALID: 0,
  VALID: 1,
  /** content has no RFC 8785 form (cannot happen after the event loop's screening) */
  UNCANONICAL: 2,
} as const;

interface Sodium {
  crypto_sign_verify_detached(signature: Buffer, message: Buffer, publicKey: Buffer): boolean;
}

/**
 * Checks one submission; writes its status and content hash at out[at..at+33). Returns the RFC 8785
 * form of content when the signature is valid, else null.
 */
export function verifyJob(raw: Buffer, publicKey: Buffer, sodium: Sodium, out: Uint8Array, at: number): Buffer | null {
  out[at] = STATUS.INVALID;
  let sub: { content?: unknown; sig?: { protected?: unknown; signature?: unknown } };
  try {
    sub = JSON.parse(raw.toString('utf8')) as typeof sub;
  } catch {
    return null;
  }
  const prot = sub?.sig?.protected;
  const signature = sub?.sig?.signature;
  if (typeof prot !== 'string' || typeof signature !== 'string') return null;
  let payload: Buffer;
  try {
    payload = canonicalBytes(sub.content);
  } catch {
    out[at] = STATUS.UNCANONICAL;
    return null;
  }
  let sig: Buffer;
  try {
    sig = b64uDecode(signature);
  } catch {
    return null;
  }
  if (sig.length !== 64) return null;
  const input = Buffer.from(prot + '.' + payload.toString('base64url'), 'ascii');
  if (!sodium.crypto_sign_verify_detached(sig, input, publicKey)) return null;
  out[at] = STATUS.VALID;
  createHash('sha256')
    .update(payload)
    .digest()
    .copy(out, at + 1);
  return payload;
}

if (!isMainThread && parentPort && (workerData as { role?: string } | null)?.role === WORKER_ROLE) {
  const port = parentPort;
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded in the worker thread only, which is started only when it exists
  const sodium = require('sodium-native') as Sodium;
  port.on('message', (ab: ArrayBuffer) => {
    const b = Buffer.from(ab);
    const n = b.readUInt32LE(0);
    const head = Buffer.alloc(n * ANSWER_BYTES);
    const forms: Buffer[] = [head];
    let o = 4;
    for (let i = 0; i < n; i++) {
      const len = b.readUInt32LE(o);
      const form = verifyJob(b.subarray(o + JOB_HEADER, o + JOB_HEADER + len), b.subarray(o + 4, o + JOB_HEADER), sodium, head, i * ANSWER_BYTES);
      if (form) {
        head.writeUInt32LE(form.length, i * ANSWER_BYTES + 33);
        forms.push(form);
      }
      o += JOB_HEADER + len;
    }
    // One fresh buffer of its own (never the shared pool), so its memory is transferred, not copied.
    const out = new Uint8Array(forms.reduce((sum, f) => sum + f.length, 0));
    let w = 0;
    for (const f of forms) {
      out.set(f, w);
      w += f.length;
    }
    port.postMessage(out, [out.buffer]);
  });
}
