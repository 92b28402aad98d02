import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import { DeskStream, type DeskEvent } from '../src/cli/tail';
import { RedisRegionLog } from '../src/adapters/redis/region-log';
import type { Submission } from '../src/domain/types';
import { benchContent, makeFixture } from './lib/fixture';
import { freePort, percentile } from './lib/node';
import { NatsProc, NodeProc, RedisProc, StallProxy } from './lib/chaos-procs';

/**
 * A chaos run (a script, not a test): three Cordon nodes on their own Redis (AOF, appendfsync
 * always) and their own NATS, a steady signed publisher (HTTP, round-robin over the nodes,
 * resubmitting the identical submission on 503/504 or a dropped connection) and desks on every
 * node (WebSocket, resuming from their last position on any node). Meanwhile it kills a node every
 * 15 s (SIGKILL, restart), restarts NATS, restarts Redis (AOF), restarts Redis from an older RDB
 * snapshot, and stalls one node's Redis link. At the end it prints, over every receipted alert:
 * lost, duplicated, out of order, silent gaps, and the recovery time after each fault.
 *
 *   npm run bench:chaos                   (about 2 minutes)
 *   CHAOS_DURATION_S=300 CHAOS_RATE=20 CHAOS_DESKS_PER_NODE=2 npm run bench:chaos
 */

const DURATION_S = Number(process.env.CHAOS_DURATION_S ?? 120);
const RATE = Number(process.env.CHAOS_RATE ?? 20); // submissions per second
const DESKS_PER_NODE = Number(process.env.CHAOS_DESKS_PER_NODE ?? 2);
const KILL_EVERY_MS = Number(process.env.CHAOS_KILL_EVERY_S ?? 15) * 1000;
const STALL_MS = Number(process.env.CHAOS_STALL_MS ?? 5000);
const DRAIN_MS = 15_000;
const PREFIX = 'chaos:';

