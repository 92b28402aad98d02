import { createHash, type Hash } from 'node:crypto';
import type Redis from 'ioredis';
import type { AuditLog } from '../../ports/audit-log';
import type { RegionLog } from '../../ports/region-log';
import { RedisAuditLog } from '../redis/audit-log';
import { RedisRegionLog } from '../redis/region-log';
import { RedisTreeStore } from '../redis/tree-store';
import type { Tile } from '../../domain/tlog/tile';
import type { TreeId, TreeStore } from '../../ports/tree-store';
import { SqliteAuditLog } from './audit-log';
import { SqliteRegionLog } from './region-log';
import type { SqliteStore } from './store';
import { SqliteTreeStore } from './tree-store';

/**
 * Copies the embedded store into Redis, in the Redis adapters' own layout (src/adapters/redis),
 * with the same seqs, epochs, received_at, visibility keys, version records and audit numbers,
 * then reads both sides back through their RegionLog / AuditLog adapters and compares counts and
 * a SHA-256 over every entry and record. The source is read in one read transaction (a
 * consistent snapshot); the target must hold nothing of these regions nor any audit record.
 *
 * The transparency log's trees come along (every tree of the store, old epochs' included: tiles,
 * checkpoint and cosignatures, in RedisTreeStore's layout), compared the same way. A tree is a
 * function of its log, but it cannot be rebuilt from it: retention trims alert bodies, never tree
 * hashes, and the audit tree's published checkpoints and cosignatures must continue unbroken.
 */

export interface RegionReport {
  region: string;
  epoch: string;
  latest: number;
  earliest: number;
  entries: number;
  alerts: number;
  sha256: string;
}

export interface TreeReport {
  tree: TreeId;
  tiles: number;
  /** the checkpoint's size (0: none stored) and its cosignature lines. */
  size: number;
  cosignatures: number;
  sha256: string;
}

export interface MigrationReport {
  regions: RegionReport[];
  audit: { records: number; sha256: string };
  /** null when the store predates the tree tables (schema version 1): the nodes build the trees. */
  trees: TreeReport[] | null;
}

export class MigrationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MigrationError';
  }
}

const BATCH = 500;

interface RegionRow {
  region: string;
  epoch: string;
  seq: number;
  last_ms: number;
}

