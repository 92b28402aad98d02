/*
 * bench/replay: one production node (Redis + NATS) exports a region of 100,000 signed alerts of
 * about 1.5 KB as NDJSON over HTTP, against the raw rate of XRANGE over the same stream in batches
 * of 1,000 measured in the same run. Prints alerts/s, MB/s and the node's peak RSS growth.
 *
 *   npm run bench:replay            (BENCH_ALERTS=100000 BENCH_RUNS=3 by default)
 *
 * Targets: export >= 50% of the raw XRANGE rate; RSS growth < 100 MB.
 */
import { rmSync } from 'node:fs';
import { get } from 'node:http';
import Redis from 'ioredis';
import { canonicalize } from '../src/domain/jcs';
import { RedisRegionLog } from '../src/adapters/redis/region-log';
import type { AppendInput } from '../src/ports/region-log';
import { makeFixture, benchContent } from './lib/fixture';
import { rssOf, startScript, type RunningProcess } from './lib/node';
import { REDIS_URL, productionEnv } from './lib/targets';
import { deleteKeysWithPrefix } from '../src/adapters/redis/client';
import { appendInputOf } from '../src/ingest/pipeline';
import { contentHashOf } from '../src/domain/signature';

const ALERTS = Number(process.env.BENCH_ALERTS ?? 100_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const XRANGE_BATCH = 1000;

interface Pass {
  alerts: number;
  bytes: number;
  ms: number;
}

const MB = 1024 * 1024;
const rate = (p: Pass) => ({ perS: (p.alerts / p.ms) * 1000, mbPerS: (p.bytes / MB / p.ms) * 1000 });
const best = (passes: Pass[]) => passes.reduce((a, b) => (rate(b).perS > rate(a).perS ? b : a));

/** Appends signed alerts through the RegionLog adapter, in pipelined groups. */
async function fill(log: RedisRegionLog, fx: ReturnType<typeof makeFixture>): Promise<number> {
  const group = 1000;
  let bytes = 0;
  const started = Date.now();
  for (let n = 0; n < ALERTS; n += group) {
    const inputs: AppendInput[] = [];
    for (let i = n; i < Math.min(ALERTS, n + group); i++) {
      const sub = fx.sign(benchContent(fx.region));
      const input = appendInputOf(sub, contentHashOf(canonicalize(sub.content)));
      bytes += input.body.length;
      inputs.push(input);
    }
    const outcomes = await Promise.all(inputs.map((inp) => log.append(inp)));
    if (outcomes.some((o) => o.outcome !== 'appended')) throw new Error('an append was not accepted');
    if ((n / group) % 10 === 9) process.stdout.write(`  filled ${n + group} (${((Date.now() - started) / 1000).toFixed(1)} s)\n`);
  }
  return bytes / ALERTS;
}

/** The whole stream by XRANGE, 1,000 entries per call, as the log adapter reads it. */
async function rawXrange(redis: Redis, key: string): Promise<Pass> {
  const started = process.hrtime.bigint();
  let alerts = 0;
  let bytes = 0;
  let from = '-';
  for (;;) {
    const batch = await redis.xrange(key, from, '+', 'COUNT', XRANGE_BATCH);
    if (batch.length === 0) break;
    for (const [, fields] of batch) {
      alerts++;
      for (const f of fields) bytes += f.length;
    }
    from = '(' + batch[batch.length - 1][0];
  }
  return { alerts, bytes, ms: Number(process.hrtime.bigint() - started) / 1e6 };
}

/** The same range through the RegionLog adapter (what the node reads with), 1,000 per call. */
async function adapterRead(log: RedisRegionLog, region: string): Promise<Pass> {
  const started = process.hrtime.bigint();
  let alerts = 0;
  let bytes = 0;
  for (let after = 0; ;) {
    const { entries } = await log.read(region, after, XRANGE_BATCH);
    if (entries.length === 0) break;
    alerts += entries.length;
    for (const e of entries) bytes += e.body.length + e.receivedAt.length;
    after = entries[entries.length - 1].seq;
  }
  return { alerts, bytes, ms: Number(process.hrtime.bigint() - started) / 1e6 };
}

/**
 * GET .../alerts with Accept: application/x-ndjson, reading and counting every line. The client is
 * node:http, the leanest HTTP client at hand: every process here shares two cores, and fetch
 * (undici) spends more than twice its CPU per line (3.8 against 1.5 µs), which the node under
 * test would pay for in throughput.
 */
function exportNdjson(node: RunningProcess, region: string, token: string, onTick: () => void): Promise<Pass> {
  const started = process.hrtime.bigint();
  return new Promise<Pass>((resolve, reject) => {
    const req = get(
      `${node.url}/v1/regions/${region}/alerts?after=0&purpose=bench`,
      { headers: { authorization: `Bearer ${token}`, accept: 'application/x-ndjson' } },
      (res) => {
        if (res.statusCode !== 200) {
          res.resume();
          reject(new Error(`export answered ${res.statusCode}`));
          return;
        }
        let alerts = 0;
        let bytes = 0;
        let lastTick = Date.now();
        res.on('data', (chunk: Buffer) => {
          bytes += chunk.byteLength;
          for (let i = chunk.indexOf(0x0a); i !== -1; i = chunk.indexOf(0x0a, i + 1)) alerts++;
          if (Date.now() - lastTick > 20) {
            lastTick = Date.now();
            onTick();
          }
        });
        res.on('end', () => resolve({ alerts, bytes, ms: Number(process.hrtime.bigint() - started) / 1e6 }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
  });
}

async function main(): Promise<void> {
  const fx = makeFixture();
  const prefix = `cordon-bench-replay-${Date.now()}:`;
  const redis = new Redis(REDIS_URL);
  const writer = new Redis(REDIS_URL, { enableAutoPipelining: true });
  const log = new RedisRegionLog(writer, { prefix });
  let node: RunningProcess | undefined;
  try {
    process.stdout.write(`filling ${fx.region} with ${ALERTS} signed alerts...\n`);
    const avg = await fill(log, fx);
    process.stdout.write(`average stored body ${avg.toFixed(0)} bytes\n`);

    node = await startScript('dist/src/server.js', productionEnv(fx, prefix, `benchreplay${Date.now()}`));
    const pid = node.proc.pid!;
    const token = fx.token({ role: 'ops', sub: 'bench-ops', clearance: 'secret' });

    const key = `${prefix}{${fx.region}}:log`;
    const reader = new RedisRegionLog(redis, { prefix });
    const raws: Pass[] = [];
    const adapter: Pass[] = [];
    const exports: Pass[] = [];
    let baseline = 0;
    let peak = 0;
    const sample = () => {
      void rssOf(pid).then((r) => {
        peak = Math.max(peak, r);
      });
    };
    for (let run = 0; run <= RUNS; run++) {
      // Run 0 warms up both sides (JIT, script cache, connections) and is not counted.
      const raw = await rawXrange(redis, key);
      const viaLog = await adapterRead(reader, fx.region);
      if (run === 0) {
        await new Promise((r) => setTimeout(r, 200));
        baseline = await rssOf(pid);
        peak = baseline;
      }
      const timer = setInterval(sample, 10);
      const exp = await exportNdjson(node, fx.region, token, sample);
      clearInterval(timer);
      sample();
      if (exp.alerts !== ALERTS || raw.alerts !== ALERTS) {
        throw new Error(`expected ${ALERTS} alerts, exported ${exp.alerts}, XRANGE read ${raw.alerts}`);
      }
      const label = run === 0 ? 'warm-up' : `run ${run}`;
      process.stdout.write(
        `${label.padEnd(8)} XRANGE ${rate(raw).perS.toFixed(0).padStart(7)} alerts/s ${rate(raw).mbPerS.toFixed(1).padStart(6)} MB/s` +
          `   RegionLog.read ${rate(viaLog).perS.toFixed(0).padStart(7)} alerts/s` +
          `   export ${rate(exp).perS.toFixed(0).padStart(7)} alerts/s ${rate(exp).mbPerS.toFixed(1).padStart(6)} MB/s\n`,
      );
      if (run > 0) {
        raws.push(raw);
        adapter.push(viaLog);
        exports.push(exp);
      }
    }
    await new Promise((r) => setTimeout(r, 50));
    const r = rate(best(raws));
    const a = rate(best(adapter));
    const e = rate(best(exports));
    const growth = (peak - baseline) / MB;
    process.stdout.write(`\nreplay export of ${ALERTS} alerts (best of ${RUNS})\n`);
    process.stdout.write(`raw XRANGE (batches of ${XRANGE_BATCH})  ${r.perS.toFixed(0)} alerts/s  ${r.mbPerS.toFixed(1)} MB/s\n`);
    process.stdout.write(`RegionLog.read (Lua, 1000/call)  ${a.perS.toFixed(0)} alerts/s  ${a.mbPerS.toFixed(1)} MB/s\n`);
    process.stdout.write(`NDJSON export over HTTP         ${e.perS.toFixed(0)} alerts/s  ${e.mbPerS.toFixed(1)} MB/s\n`);
    process.stdout.write(`ratio export / XRANGE: ${((e.perS / r.perS) * 100).toFixed(1)}% (target >= 50%)\n`);
    process.stdout.write(`ratio export / RegionLog.read: ${((e.perS / a.perS) * 100).toFixed(1)}%\n`);
    process.stdout.write(
      `node RSS: ${(baseline / MB).toFixed(0)} MB before, peak ${(peak / MB).toFixed(0)} MB, growth ${growth.toFixed(1)} MB (target < 100 MB)\n`,
    );
  } finally {
    await node?.stop();
    // Remove this run's keys (never flush the database).
    await deleteKeysWithPrefix(redis, prefix);
    await redis.quit();
    await writer.quit();
    rmSync(fx.dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
