/*
 * bench/ingest: one production node (Redis + NATS) under signed alerts over HTTP, 50 concurrent
 * connections, with the transparency log on, the same node with it off, and the ceiling (a bare
 * Fastify route that only parses the body and verifies the Ed25519 signature), all three up at once
 * and taking turns in 5-second slices, 40 s each.
 *
 *   npm run bench:ingest            (BENCH_ALTERNATE_S=40 BENCH_SLICE_S=5 BENCH_CONNECTIONS=50 by
 *                                    default; BENCH_DURATION_S=20 for the embedded runs)
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
import { freePort, startScript, threadCpuMsOf, type RunningProcess } from './lib/node';
import { REDIS_URL, productionEnv } from './lib/targets';
import { summariseProfile } from './lib/profile-summary';

const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 20);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);
/** Enough distinct signed alerts that none is resubmitted at up to this rate. */
const MAX_RATE = Number(process.env.BENCH_MAX_RATE ?? 9000);
/**
 * The log-on / log-off comparison: seconds of load per node in all (BENCH_ALTERNATE_S, 40), in
 * slices of BENCH_SLICE_S (5) that alternate between the two nodes (see productionRuns).
 */
const ALTERNATE_S = Number(process.env.BENCH_ALTERNATE_S ?? 40);
const SLICE_S = Math.min(ALTERNATE_S, Number(process.env.BENCH_SLICE_S ?? 5));
const SLICES = Math.max(1, Math.round(ALTERNATE_S / SLICE_S));
/** Which node takes the first slice (BENCH_FIRST=off: a check that the order does not decide the figures). */
const FIRST: 'on' | 'off' = process.env.BENCH_FIRST === 'off' ? 'off' : 'on';
/** Each node's warm-up (JIT, connections, scripts) before it is measured, on alerts of its own at the end of the list. */
const WARM_UP_S = 3;
const WARM_UP_ALERTS = 15_000;
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
  /** autocannon's unaggregated result (its latency histogram encoded), for merging slices */
  raw?: unknown;
  /** of it, on the node's event loop (the rest: verification thread, GC helpers, libuv) */
  mainUsPerReq?: number;
  /** requests sent (alerts taken from the list) and how long */
  sent: number;
  seconds: number;
}

/**
 * autocannon's own merge of unaggregated results (as it merges its workers'): latency histograms
 * added, so percentiles are of all the requests, not of per-slice percentiles. Not in its types.
 */
const aggregate = (autocannon as unknown as { aggregateResult(this: void, results: unknown[], opts: { url: string }): autocannon.Result }).aggregateResult;

/**
 * `seconds` of load from `bodies[from...]`, each request a new alert (`sent` tells how many were
 * taken). With a pid, the node's CPU per accepted alert, in total and on its event loop.
 */
async function load(label: string, url: string, bodies: string[], pid?: number, seconds = DURATION_S, from = 0): Promise<Figures> {
  let i = from;
  const cpuBefore = pid ? await threadCpuMsOf(pid) : { main: 0, others: 0 };
  const result = await autocannon({
    url,
    connections: CONNECTIONS,
    duration: seconds,
    requests: [
      {
        method: 'POST',
        path: '/v1/alerts',
        headers: { 'content-type': 'application/json' },
        setupRequest: (req) => ({ ...req, body: bodies[i++ % bodies.length] }),
      },
    ],
    skipAggregateResult: true,
  });
  const raw: unknown = result;
  const agg = aggregate([raw], { url });
  if (i > bodies.length && label !== 'warm-up')
    process.stdout.write(`WARNING: ${label} ran out of distinct alerts (raise BENCH_MAX_RATE): duplicates were sent\n`);
  const cpuAfter = pid ? await threadCpuMsOf(pid) : { main: 0, others: 0 };
  const ok = agg['2xx'];
  const perReq = (ms: number) => (pid && ok > 0 ? (ms * 1000) / ok : undefined);
  return {
    label,
    cpuUsPerReq: perReq(cpuAfter.main + cpuAfter.others - cpuBefore.main - cpuBefore.others),
    mainUsPerReq: perReq(cpuAfter.main - cpuBefore.main),
    rps: ok / seconds,
    ok,
    sent: i - from,
    seconds,
    non2xx: agg.non2xx,
    errors: agg.errors + agg.timeouts,
    p50: agg.latency.p50,
    p99: agg.latency.p99,
    raw,
  };
}