export async function migrateToRedis(store: SqliteStore, redis: Redis, prefix: string): Promise<MigrationReport> {
  const db = store.db;
  db.exec('BEGIN'); // one snapshot of the source for the copy and the check
  try {
    db.prepare('SELECT 1 FROM region LIMIT 1').get(); // starts the read transaction now
    const regions = db.prepare('SELECT region, epoch, seq, last_ms FROM region ORDER BY region').all() as RegionRow[];
    const auditTop = (db.prepare('SELECT MAX(n) AS n FROM audit').get() as { n: number | null }).n ?? 0;

    // Refuse before writing anything if the target is not empty for what is copied.
    for (const r of regions) {
      if ((await redis.exists(`${prefix}{${r.region}}:meta`, `${prefix}{${r.region}}:log`)) > 0) {
        throw new MigrationError(`Redis already holds region ${r.region} under prefix ${prefix}; nothing was written`);
      }
    }
    if ((await redis.exists(`${prefix}{audit}`, `${prefix}{audit}:n`)) > 0) {
      throw new MigrationError(`Redis already holds an audit trail under prefix ${prefix}; nothing was written`);
    }
    const sourceTrees = store.schemaVersion >= 2 ? new SqliteTreeStore(store) : null;
    const targetTrees = new RedisTreeStore(redis, { prefix });
    const trees = sourceTrees?.trees() ?? [];
    for (const t of trees) {
      if ((await redis.exists(`${targetTrees.treeKey(t)}:cp`)) > 0) {
        throw new MigrationError(`Redis already holds the transparency log tree ${t.tag}/${t.name} under prefix ${prefix}; nothing was written`);
      }
    }

    for (const r of regions) await copyRegion(store, redis, prefix, r);
    await copyAudit(store, redis, prefix, auditTop);
    const treeReports: TreeReport[] = [];
    for (const t of trees) treeReports.push(await copyTree(store, sourceTrees!, targetTrees, t));

    // Read back through the adapters on both sides.
    const source = new SqliteRegionLog(store);
    const target = new RedisRegionLog(redis, { prefix });
    const reports: RegionReport[] = [];
    for (const r of regions) {
      const [a, b] = await Promise.all([source.state(r.region), target.state(r.region)]);
      if (a.epoch !== b.epoch || a.latest !== b.latest || a.earliest !== b.earliest) {
        throw new MigrationError(`region ${r.region}: state differs after the copy (${JSON.stringify(a)} in SQLite, ${JSON.stringify(b)} in Redis)`);
      }
      const [ha, hb] = await Promise.all([
        hashRegion(source, r.region, r.epoch, a.earliest, a.latest),
        hashRegion(target, r.region, r.epoch, b.earliest, b.latest),
      ]);
      if (ha.count !== hb.count || ha.digest !== hb.digest) {
        throw new MigrationError(`region ${r.region}: ${ha.count} entries (sha256 ${ha.digest}) in SQLite, ${hb.count} (sha256 ${hb.digest}) in Redis`);
      }
      const alerts = await checkAlerts(store, redis, prefix, r.region);
      reports.push({ region: r.region, epoch: r.epoch, latest: a.latest, earliest: a.earliest, entries: ha.count, alerts, sha256: ha.digest });
    }
    const [aa, ab] = await Promise.all([hashAudit(new SqliteAuditLog(store)), hashAudit(new RedisAuditLog(redis, { prefix }))]);
    if (aa.count !== ab.count || aa.digest !== ab.digest) {
      throw new MigrationError(`audit trail: ${aa.count} records (sha256 ${aa.digest}) in SQLite, ${ab.count} (sha256 ${ab.digest}) in Redis`);
    }
    return { regions: reports, audit: { records: aa.count, sha256: aa.digest }, trees: sourceTrees ? treeReports : null };
  } finally {
    db.exec('COMMIT');
  }
}

async function copyRegion(store: SqliteStore, redis: Redis, prefix: string, r: RegionRow): Promise<void> {
  const tag = `${prefix}{${r.region}}`;
  const entries = store.db.prepare('SELECT seq, received_at, visibility, body FROM entry WHERE region = ? AND seq > ? ORDER BY seq LIMIT ?');
  let after = 0;
  for (;;) {
    const rows = entries.all(r.region, after, BATCH) as Array<{ seq: number; received_at: string; visibility: string | null; body: string }>;
    if (rows.length === 0) break;
    const p = redis.pipeline();
    for (const e of rows) {
      if (e.visibility !== null) p.xadd(`${tag}:log`, `${e.seq}-0`, 'at', e.received_at, 'b', e.body, 'k', e.visibility);
      else p.xadd(`${tag}:log`, `${e.seq}-0`, 'at', e.received_at, 'b', e.body);
    }
    await exec(p);
    after = rows[rows.length - 1].seq;
  }
  const alerts = store.db.prepare('SELECT id, created, state, latest, revoked FROM alert WHERE region = ? AND id > ? ORDER BY id LIMIT ?');
  const versions = store.db.prepare('SELECT modified, content_hash, seq, received_at FROM version WHERE id = ?');
  let afterId = '';
  for (;;) {
    const rows = alerts.all(r.region, afterId, BATCH) as Array<{ id: string; created: string; state: string; latest: string; revoked: number }>;
    if (rows.length === 0) break;
    const p = redis.pipeline();
    for (const a of rows) {
      const fields: string[] = ['created', a.created, 'state', a.state, 'latest', a.latest];
      if (a.revoked) fields.push('revoked', '1');
      for (const v of versions.all(a.id) as Array<{ modified: string; content_hash: string; seq: number; received_at: string }>) {
        fields.push(`m:${v.modified}`, `${v.content_hash}|${v.seq}|${v.received_at}`);
      }
      p.hset(`${tag}:v:${a.id}`, ...fields);
      p.set(`${prefix}alert:${a.id}`, r.region);
    }
    await exec(p);
    afterId = rows[rows.length - 1].id;
  }
  // The meta hash last: a region is complete in Redis once its epoch is there.
  await redis.hset(`${tag}:meta`, 'epoch', r.epoch, 'seq', String(r.seq), 'last_ms', String(r.last_ms));
}

