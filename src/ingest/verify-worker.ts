import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { createHash } from 'node:crypto';
import { canonicalize } from '../domain/jcs';
import { b64uDecode } from '../domain/base64url';

/**
 * The signature check of a submission as a worker thread runs it (src/ingest/verify-pool.ts): from
 * the submission's bytes as received, the RFC 8785 form of `content`, its SHA-256 (the content
 * hash) and the Ed25519 check over `protected || "." || base64url(JCS)` with libsodium. The event
 * loop has already parsed, validated and screened the same bytes; it keeps only that, and this
 * thread does the rest.
 *
 * A batch is one buffer: u32 job count, then per job u32 length, the 32-byte public key and the
 * submission's bytes. The answer: per job one status byte and the 32-byte content hash.
 */

export const JOB_HEADER = 4 + 32;
/** workerData of a verification thread: this module listens only in such a thread. */
export const WORKER_ROLE = 'cordon-verify';
export const ANSWER_BYTES = 33;

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

/** Checks one submission; writes its status and content hash at out[at..at+33). */
export function verifyJob(raw: Buffer, publicKey: Buffer, sodium: Sodium, out: Uint8Array, at: number): void {
  out[at] = STATUS.INVALID;
  let sub: { content?: unknown; sig?: { protected?: unknown; signature?: unknown } };
  try {
    sub = JSON.parse(raw.toString('utf8')) as typeof sub;
  } catch {
    return;
  }
  const prot = sub?.sig?.protected;
  const signature = sub?.sig?.signature;
  if (typeof prot !== 'string' || typeof signature !== 'string') return;
  let payload: Buffer;
  try {
    payload = Buffer.from(canonicalize(sub.content), 'utf8');
  } catch {
    out[at] = STATUS.UNCANONICAL;
    return;
  }
  let sig: Buffer;
  try {
    sig = b64uDecode(signature);
  } catch {
    return;
  }
  if (sig.length !== 64) return;
  const input = Buffer.from(prot + '.' + payload.toString('base64url'), 'ascii');
  if (!sodium.crypto_sign_verify_detached(sig, input, publicKey)) return;
  out[at] = STATUS.VALID;
  createHash('sha256').update(payload).digest().copy(out, at + 1);
}

if (!isMainThread && parentPort && (workerData as { role?: string } | null)?.role === WORKER_ROLE) {
  const port = parentPort;
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded in the worker thread only, which is started only when it exists
  const sodium = require('sodium-native') as Sodium;
  port.on('message', (ab: ArrayBuffer) => {
    const b = Buffer.from(ab);
    const n = b.readUInt32LE(0);
    const out = new Uint8Array(n * ANSWER_BYTES);
    let o = 4;
    for (let i = 0; i < n; i++) {
      const len = b.readUInt32LE(o);
      verifyJob(b.subarray(o + JOB_HEADER, o + JOB_HEADER + len), b.subarray(o + 4, o + JOB_HEADER), sodium, out, i * ANSWER_BYTES);
      o += JOB_HEADER + len;
    }
    port.postMessage(out, [out.buffer]);
  });
}
