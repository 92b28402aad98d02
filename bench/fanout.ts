/*
 * bench/fanout: one region, 1,000 desks in 4 client processes, ~1.5 KB alerts, measured on three
 * servers in the same run, each in its own process:
 *
 *   cordon    one production node (Redis log + NATS bus, the honest path): every alert is a
 *             signed submission POSTed to /v1/alerts, verified, appended, published on NATS and
 *             fanned out by the hub. Embedded mode would skip Redis and NATS and flatter it.
 *   bare ws   the ceiling of a plain broadcaster: the frame built once, one `send` per socket.
 *   Socket.IO `io.to(room).emit` (Socket.IO 4, websocket transport).
 *
 * Same policy for all: publish as fast as the desks take it, with a bounded in-flight window
 * (at most BENCH_WINDOW alerts beyond what EVERY desk holds), so no server buffers without bound.
 * Phases per server: idle memory (RSS with 1,000 idle desks minus RSS with none, read as is and
 * after a forced full GC; "none" is after a first 1,000 desks came and went, so that what any
 * connection burst grows once, V8's young generation first of all, is not charged to the desks),
 * a 3 s warm-up,
 * the throughput phase (BENCH_DURATION_S), then a paced phase at BENCH_RATE alerts/s for the
 * latency at the target rate. Latency is publish-to-delivery: the desk's clock minus the alert's
 * `received_at` (stamped at ingest; the same machine clock).
 *
 *   npm run bench:fanout
 *   BENCH_ONLY=cordon BENCH_CPU_PROF=1 node dist/bench/fanout.js   (profile the node's measured phase)
 */
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { benchContent, makeFixture, type BenchFixture } from './lib/fixture';
import { rssOf } from './lib/node';
import { DeskPool, type PoolReport } from './lib/desk-pool';
import { ceilingTarget, cordonTarget, machineCpu, type BroadcastTarget } from './lib/targets';
import { summariseProfile } from './lib/profile-summary';
import { cpuMsOf } from './lib/node';

const DESKS = Number(process.env.BENCH_DESKS ?? 1000);
const WORKERS = Number(process.env.BENCH_WORKERS ?? 4);
const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 20);
const PACED_S = Number(process.env.BENCH_PACED_S ?? 10);
const WARMUP_S = Number(process.env.BENCH_WARMUP_S ?? 3);
/** alerts in flight beyond what every desk holds: large enough that the loop's own latency
 * (worker → bench → server, three processes on a shared machine) does not limit throughput */
const WINDOW = Number(process.env.BENCH_WINDOW ?? 128);
/** alerts/s in the paced phase: 250 × 1,000 desks = the 250,000 deliveries/s target */
const RATE = Number(process.env.BENCH_RATE ?? 250);
const ONLY = (process.env.BENCH_ONLY ?? 'ws,socketio,cordon').split(',');
const PROFILE = process.env.BENCH_CPU_PROF === '1';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const out = (line = '') => process.stdout.write(line + '\n');

interface Phase {
  seconds: number;
  alerts: number;
  alertsPerS: number;
  deliveriesPerS: number;
  p50: number;
  p99: number;
  max: number;
  serverCpuPct: number;
  clientCpuPct: number;
  /** the whole machine, all cores: 100% = every core busy */
  machineBusyPct: number;
  drained: boolean;
  report: PoolReport;
}

interface Result {
  label: string;
  connectMs: number;
  /** RSS after a full GC before any desk ever connected */
  rssCold: number;
  /** RSS after a full GC, without (after a first 1,000 came and went) and with the idle desks */
  rssIdle: number;
  rssDesks: number;
  /** V8 heap used after the full GC, without (warm baseline) and with the idle desks */
  heapIdle: number;
  heapDesks: number;
  /** the same, read without forcing a GC first */
  rssIdleRaw: number;
  rssDesksRaw: number;
  throughput: Phase;
  paced: Phase;
}