async function copyAudit(store: SqliteStore, redis: Redis, prefix: string, top: number): Promise<void> {
  const page = store.db.prepare('SELECT n, at, record FROM audit WHERE n > ? ORDER BY n LIMIT ?');
  let after = 0;
  for (;;) {
    const rows = page.all(after, BATCH) as Array<{ n: number; at: string; record: string }>;
    if (rows.length === 0) break;
    const p = redis.pipeline();
    for (const a of rows) p.xadd(`${prefix}{audit}`, `${a.n}-0`, 'at', a.at, 'r', a.record);
    await exec(p);
    after = rows[rows.length - 1].n;
  }
  if (top > 0) await redis.set(`${prefix}{audit}:n`, String(top));
}

/**
 * Copies one tree (its tiles, then its checkpoint with compare-and-set on none stored), then reads
 * both sides back through their TreeStore adapters: the same checkpoint, and the same count and
 * SHA-256 over every tile (level, n, bytes).
 */
async function copyTree(store: SqliteStore, source: SqliteTreeStore, target: RedisTreeStore, tree: TreeId): Promise<TreeReport> {
  const page = store.db.prepare(
    'SELECT level, n, data FROM tlog_tile WHERE tag = ? AND name = ? AND (level > ? OR (level = ? AND n > ?)) ORDER BY level, n LIMIT ?',
  );
  const tiles: Tile[] = [];
  let after = { level: -1, n: -1 };
  for (;;) {
    const rows = page.all(tree.tag, tree.name, after.level, after.level, after.n, 100) as Array<{ level: number; n: number; data: Buffer }>;
    if (rows.length === 0) break;
    const batch = rows.map((r) => ({ tile: { level: r.level, n: r.n, width: r.data.length / 32 }, data: r.data }));
    await target.writeTiles(tree, batch);
    for (const b of batch) tiles.push(b.tile);
    after = rows[rows.length - 1];
  }
  const cp = await source.checkpoint(tree);
  if (cp && !(await target.setCheckpoint(tree, 0, cp))) {
    throw new MigrationError(`tree ${tree.tag}/${tree.name}: Redis holds a checkpoint for it by now`);
  }
  const [ha, hb] = await Promise.all([hashTiles(source, tree, tiles), hashTiles(target, tree, tiles)]);
  const cpb = await target.checkpoint(tree);
  if (ha !== hb || JSON.stringify(cp) !== JSON.stringify(cpb)) {
    throw new MigrationError(`tree ${tree.tag}/${tree.name}: tiles (sha256 ${ha} in SQLite, ${hb} in Redis) or checkpoint differ after the copy`);
  }
  return { tree, tiles: tiles.length, size: cp?.size ?? 0, cosignatures: cp?.cosignatures.length ?? 0, sha256: ha };
}

async function hashTiles(store: TreeStore, tree: TreeId, tiles: readonly Tile[]): Promise<string> {
  const h = createHash('sha256');
  for (let i = 0; i < tiles.length; i += 100) {
    const part = tiles.slice(i, i + 100);
    const data = await store.readTiles(tree, part);
    part.forEach((t, j) => {
      const d = data[j] ?? Buffer.alloc(0);
      const head = Buffer.alloc(12);
      head.writeUInt32BE(t.level, 0);
      head.writeUIntBE(t.n, 4, 6);
      head.writeUInt16BE(d.length / 32, 10);
      h.update(head).update(d);
    });
  }
  return h.digest('hex');
}

