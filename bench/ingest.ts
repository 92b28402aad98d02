/*
 * bench/ingest: one production node (Redis + NATS) under signed alerts over HTTP, 50 concurrent
 * connections, against the ceiling measured in the same run: a bare Fastify route that only
 * parses the body and verifies the Ed25519 signature.
 *
 *   npm run bench:ingest            (BENCH_DURATION_S=20 BENCH_CONNECTIONS=50 by default)
 *
 * Then the embedded mode (no Redis, no NATS): the in-memory store against the SQLite store
 * (WAL, synchronous=FULL, one transaction per event-loop turn) in a temporary data directory,
 * with the SQLite run's fsyncs per second read from /metrics. BENCH_RUNS=production,embedded
 * (the default) picks the parts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import Redis from 'ioredis';
import { deleteKeysWithPrefix } from '../src/adapters/redis/client';
import { makeFixture, benchContent } from './lib/fixture';
import { cpuMsOf, freePort, startScript, type RunningProcess } from './lib/node';
import { REDIS_URL, productionEnv } from './lib/targets';
import { summariseProfile } from './lib/profile-summary';

const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 20);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);
/** Enough distinct signed alerts that none is resubmitted at up to this rate. */
const MAX_RATE = Number(process.env.BENCH_MAX_RATE ?? 9000);
const RUNS = new Set((process.env.BENCH_RUNS ?? 'production,embedded').split(','));
/** BENCH_CPU_PROF=1: CPU profiles of the node during the log-on and log-off runs, summarised after the figures. */
const PROFILE = process.env.BENCH_CPU_PROF === '1';

interface Figures {
  label: string;
  /** server CPU (all threads) per accepted request: robust to other load on the machine. */
  cpuUsPerReq?: number;
  rps: number;
  ok: number;
  non2xx: number;
  errors: number;
  p50: number;
  p99: number;
}

async function load(label: string, url: string, bodies: string[], pid?: number): Promise<Figures> {
  let i = 0;
  const cpuBefore = pid ? await cpuMsOf(pid) : 0;
  const result = await autocannon({
    url,
    connections: CONNECTIONS,
    duration: DURATION_S,
    requests: [
      {
        method: 'POST',
        path: '/v1/alerts',
        headers: { 'content-type': 'application/json' },
        setupRequest: (req) => ({ ...req, body: bodies[i++ % bodies.length] }),
      },
    ],
  });
  const cpuMs = pid ? (await cpuMsOf(pid)) - cpuBefore : 0;
  return {
    label,
    cpuUsPerReq: pid && result['2xx'] > 0 ? (cpuMs * 1000) / result['2xx'] : undefined,
    rps: result['2xx'] / DURATION_S,
    ok: result['2xx'],
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
    p50: result.latency.p50,
    p99: result.latency.p99,
  };
}

async function main(): Promise<void> {
  const fx = makeFixture();
  const prefix = `cordon-bench-${Date.now()}:`;
  const prefixOff = `cordon-bench-off-${Date.now()}:`;
  const count = MAX_RATE * (DURATION_S + 2);
  process.stdout.write(
    `machine: ${cpus().length} × ${cpus()[0]?.model ?? '?'}, Node ${process.version}, load average ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}; ` + `node with CORDON_VERIFY_THREADS=${process.env.CORDON_VERIFY_THREADS ?? '1 (default)'}\n`,
  );
  if (loadavg()[0] > 1) process.stdout.write('WARNING: the machine is busy before the run; figures will be noisy\n');
  process.stdout.write(`signing ${count} distinct alerts of ~1.5 KB...\n`);
  const bodies: string[] = new Array<string>(count);
  for (let n = 0; n < count; n++) bodies[n] = JSON.stringify(fx.sign(benchContent(fx.region)));
  process.stdout.write(`body size ${Buffer.byteLength(bodies[0])} bytes\n`);

  if (RUNS.has('production')) await productionRuns(fx, prefix, prefixOff, bodies);
  if (RUNS.has('embedded')) await embeddedRuns(fx, bodies);
}