/** Publishes under the window (and the rate, if any) for `seconds`, then lets every desk catch up. */
async function phase(t: BroadcastTarget, pool: DeskPool, seconds: number, window: number, rate?: number): Promise<Phase> {
  await pool.reset();
  const startSeq = t.published();
  const cpu0 = await cpuMsOf(t.pid);
  const m0 = await machineCpu();
  const t0 = performance.now();
  let running = true;
  const pump = () => {
    if (!running) return;
    let allowed = pool.minSeq() + window;
    if (rate !== undefined) allowed = Math.min(allowed, startSeq + Math.floor((rate * (performance.now() - t0)) / 1000));
    if (allowed > t.published()) t.publishUpTo(allowed);
  };
  pool.onProgress(pump);
  const timer = setInterval(pump, 2);
  pump();
  await sleep(seconds * 1000);
  running = false;
  clearInterval(timer);
  pool.onProgress(undefined);
  const elapsedS = (performance.now() - t0) / 1000;
  const delivered = pool.deliveries();
  const cpu1 = await cpuMsOf(t.pid);
  const m1 = await machineCpu();
  const last = t.published();
  const drainUntil = Date.now() + 15_000;
  while (pool.minSeq() < last && Date.now() < drainUntil) await sleep(10);
  const report = await pool.report();
  const fail = t.failures();
  if (fail.count > 0) throw new Error(`${t.label}: ${fail.count} publish failures, last: ${fail.last}`);
  return {
    seconds: elapsedS,
    alerts: last - startSeq,
    alertsPerS: (last - startSeq) / elapsedS,
    deliveriesPerS: delivered / elapsedS,
    p50: report.p50,
    p99: report.p99,
    max: report.max,
    serverCpuPct: ((cpu1 - cpu0) / 1000 / elapsedS) * 100,
    clientCpuPct: (report.cpuMs / 1000 / elapsedS) * 100,
    machineBusyPct: ((m1.busy - m0.busy) / (m1.total - m0.total)) * 100,
    drained: report.minSeq >= last,
    report,
  };
}

async function measure(make: () => Promise<BroadcastTarget>, profileOut?: string): Promise<Result> {
  const target = await make();
  const pool = await DeskPool.start(WORKERS);
  try {
    out(`\n== ${target.label} (pid ${target.pid})`);
    await sleep(1000);
    await target.gc();
    const rssCold = await rssOf(target.pid);
    // A first round of desks connects and leaves: the baseline then already holds what any burst
    // of connections grows once and keeps (V8's young generation at its working size, the HTTP
    // and ws layers' pools), so the difference below is what the idle desks themselves hold.
    // What that round left behind is printed too: a leak would show there, not hide.
    const warm = await DeskPool.start(WORKERS);
    const warmConn = await warm.connect(target.connect, DESKS, target.perWorker);
    if (warmConn.failed > 0) throw new Error(`${target.label}: ${warmConn.failed} desks failed to connect: ${warmConn.errors.join('; ')}`);
    await warm.close();
    await sleep(2000);
    const rssIdleRaw = await rssOf(target.pid);
    const heapIdle = await target.gc();
    const rssIdle = await rssOf(target.pid);
    const conn = await pool.connect(target.connect, DESKS, target.perWorker);
    if (conn.failed > 0) throw new Error(`${target.label}: ${conn.failed} desks failed to connect: ${conn.errors.join('; ')}`);
    out(`${conn.ok} desks connected and subscribed in ${conn.ms} ms`);
    await sleep(2000);
    const rssDesksRaw = await rssOf(target.pid);
    const heapDesks = await target.gc();
    const rssDesks = await rssOf(target.pid);
    const mib = (b: number) => (b / 2 ** 20).toFixed(1);
    out(
      `RSS after a full GC: ${mib(rssCold)} MiB before any desk, ${mib(rssIdle)} MiB after ${DESKS} desks came and went, ` +
        `${mib(rssDesks)} MiB with ${DESKS} idle desks (${mib(rssIdleRaw)} and ${mib(rssDesksRaw)} MiB without the GC); ` +
        `V8 heap used ${((heapDesks - heapIdle) / DESKS / 1024).toFixed(1)} KB per desk`,
    );

    await phase(target, pool, WARMUP_S, WINDOW);
    if (profileOut) target.proc?.kill('SIGWINCH');
    const throughput = await phase(target, pool, DURATION_S, WINDOW);
    if (profileOut) target.proc?.kill('SIGWINCH');
    out(row('throughput', throughput));
    const paced = await phase(target, pool, PACED_S, Math.max(WINDOW, RATE), RATE);
    out(row(`paced ${RATE}/s`, paced));
    return { label: target.label, connectMs: conn.ms, rssCold, rssIdle, rssDesks, heapIdle, heapDesks, rssIdleRaw, rssDesksRaw, throughput, paced };
  } finally {
    await pool.close();
    await target.stop();
  }
}