async function exec(p: ReturnType<Redis['pipeline']>): Promise<void> {
  const results = (await p.exec()) ?? [];
  const failed = results.find(([err]) => err);
  if (failed) throw new MigrationError(`Redis refused a write: ${String(failed[0])}`);
}

/** Count and SHA-256 over every held entry: seq, epoch, received_at, visibility key and body bytes. */
async function hashRegion(log: RegionLog, region: string, epoch: string, earliest: number, latest: number): Promise<{ count: number; digest: string }> {
  const h = createHash('sha256');
  let count = 0;
  const field = (hash: Hash, b: Buffer | string) => {
    const buf = typeof b === 'string' ? Buffer.from(b, 'utf8') : b;
    const len = Buffer.alloc(4);
    len.writeUInt32BE(buf.length);
    hash.update(len).update(buf);
  };
  if (earliest > 0) {
    await log.scanRaw(
      { region, epoch, after: earliest - 1, top: latest, batch: BATCH },
      {
        entry(e) {
          count++;
          field(h, String(e.seq));
          field(h, epoch);
          field(h, e.buf.subarray(e.atStart, e.atEnd));
          field(h, e.visStart < 0 ? '\u0000none' : e.buf.subarray(e.visStart, e.visEnd));
          field(h, e.buf.subarray(e.bodyStart, e.bodyEnd));
        },
        flush: () => undefined,
      },
    );
  }
  return { count, digest: h.digest('hex') };
}

async function hashAudit(log: AuditLog): Promise<{ count: number; digest: string }> {
  const h = createHash('sha256');
  let count = 0;
  let after = 0;
  for (;;) {
    const page = await log.read(after, BATCH);
    for (const r of page.items) {
      count++;
      h.update(JSON.stringify(r)).update('\n');
    }
    if (page.next === null || page.items.length === 0) break;
    after = page.next;
  }
  return { count, digest: h.digest('hex') };
}

/** Every alert of the region: its id index and version hash in Redis say what SQLite says. */
async function checkAlerts(store: SqliteStore, redis: Redis, prefix: string, region: string): Promise<number> {
  const tag = `${prefix}{${region}}`;
  const alerts = store.db.prepare('SELECT id, created, state, latest, revoked FROM alert WHERE region = ? AND id > ? ORDER BY id LIMIT ?');
  const versions = store.db.prepare('SELECT modified, content_hash, seq, received_at FROM version WHERE id = ?');
  let afterId = '';
  let count = 0;
  for (;;) {
    const rows = alerts.all(region, afterId, BATCH) as Array<{ id: string; created: string; state: string; latest: string; revoked: number }>;
    if (rows.length === 0) break;
    const p = redis.pipeline();
    for (const a of rows) p.get(`${prefix}alert:${a.id}`).hgetall(`${tag}:v:${a.id}`);
    const res = (await p.exec()) ?? [];
    rows.forEach((a, i) => {
      const owner = res[2 * i][1];
      const hash = res[2 * i + 1][1] as Record<string, string>;
      const want: Record<string, string> = { created: a.created, state: a.state, latest: a.latest };
      if (a.revoked) want.revoked = '1';
      for (const v of versions.all(a.id) as Array<{ modified: string; content_hash: string; seq: number; received_at: string }>) {
        want[`m:${v.modified}`] = `${v.content_hash}|${v.seq}|${v.received_at}`;
      }
      const same = Object.keys(want).length === Object.keys(hash).length && Object.entries(want).every(([k, v]) => hash[k] === v);
      if (owner !== region || !same) throw new MigrationError(`alert ${a.id} of region ${region}: its version record differs in Redis`);
      count++;
    });
    afterId = rows[rows.length - 1].id;
  }
  return count;
}
