import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import { createRedisClient, deleteKeysWithPrefix } from '../../src/adapters/redis/client';
import { RedisAuditLog } from '../../src/adapters/redis/audit-log';
import { RedisRegionLog } from '../../src/adapters/redis/region-log';
import { SqliteAuditLog } from '../../src/adapters/sqlite/audit-log';
import { SqliteRegionLog } from '../../src/adapters/sqlite/region-log';
import { SqliteStore, STORE_FILE } from '../../src/adapters/sqlite/store';
import { SqliteTreeStore } from '../../src/adapters/sqlite/tree-store';
import { RedisTreeStore } from '../../src/adapters/redis/tree-store';
import { generateKeyPairSync } from 'node:crypto';
import { checkTree, proveTree, treeHash } from '../../src/domain/tlog/merkle';
import { SIG_ED25519, noteSigner, openNote, parseCheckpoint } from '../../src/domain/tlog/note';
import { integrate, storeHashReader } from '../../src/tlog/integrator';
import { AUDIT_TREE, AuditLeafSource, RegionLeafSource } from '../../src/tlog/leaves';
import type { AppendOutcome } from '../../src/ports/region-log';
import { alertInput } from '../contract/region-log.contract';
import { runCordon } from '../helpers/cli';
import { TEST_REDIS_URL, uniqueKeyPrefix, uniqueRegion } from '../helpers/env';
import { scanAll } from '../helpers/raw-scan';

/*
 * `cordon migrate` against the real Redis of this machine, under a unique key prefix: every
 * region log and the audit trail of a SQLite store arrive with the same seqs, epochs, bodies,
 * visibility keys and version records, and the Redis adapters carry on from there.
 */

jest.setTimeout(60_000);

const appended = (o: AppendOutcome) => {
  if (o.outcome !== 'appended') throw new Error(`not appended: ${JSON.stringify(o)}`);
  return o;
};

const signer = noteSigner('cordon.test', SIG_ED25519, generateKeyPairSync('ed25519').privateKey);

