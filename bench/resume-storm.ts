/*
 * bench/resume-storm: 1,000 desks that each missed 100 alerts reconnect within one second (as after
 * a node restart or a network blip) and resubscribe with their `from` position. Prints the time
 * until every desk has caught up, and the per-desk catch-up time (connect → holding the newest
 * missed seq) p50 / p99 / max. Live alerts keep arriving during the storm (BENCH_LIVE_RATE/s), so
 * each recovery must merge history with live traffic; at the end every desk must hold every seq
 * exactly once, in order.
 *
 * One production node (Redis + NATS), desks in 4 client processes (bench/lib/ws-client-worker.js).
 *
 *   npm run bench:resume-storm     (BENCH_DESKS=1000 BENCH_MISSED=100 BENCH_SPREAD_MS=1000 BENCH_LIVE_RATE=20)
 */
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { benchContent, makeFixture } from './lib/fixture';
import { percentile } from './lib/node';
import { DeskPool } from './lib/desk-pool';
import { summariseProfile } from './lib/profile-summary';
import { HttpPublisher } from './lib/publisher';
import { machineCpu, startCordonNode } from './lib/targets';
import { cpuMsOf } from './lib/node';

const DESKS = Number(process.env.BENCH_DESKS ?? 1000);
const WORKERS = Number(process.env.BENCH_WORKERS ?? 4);
const MISSED = Number(process.env.BENCH_MISSED ?? 100);
const SPREAD_MS = Number(process.env.BENCH_SPREAD_MS ?? 1000);
const LIVE_RATE = Number(process.env.BENCH_LIVE_RATE ?? 20);
const HELD = 100;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const out = (line = '') => process.stdout.write(line + '\n');

async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) return false;
    await sleep(5);
  }
  return true;
}

