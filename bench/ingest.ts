/*
 * bench/ingest: one production node (Redis + NATS) under signed alerts over HTTP, 50 concurrent
 * connections, against the ceiling measured in the same run: a bare Fastify route that only
 * parses the body and verifies the Ed25519 signature.
 *
 *   npm run bench:ingest            (BENCH_DURATION_S=20 BENCH_CONNECTIONS=50 by default)
 */
import { cpus, loadavg } from 'node:os';
import autocannon from 'autocannon';
import Redis from 'ioredis';
import { deleteKeysWithPrefix } from '../src/adapters/redis/client';
import { makeFixture, benchContent } from './lib/fixture';
import { cpuMsOf, startScript, type RunningProcess } from './lib/node';
import { REDIS_URL, productionEnv } from './lib/targets';

const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 20);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);
/** Enough distinct signed alerts that none is resubmitted at up to this rate. */
const MAX_RATE = Number(process.env.BENCH_MAX_RATE ?? 9000);

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
    `machine: ${cpus().length} × ${cpus()[0]?.model ?? '?'}, Node ${process.version}, load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}; ` +
      `node with CORDON_VERIFY_THREADS=${process.env.CORDON_VERIFY_THREADS ?? '1 (default)'}\n`,
  );
  if (loadavg()[0] > 1) process.stdout.write('WARNING: the machine is busy before the run; figures will be noisy\n');
  process.stdout.write(`signing ${count} distinct alerts of ~1.5 KB...\n`);
  const bodies: string[] = new Array(count);
  for (let n = 0; n < count; n++) bodies[n] = JSON.stringify(fx.sign(benchContent(fx.region)));
  process.stdout.write(`body size ${Buffer.byteLength(bodies[0])} bytes\n`);

  let node: RunningProcess | undefined;
  let bare: RunningProcess | undefined;
  const redis = new Redis(REDIS_URL);
  try {
    node = await startScript('dist/src/server.js', productionEnv(fx, prefix, `bench${Date.now()}`));
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
    const cordon = await load('cordon (Redis + NATS)', node.url, bodies, node.proc.pid);
    const redisUsPerReq = ((await redisCpuMs()) - redisBefore) * 1000 / Math.max(1, cordon.ok);
    const top = Number(await redis.hget(`${prefix}{${fx.region}}:meta`, 'seq'));
    await node.stop();
    node = undefined;

    // The same node with the transparency log off (contract §12 asks for >= 95% of this).
    node = await startScript('dist/src/server.js', { ...productionEnv(fx, prefixOff, `bench-off${Date.now()}`), CORDON_LOG_TREE: 'false' });
    await load('warm-up', node.url, bodies.slice(-5000, -1));
    const logOff = await load('cordon, transparency log off', node.url, bodies, node.proc.pid);
    await node.stop();
    node = undefined;

    const x = (fx.publicKey.export({ format: 'jwk' }) as { x: string }).x;
    bare = await startScript('dist/bench/lib/bare-verify-server.js', { BENCH_PUBLIC_X: x });
    await load('warm-up', bare.url, bodies.slice(0, 5000));
    const ceiling = await load('bare parse + verify route', bare.url, bodies, bare.proc.pid);

    const row = (f: Figures) =>
      `${f.label.padEnd(28)} ${f.rps.toFixed(0).padStart(7)} /s   p50 ${String(f.p50).padStart(4)} ms   p99 ${String(
        f.p99,
      ).padStart(4)} ms   server CPU ${f.cpuUsPerReq?.toFixed(0) ?? '?'} µs/req   2xx ${f.ok}  non-2xx ${f.non2xx}  errors ${f.errors}`;
    process.stdout.write(`\ningest, ${CONNECTIONS} connections, ${DURATION_S} s each\n`);
    process.stdout.write(row(cordon) + '\n' + row(logOff) + '\n' + row(ceiling) + '\n');
    process.stdout.write(`ratio log on / log off: ${((cordon.rps / logOff.rps) * 100).toFixed(1)}% (target >= 95%)\n`);
    process.stdout.write(`ratio cordon / ceiling: ${((cordon.rps / ceiling.rps) * 100).toFixed(1)}% (target >= 80%)\n`);
    process.stdout.write(
      `server CPU per accepted alert: cordon ${cordon.cpuUsPerReq?.toFixed(0)} µs (+ Redis ${redisUsPerReq.toFixed(0)} µs), ` +
        `ceiling ${ceiling.cpuUsPerReq?.toFixed(0)} µs (measured from /proc and INFO: independent of other load)\n`,
    );
    process.stdout.write(`cordon p99 ${cordon.p99} ms (target < 50 ms); region log top seq ${top} (accepted ${cordon.ok + 0} + warm-up)\n`);
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