const row = (f: Figures) =>
  `${f.label.padEnd(28)} ${f.rps.toFixed(0).padStart(7)} /s   p50 ${String(f.p50).padStart(4)} ms   p99 ${String(f.p99).padStart(
    4,
  )} ms   server CPU ${f.cpuUsPerReq?.toFixed(0) ?? '?'} µs/req   2xx ${f.ok}  non-2xx ${f.non2xx}  errors ${f.errors}`;

/** A counter's value from a node's /metrics (0 when absent). */
async function metric(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+]+)$`, 'm').exec(text);
  return m ? Number(m[1]) : 0;
}

/** Embedded mode, same alerts: CORDON_STORE=memory, then the SQLite store in a fresh data directory. */
async function embeddedRuns(fx: ReturnType<typeof makeFixture>, bodies: string[]): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'cordon-bench-embedded-'));
  // /metrics is on the operator listener only: give it a known port.
  const metricsPort = await freePort();
  const env = (store: string) => ({
    CORDON_STORE: store,
    CORDON_METRICS_PORT: String(metricsPort),
    CORDON_DATA_DIR: join(dir, store),
    CORDON_TRUST_STORE: fx.trustPath,
    CORDON_REGIONS: fx.regionsPath,
    CORDON_LOG_LEVEL: 'warn',
    CORDON_RATE_LIMIT_MAX: '0',
  });
  const results: Array<{ f: Figures; fsyncsPerS?: number; commitsPerS?: number }> = [];
  let node: RunningProcess | undefined;
  try {
    for (const store of ['memory', 'sqlite']) {
      node = await startScript('dist/src/server.js', env(store));
      await load('warm-up', node.url, bodies.slice(-5000, -1));
      const fs0 = await metric(`http://127.0.0.1:${metricsPort}`, 'cordon_sqlite_fsyncs_total');
      const c0 = await metric(`http://127.0.0.1:${metricsPort}`, 'cordon_sqlite_commits_total');
      const f = await load(store === 'memory' ? 'embedded, memory store' : 'embedded, SQLite store', node.url, bodies, node.proc.pid);
      const fs1 = await metric(`http://127.0.0.1:${metricsPort}`, 'cordon_sqlite_fsyncs_total');
      const c1 = await metric(`http://127.0.0.1:${metricsPort}`, 'cordon_sqlite_commits_total');
      results.push(store === 'sqlite' ? { f, fsyncsPerS: (fs1 - fs0) / DURATION_S, commitsPerS: (c1 - c0) / DURATION_S } : { f });
      await node.stop();
      node = undefined;
    }
  } finally {
    await node?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  const [mem, sql] = results;
  process.stdout.write(`\nembedded mode (no Redis, no NATS), ${CONNECTIONS} connections, ${DURATION_S} s each\n`);
  process.stdout.write(row(mem.f) + '\n' + row(sql.f) + '\n');
  process.stdout.write(
    `ratio SQLite / memory: ${((sql.f.rps / mem.f.rps) * 100).toFixed(1)}% (target >= 70%); SQLite p99 ${sql.f.p99} ms (target < 50 ms)\n` +
      `SQLite: ${sql.fsyncsPerS!.toFixed(0)} fsyncs/s, ${sql.commitsPerS!.toFixed(0)} commits/s ` +
      `(${(sql.f.rps / Math.max(1, sql.commitsPerS!)).toFixed(1)} alerts per commit; synchronous=FULL, WAL)\n`,
  );
}