const t0 = Date.now();
const since = () => ((Date.now() - t0) / 1000).toFixed(1).padStart(6);
const say = (msg: string) => process.stdout.write(`[${since()} s] ${msg}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Published {
  id: string;
  sub: Submission;
  firstSentAt: number;
  receiptAt?: number;
  receipt?: { seq: number; epoch: string; status: number };
  attempts: number;
  /** codes and transport errors met on the way, in order */
  answers: string[];
  finalError?: string;
}

interface Delivery {
  at: number;
  kind: 'alert' | 'gap' | 'subscribed' | 'closed' | 'open';
  id?: string;
  seq?: number;
  epoch?: string | null;
  from?: number;
  to?: number;
  reason?: string;
  code?: number;
  url?: string;
}

interface Fault {
  name: string;
  at: number;
  end?: number;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'cordon-chaos-'));
  const fx = makeFixture();
  say(`chaos run for ${DURATION_S} s at ${RATE}/s, ${DESKS_PER_NODE} desks per node; files in ${dir}`);

  const redis = new RedisProc(await freePort(), join(dir, 'redis'));
  const nats = new NatsProc(await freePort(), dir);
  await redis.start();
  await nats.start();
  const proxy = new StallProxy(redis.port);
  await proxy.start();

  const common = {
    CORDON_NATS_URL: nats.url,
    CORDON_TRUST_STORE: fx.trustPath,
    CORDON_REGIONS: fx.regionsPath,
    CORDON_REDIS_KEY_PREFIX: PREFIX,
    CORDON_NATS_SUBJECT_PREFIX: 'chaos',
    CORDON_RATE_LIMIT_MAX: '0',
    CORDON_POSITION_CHECK_MS: '500',
    CORDON_LOG_LEVEL: 'warn',
  };
  const nodes: NodeProc[] = [];
  for (let i = 0; i < 3; i++) {
    // node 0 reaches Redis through the proxy whose link the run stalls
    nodes.push(new NodeProc(i, await freePort(), { ...common, CORDON_REDIS_URL: i === 0 ? proxy.url : redis.url }, dir));
  }
  await Promise.all(nodes.map((n) => n.start()));
  const urls = nodes.map((n) => n.url);
  say(`redis :${redis.port} (AOF always), nats :${nats.port}, nodes ${nodes.map((n) => n.port).join(' ')}; node 0 via stall proxy :${proxy.port}`);

  // ---- desks ----------------------------------------------------------------------------------
  const desks: Array<{ name: string; stream: DeskStream; log: Delivery[] }> = [];
  for (let n = 0; n < 3; n++) {
    for (let k = 0; k < DESKS_PER_NODE; k++) {
      const log: Delivery[] = [];
      const order = [...urls.slice(n), ...urls.slice(0, n)];
      const stream = new DeskStream({
        urls: order,
        token: fx.token({ sub: `chaos-desk-${n}-${k}`, exp: Math.floor(Date.now() / 1000) + 2 * 3600 }),
        regions: [fx.region],
        positions: { [fx.region]: { seq: 0 } },
        backoff: { initialMs: 100, maxMs: 1000 },
        onEvent(e: DeskEvent) {
          const at = Date.now();
          if (e.type === 'alert') log.push({ at, kind: 'alert', id: e.alert.content.id, seq: e.alert.seq, epoch: e.alert.epoch });
          else if (e.type === 'gap') log.push({ at, kind: 'gap', from: e.frame.from, to: e.frame.to, epoch: e.frame.epoch, reason: e.frame.reason });
          else if (e.type === 'subscribed') log.push({ at, kind: 'subscribed', seq: e.frame.seq, epoch: e.frame.epoch });
          else if (e.type === 'closed') log.push({ at, kind: 'closed', code: e.code, url: e.url });
          else if (e.type === 'open') log.push({ at, kind: 'open', url: e.url });
        },
      }).start();
      desks.push({ name: `desk ${n}.${k}`, stream, log });
    }
  }

  // ---- publisher ------------------------------------------------------------------------------
  const published: Published[] = [];
  let rr = 0;
  let publishing = true;
  const inFlight = new Set<Promise<void>>();

  async function publishOne(p: Published): Promise<void> {
    const body = JSON.stringify(p.sub);
    const deadline = p.firstSentAt + 60_000;
    while (Date.now() < deadline) {
      const url = urls[rr++ % urls.length];
      p.attempts++;
      try {
        const res = await fetch(`${url}/v1/alerts`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body,
          signal: AbortSignal.timeout(10_000),
        });
        const json = (await res.json()) as { seq?: number; epoch?: string; code?: string };
        if (res.status === 201 || res.status === 200) {
          p.receipt = { seq: json.seq!, epoch: json.epoch!, status: res.status };
          p.receiptAt = Date.now();
          p.answers.push(String(res.status));
          return;
        }
        p.answers.push(`${res.status} ${json.code ?? ''}`);
        if (res.status !== 503 && res.status !== 504) {
          p.finalError = `${res.status} ${json.code ?? ''}`;
          return;
        }
      } catch (err) {
        const cause = (err as { cause?: { code?: string } }).cause;
        p.answers.push(`transport ${cause?.code ?? (err as Error).name}`);
      }
      await sleep(150);
    }
    p.finalError = 'gave up after 60 s';
  }

  const publisher = setInterval(() => {
    if (!publishing) return;
    const sub = fx.sign(benchContent(fx.region, 800));
    const p: Published = { id: sub.content.id, sub, firstSentAt: Date.now(), attempts: 0, answers: [] };
    published.push(p);
    const job = publishOne(p).finally(() => inFlight.delete(job));
    inFlight.add(job);
  }, 1000 / RATE);

  // ---- faults ---------------------------------------------------------------------------------
  const faults: Fault[] = [];
  const snapshotPath = join(dir, 'older.rdb');
  const plan: Array<{ atFrac: number; name: string; run: () => Promise<void> }> = [
    { atFrac: 0.1, name: 'snapshot taken (RDB)', run: () => redis.snapshot(snapshotPath) },
    {
      atFrac: 0.29,
      name: 'NATS restarted',
      run: async () => {
        await nats.kill();
        await sleep(2000);
        await nats.start();
      },
    },
    {
      atFrac: 0.42,
      name: 'Redis restarted (AOF)',
      run: async () => {
        await redis.kill();
        await sleep(1000);
        await redis.start();
      },
    },
    {
      atFrac: 0.58,
      name: `node 0 Redis link stalled ${STALL_MS} ms`,
      run: async () => {
        proxy.stall();
        await sleep(STALL_MS);
        proxy.heal();
      },
    },
    {
      atFrac: 0.71,
      name: 'Redis restarted from the older snapshot',
      run: async () => {
        await redis.kill();
        await sleep(1000);
        await redis.start(snapshotPath);
      },
    },
  ];
  const runFault = async (name: string, fn: () => Promise<void>) => {
    const f: Fault = { name, at: Date.now() };
    faults.push(f);
    say(`fault: ${name}`);
    try {
      await fn();
    } catch (err) {
      say(`fault ${name} failed: ${(err as Error).message}`);
    }
    f.end = Date.now();
  };
  const timers = plan.map((p) => setTimeout(() => void runFault(p.name, p.run), p.atFrac * DURATION_S * 1000));
  let victim = 0;
  const killer = setInterval(() => {
    const n = nodes[victim++ % nodes.length];
    void runFault(`node ${n.index} killed (SIGKILL) and restarted`, async () => {
      await n.kill();
      await sleep(1000);
      await n.start();
    });
  }, KILL_EVERY_MS);

  await sleep(DURATION_S * 1000);
  clearInterval(killer);
  for (const t of timers) clearTimeout(t);
  publishing = false;
  clearInterval(publisher);
  say(`publishing stopped; ${inFlight.size} submissions still being retried`);
  await Promise.all([...inFlight]);
  // every node up again (a kill may have been under way)
  for (const n of nodes) if (!n.proc || n.proc.exitCode !== null || n.proc.signalCode !== null) await n.start().catch(() => undefined);
  say(`waiting ${DRAIN_MS / 1000} s for desks to catch up`);
  await sleep(DRAIN_MS);
  for (const d of desks) await d.stream.stop();

  // ---- the durable log ------------------------------------------------------------------------
  const admin = new Redis(redis.url, { maxRetriesPerRequest: 1 });
  const log = new RedisRegionLog(admin as never, { prefix: PREFIX });
  const held = new Map<string, { seq: number; epoch: string }>();
  let after = 0;
  for (;;) {
    const r = await log.read(fx.region, after, 500);
    for (const e of r.entries) held.set((JSON.parse(e.body) as Submission).content.id, { seq: e.seq, epoch: r.epoch ?? '' });
    if (r.entries.length === 0) break;
    after = r.entries[r.entries.length - 1].seq;
  }
  const state = await log.state(fx.region);
  admin.disconnect();

  report({ published, desks, faults, held, state, rate: RATE });

  await Promise.all(nodes.map((n) => n.kill('SIGTERM')));
  await nats.kill();
  await redis.kill();
  await proxy.close();
  if (!process.env.CHAOS_KEEP) rmSync(dir, { recursive: true, force: true });
  else say(`kept ${dir}`);
}

function report(r: {
  published: Published[];
  desks: Array<{ name: string; log: Delivery[] }>;
  faults: Fault[];
  held: Map<string, { seq: number; epoch: string }>;
  state: { epoch: string | null; latest: number; earliest: number };
  rate: number;
}): void {
  const receipted = r.published.filter((p) => p.receipt);
  const receiptedIds = new Set(receipted.map((p) => p.id));
  const failed = r.published.filter((p) => !p.receipt);
  const lostFromLog = receipted.filter((p) => !r.held.has(p.id));
  const answers = new Map<string, number>();
  for (const p of r.published) for (const a of p.answers) if (a !== '201' && a !== '200') answers.set(a, (answers.get(a) ?? 0) + 1);
  // A 503 that said "nothing was accepted" for a submission whose retry came back 200 (already held).
  const unavailableButAccepted = receipted.filter((p) => p.receipt!.status === 200 && p.answers.some((a) => a.startsWith('503'))).length;
  const unknownThenReceipted = receipted.filter((p) => p.answers.some((a) => a.startsWith('504'))).length;
  const latencies = receipted.map((p) => p.receiptAt! - p.firstSentAt).sort((a, b) => a - b);

  let lost = 0;
  let lostAnnounced = 0;
  let duplicated = 0;
  let gapFrames = 0;
  let outOfOrder = 0;
  let silentGaps = 0;
  let silentEpochChanges = 0;
  let reused = 0;
  let reusedVsLog = 0;
  const logAt = new Map<string, string>();
  for (const [id, pos] of r.held) logAt.set(`${pos.epoch}:${pos.seq}`, id);
  const deskLines: string[] = [];
  const firstSeen = new Map<string, number>(); // per desk+id, for recovery
  for (const d of r.desks) {
    const seen = new Map<string, number>();
    const atPos = new Map<string, string>(); // epoch:seq -> id
    let prev: { seq: number; epoch: string | null | undefined } | undefined;
    let announced = false; // a gap frame since the previous alert
    let dLost = 0;
    let dDup = 0;
    let dOoo = 0;
    let dSilent = 0;
    let dGaps = 0;
    for (const e of d.log) {
      if (e.kind === 'gap') {
        announced = true;
        dGaps++;
        continue;
      }
      if (e.kind !== 'alert') continue;
      const id = e.id!;
      seen.set(id, (seen.get(id) ?? 0) + 1);
      if (!firstSeen.has(`${d.name}|${id}`)) firstSeen.set(`${d.name}|${id}`, e.at);
      const pos = `${e.epoch}:${e.seq}`;
      const other = atPos.get(pos);
      if (other !== undefined && other !== id) reused++;
      const inLog = logAt.get(pos);
      if (inLog !== undefined && inLog !== id) reusedVsLog++;
      atPos.set(pos, id);
      if (prev) {
        if (prev.epoch === e.epoch) {
          if (e.seq! <= prev.seq) dOoo++;
          else if (e.seq! > prev.seq + 1 && !announced) dSilent++;
        } else if (!announced) {
          silentEpochChanges++;
        }
      }
      prev = { seq: e.seq!, epoch: e.epoch };
      announced = false;
    }
    for (const id of receiptedIds) {
      if (!seen.has(id)) {
        dLost++;
        if (!r.held.has(id)) lostAnnounced++;
      }
    }
    for (const n of seen.values()) if (n > 1) dDup += n - 1;
    lost += dLost;
    gapFrames += dGaps;
    duplicated += dDup;
    outOfOrder += dOoo;
    silentGaps += dSilent;
    const reconnects = d.log.filter((e) => e.kind === 'open').length - 1;
    deskLines.push(
      `  ${d.name}: ${seen.size} alerts, lost ${dLost}, duplicated ${dDup}, out of order ${dOoo}, silent gaps ${dSilent}, gap frames ${dGaps}, reconnects ${reconnects}`,
    );
  }

  // Recovery: from a fault until (publish) the first receipt of a submission first sent after it,
  // and (deliver) every desk has an alert first sent after it.
  const faultLines: string[] = [];
  for (const f of r.faults) {
    if (f.name.startsWith('snapshot')) continue;
    const start = f.at;
    const after = receipted.filter((p) => p.firstSentAt >= start).sort((a, b) => a.receiptAt! - b.receiptAt!);
    const publishMs = after.length ? after[0].receiptAt! - start : NaN;
    let deliverMs = 0;
    let never = 0;
    for (const d of r.desks) {
      let first = Infinity;
      for (const p of after) {
        const at = firstSeen.get(`${d.name}|${p.id}`);
        if (at !== undefined && at < first) first = at;
      }
      if (first === Infinity) never++;
      else deliverMs = Math.max(deliverMs, first - start);
    }
    faultLines.push(
      `  ${f.name.padEnd(48)} at ${((f.at - t0) / 1000).toFixed(1).padStart(6)} s: publish ok after ${fmt(publishMs)}, ${never ? `${never} of ${r.desks.length} desks got NOTHING sent after it` : `every desk delivering after ${fmt(deliverMs)}`}`,
    );
  }

  const out = [
    '',
    '==== chaos run ====',
    `published ${r.published.length} (${r.rate}/s), receipted ${receipted.length}, not receipted ${failed.length}` +
      (failed.length ? ` (${summarise(failed.map((p) => p.finalError ?? '?'))})` : ''),
    `non-2xx answers and transport errors on the way (retried with the identical submission): ${[...answers.entries()].map(([k, v]) => `${k}: ${v}`).join(', ') || 'none'}`,
    `503 "nothing was accepted" for submissions that were in fact accepted: ${unavailableButAccepted}; 504 OUTCOME_UNKNOWN then receipted: ${unknownThenReceipted}`,
    `receipt latency (first send to receipt, retries included): p50 ${fmt(percentile(latencies, 50))}, p99 ${fmt(percentile(latencies, 99))}, max ${fmt(latencies[latencies.length - 1])}`,
    `region log at the end: epoch ${r.state.epoch}, seqs ${r.state.earliest}..${r.state.latest}, ${r.held.size} alerts; receipted alerts missing from it: ${lostFromLog.length}`,
    '',
    `over ${r.desks.length} desks x ${receipted.length} receipted alerts:`,
    `  lost (receipted, never delivered to the desk) ${lost}: ${lost - lostAnnounced} are in the final log, ${lostAnnounced} are not; gap frames received in all: ${gapFrames}`,
    `  duplicated ${duplicated}`,
    `  out of order ${outOfOrder}`,
    `  silent gaps (seq jump with no gap frame) ${silentGaps}; epoch changes with no gap frame ${silentEpochChanges}`,
    `  one (epoch, seq) delivered with two different alerts ${reused}; delivered (epoch, seq) that the final log holds for another alert ${reusedVsLog}`,
    ...deskLines,
    '',
    'faults and recovery:',
    ...faultLines,
    '',
  ];
  process.stdout.write(out.join('\n'));
}

function fmt(ms: number): string {
  if (!Number.isFinite(ms)) return 'n/a';
  return ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`;
}

function summarise(xs: string[]): string {
  const m = new Map<string, number>();
  for (const x of xs) m.set(x, (m.get(x) ?? 0) + 1);
  return [...m.entries()].map(([k, v]) => `${k}: ${v}`).join(', ');
}

main().catch((err: unknown) => {
  process.stderr.write(`chaos run failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