async function main(): Promise<void> {
  const fx = makeFixture();
  const prefix = `cordon-bench-${Date.now()}:`;
  const prefixOff = `cordon-bench-off-${Date.now()}:`;
  const count = MAX_RATE * (Math.max(DURATION_S, SLICES * SLICE_S) + 2) + WARM_UP_ALERTS;
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
      await load('warm-up', node.url, bodies.slice(-WARM_UP_ALERTS, -1), undefined, WARM_UP_S);
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

/** One node's slices of the comparison, added up. */
interface Tally {
  label: string;
  runs: Figures[];
  redisUs: number;
  /** alerts taken so far: each slice sends new ones */
  cursor: number;
}

function total(t: Tally): Figures {
  const sum = (f: (x: Figures) => number) => t.runs.reduce((a, x) => a + f(x), 0);
  const ok = sum((x) => x.ok);
  const seconds = sum((x) => x.seconds);
  // Every slice's latency histogram added: percentiles over all of this server's requests.
  const merged = aggregate(
    t.runs.map((x) => x.raw),
    { url: 'http://127.0.0.1/' },
  );
  return {
    label: t.label,
    ok,
    sent: sum((x) => x.sent),
    seconds,
    rps: ok / seconds,
    cpuUsPerReq: ok > 0 ? sum((x) => (x.cpuUsPerReq ?? 0) * x.ok) / ok : undefined,
    mainUsPerReq: ok > 0 ? sum((x) => (x.mainUsPerReq ?? 0) * x.ok) / ok : undefined,
    non2xx: sum((x) => x.non2xx),
    errors: sum((x) => x.errors),
    p50: merged.latency.p50,
    p99: merged.latency.p99,
  };
}

/**
 * The production node with the transparency log on against the same node with it off, and both
 * against the ceiling. All three are up the whole time (separate key and subject prefixes, so the
 * nodes do not see each other's traffic), and the load turns between them in short slices (on, off,
 * ceiling, ceiling, off, on, on...). On this shared 2-core machine the throughput of one 20-second
 * run moves by ±8% from the next (other tenants, the load generator's own garbage collection as its
 * heap fills), and not linearly in time: two long runs one after the other measured that, not the
 * log. Short slices in mirrored order put whatever the machine does on all three alike.
 */
async function productionRuns(fx: ReturnType<typeof makeFixture>, prefix: string, prefixOff: string, bodies: string[]): Promise<void> {
  const nodes: RunningProcess[] = [];
  const redis = new Redis(REDIS_URL);
  try {
    const launcher = PROFILE ? 'dist/bench/lib/instrumented-server.js' : 'dist/src/server.js';
    const profiles = { on: join(tmpdir(), `cordon-ingest-on-${Date.now()}.cpuprofile`), off: join(tmpdir(), `cordon-ingest-off-${Date.now()}.cpuprofile`) };
    // BENCH_CONTROL=1: both nodes with the log off, to see how far two identical nodes differ.
    const control: Record<string, string> = process.env.BENCH_CONTROL === '1' ? { CORDON_LOG_TREE: 'false' } : {};
    const on = await startScript(launcher, { ...productionEnv(fx, prefix, `bench${Date.now()}`), ...control, BENCH_PROFILE_OUT: profiles.on });
    nodes.push(on);
    // The same node with the transparency log off (contract §12 asks for >= 95% of this).
    const off = await startScript(launcher, {
      ...productionEnv(fx, prefixOff, `bench-off${Date.now()}`),
      CORDON_LOG_TREE: 'false',
      BENCH_PROFILE_OUT: profiles.off,
    });
    nodes.push(off);
    // The ceiling: a bare route that only parses and verifies, measured in the same rotation.
    const x = (fx.publicKey.export({ format: 'jwk' }) as { x: string }).x;
    const bare = await startScript('dist/bench/lib/bare-verify-server.js', { BENCH_PUBLIC_X: x });
    nodes.push(bare);
    const probe = await fetch(on.url + '/v1/alerts', { method: 'POST', headers: { 'content-type': 'application/json' }, body: bodies[bodies.length - 1] });
    if (probe.status !== 201) throw new Error(`a bench alert was rejected: ${probe.status} ${await probe.text()}`);
    // Warm-up (JIT, connections, scripts) with alerts of their own at the end of the list.
    await load('warm-up', on.url, bodies.slice(-WARM_UP_ALERTS, -1), undefined, WARM_UP_S);
    await load('warm-up', off.url, bodies.slice(-WARM_UP_ALERTS, -1), undefined, WARM_UP_S);
    await load('warm-up', bare.url, bodies.slice(-WARM_UP_ALERTS, -1), undefined, WARM_UP_S);
    const measured = bodies.slice(0, -WARM_UP_ALERTS);
    const redisCpuMs = async () => {
      const info = await redis.info('cpu');
      const num = (k: string) => Number(new RegExp(`${k}:([0-9.]+)`).exec(info)?.[1] ?? 0);
      return (num('used_cpu_user') + num('used_cpu_sys')) * 1000;
    };
    const tallies: Record<'on' | 'off' | 'bare', Tally & { proc: RunningProcess }> = {
      on: { label: 'cordon (Redis + NATS)', runs: [], redisUs: 0, cursor: 0, proc: on },
      off: { label: 'cordon, transparency log off', runs: [], redisUs: 0, cursor: 0, proc: off },
      bare: { label: 'bare parse + verify route', runs: [], redisUs: 0, cursor: 0, proc: bare },
    };
    const rotation: Array<'on' | 'off' | 'bare'> = FIRST === 'on' ? ['on', 'off', 'bare'] : ['off', 'on', 'bare'];
    for (let k = 0; k < SLICES; k++) {
      // Mirrored: A B C C B A A B C ...
      const order = k % 2 === 0 ? rotation : [...rotation].reverse();
      for (const which of order) {
        const t = tallies[which];
        // The CPU profiles cover each node's first slice.
        const profiled = PROFILE && k === 0 && which !== 'bare';
        if (profiled) t.proc.proc.kill('SIGWINCH');
        const redisBefore = await redisCpuMs();
        const f = await load(`${t.label} #${k + 1}`, t.proc.url, measured, t.proc.proc.pid, SLICE_S, t.cursor);
        t.redisUs += ((await redisCpuMs()) - redisBefore) * 1000;
        t.cursor += f.sent;
        t.runs.push(f);
        if (profiled) {
          t.proc.proc.kill('SIGWINCH');
          await new Promise((r) => setTimeout(r, 1000));
        }
      }
    }
    const top = Number(await redis.hget(`${prefix}{${fx.region}}:meta`, 'seq'));
    for (const n of nodes.splice(0)) await n.stop();
    const ceiling = total(tallies.bare);

    const cordon = total(tallies.on);
    const logOff = total(tallies.off);
    const redisUsPerReq = tallies.on.redisUs / Math.max(1, cordon.ok);
    const redisOffUsPerReq = tallies.off.redisUs / Math.max(1, logOff.ok);
    const ratios = tallies.on.runs.map((f, k) => f.rps / tallies.off.runs[k].rps).sort((a, b) => a - b);
    const pct = (r: number) => `${(r * 100).toFixed(1)}%`;
    process.stdout.write(
      `\ningest, ${CONNECTIONS} connections; log on, log off and the ceiling take turns in ${SLICES} slices of ${SLICE_S} s each ` +
        `(${SLICES * SLICE_S} s per server)\n`,
    );
    process.stdout.write(row(cordon) + '\n' + row(logOff) + '\n' + row(ceiling) + '\n');
    process.stdout.write(
      `ratio log on / log off: ${pct(cordon.rps / logOff.rps)} (target >= 95%); slice by slice ${pct(ratios[0])} to ${pct(ratios[ratios.length - 1])}, ` +
        `median ${pct(ratios[Math.floor(ratios.length / 2)])}\n`,
    );
    process.stdout.write(`ratio cordon / ceiling: ${pct(cordon.rps / ceiling.rps)} (target >= 80%)\n`);
    process.stdout.write(
      `server CPU per accepted alert: cordon ${cordon.cpuUsPerReq?.toFixed(0)} µs (event loop ${cordon.mainUsPerReq?.toFixed(0)}; + Redis ${redisUsPerReq.toFixed(0)} µs), ` +
        `log off ${logOff.cpuUsPerReq?.toFixed(0)} µs (event loop ${logOff.mainUsPerReq?.toFixed(0)}; + Redis ${redisOffUsPerReq.toFixed(0)} µs), ` +
        `ceiling ${ceiling.cpuUsPerReq?.toFixed(0)} µs (measured from /proc and INFO: independent of other load)\n`,
    );
    const p99s = (t: Tally) => t.runs.map((f) => f.p99).sort((a, b) => a - b);
    const median = (xs: number[]) => xs[Math.floor(xs.length / 2)];
    const worst = (xs: number[]) => xs[xs.length - 1];
    process.stdout.write(
      `cordon p99 over all its requests: ${cordon.p99} ms (target < 50 ms; log off ${logOff.p99} ms); by slice: median ${median(p99s(tallies.on))} ms, ` +
        `worst ${worst(p99s(tallies.on))} ms (log off: median ${median(p99s(tallies.off))}, worst ${worst(p99s(tallies.off))} ms)\n` +
        `region log top seq ${top} (accepted ${cordon.ok} + warm-up)\n`,
    );
    if (PROFILE) {
      for (const which of ['on', 'off'] as const) {
        process.stdout.write(`\nCPU profile of the node, transparency log ${which} (first slice, ${tallies[which].runs[0].ok} alerts):\n`);
        process.stdout.write(summariseProfile(profiles[which]).join('\n') + '\n');
        process.stdout.write(`(profile kept at ${profiles[which]})\n`);
      }
    }
  } finally {
    for (const n of nodes) await n.stop();
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
