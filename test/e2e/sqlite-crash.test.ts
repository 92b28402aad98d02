import { createHash, generateKeyPairSync } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteRegionLog } from '../../src/adapters/sqlite/region-log';
import { SqliteStore } from '../../src/adapters/sqlite/store';
import { SqliteTreeStore } from '../../src/adapters/sqlite/tree-store';
import { checkTree } from '../../src/domain/tlog/merkle';
import { AUDIT_TREE } from '../../src/tlog/leaves';
import { DeskStream, type DeskEvent } from '../../src/cli/tail';
import { SIG_COSIGNATURE_V1, SIG_ED25519, noteKey, noteSigner, openNote, parseCheckpoint } from '../../src/domain/tlog/note';
import { jwkThumbprint } from '../../src/domain/trust-store';
import { Witness } from '../../src/tlog/witness';
import type { Receipt, Submission } from '../../src/domain/types';
import { validContent } from '../fixtures/alerts';
import { uniqueRegion } from '../helpers/env';
import { makeTestTrust, publicOf } from '../helpers/keys';
import { runCordon } from '../helpers/cli';
import { killAllNodes, startNode, type CordonNode } from '../helpers/procs';
import { until } from './harness';

/*
 * The embedded store across crashes, with real processes: a node on a SQLite file in a temporary
 * CORDON_DATA_DIR (no Redis, no NATS) is killed with SIGKILL in the middle of a stream of alerts
 * and started again on the same file and port. Every alert that got a receipt must be there, in
 * order, once, under the same epoch; desks resume where they were. A damaged file is refused.
 */

jest.setTimeout(120_000);

const N = 600;
const KILL_AFTER = 250;
const LANES = 8;

interface Recorded {
  seqs: number[];
  ids: string[];
  epochs: Set<string>;
  closes: number[];
  stream: DeskStream;
}

function embeddedConfig(): { dir: string; env: Record<string, string>; trust: ReturnType<typeof makeTestTrust>; region: string } {
  const region = uniqueRegion();
  const regions = [
    { code: region, name: 'Torugart pass (sqlite e2e)', states: ['KG', 'CN'] },
    { code: uniqueRegion('KZ', 'KG'), name: 'Korday (sqlite e2e)', states: ['KZ', 'KG'] },
  ];
  const trust = makeTestTrust(['KG', 'KZ', 'CN'], regions);
  const dir = mkdtempSync(join(tmpdir(), 'cordon-sqlite-e2e-'));
  writeFileSync(join(dir, 'trust.json'), JSON.stringify(trust.storeJson));
  writeFileSync(join(dir, 'regions.json'), JSON.stringify({ regions }));
  return {
    dir,
    trust,
    region,
    env: {
      CORDON_DATA_DIR: join(dir, 'data'),
      CORDON_TRUST_STORE: join(dir, 'trust.json'),
      CORDON_REGIONS: join(dir, 'regions.json'),
      CORDON_RATE_LIMIT_MAX: '0',
      CORDON_LOG_LEVEL: 'info',
    },
  };
}

function record(url: string, token: string, region: string, positions?: Record<string, { seq: number; epoch?: string }>): Recorded {
  const r: Recorded = { seqs: [], ids: [], epochs: new Set(), closes: [], stream: undefined as unknown as DeskStream };
  r.stream = new DeskStream({
    urls: [url],
    token,
    regions: [region],
    positions,
    backoff: { initialMs: 100, maxMs: 500 },
    onEvent(e: DeskEvent) {
      if (e.type === 'alert') {
        r.seqs.push(e.alert.seq);
        r.ids.push(e.alert.content.id);
        r.epochs.add(e.alert.epoch);
      } else if (e.type === 'closed') r.closes.push(e.code);
    },
  }).start();
  return r;
}

async function post(url: string, sub: Submission): Promise<{ status: number; receipt: Receipt }> {
  const res = await fetch(`${url}/v1/alerts`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(sub),
  });
  return { status: res.status, receipt: (await res.json()) as Receipt };
}

const sha256 = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