function row(name: string, p: Phase): string {
  const odd =
    p.report.outOfOrder || Object.keys(p.report.closes).length ? `  out-of-order ${p.report.outOfOrder} closes ${JSON.stringify(p.report.closes)}` : '';
  return (
    `${name.padEnd(14)} ${fmt(p.deliveriesPerS).padStart(9)} deliveries/s  (${p.alertsPerS.toFixed(0)} alerts/s, ${p.alerts} alerts)` +
    `  p50 ${p.p50} ms  p99 ${p.p99} ms  max ${p.max} ms  server CPU ${p.serverCpuPct.toFixed(0)}%  clients CPU ${p.clientCpuPct.toFixed(0)}%  machine ${p.machineBusyPct.toFixed(0)}% busy` +
    `${p.drained ? '' : '  NOT DRAINED'}${odd}`
  );
}

function fmt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

async function main(): Promise<void> {
  const fx: BenchFixture = makeFixture();
  out(`fan-out: ${DESKS} desks in ${WORKERS} client processes, 1 region, window ${WINDOW} alerts, ${DURATION_S} s + paced ${RATE} alerts/s for ${PACED_S} s`);
  out(
    `machine: ${cpus().length} × ${cpus()[0]?.model ?? '?'}, Node ${process.version}, load average ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  if (loadavg()[0] > 0.5) out('WARNING: the machine is busy before the run; figures will be low and noisy');

  // Enough distinct signed alerts for the fastest plausible run; signed before anything is timed.
  const maxAlerts = Number(process.env.BENCH_MAX_ALERTS ?? 600 * (DURATION_S + WARMUP_S) + RATE * PACED_S + 1000);
  const bodies: string[] = [];
  for (let i = 0; i < Math.min(maxAlerts, 2000); i++) bodies.push(JSON.stringify(fx.sign(benchContent(fx.region))));
  let used = 0;
  const nextBody = () => (used < bodies.length ? bodies[used++] : JSON.stringify(fx.sign(benchContent(fx.region))));
  const sample = bodies[0];
  out(`submission ${Buffer.byteLength(sample)} bytes; alert frame about ${Buffer.byteLength(sample) + 120} bytes`);

  const results: Result[] = [];
  const profileOut = PROFILE ? join(tmpdir(), `cordon-fanout-${Date.now()}.cpuprofile`) : undefined;
  for (const which of ONLY) {
    if (which === 'ws') results.push(await measure(() => ceilingTarget('ws', fx.region, sample)));
    else if (which === 'socketio') results.push(await measure(() => ceilingTarget('socketio', fx.region, sample)));
    else if (which === 'cordon') {
      // Refill the pre-signed pool in the background of nothing: signing is cheap next to a run.
      while (bodies.length < maxAlerts) bodies.push(JSON.stringify(fx.sign(benchContent(fx.region))));
      results.push(await measure(() => cordonTarget(fx, nextBody, { profileOut }), profileOut));
    }
  }

  out('\n== summary');
  out(
    `${'server'.padEnd(22)} ${'deliveries/s'.padStart(12)} ${'p50'.padStart(6)} ${'p99'.padStart(6)} | ${`at ${RATE}/s`.padStart(12)} ${'p50'.padStart(6)} ${'p99'.padStart(6)} | ${'KB/desk'.padStart(8)} ${'(no GC)'.padStart(8)} ${'heap KB'.padStart(8)} ${'srv CPU'.padStart(8)}`,
  );
  for (const r of results) {
    out(
      `${r.label.padEnd(22)} ${fmt(r.throughput.deliveriesPerS).padStart(12)} ${`${r.throughput.p50}ms`.padStart(6)} ${`${r.throughput.p99}ms`.padStart(6)} | ` +
        `${fmt(r.paced.deliveriesPerS).padStart(12)} ${`${r.paced.p50}ms`.padStart(6)} ${`${r.paced.p99}ms`.padStart(6)} | ` +
        `${((r.rssDesks - r.rssIdle) / DESKS / 1024).toFixed(1).padStart(8)} ${((r.rssDesksRaw - r.rssIdleRaw) / DESKS / 1024).toFixed(1).padStart(8)} ${((r.heapDesks - r.heapIdle) / DESKS / 1024).toFixed(1).padStart(8)} ` +
        `${`${r.throughput.serverCpuPct.toFixed(0)}%`.padStart(8)}`,
    );
  }
  const by = (label: string) => results.find((r) => r.label.startsWith(label));
  const cordon = by('cordon');
  const sio = by('Socket.IO');
  const bare = by('bare ws');
  if (cordon) {
    const perDeskKb = (cordon.rssDesks - cordon.rssIdle) / DESKS / 1024;
    const perDeskRawKb = (cordon.rssDesksRaw - cordon.rssIdleRaw) / DESKS / 1024;
    const check = (ok: boolean) => (ok ? 'PASS' : 'MISS');
    out('\n== targets');
    out(`${check(cordon.throughput.deliveriesPerS >= 250_000)} cordon ${fmt(cordon.throughput.deliveriesPerS)} deliveries/s (target >= 250,000)`);
    if (sio) {
      const ratio = cordon.throughput.deliveriesPerS / sio.throughput.deliveriesPerS;
      out(`${check(ratio >= 3)} cordon / Socket.IO = ${ratio.toFixed(2)}x (target >= 3x)`);
    }
    if (bare) out(`     cordon / bare ws = ${(cordon.throughput.deliveriesPerS / bare.throughput.deliveriesPerS).toFixed(2)}x`);
    const pacedOk = cordon.paced.deliveriesPerS >= RATE * DESKS * 0.97;
    out(
      `${check(pacedOk && cordon.paced.p99 < 100)} cordon p99 ${cordon.paced.p99} ms at ${fmt(cordon.paced.deliveriesPerS)} deliveries/s (target < 100 ms at 250,000/s)`,
    );
    const coldKb = (cordon.rssDesks - cordon.rssCold) / DESKS / 1024;
    out(`${check(perDeskKb <= 16)} cordon ${perDeskKb.toFixed(1)} KB server RSS per idle desk, read after a full GC (target <= 16 KB)`);
    out(`     the same read without a GC: ${perDeskRawKb.toFixed(1)} KB per desk (handshake garbage included)`);
    out(`     V8 heap the idle desks hold after a full GC: ${((cordon.heapDesks - cordon.heapIdle) / DESKS / 1024).toFixed(1)} KB per desk`);
    out(
      `     against the RSS before any desk ever connected: ${coldKb.toFixed(1)} KB per desk; ${DESKS} desks that came and went left ` +
        `${((cordon.rssIdle - cordon.rssCold) / 2 ** 20).toFixed(1)} MiB behind (V8's young generation grown by the burst, and pools)`,
    );
  }
  if (profileOut) {
    await sleep(500);
    out('');
    try {
      out(summariseProfile(profileOut).join('\n'));
    } catch (err) {
      out(`no profile: ${(err as Error).message}`);
    }
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);
