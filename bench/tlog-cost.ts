/*
 * bench/tlog-cost: the event-loop CPU the transparency log adds per alert, measured as CPU time of
 * this process (process.cpuUsage), so it holds on a busy machine where throughput figures do not.
 *
 * Each alert goes through what ingest does after the signature check: the region log's append,
 * the `published` audit record, and, with the log on, the leaf hash from the signature check's
 * RFC 8785 form, the audit record's leaf, and integration (tiles, checkpoints) behind them, as a
 * node runs it (src/tlog/service.ts, default integration delay), at a paced rate. Run with the
 * log off and on, on memory stores and on Redis (the tree's tiles and checkpoints in Redis).
 *
 *   npm run bench:tlog-cost          (BENCH_ALERTS=30000 BENCH_RATE=3000 by default)
 *
 * The ingest target (log on >= 95% of log off) leaves the log about 5% of ingest's CPU: with
 * about 220 µs of node CPU per alert (bench/ingest), some 11 µs.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import pino from 'pino';
import { MemoryRegionLog } from '../src/adapters/memory/region-log';
import { MemoryAuditLog } from '../src/adapters/memory/audit-log';
import { MemoryTreeStore } from '../src/adapters/memory/tree-store';
import { RedisRegionLog } from '../src/adapters/redis/region-log';
import { RedisAuditLog } from '../src/adapters/redis/audit-log';
import { RedisTreeStore } from '../src/adapters/redis/tree-store';
import { createRedisClient, deleteKeysWithPrefix, quitClient } from '../src/adapters/redis/client';
import { TransparencyLog, auditFeedingTree } from '../src/tlog/service';
import { noteSigner, SIG_ED25519 } from '../src/domain/tlog/note';
import { alertLeafHash } from '../src/tlog/leaves';
import { canonicalize } from '../src/domain/jcs';
import { appendInputOf } from '../src/ingest/pipeline';
import { makeFixture, benchContent } from './lib/fixture';
import { REDIS_URL } from './lib/targets';
import type { AuditLog } from '../src/ports/audit-log';
import type { RegionLog } from '../src/ports/region-log';
import type { TreeStore } from '../src/ports/tree-store';

const ALERTS = Number(process.env.BENCH_ALERTS ?? 30_000);
const RATE = Number(process.env.BENCH_RATE ?? 3_000);
/** e.g. BENCH_ONLY=memory-on: one configuration (to profile it with --cpu-prof) */
const ONLY = process.env.BENCH_ONLY;

interface Stores {
  regionLog: RegionLog;
  audit: AuditLog;
  tree: TreeStore;
  close(): Promise<void>;
}

async function run(
  label: string,
  stores: Stores,
  logOn: boolean,
  alerts: { sub: ReturnType<ReturnType<typeof makeFixture>['sign']>; canonical: Buffer }[],
): Promise<number> {
  const { regionLog } = stores;
  let audit = stores.audit;
  let tlog: TransparencyLog | undefined;
  if (logOn) {
    tlog = new TransparencyLog({
      regionLog,
      audit,
      store: stores.tree,
      signer: noteSigner('cordon.bench', SIG_ED25519, generateKeyPairSync('ed25519').privateKey),
      originPrefix: 'cordon.bench',
      regions: [alerts[0].sub.content.region],
      log: pino({ level: 'warn' }),
    });
    tlog.start();
    audit = auditFeedingTree(audit, tlog);
  }
  const burst = Math.max(1, Math.round(RATE / 100));
  const started = Date.now();
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < alerts.length; i += burst) {
    // Paced as ingest at RATE alerts/s: bursts every 10 ms, each alert appended and audited.
    const wait = started + (i / RATE) * 1000 - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    await Promise.all(
      alerts.slice(i, i + burst).map(async ({ sub, canonical }) => {
        const out = await regionLog.append(appendInputOf(sub, `h${i}`));
        if (out.outcome !== 'appended') throw new Error(`append: ${out.outcome}`);
        const entry = out.entry;
        tlog?.appended(entry, () => alertLeafHash(entry, canonical, sub.sig));
        await audit.append({
          kind: 'published',
          actor: `KG/${sub.content.id}`,
          state: 'KG',
          kid: 'kg-alert',
          id: sub.content.id,
          modified: sub.content.modified,
          region: entry.region,
          seq: entry.seq,
          epoch: entry.epoch,
          audience: { states: sub.content.audience.states, min_clearance: sub.content.audience.min_clearance },
        });
      }),
    );
  }
  await tlog?.settle(60_000);
  const cpu = process.cpuUsage(cpu0);
  await tlog?.close();
  const us = (cpu.user + cpu.system) / alerts.length;
  process.stdout.write(`${label.padEnd(34)} ${us.toFixed(1).padStart(7)} µs CPU per alert (${((Date.now() - started) / 1000).toFixed(1)} s)\n`);
  return us;
}

async function main(): Promise<void> {
  const fx = makeFixture();
  process.stdout.write(`signing ${ALERTS} alerts...\n`);
  // Distinct alerts per run: the log refuses a second version with the same modified.
  const make = () =>
    Array.from({ length: ALERTS }, () => {
      const sub = fx.sign(benchContent(fx.region));
      return { sub, canonical: Buffer.from(canonicalize(sub.content), 'utf8') };
    });
  const figures: Record<string, number> = {};
  for (const backend of ['memory', 'redis'] as const) {
    for (const logOn of [false, true]) {
      if (ONLY && ONLY !== `${backend}-${logOn ? 'on' : 'off'}`) continue;
      const prefix = `cordon-bench-tlogcost-${randomBytes(4).toString('hex')}:`;
      const redis = backend === 'redis' ? createRedisClient(REDIS_URL) : undefined;
      const stores: Stores = redis
        ? {
            regionLog: new RedisRegionLog(redis, { prefix }),
            audit: new RedisAuditLog(redis, { prefix }),
            tree: new RedisTreeStore(redis, { prefix }),
            close: async () => {
              await deleteKeysWithPrefix(redis, prefix);
              await quitClient(redis);
            },
          }
        : { regionLog: new MemoryRegionLog(), audit: new MemoryAuditLog(), tree: new MemoryTreeStore(), close: async () => undefined };
      try {
        figures[`${backend} ${logOn}`] = await run(`${backend}, transparency log ${logOn ? 'on' : 'off'}`, stores, logOn, make());
      } finally {
        await stores.close();
      }
    }
    const added = figures[`${backend} true`] - figures[`${backend} false`];
    if (!ONLY) process.stdout.write(`${backend}: the log adds ${added.toFixed(1)} µs of event-loop CPU per alert\n`);
  }
}

main().catch((err) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