describe('embedded SQLite store: SIGKILL mid-stream, restart on the same file', () => {
  const cfg = embeddedConfig();
  const desks: Recorded[] = [];

  afterAll(async () => {
    await Promise.all(desks.map((d) => d.stream.stop()));
    await killAllNodes();
    rmSync(cfg.dir, { recursive: true, force: true });
  });

  test(`every receipted alert survives, in order, once, same epoch; desks resume (${N} alerts, kill after ${KILL_AFTER})`, async () => {
    let node: CordonNode = await startNode(cfg.env);
    expect(node.logs()).toContain('SQLite store');
    expect(node.logs()).toContain(join(cfg.env.CORDON_DATA_DIR, 'cordon.db'));
    const token = cfg.trust.token({ iss: 'KG', sub: 'desk-crash' });
    // A desk that follows from the first alert and must ride through the crash.
    const live = record(node.url, token, cfg.region, { [cfg.region]: { seq: 0 } });
    desks.push(live);
    await new Promise((r) => setTimeout(r, 300));

    const subs = Array.from({ length: N }, () => cfg.trust.sign(validContent({ region: cfg.region })));
    const receipts = new Map<string, Receipt>();
    let next = 0;
    let killed: Promise<void> | undefined;
    await Promise.all(
      Array.from({ length: LANES }, async () => {
        while (next < N && !killed) {
          const sub = subs[next++];
          try {
            const r = await post(node.url, sub);
            if (r.status !== 201) throw new Error(`publish answered ${r.status}: ${JSON.stringify(r.receipt)}`);
            receipts.set(sub.content.id, r.receipt);
          } catch (err) {
            if ((err as Error).message.startsWith('publish answered')) throw err;
            return; // the node is gone
          }
          if (receipts.size === KILL_AFTER && !killed) killed = node.kill();
        }
      }),
    );
    await killed;
    const beforeCrash = new Map(receipts);
    expect(beforeCrash.size).toBeGreaterThanOrEqual(KILL_AFTER);
    const epoch = [...beforeCrash.values()][0].epoch;

    // Restart on the same data directory and port (the desk reconnects to the same URL).
    node = await startNode({ ...cfg.env, CORDON_PORT: String(node.port) });
    expect(node.logs()).not.toContain('new embedded store created');

    // The gateway resubmits everything it has no receipt for: appended-but-unanswered ones are duplicates.
    let duplicates = 0;
    for (const sub of subs) {
      if (receipts.has(sub.content.id)) continue;
      const r = await post(node.url, sub);
      expect([200, 201]).toContain(r.status);
      if (r.status === 200) duplicates++;
      receipts.set(sub.content.id, r.receipt);
    }
    // At most one unanswered alert per lane can have been appended before the kill.
    expect(duplicates).toBeLessThanOrEqual(LANES);
    // Resubmitting what was receipted before the crash gives the very same receipts.
    for (const sub of subs.slice(0, 20)) {
      const r = await post(node.url, sub);
      expect(r.status).toBe(200);
      expect(r.receipt).toEqual(receipts.get(sub.content.id));
    }

    const expected = Array.from({ length: N }, (_, k) => k + 1);
    expect([...receipts.values()].map((r) => r.seq).sort((a, b) => a - b)).toEqual(expected);
    for (const r of receipts.values()) expect(r.epoch).toBe(epoch);

    // A desk that starts after the restart reads the whole log: every receipt at its seq.
    const fresh = record(node.url, token, cfg.region, { [cfg.region]: { seq: 0 } });
    desks.push(fresh);
    await until(() => fresh.seqs.length >= N && live.seqs.length >= N, `desks holding ${N} alerts (have ${fresh.seqs.length}, ${live.seqs.length})`, 30_000);
    await new Promise((r) => setTimeout(r, 300));
    expect(fresh.seqs).toEqual(expected);
    expect([...fresh.epochs]).toEqual([epoch]);
    for (const [id, r] of beforeCrash) expect(fresh.ids[r.seq - 1]).toBe(id);
    for (const [id, r] of receipts) expect(fresh.ids[r.seq - 1]).toBe(id);

    // The desk that watched the crash lost its connection and resumed: nothing missing, nothing twice.
    expect(live.closes.length).toBeGreaterThanOrEqual(1);
    expect(live.seqs).toEqual(expected);
    expect([...live.epochs]).toEqual([epoch]);
    await node.stop();
  });
});

