import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Worker } from 'node:worker_threads';
import { ED25519_BACKEND, loadSodium, type Ed25519PublicKey } from '../domain/ed25519';
import type { SubmissionCheck, SubmissionCheckResult } from '../domain/signature';
import { ANSWER_BYTES, JOB_HEADER, STATUS, verifyJob, WORKER_ROLE } from './verify-worker';

/**
 * Signature checks off the event loop: worker threads (src/ingest/verify-worker.ts) that take a
 * submission's bytes as received and do its RFC 8785 form, content hash and Ed25519 check
 * (libsodium). Together those are about 90 µs per alert here, most of ingest's CPU; on a worker
 * the event loop keeps parsing, validation and I/O, and another core checks signatures meanwhile.
 *
 * Submissions arriving in one turn of the event loop go to a thread as ONE message: every job
 * (public key and bytes) packed into one buffer whose memory is transferred, not copied; a status
 * byte and the content hash per job come back. A thread that fails or exits has its jobs checked
 * on the event loop instead: no submission is refused because a thread died.
 */
export interface VerifyPool {
  /** the check on the worker threads; undefined when there are none (verify on the event loop) */
  check: SubmissionCheck | undefined;
  /** worker threads in use */
  readonly threads: number;
  close(): Promise<void>;
}

interface Job {
  raw: Buffer;
  key: Ed25519PublicKey;
  resolve(r: SubmissionCheckResult): void;
}

interface Thread {
  worker: Worker;
  /** batches sent and not answered, oldest first */
  inflight: Job[][];
  jobs: number;
}

/** No threads: verifySubmission checks signatures on the event loop. */
export const NO_POOL: VerifyPool = { check: undefined, threads: 0, close: async () => undefined };

/** The compiled worker beside this file, or (running from the TypeScript sources, as tests do) its build. */
function workerFile(): string | undefined {
  const here = join(__dirname, 'verify-worker.js');
  if (existsSync(here)) return here;
  const built = resolve(__dirname, '..', '..', 'dist', 'src', 'ingest', 'verify-worker.js');
  return existsSync(built) ? built : undefined;
}

function answer(out: Uint8Array, at: number, canonical: Buffer | null): SubmissionCheckResult {
  const status = out[at];
  if (status === STATUS.VALID && canonical) {
    return { outcome: 'valid', contentHash: Buffer.from(out.subarray(at + 1, at + 33)).toString('base64url'), canonical };
  }
  return { outcome: status === STATUS.UNCANONICAL ? 'uncanonical' : 'invalid' };
}

export function createVerifyPool(
  threads: number,
  log?: { warn(obj: object, msg: string): void },
  /** the worker's script (tests give one that fails) */
  file: string | undefined = workerFile(),
): VerifyPool {
  const sodium = loadSodium();
  if (threads <= 0 || ED25519_BACKEND !== 'libsodium' || !sodium) return NO_POOL;
  if (!file) {
    log?.warn({}, 'verification thread script not found (build missing?); signatures are checked on the event loop');
    return NO_POOL;
  }
  const script = file;

  const pool: Thread[] = [];
  let pending: Job[] = [];
  let scheduled = false;
  let closed = false;

  /** On the event loop, exactly as a thread would. */
  const inline = (jobs: Job[]) => {
    const out = new Uint8Array(ANSWER_BYTES);
    for (const j of jobs) {
      const canonical = verifyJob(j.raw, j.key.raw, sodium, out, 0);
      j.resolve(answer(out, 0, canonical));
    }
  };

  const spawn = (): Thread => {
    const t: Thread = { worker: new Worker(script, { workerData: { role: WORKER_ROLE } }), inflight: [], jobs: 0 };
    t.worker.unref();
    t.worker.on('message', (out: Uint8Array) => {
      const jobs = t.inflight.shift();
      if (!jobs) return;
      t.jobs -= jobs.length;
      if (t.jobs === 0) t.worker.unref();
      // Per job status, hash and the length of its RFC 8785 form; the forms follow, in job order.
      const b = Buffer.from(out.buffer, out.byteOffset, out.byteLength);
      let at = jobs.length * ANSWER_BYTES;
      for (let i = 0; i < jobs.length; i++) {
        const len = b.readUInt32LE(i * ANSWER_BYTES + 33);
        jobs[i].resolve(answer(out, i * ANSWER_BYTES, b.subarray(at, at + len)));
        at += len;
      }
    });
    const lost = (why: string, err?: unknown) => {
      const i = pool.indexOf(t);
      if (i === -1) return;
      pool.splice(i, 1);
      const jobs = t.inflight.flat();
      t.inflight = [];
      inline(jobs);
      if (!closed) {
        log?.warn({ err, jobs: jobs.length }, `verification thread ${why}; its jobs checked on the event loop, thread replaced`);
        pool.push(spawn());
      }
    };
    t.worker.on('error', (err) => lost('failed', err));
    t.worker.on('exit', () => lost('exited'));
    return t;
  };
  for (let i = 0; i < threads; i++) pool.push(spawn());

  const flush = () => {
    scheduled = false;
    const jobs = pending;
    pending = [];
    if (jobs.length === 0) return;
    if (pool.length === 0) return inline(jobs);
    let size = 4;
    for (const j of jobs) size += JOB_HEADER + j.raw.length;
    const b = Buffer.allocUnsafeSlow(size);
    b.writeUInt32LE(jobs.length, 0);
    let o = 4;
    for (const j of jobs) {
      b.writeUInt32LE(j.raw.length, o);
      j.key.raw.copy(b, o + 4);
      j.raw.copy(b, o + JOB_HEADER);
      o += JOB_HEADER + j.raw.length;
    }
    let t = pool[0];
    for (const c of pool) if (c.jobs < t.jobs) t = c;
    t.inflight.push(jobs);
    if (t.jobs === 0) t.worker.ref();
    t.jobs += jobs.length;
    t.worker.postMessage(b.buffer, [b.buffer]);
  };

  return {
    threads,
    check(raw, key) {
      return new Promise<SubmissionCheckResult>((resolve) => {
        const job = { raw, key, resolve };
        // After close() (a shutdown still finishing requests), on the event loop.
        if (closed) return inline([job]);
        pending.push(job);
        if (!scheduled) {
          scheduled = true;
          setImmediate(flush);
        }
      });
    },
    async close() {
      closed = true;
      flush();
      // Answers still due arrive before the threads stop.
      await Promise.all(
        pool.map(
          (t) =>
            new Promise<void>((resolve) => {
              const done = () =>
                void t.worker.terminate().then(
                  () => resolve(),
                  () => resolve(),
                );
              // A thread that dies meanwhile had its jobs checked on the event loop.
              t.worker.once('exit', () => resolve());
              if (t.jobs === 0) return done();
              t.worker.on('message', () => t.jobs === 0 && done());
            }),
        ),
      );
    },
  };
}
