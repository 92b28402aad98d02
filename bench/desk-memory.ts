/*
 * bench/desk-memory: what an idle desk costs a Cordon node, by the slope. For each count (1,000,
 * 2,000, 4,000 desks by default) a fresh production node (Redis + NATS) is started, collected
 * (full GC) and measured, the desks connect and subscribe to one region and sit idle, and the node
 * is collected and measured again. Prints RSS and V8 heap per desk at each count, and the marginal
 * cost of one more desk from the first to the last count.
 *
 * Why the slope: the first burst of connections grows V8's young generation once, to its working
 * size (up to 32 MB, whatever the number of desks); divided by 1,000 desks that fixed cost reads
 * as ~12 KB "per desk", divided by 4,000 as ~3 KB. The slope is what each desk really holds.
 * bench/fanout prints the same figures at 1,000 desks, against a baseline taken after a first
 * 1,000 desks came and went.
 *
 *   npm run bench:desk-memory      (BENCH_DESK_COUNTS=1000,2000,4000 BENCH_WORKERS=4)
 */
import { makeFixture } from './lib/fixture';
import { rssOf } from './lib/node';
import { DeskPool } from './lib/desk-pool';
import { cordonTarget } from './lib/targets';

const COUNTS = (process.env.BENCH_DESK_COUNTS ?? '1000,2000,4000').split(',').map(Number);
const WORKERS = Number(process.env.BENCH_WORKERS ?? 4);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const kb = (bytes: number) => (bytes / 1024).toFixed(1);

interface Row {
  desks: number;
  rss: number;
  heap: number;
}

async function measure(desks: number): Promise<Row> {
  const fx = makeFixture();
  // Nothing is published: the node only holds idle, subscribed desks.
  const target = await cordonTarget(fx, () => '');
  const pool = await DeskPool.start(WORKERS);
  try {
    await sleep(1000);
    const heap0 = await target.gc();
    const rss0 = await rssOf(target.pid);
    const conn = await pool.connect(target.connect, desks, target.perWorker);
    if (conn.failed > 0) throw new Error(`${conn.failed} desks failed to connect: ${conn.errors.join('; ')}`);
    await sleep(2000);
    const heap1 = await target.gc();
    const rss1 = await rssOf(target.pid);
    const row = { desks, rss: (rss1 - rss0) / desks, heap: (heap1 - heap0) / desks };
    process.stdout.write(`${String(desks).padStart(6)} desks: RSS ${kb(row.rss).padStart(5)} KB per desk, V8 heap ${kb(row.heap).padStart(5)} KB per desk\n`);
    return row;
  } finally {
    await pool.close();
    await target.stop();
  }
}

async function main(): Promise<void> {
  process.stdout.write('idle desk memory of one Cordon node (after a full GC, against the same node before any desk)\n');
  const rows: Row[] = [];
  for (const n of COUNTS) rows.push(await measure(n));
  const first = rows[0];
  const last = rows[rows.length - 1];
  if (rows.length > 1) {
    const slope = (last.rss * last.desks - first.rss * first.desks) / (last.desks - first.desks);
    const fixed = first.rss * first.desks - slope * first.desks;
    process.stdout.write(
      `marginal RSS of one more idle desk (${first.desks} → ${last.desks}): ${kb(slope)} KB (target <= 16 KB); ` +
        `fixed cost of the first burst: ${(fixed / 2 ** 20).toFixed(1)} MiB\n`,
    );
  }
}

main().catch((err) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