async function productionRuns(fx: ReturnType<typeof makeFixture>, prefix: string, prefixOff: string, bodies: string[]): Promise<void> {
  let node: RunningProcess | undefined;
  let bare: RunningProcess | undefined;
  const redis = new Redis(REDIS_URL);
  try {
    const launcher = PROFILE ? 'dist/bench/lib/instrumented-server.js' : 'dist/src/server.js';
    const profiles = { on: join(tmpdir(), `cordon-ingest-on-${Date.now()}.cpuprofile`), off: join(tmpdir(), `cordon-ingest-off-${Date.now()}.cpuprofile`) };
    const profiled = async (proc: RunningProcess, run: () => Promise<Figures>): Promise<Figures> => {
      if (!PROFILE) return run();
      proc.proc.kill('SIGWINCH');
      const f = await run();
      proc.proc.kill('SIGWINCH');
      await new Promise((r) => setTimeout(r, 1000));
      return f;
    };
    node = await startScript(launcher, { ...productionEnv(fx, prefix, `bench${Date.now()}`), BENCH_PROFILE_OUT: profiles.on });
    const probe = await fetch(node.url + '/v1/alerts', { method: 'POST', headers: { 'content-type': 'application/json' }, body: bodies[bodies.length - 1] });
    if (probe.status !== 201) throw new Error(`a bench alert was rejected: ${probe.status} ${await probe.text()}`);
    // Warm-up (JIT, connections, scripts), then the measured run.
    await load('warm-up', node.url, bodies.slice(-5000, -1));
    const redisCpuMs = async () => {
      const info = await redis.info('cpu');
      const num = (k: string) => Number(new RegExp(`${k}:([0-9.]+)`).exec(info)?.[1] ?? 0);
      return (num('used_cpu_user') + num('used_cpu_sys')) * 1000;
    };
    const redisBefore = await redisCpuMs();
    const on = node;
    const cordon = await profiled(on, () => load('cordon (Redis + NATS)', on.url, bodies, on.proc.pid));
    const redisUsPerReq = (((await redisCpuMs()) - redisBefore) * 1000) / Math.max(1, cordon.ok);
    const top = Number(await redis.hget(`${prefix}{${fx.region}}:meta`, 'seq'));
    await node.stop();
    node = undefined;

    // The same node with the transparency log off (contract §12 asks for >= 95% of this).
    node = await startScript(launcher, {
      ...productionEnv(fx, prefixOff, `bench-off${Date.now()}`),
      CORDON_LOG_TREE: 'false',
      BENCH_PROFILE_OUT: profiles.off,
    });
    await load('warm-up', node.url, bodies.slice(-5000, -1));
    const off = node;
    const redisOffBefore = await redisCpuMs();
    const logOff = await profiled(off, () => load('cordon, transparency log off', off.url, bodies, off.proc.pid));
    const redisOffUsPerReq = (((await redisCpuMs()) - redisOffBefore) * 1000) / Math.max(1, logOff.ok);
    await node.stop();
    node = undefined;

    const x = (fx.publicKey.export({ format: 'jwk' }) as { x: string }).x;
    bare = await startScript('dist/bench/lib/bare-verify-server.js', { BENCH_PUBLIC_X: x });
    await load('warm-up', bare.url, bodies.slice(0, 5000));
    const ceiling = await load('bare parse + verify route', bare.url, bodies, bare.proc.pid);

    process.stdout.write(`\ningest, ${CONNECTIONS} connections, ${DURATION_S} s each\n`);
    process.stdout.write(row(cordon) + '\n' + row(logOff) + '\n' + row(ceiling) + '\n');
    process.stdout.write(`ratio log on / log off: ${((cordon.rps / logOff.rps) * 100).toFixed(1)}% (target >= 95%)\n`);
    process.stdout.write(`ratio cordon / ceiling: ${((cordon.rps / ceiling.rps) * 100).toFixed(1)}% (target >= 80%)\n`);
    process.stdout.write(
      `server CPU per accepted alert: cordon ${cordon.cpuUsPerReq?.toFixed(0)} µs (+ Redis ${redisUsPerReq.toFixed(0)} µs), ` +
        `log off ${logOff.cpuUsPerReq?.toFixed(0)} µs (+ Redis ${redisOffUsPerReq.toFixed(0)} µs), ` +
        `ceiling ${ceiling.cpuUsPerReq?.toFixed(0)} µs (measured from /proc and INFO: independent of other load)\n`,
    );
    process.stdout.write(`cordon p99 ${cordon.p99} ms (target < 50 ms); region log top seq ${top} (accepted ${cordon.ok + 0} + warm-up)\n`);
    if (PROFILE) {
      for (const which of ['on', 'off'] as const) {
        process.stdout.write(`\nCPU profile of the node, transparency log ${which}:\n`);
        process.stdout.write(summariseProfile(profiles[which]).join('\n') + '\n');
        process.stdout.write(`(profile kept at ${profiles[which]})\n`);
      }
    }
  } finally {
    await node?.stop();
    await bare?.stop();
    // Remove this run's keys (never flush the database).
    await deleteKeysWithPrefix(redis, prefix);
    await deleteKeysWithPrefix(redis, prefixOff);
    await redis.quit();
  }
}

main().catch((err) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