describe('cordon migrate (SQLite store into Redis)', () => {
  let dir: string;
  let file: string;
  let prefix: string;
  let admin: Redis;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'cordon-migrate-'));
    file = join(dir, STORE_FILE);
    prefix = uniqueKeyPrefix();
    admin = new Redis(TEST_REDIS_URL);
  });
  afterEach(async () => {
    await deleteKeysWithPrefix(admin, prefix);
    await admin.quit();
    rmSync(dir, { recursive: true, force: true });
  });

  it('copies every region log and the audit trail with the same seqs and epochs, verified, and Redis carries on', async () => {
    const [r1, r2] = [uniqueRegion('KG', 'CN'), uniqueRegion('KZ', 'KG')];
    const store = SqliteStore.open(file);
    const log = new SqliteRegionLog(store);
    const audit = new SqliteAuditLog(store);
    const v1 = alertInput(r1, { visibility: `KG|CN|secret|${r1}` });
    appended(await log.append(v1));
    for (let i = 0; i < 30; i++) appended(await log.append(alertInput(r1, i % 3 ? {} : { visibility: `KG|KG,CN|restricted|${r1}` })));
    const v2 = alertInput(r1, { id: v1.id, modified: '2026-03-01T11:00:00.000Z' });
    appended(await log.append(v2));
    const rev = alertInput(r1, { id: v1.id, modified: '2026-03-01T12:00:00.000Z', revoked: true });
    const revReceipt = appended(await log.append(rev)).receipt;
    for (let i = 0; i < 1200; i++)
      appended(await log.append(alertInput(r2, { body: `{"content":{"t":"пост 🚚 ${i}"},"sig":{"protected":"p","signature":"s"}}` })));
    // The transparency log's trees, integrated before retention trims r2: its first 500 leaves
    // then exist only as tree hashes.
    const trees = new SqliteTreeStore(store);
    for (const r of [r1, r2]) expect((await integrate(trees, new RegionLeafSource(log, r, 'cordon.test'), signer))?.to).toBeGreaterThan(0);
    expect(await log.trim(r2, { maxAlerts: 700, nowMs: Date.now() })).toBe(500);
    await audit.append({ kind: 'published', actor: 'KG/k1', region: r1, seq: 1 });
    await audit.append({ kind: 'replayed', actor: 'KZ/ops-7', purpose: 'case 42 — ünïcode', range: { from: 1, to: 9 } });
    await audit.append({ kind: 'ack', actor: 'x', n: 999, at: 'bogus' });
    expect((await integrate(trees, new AuditLeafSource(audit, 'cordon.test'), signer))?.to).toBe(3);
    // A witness's cosignature on the audit checkpoint (the line is kept as it is).
    const auditCp = (await trees.checkpoint(AUDIT_TREE))!;
    expect(await trees.setCheckpoint(AUDIT_TREE, 3, { ...auditCp, cosignatures: ['— witness.kz.example/w1 AAAABBBB'] })).toBe(true);
    // An old epoch's tree, as a restore leaves behind.
    await trees.writeTiles({ tag: r1, name: 'old-epoch' }, [{ tile: { level: 0, n: 0, width: 2 }, data: Buffer.alloc(64, 9) }]);
    await trees.setCheckpoint({ tag: r1, name: 'old-epoch' }, 0, { size: 2, note: 'old\n', cosignatures: [] });
    const before = { s1: await log.read(r1, 0, 1000), s2: await log.read(r2, 0, 1000), audit: await audit.read(0, 100) };
    const treeTree2 = { tag: r2, name: before.s2.epoch! };
    const cps = {
      r1: (await trees.checkpoint({ tag: r1, name: before.s1.epoch! }))!,
      r2: (await trees.checkpoint(treeTree2))!,
      audit: (await trees.checkpoint(AUDIT_TREE))!,
    };
    expect(cps.r2.size).toBe(1200);
    await store.close();

    const run = await runCordon(dir, ['migrate', '--store', STORE_FILE, '--redis-url', TEST_REDIS_URL, '--prefix', prefix]);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(`region ${r1}: epoch ${before.s1.epoch}, seq 1..33, 33 entries, 31 alerts`);
    expect(run.stdout).toContain(`region ${r2}: epoch ${before.s2.epoch}, seq 501..1200, 700 entries, 1200 alerts`);
    expect(run.stdout).toContain('audit trail: 3 records');
    expect(run.stdout).toContain(`tree ${r1}/${before.s1.epoch}: checkpoint size 33, 0 cosignatures, 1 tiles`);
    expect(run.stdout).toContain(`tree ${r1}/old-epoch: checkpoint size 2, 0 cosignatures, 1 tiles`);
    expect(run.stdout).toContain(`tree ${r2}/${before.s2.epoch}: checkpoint size 1200, 0 cosignatures, 6 tiles`);
    expect(run.stdout).toContain('tree audit/audit: checkpoint size 3, 1 cosignatures, 1 tiles');
    expect(run.stdout).toContain('verified');

    const redisLog = new RedisRegionLog(createRedisClient(TEST_REDIS_URL), { prefix, ownsClient: true });
    const redisAudit = new RedisAuditLog(createRedisClient(TEST_REDIS_URL), { prefix, ownsClient: true });
    const redisTrees = new RedisTreeStore(createRedisClient(TEST_REDIS_URL), { prefix, ownsClient: true });
    try {
      // Read through the Redis adapter: the same pages, positions and epochs.
      expect(await redisLog.read(r1, 0, 1000)).toEqual(before.s1);
      expect(await redisLog.read(r2, 0, 1000)).toEqual(before.s2);
      expect((await redisAudit.read(0, 100)).items).toEqual(before.audit.items);
      // Visibility keys and bodies byte for byte.
      const scan = await scanAll(redisLog, { region: r1, epoch: before.s1.epoch!, after: 0, top: 33 });
      expect(scan.entries[0].visibility).toBe(`KG|CN|secret|${r1}`);
      expect(scan.entries[1].visibility).toBe(`KG|KG,CN|restricted|${r1}`);
      expect(scan.entries[2].visibility).toBeUndefined();
      // The version rules carried over: a resubmission is a duplicate with its receipt, a later version is refused.
      expect(await redisLog.append(rev)).toEqual({ outcome: 'duplicate', receipt: revReceipt });
      expect(await redisLog.append(alertInput(r1, { id: v1.id, modified: '2026-03-01T13:00:00.000Z' }))).toEqual({
        outcome: 'rejected',
        reason: 'after-revocation',
      });
      expect(await redisLog.append(alertInput(r2, { id: v1.id, modified: '2026-03-01T13:00:00.000Z' }))).toEqual({
        outcome: 'rejected',
        reason: 'field-changed',
      });
      expect((await redisLog.versions(v1.id)).map((e) => e.seq)).toEqual([1, 32, 33]);
      // The sequence and the epoch continue.
      const next = appended(await redisLog.append(alertInput(r2)));
      expect(next.entry).toMatchObject({ seq: 1201, epoch: before.s2.epoch });
      expect((await redisAudit.append({ kind: 'ack', actor: 'y' })).n).toBe(4);
      // The trees arrived with their checkpoints and cosignatures, and Redis integrates on from them:
      // r2's first 500 alerts are trimmed, so only the copied tree lets it grow.
      expect(await redisTrees.checkpoint({ tag: r1, name: before.s1.epoch! })).toEqual(cps.r1);
      expect(await redisTrees.checkpoint(AUDIT_TREE)).toEqual(cps.audit);
      expect(await redisTrees.checkpoint({ tag: r1, name: 'old-epoch' })).toEqual({ size: 2, note: 'old\n', cosignatures: [] });
      const grown = await integrate(redisTrees, new RegionLeafSource(redisLog, r2, 'cordon.test'), signer);
      expect(grown).toMatchObject({ from: 1200, to: 1201 });
      const cp1201 = parseCheckpoint(openNote(grown!.checkpoint!.note, [signer]).text);
      const root1200 = parseCheckpoint(openNote(cps.r2.note, [signer]).text).root;
      const proof = storeHashReader(redisTrees, treeTree2, 1201);
      expect((await treeHash(1200, proof)).equals(root1200)).toBe(true);
      expect(checkTree(await proveTree(1201, 1200, proof), 1201, cp1201.root, 1200, root1200)).toBe(true);
      expect(await integrate(redisTrees, new AuditLeafSource(redisAudit, 'cordon.test'), signer)).toMatchObject({ from: 3, to: 4 });
    } finally {
      await Promise.all([redisLog.close(), redisAudit.close(), redisTrees.close()]);
    }

    // A second run finds the target taken and writes nothing.
    const again = await runCordon(dir, ['migrate', '--store', STORE_FILE, '--redis-url', TEST_REDIS_URL, '--prefix', prefix]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('already holds region');
  });

  it('refuses a missing store and an unreachable Redis with a clear message', async () => {
    const missing = await runCordon(dir, ['migrate', '--redis-url', TEST_REDIS_URL, '--prefix', prefix]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(`no embedded store at ${join(dir, '.cordon', STORE_FILE)}`);
    await SqliteStore.open(file).close();
    const unreachable = await runCordon(dir, ['migrate', '--store', file, '--redis-url', 'redis://127.0.0.1:1', '--prefix', prefix]);
    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr).toContain('cannot reach Redis');
  });
});
