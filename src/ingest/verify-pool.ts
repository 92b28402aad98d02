import { Worker } from 'node:worker_threads';
import { ED25519_BACKEND, verifyEd25519, type Ed25519PublicKey, type Ed25519Verifier } from '../domain/ed25519';

/**
 * Ed25519 verification off the event loop: worker threads running libsodium. Verification is the
 * largest single CPU cost of ingest (about 70 µs of the event loop's time per alert here); on a
 * worker the event loop keeps only parsing, validation and I/O, and verification runs on another
 * core while it does.
 *
 * Submissions arriving in one turn of the event loop go to a worker as ONE message: every job
 * (public key, signature, signed bytes) packed into one buffer whose memory is transferred, not
 * copied, and one result byte per job comes back. A worker that fails or exits has its jobs
 * verified on the event loop instead: no submission is refused because a thread died.
 */
export interface VerifyPool {
  verify: Ed25519Verifier;
  /** worker threads in use (0: verification runs on the event loop) */
  readonly threads: number;
  close(): Promise<void>;
}

/** The worker: unpacks a batch, verifies each job with libsodium, answers one byte per job. */
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const sodium = require('sodium-native');
parentPort.on('message', (ab) => {
  const b = Buffer.from(ab);
  const n = b.readUInt32LE(0);
  const out = new Uint8Array(n);
  let o = 4;
  for (let i = 0; i < n; i++) {
    const len = b.readUInt32LE(o);
    const pk = b.subarray(o + 4, o + 36);
    const sig = b.subarray(o + 36, o + 100);
    out[i] = sodium.crypto_sign_verify_detached(sig, b.subarray(o + 100, o + 100 + len), pk) ? 1 : 0;
    o += 100 + len;
  }
  parentPort.postMessage(out, [out.buffer]);
});
`;

interface Job {
  data: Buffer;
  key: Ed25519PublicKey;
  sig: Buffer;
  resolve(ok: boolean): void;
}

interface Thread {
  worker: Worker;
  /** batches sent and not answered, oldest first */
  inflight: Job[][];
  jobs: number;
}

/** Verification on the event loop, for `threads: 0` and where libsodium is missing. */
export const inlineVerifier: VerifyPool = { verify: verifyEd25519, threads: 0, close: async () => undefined };

export function createVerifyPool(
  threads: number,
  log?: { warn(obj: object, msg: string): void },
  /** the worker's code (tests give one that fails) */
  workerSource: string = WORKER_SOURCE,
): VerifyPool {
  if (threads <= 0 || ED25519_BACKEND !== 'libsodium') return inlineVerifier;

  const pool: Thread[] = [];
  let pending: Job[] = [];
  let scheduled = false;
  let closed = false;

  const fallback = (jobs: Job[]) => {
    for (const j of jobs) void verifyEd25519(j.data, j.key, j.sig).then(j.resolve);
  };

  const spawn = (): Thread => {
    const t: Thread = { worker: new Worker(workerSource, { eval: true }), inflight: [], jobs: 0 };
    t.worker.unref();
    t.worker.on('message', (out: Uint8Array) => {
      const jobs = t.inflight.shift();
      if (!jobs) return;
      t.jobs -= jobs.length;
      if (t.jobs === 0) t.worker.unref();
      for (let i = 0; i < jobs.length; i++) jobs[i].resolve(out[i] === 1);
    });
    const lost = (why: string, err?: unknown) => {
      const i = pool.indexOf(t);
      if (i === -1) return;
      pool.splice(i, 1);
      const jobs = t.inflight.flat();
      t.inflight = [];
      fallback(jobs);
      if (!closed) {
        log?.warn({ err, jobs: jobs.length }, `verification thread ${why}; its jobs verified on the event loop, thread replaced`);
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
    if (pool.length === 0) return fallback(jobs);
    let size = 4;
    for (const j of jobs) size += 100 + j.data.length;
    const b = Buffer.allocUnsafeSlow(size);
    b.writeUInt32LE(jobs.length, 0);
    let o = 4;
    for (const j of jobs) {
      b.writeUInt32LE(j.data.length, o);
      j.key.raw.copy(b, o + 4);
      j.sig.copy(b, o + 36);
      j.data.copy(b, o + 100);
      o += 100 + j.data.length;
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
    verify(data, key, sig) {
      if (sig.length !== 64 || key.raw.length !== 32) return Promise.resolve(false);
      // After close() (a shutdown still finishing requests), on the event loop.
      if (closed) return verifyEd25519(data, key, sig);
      return new Promise<boolean>((resolve) => {
        pending.push({ data, key, sig, resolve });
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
              const done = () => void t.worker.terminate().then(() => resolve(), () => resolve());
              // A thread that dies meanwhile had its jobs verified on the event loop.
              t.worker.once('exit', () => resolve());
              if (t.jobs === 0) return done();
              t.worker.on('message', () => t.jobs === 0 && done());
            }),
        ),
      );
    },
  };
}
