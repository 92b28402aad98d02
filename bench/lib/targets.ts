import { fork, type ChildProcess } from 'node:child_process';
import { createWriteStream, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import Redis from 'ioredis';
import type { BenchFixture } from './fixture';
import { startScript, type RunningProcess } from './node';
import { HttpPublisher } from './publisher';
import type { ConnectCommand } from './ws-client-worker';
import { deleteKeysWithPrefix } from '../../src/adapters/redis/client';

export const REDIS_URL = process.env.CORDON_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
export const NATS_URL = process.env.CORDON_TEST_NATS_URL ?? 'nats://127.0.0.1:4222';

/** A server under test: where desks connect, how to publish up to a seq, how to stop it. */
export interface BroadcastTarget {
  label: string;
  pid: number;
  proc?: ChildProcess;
  /** a full garbage collection in the server, then a moment to settle; resolves with the V8 heap used after it (bytes) */
  gc(): Promise<number>;
  /** what the workers need to open a desk (everything but count) */
  connect: Omit<ConnectCommand, 'cmd' | 'count'>;
  /** extra per-worker connect fields (e.g. a token per worker) */
  perWorker?: (i: number) => Partial<ConnectCommand>;
  /** seqs handed to the server so far */
  published(): number;
  publishUpTo(seq: number): void;
  /** publishing failures (HTTP errors); any is fatal for the measurement */
  failures(): { count: number; last: string };
  stop(): Promise<void>;
}

/** Whole-machine CPU jiffies so far (busy, total), to show how loaded the machine was in a phase. */
export async function machineCpu(): Promise<{ busy: number; total: number }> {
  const line = (await readFile('/proc/stat', 'utf8')).split('\n')[0];
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const total = v.reduce((a, b) => a + b, 0);
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  return { busy: total - idle, total };
}

/** The environment of a production-mode node (local Redis + NATS) on a benchmark fixture, isolated by prefixes. */
export function productionEnv(fx: BenchFixture, keyPrefix: string, subjectPrefix: string): Record<string, string> {
  return {
    CORDON_REDIS_URL: REDIS_URL,
    CORDON_NATS_URL: NATS_URL,
    CORDON_TRUST_STORE: fx.trustPath,
    CORDON_REGIONS: fx.regionsPath,
    CORDON_REDIS_KEY_PREFIX: keyPrefix,
    CORDON_NATS_SUBJECT_PREFIX: subjectPrefix,
    CORDON_LOG_LEVEL: 'warn',
    CORDON_RATE_LIMIT_MAX: '0',
    // The fan-out bench opens hundreds of desks per token (one token per client worker), and the
    // replay bench measures throughput: the per-token bounds would only get in the way.
    CORDON_WS_MAX_SESSIONS_PER_TOKEN: '0',
    CORDON_READ_RATE_LIMIT_MAX: '0',
  };
}

export interface CordonNode {
  node: RunningProcess;
  prefix: string;
  /** where the node writes process.memoryUsage() after each SIGURG collection */
  memoryOut: string;
  /** Deletes this run's Redis keys. */
  cleanup(): Promise<void>;
}

export interface CordonNodeOptions {
  env?: Record<string, string>;
  /** SIGWINCH to the node starts / stops a CPU profile written here (bench/lib/instrumented-server.ts) */
  profileOut?: string;
  /** append the node's log lines (level CORDON_LOG_LEVEL, default warn) to this file */
  logFile?: string;
}

/**
 * One Cordon node in production mode (Redis log, NATS bus) with a fresh key and subject prefix,
 * so its region log starts empty at seq 1.
 */
export async function startCordonNode(fx: BenchFixture, opts: CordonNodeOptions = {}): Promise<CordonNode> {
  const stamp = `${Date.now()}${Math.floor(Math.random() * 1000)}`;
  const prefix = `cordon-bench-${stamp}:`;
  const memoryOut = join(tmpdir(), `cordon-bench-memory-${stamp}.json`);
  // dist/src/server.js as is, under a launcher that can profile and collect garbage on a signal.
  const node = await startScript('dist/bench/lib/instrumented-server.js', {
    NODE_OPTIONS: '--expose-gc',
    BENCH_MEMORY_OUT: memoryOut,
    ...productionEnv(fx, prefix, `bench${stamp}`),
    ...(opts.profileOut ? { BENCH_PROFILE_OUT: opts.profileOut } : {}),
    ...opts.env,
  });
  if (opts.logFile) {
    // startScript keeps only a tail for its own errors: keep every line for the reader too.
    const file = createWriteStream(opts.logFile, { flags: 'a' });
    node.proc.stdout?.pipe(file);
    node.proc.stderr?.pipe(file);
  }
  return {
    node,
    prefix,
    memoryOut,
    async cleanup() {
      rmSync(memoryOut, { force: true });
      const redis = new Redis(REDIS_URL);
      try {
        await deleteKeysWithPrefix(redis, prefix);
      } finally {
        await redis.quit();
      }
    },
  };
}

/** Cordon as a broadcast target: alerts go through the real ingest (HTTP POST), desks subscribe live. */
export async function cordonTarget(fx: BenchFixture, nextBody: () => string, opts: CordonNodeOptions = {}): Promise<BroadcastTarget> {
  const cn = await startCordonNode(fx, opts);
  const publisher = new HttpPublisher(cn.node.url, nextBody);
  return {
    label: 'cordon (Redis + NATS)',
    pid: cn.node.proc.pid ?? 0,
    proc: cn.node.proc,
    async gc() {
      cn.node.proc.kill('SIGURG');
      await new Promise((r) => setTimeout(r, 500));
      return (JSON.parse(await readFile(cn.memoryOut, 'utf8')) as { heapUsed: number }).heapUsed;
    },
    connect: {
      kind: 'cordon',
      url: `ws://127.0.0.1:${cn.node.port}/v1/stream`,
      subscribe: JSON.stringify({ type: 'subscribe', regions: [fx.region] }),
    },
    perWorker: (i) => ({ token: fx.token({ sub: `bench-desk-${i}` }) }),
    published: () => publisher.issued,
    publishUpTo: (seq) => publisher.publishUpTo(seq),
    failures: () => ({ count: publisher.failures, last: publisher.lastFailure }),
    async stop() {
      await publisher.settled();
      publisher.close();
      await cn.node.stop();
      await cn.cleanup();
    },
  };
}

/** A reference broadcaster (bench/lib/ceiling-server.js) in its own process. */
export async function ceilingTarget(kind: 'ws' | 'socketio', region: string, body: string): Promise<BroadcastTarget> {
  const child = fork(resolve(__dirname, 'ceiling-server.js'), [kind], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: ['--expose-gc'] });
  const port = await new Promise<number>((res, rej) => {
    child.once('message', (m: { type: string; port: number }) => res(m.port));
    child.once('exit', (code) => rej(new Error(`ceiling server ${kind} exited ${code}`)));
  });
  child.send({ cmd: 'template', region, epoch: 'bench-epoch', body });
  let asked = 0;
  return {
    label: kind === 'ws' ? 'bare ws (ceiling)' : 'Socket.IO 4',
    pid: child.pid ?? 0,
    proc: child,
    async gc() {
      const heap = new Promise<number>((res) => {
        const on = (m: { type: string; heapUsed: number }) => {
          if (m.type !== 'memory') return;
          child.off('message', on);
          res(m.heapUsed);
        };
        child.on('message', on);
      });
      child.send({ cmd: 'gc' });
      await new Promise((r) => setTimeout(r, 500));
      return heap;
    },
    connect:
      kind === 'ws' ? { kind: 'ws', url: `ws://127.0.0.1:${port}/` } : { kind: 'socketio', url: `ws://127.0.0.1:${port}/socket.io/?EIO=4&transport=websocket` },
    published: () => asked,
    publishUpTo(seq) {
      if (seq <= asked) return;
      asked = seq;
      child.send({ cmd: 'publish', upTo: seq });
    },
    failures: () => ({ count: 0, last: '' }),
    stop: () =>
      new Promise<void>((res) => {
        if (child.exitCode !== null) return res();
        child.once('exit', () => res());
        child.kill('SIGTERM');
      }),
  };
}