describe('embedded SQLite store: a damaged file is refused at start, never replaced', () => {
  const cfg = embeddedConfig();
  const file = join(cfg.env.CORDON_DATA_DIR, 'cordon.db');
  let pristine: Buffer;

  beforeAll(async () => {
    const node = await startNode(cfg.env);
    for (let i = 0; i < 40; i++) {
      const r = await post(node.url, cfg.trust.sign(validContent({ region: cfg.region, description: 'x'.repeat(2000) })));
      expect(r.status).toBe(201);
    }
    // A clean stop folds the WAL into the file: the file alone holds the log.
    expect(await node.stop()).toBe(0);
    pristine = readFileSync(file);
  });
  afterAll(async () => {
    await killAllNodes();
    rmSync(cfg.dir, { recursive: true, force: true });
  });
  beforeEach(() => {
    writeFileSync(file, pristine);
    rmSync(`${file}-wal`, { force: true });
    rmSync(`${file}-shm`, { force: true });
  });

  async function expectRefused(): Promise<void> {
    const before = sha256(file);
    const err = await startNode(cfg.env, { readyTimeoutMs: 10_000 }).then(
      () => new Error('the node started on a damaged store'),
      (e: Error) => e,
    );
    expect(err.message).toContain('exited (code 1) before it was ready');
    expect(err.message).toContain('is damaged or not a Cordon store');
    expect(err.message).toContain(file);
    // The file is left as it was for the operator (never replaced by an empty store).
    expect(sha256(file)).toBe(before);
  }

  it('starts on the intact file with its log (control)', async () => {
    const node = await startNode(cfg.env);
    const r = await post(node.url, cfg.trust.sign(validContent({ region: cfg.region })));
    expect(r.receipt.seq).toBe(41);
    await node.stop();
  });

  it('refuses a torn file (cut in the middle)', async () => {
    truncateSync(file, Math.floor(statSync(file).size / 2) + 100);
    await expectRefused();
  });

  it('refuses a file with garbage written over some of its pages', async () => {
    const fd = openSync(file, 'r+');
    const size = statSync(file).size;
    for (const at of [4096 * 2 + 37, Math.floor(size / 2), size - 3000]) writeSync(fd, Buffer.alloc(700, 0xa5), 0, 700, at);
    closeSync(fd);
    await expectRefused();
  });

  it('refuses a file that is not a SQLite database, and an empty one', async () => {
    writeFileSync(file, 'this is not a database'.repeat(500));
    await expectRefused();
    writeFileSync(file, '');
    await expectRefused();
  });

  it('refuses a WAL whose database file is gone', async () => {
    const node = await startNode(cfg.env);
    expect((await post(node.url, cfg.trust.sign(validContent({ region: cfg.region })))).status).toBe(201);
    await node.kill(); // the WAL stays behind
    rmSync(file);
    const err = await startNode(cfg.env, { readyTimeoutMs: 10_000 }).then(
      () => new Error('the node started without its database'),
      (e: Error) => e,
    );
    expect(err.message).toContain('-wal file exists but the database file is missing');
  });
});