async function main(): Promise<void> {
  const fx = makeFixture();
  out(`resume storm: ${DESKS} desks, each missed ${MISSED} alerts, reconnecting within ${SPREAD_MS} ms; live ${LIVE_RATE} alerts/s meanwhile`);
  out(
    `machine: ${cpus().length} × ${cpus()[0]?.model ?? '?'}, Node ${process.version}, load average ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  if (loadavg()[0] > 0.5) out('WARNING: the machine is busy before the run; figures will be high and noisy');

  const bodies = Array.from({ length: HELD + MISSED + LIVE_RATE * 60 + 100 }, () => JSON.stringify(fx.sign(benchContent(fx.region))));
  let used = 0;
  const logFile = process.env.BENCH_SERVER_LOG;
  const profileOut = process.env.BENCH_CPU_PROF === '1' ? join(tmpdir(), `cordon-storm-${Date.now()}.cpuprofile`) : undefined;
  const cn = await startCordonNode(fx, { logFile, profileOut });
  const publisher = new HttpPublisher(cn.node.url, () => bodies[used++] ?? JSON.stringify(fx.sign(benchContent(fx.region))));
  const pid = cn.node.proc.pid ?? 0;
  const wsUrl = `ws://127.0.0.1:${cn.node.port}/v1/stream`;
  const token = (i: number) => ({ token: fx.token({ sub: `bench-desk-${i}` }) });
  let pool: DeskPool | undefined;
  try {
    // The desks hold seq 1..HELD (they watched live), then go away.
    pool = await DeskPool.start(WORKERS);
    const first = await pool.connect({ kind: 'cordon', url: wsUrl, subscribe: JSON.stringify({ type: 'subscribe', regions: [fx.region] }) }, DESKS, token);
    if (first.failed) throw new Error(`${first.failed} desks failed to connect: ${first.errors.join('; ')}`);
    publisher.publishUpTo(HELD);
    await publisher.settled();
    if (!(await until(() => pool!.minSeq() >= HELD, 30_000))) throw new Error('desks did not receive the first alerts');
    const epoch = publisher.epoch;
    await pool.close();
    pool = undefined;

    // What they miss while away.
    publisher.publishUpTo(HELD + MISSED);
    await publisher.settled();
    if (publisher.failures) throw new Error(`publish failures: ${publisher.lastFailure}`);
    await sleep(500);

    // The storm: every desk reconnects within SPREAD_MS with its position; live alerts continue.
    pool = await DeskPool.start(WORKERS);
    if (profileOut) cn.node.proc.kill('SIGWINCH');
    const cpu0 = await cpuMsOf(pid);
    const m0 = await machineCpu();
    const t0 = performance.now();
    let live = true;
    const liveTimer = setInterval(() => {
      if (live) publisher.publishUpTo(HELD + MISSED + Math.floor((LIVE_RATE * (performance.now() - t0)) / 1000));
    }, 10);
    const storm = await pool.connect(
      {
        kind: 'cordon',
        url: wsUrl,
        subscribe: JSON.stringify({ type: 'subscribe', regions: [fx.region], from: { [fx.region]: { seq: HELD, epoch } } }),
        spreadMs: SPREAD_MS,
        fromSeq: HELD,
        target: HELD + MISSED,
      },
      DESKS,
      token,
    );
    if (storm.failed) throw new Error(`${storm.failed} desks failed to reconnect: ${storm.errors.join('; ')}`);
    const caughtUp = await until(() => pool!.minSeq() >= HELD + MISSED, 60_000);
    const allMs = performance.now() - t0;
    const cpu1 = await cpuMsOf(pid);
    const m1 = await machineCpu();
    if (profileOut) cn.node.proc.kill('SIGWINCH');
    live = false;
    clearInterval(liveTimer);
    await publisher.settled();
    // A refused publish (e.g. 503 while Redis is saturated) has no seq: the top is what was accepted.
    const top = publisher.issued - publisher.failures;
    if (publisher.failures) out(`WARNING: ${publisher.failures} live publishes refused during the storm (last: ${publisher.lastFailure})`);
    const drained = await until(() => pool!.minSeq() >= top, 30_000);
    const report = await pool.report();

    const per = report.catchUpMs.filter((ms) => ms >= 0).sort((a, b) => a - b);
    out('');
    out(`all ${DESKS} desks reconnected (handshake + subscribe) within ${storm.ms} ms`);
    out(`${caughtUp ? 'all desks caught up' : 'NOT all desks caught up'} ${(allMs / 1000).toFixed(2)} s after the first reconnect`);
    out(
      `per desk, reconnect → holding seq ${HELD + MISSED}: p50 ${percentile(per, 50)} ms  p99 ${percentile(per, 99)} ms  max ${per[per.length - 1]} ms  (${per.length}/${DESKS} desks)`,
    );
    out(
      `replayed + live deliveries: ${report.deliveries} (expected ${DESKS * (top - HELD)}); out of order ${report.outOfOrder}; closes ${JSON.stringify(report.closes)}`,
    );
    out(
      `live alerts during the storm: ${top - HELD - MISSED}; every desk holds seq ${HELD + 1}..${top}: ` +
        `${drained && report.deliveries === DESKS * (top - HELD) && report.outOfOrder === 0 ? 'yes' : `NO (desks hold up to seq ${report.minSeq}..${report.maxSeq}, ${report.open} open)`}`,
    );
    out(`storm: server CPU ${(((cpu1 - cpu0) / allMs) * 100).toFixed(0)}%, machine ${(((m1.busy - m0.busy) / (m1.total - m0.total)) * 100).toFixed(0)}% busy`);
    out(`other frames: ${JSON.stringify(report.other)}`);
    if (profileOut) {
      await sleep(500);
      out('');
      out(summariseProfile(profileOut).join('\n'));
    }
  } finally {
    await pool?.close();
    await publisher.settled();
    publisher.close();
    await cn.node.stop();
    await cn.cleanup();
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);