describe('embedded SQLite store: cordon backup while the node writes, cordon restore, CORDON_STORE=memory', () => {
  const cfg = embeddedConfig();
  const file = join(cfg.env.CORDON_DATA_DIR, 'cordon.db');
  const token = cfg.trust.token({ iss: 'KG', sub: 'desk-backup' });

  afterAll(async () => {
    await killAllNodes();
    rmSync(cfg.dir, { recursive: true, force: true });
  });

  async function regionState(url: string): Promise<{ epoch: string | null; seq: number }> {
    const res = await fetch(`${url}/v1/regions`, { headers: { authorization: `Bearer ${token}` } });
    const body = (await res.json()) as { regions: Array<{ code: string; epoch: string | null; seq: number }> };
    return body.regions.find((r) => r.code === cfg.region)!;
  }

  /** The checkpoint text of a served note (its signatures are checked elsewhere). */
  const checkpointOf = (note: string) => parseCheckpoint(note.slice(0, note.indexOf('\n\n') + 1));
  async function checkpointWhen(url: string, path: string, bearer: string, ok: (c: ReturnType<typeof checkpointOf>) => boolean) {
    const deadline = Date.now() + 15_000;
    for (;;) {
      const res = await fetch(`${url}${path}`, { headers: { authorization: `Bearer ${bearer}` } });
      const body = await res.text();
      if (res.status === 200 && ok(checkpointOf(body))) return checkpointOf(body);
      if (Date.now() > deadline) throw new Error(`no such checkpoint at ${path} (last: ${res.status} ${body})`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  it('backs up a consistent copy while alerts stream in; restore puts it back under a new epoch', async () => {
    let node = await startNode(cfg.env);
    const first = await post(node.url, cfg.trust.sign(validContent({ region: cfg.region })));
    const epoch = first.receipt.epoch;
    let stop = false;
    let published = 1;
    const writer = (async () => {
      while (!stop) {
        const r = await post(node.url, cfg.trust.sign(validContent({ region: cfg.region })));
        expect(r.status).toBe(201);
        published++;
      }
    })();
    await until(() => published >= 50, '50 alerts published', 30_000);
    const ops = cfg.trust.token({ iss: 'KG', sub: 'ops-backup', role: 'ops' });
    // Both trees have a checkpoint before the copy (integration follows the appends within ~100 ms).
    await checkpointWhen(node.url, `/v1/regions/${cfg.region}/log/checkpoint`, token, (c) => c.size > 0);
    await checkpointWhen(node.url, '/v1/audit/log/checkpoint', ops, (c) => c.size > 0);
    const dest = join(cfg.dir, 'backup.db');
    const run = await runCordon(cfg.dir, ['backup', dest, '--data-dir', cfg.env.CORDON_DATA_DIR]);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/backed up .* 1 regions, \d+ alerts held, \d+ audit records \(checked\)/);
    const atBackup = published;
    await until(() => published >= atBackup + 50, 'more alerts after the backup', 30_000);
    stop = true;
    await writer;

    // The copy is a consistent prefix of the log: seq 1..k, gap-free, the same epoch.
    const copy = new SqliteRegionLog(SqliteStore.open(dest, { mustExist: true }), { ownsStore: true });
    const held = await copy.read(cfg.region, 0, 1000);
    await copy.close();
    const k = held.latest;
    expect(k).toBeGreaterThanOrEqual(50);
    expect(k).toBeLessThan(published);
    expect(held.entries.map((e) => e.seq)).toEqual(Array.from({ length: k }, (_, i) => i + 1));
    expect(held.epoch).toBe(epoch);
    // The copy carries the transparency log's trees of the same snapshot: never ahead of its log.
    const copyTrees = new SqliteTreeStore(SqliteStore.open(dest, { mustExist: true }), { ownsStore: true });
    const oldTree = { tag: cfg.region, name: epoch };
    const backupRegionCp = (await copyTrees.checkpoint(oldTree))!;
    const backupAuditCp = (await copyTrees.checkpoint(AUDIT_TREE))!;
    await copyTrees.close();
    expect(backupRegionCp.size).toBeGreaterThan(0);
    expect(backupRegionCp.size).toBeLessThanOrEqual(k);
    expect(backupAuditCp.size).toBeGreaterThan(0);

    // Restore: node stopped, backup in place, new epoch (the log went back), seqs continue from k.
    // One `published` record per alert: the audit tree integrated all of them before the stop.
    const auditBefore = await checkpointWhen(node.url, '/v1/audit/log/checkpoint', ops, (c) => c.size >= published);
    expect(await node.stop()).toBe(0);
    const restored = await runCordon(cfg.dir, ['restore', dest, '--data-dir', cfg.env.CORDON_DATA_DIR]);
    expect(restored.code).toBe(0);
    expect(restored.stdout).toContain(`region ${cfg.region}: new epoch`);
    expect(restored.stdout).toContain(`the audit tree continues from the backup's checkpoint (size ${backupAuditCp.size})`);
    // The audit trail went back, and its tree with it: the command says the audit tree forks.
    const forked = /signed the audit tree up to size (\d+)/.exec(restored.stderr);
    expect(Number(forked?.[1])).toBeGreaterThanOrEqual(auditBefore.size);
    node = await startNode(cfg.env);
    const state = await regionState(node.url);
    expect(state.seq).toBe(k);
    expect(state.epoch).not.toBe(epoch);
    const next = await post(node.url, cfg.trust.sign(validContent({ region: cfg.region })));
    expect(next.receipt.seq).toBe(k + 1);
    expect(next.receipt.epoch).toBe(state.epoch);
    // The new epoch's tree is built from the restored log: leaf seq - 1, under the new origin.
    const regionCp = await checkpointWhen(node.url, `/v1/regions/${cfg.region}/log/checkpoint`, token, (c) => c.size === k + 1);
    expect(regionCp.origin).toBe(`cordon.localhost/${cfg.region}/${state.epoch}`);
    // The audit tree extends the backup's checkpoint (a consistency proof from it verifies).
    const auditCp = await checkpointWhen(node.url, '/v1/audit/log/checkpoint', ops, (c) => c.size > backupAuditCp.size);
    const consistency = await fetch(`${node.url}/v1/audit/log/consistency?from=${backupAuditCp.size}&to=${auditCp.size}`, {
      headers: { authorization: `Bearer ${ops}` },
    }).then((r) => r.json() as Promise<{ proof: string[] }>);
    const proof = consistency.proof.map((h) => Buffer.from(h, 'base64'));
    expect(checkTree(proof, auditCp.size, auditCp.root, backupAuditCp.size, checkpointOf(backupAuditCp.note).root)).toBe(true);
    // A desk at its old position hears of the epoch change before anything else.
    const frames: DeskEvent[] = [];
    const desk = new DeskStream({
      urls: [node.url],
      token,
      regions: [cfg.region],
      positions: { [cfg.region]: { seq: published, epoch } },
      onEvent: (e) => void frames.push(e),
    }).start();
    await until(() => frames.some((f) => f.type === 'alert'), 'the desk re-synced', 10_000);
    await desk.stop();
    const gap = frames.find((f) => f.type === 'gap');
    expect(gap && gap.type === 'gap' && gap.frame.reason).toBe('epoch-changed');
    expect(frames.findIndex((f) => f.type === 'gap')).toBeLessThan(frames.findIndex((f) => f.type === 'alert'));
    await node.stop();
    expect(readdirSync(cfg.env.CORDON_DATA_DIR).some((f) => f.startsWith('cordon.db.replaced-'))).toBe(true);
    expect(existsSync(file)).toBe(true);
    // The old epoch's tree stays in the restored store as evidence of what was there.
    const kept = new SqliteTreeStore(SqliteStore.open(file, { mustExist: true }), { ownsStore: true });
    expect(await kept.checkpoint(oldTree)).toEqual(backupRegionCp);
    await kept.close();
  });

  it('CORDON_STORE=memory says so at start and keeps nothing across a restart', async () => {
    const env = { ...cfg.env, CORDON_STORE: 'memory', CORDON_DATA_DIR: join(cfg.dir, 'mem') };
    let node = await startNode(env);
    expect(node.logs()).toContain('in-memory store: nothing is kept after exit');
    expect((await post(node.url, cfg.trust.sign(validContent({ region: cfg.region })))).receipt.seq).toBe(1);
    await node.stop();
    node = await startNode(env);
    expect(await regionState(node.url)).toMatchObject({ epoch: null, seq: 0 });
    await node.stop();
    expect(existsSync(join(cfg.dir, 'mem', 'cordon.db'))).toBe(false);
  });
});

describe('embedded SQLite store: the transparency log survives a crash and a restart', () => {
  const cfg = embeddedConfig();
  const logPrivate = generateKeyPairSync('ed25519').privateKey;
  const logKey = noteSigner('cordon.localhost', SIG_ED25519, logPrivate);
  const witnessPrivate = generateKeyPairSync('ed25519').privateKey;
  const witnessName = 'witness.kg.example/w1';
  const witnessSigner = noteSigner(witnessName, SIG_COSIGNATURE_V1, witnessPrivate);
  const witness = new Witness({ signer: witnessSigner, logKey, log: { info() {}, warn() {}, error() {} } });
  /** every checkpoint the node submitted to the witness: its size and the answer's status. */
  const submitted: Array<{ origin: string; size: number; status: number }> = [];
  let server: Server;
  const desk = cfg.trust.token({ iss: 'KG', sub: 'desk-tlog' });
  const ops = cfg.trust.token({ iss: 'KG', sub: 'ops-tlog', role: 'ops' });

  beforeAll(async () => {
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString();
        void witness.addCheckpoint(body).then((a) => {
          const note = body.slice(body.indexOf('\n\n') + 2);
          const cp = parseCheckpoint(note.slice(0, note.indexOf('\n\n') + 1));
          submitted.push({ origin: cp.origin, size: cp.size, status: a.status });
          res.writeHead(a.status, { 'content-type': a.contentType }).end(a.body);
        });
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/kg`;
    const { x } = publicOf(witnessPrivate).export({ format: 'jwk' }) as { x: string };
    const jwk = { kty: 'OKP' as const, crv: 'Ed25519' as const, x };
    cfg.trust.storeJson.states.KG.keys.push({ kid: jwkThumbprint(jwk), use: 'witness', jwk, name: witnessName, url, status: 'active' } as never);
    writeFileSync(join(cfg.dir, 'trust.json'), JSON.stringify(cfg.trust.storeJson));
    const { x: lx, d } = logPrivate.export({ format: 'jwk' }) as { x: string; d: string };
    writeFileSync(join(cfg.dir, 'log-key.jwk.json'), JSON.stringify({ kty: 'OKP', crv: 'Ed25519', x: lx, d }));
    cfg.env.CORDON_LOG_KEY = join(cfg.dir, 'log-key.jwk.json');
  });
  afterAll(async () => {
    await killAllNodes();
    server.close();
    rmSync(cfg.dir, { recursive: true, force: true });
  });

  async function served(url: string, path: string, token: string): Promise<{ status: number; body: string }> {
    const res = await fetch(`${url}${path}`, { headers: { authorization: `Bearer ${token}` } });
    return { status: res.status, body: await res.text() };
  }
  /** The served checkpoint once it has `size` leaves and a verified cosignature of the witness. */
  async function cosignedAt(url: string, path: string, token: string, size: number): Promise<string> {
    const deadline = Date.now() + 15_000;
    for (;;) {
      const r = await served(url, path, token);
      if (r.status === 200) {
        const opened = openNote(r.body, [logKey, noteKey(witnessName, SIG_COSIGNATURE_V1, witnessSigner.publicKey)]);
        if (parseCheckpoint(opened.text).size === size && opened.verified.length === 2) return r.body;
      }
      if (Date.now() > deadline) throw new Error(`no cosigned checkpoint of size ${size} at ${path} (last: ${r.status} ${JSON.stringify(r.body)})`);
      await new Promise((res) => setTimeout(res, 25));
    }
  }

  it('serves the same cosigned checkpoints after SIGKILL and a restart, signs no size twice, and the witness cosigns the extension', async () => {
    let node = await startNode(cfg.env);
    for (let i = 0; i < 5; i++) expect((await post(node.url, cfg.trust.sign(validContent({ region: cfg.region })))).status).toBe(201);
    const regionPath = `/v1/regions/${cfg.region}/log/checkpoint`;
    const region5 = await cosignedAt(node.url, regionPath, desk, 5);
    // The audit tree: five `published` records (no reads with a purpose happen here).
    const audit5 = await cosignedAt(node.url, '/v1/audit/log/checkpoint', ops, 5);
    const before = submitted.length;

    await node.kill(); // no shutdown: what was served must already be on disk
    node = await startNode({ ...cfg.env, CORDON_PORT: String(node.port) });
    // Served at once, byte for byte, with the cosignatures; nothing signed or submitted again.
    expect(await served(node.url, regionPath, desk)).toEqual({ status: 200, body: region5 });
    expect(await served(node.url, '/v1/audit/log/checkpoint', ops)).toEqual({ status: 200, body: audit5 });
    await new Promise((r) => setTimeout(r, 1500)); // three sweeps
    expect(await served(node.url, regionPath, desk)).toEqual({ status: 200, body: region5 });
    expect(submitted.slice(before)).toEqual([]);

    // The tree continues: the witness (which holds size 5) cosigns size 6 as an extension of 5.
    expect((await post(node.url, cfg.trust.sign(validContent({ region: cfg.region })))).status).toBe(201);
    const region6 = await cosignedAt(node.url, regionPath, desk, 6);
    const origin = parseCheckpoint(openNote(region6, [logKey]).text).origin;
    // The restarted node does not know what the witness holds: 409 with size 5, then a proof from 5.
    expect(submitted.slice(before).filter((s) => s.origin === origin)).toEqual([
      { origin, size: 6, status: 409 },
      { origin, size: 6, status: 200 },
    ]);
    expect(submitted.every((s) => s.status !== 422)).toBe(true);
    expect(await node.stop()).toBe(0);
  });
});
