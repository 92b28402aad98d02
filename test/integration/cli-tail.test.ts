import { runCordon, sink } from '../helpers/cli';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { buildApp } from '../../src/app';
import { createMetrics } from '../../src/metrics';
import { tail, readState } from '../../src/cli/tail';
import type { AlertContent, Receipt } from '../../src/domain/types';
import { generateKeyPairSync } from 'node:crypto';
import { makeTestApp, nodeBeside, testRegions, type TestApp } from '../helpers/app';
import { appendDirect } from '../helpers/desk';
import { validContent } from '../fixtures/alerts';
import { tamperStoredTile } from '../helpers/tlog-tamper';

interface Running {
  done: Promise<number>;
  stdout: () => string;
  stderr: () => string;
}

/** Runs `cordon tail` in process, as main() would. */
const pending = new Set<Promise<number>>();

function runTail(cwd: string, argv: string[]): Running {
  const out = sink();
  const err = sink();
  const done = tail.run(argv, { stdout: out.stream, stderr: err.stream, env: {}, cwd });
  pending.add(done);
  void done.finally(() => pending.delete(done));
  return { done, stdout: out.text, stderr: err.text };
}

/** A run a failed test left behind would reconnect forever: stop it as Ctrl-C does. */
async function stopLeftovers(): Promise<void> {
  if (pending.size === 0) return;
  process.emit('SIGINT');
  await Promise.allSettled([...pending]);
}

async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const lines = (text: string) => text.split('\n').filter((l) => l.length > 0);

describe('cordon tail against a listening app (memory backend)', () => {
  let t: TestApp;
  let url: string;
  let R: string;
  let R2: string;
  let dir: string;
  let stateFile: string;

  beforeAll(async () => {
    t = await makeTestApp({ backend: 'memory', config: { CORDON_POSITION_CHECK_MS: '100' } });
    [R, R2] = t.regions.list().map((r) => r.code);
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    url = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
  });
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'cordon-tail-'));
    stateFile = join(dir, 'state', 'tail.json');
  });
  afterEach(async () => {
    await stopLeftovers();
    rmSync(dir, { recursive: true, force: true });
  });
  afterAll(() => t.close());

  const content = (over: Partial<AlertContent> = {}) => validContent({ region: R, ...over });
  const publishN = async (n: number, over: Partial<AlertContent> = {}): Promise<Receipt[]> => {
    const out: Receipt[] = [];
    for (let i = 0; i < n; i++) out.push(await t.publish(content(over)));
    return out;
  };
  const args = (...more: string[]) => ['--url', url, '--token', t.token(), '--region', R, '--state-file', stateFile, ...more];

  test('prints verified alerts as they come, saves the position, and the next run resumes from the state file', async () => {
    const first = runTail(dir, args('--count', '3'));
    await until(() => first.stderr().includes(`subscribed to ${R}`), 'subscribed');
    const r1 = await publishN(3);
    expect(await first.done).toBe(0);
    const out1 = lines(first.stdout());
    expect(out1).toHaveLength(3);
    out1.forEach((line, i) => {
      expect(line).toContain(`${R} #${r1[i].seq}`);
      expect(line).toContain(r1[i].id);
      expect(line).toContain('URGENT');
      expect(line).not.toContain('UNVERIFIED');
    });
    expect(readState(stateFile).regions[R]).toEqual({ seq: r1[2].seq, epoch: r1[2].epoch });
    expect(first.stderr()).not.toContain('WARNING');

    // Published while nobody watched: the next run catches up from the saved position.
    const r2 = await publishN(2);
    const second = runTail(dir, args('--count', '2', '--json'));
    expect(await second.done).toBe(0);
    const frames = lines(second.stdout()).map((l) => JSON.parse(l));
    expect(frames.map((f) => [f.type, f.seq])).toEqual(r2.map((r) => ['alert', r.seq]));
    expect(frames[0].sig).toBeDefined();
    expect(readState(stateFile).regions[R].seq).toBe(r2[1].seq);
  });

  test('a run that saw no alert still saves where it started, so the next run misses nothing', async () => {
    const idle = runTail(dir, args('--count', '1'));
    await until(() => existsSync(stateFile), 'state file written at subscribe');
    const seqAtStart = readState(stateFile).regions[R].seq;
    // Stop it the way Ctrl-C would.
    process.emit('SIGINT');
    expect(await idle.done).toBe(0);
    expect(idle.stdout()).toBe('');

    const [missed] = await publishN(1);
    expect(missed.seq).toBe(seqAtStart + 1);
    const next = runTail(dir, args('--count', '1'));
    expect(await next.done).toBe(0);
    expect(next.stdout()).toContain(`${R} #${missed.seq}`);
  });

  test('--urgency asks the server for those urgencies only', async () => {
    const run = runTail(dir, args('--count', '2', '--urgency', 'flash'));
    await until(() => run.stderr().includes('subscribed'), 'subscribed');
    await publishN(1, { urgency: 'routine' });
    const flash = await publishN(2, { urgency: 'flash' });
    expect(await run.done).toBe(0);
    const out = lines(run.stdout());
    expect(out.map((l) => l.includes('FLASH'))).toEqual([true, true]);
    expect(out[0]).toContain(`#${flash[0].seq}`);
  });

  test('a trimmed range is announced loudly, then delivery continues at the oldest alert held', async () => {
    const [held] = await publishN(1);
    const start = runTail(dir, args('--count', '1'));
    await until(() => existsSync(stateFile), 'state saved');
    process.emit('SIGINT');
    await start.done;
    expect(readState(stateFile).regions[R].seq).toBe(held.seq);

    const more = await publishN(5);
    const dropped = await t.deps.regionLog.trim(R, { maxAlerts: 2, nowMs: Date.now() });
    expect(dropped).toBeGreaterThanOrEqual(3);
    const run = runTail(dir, args('--count', '2'));
    expect(await run.done).toBe(0);
    const out = lines(run.stdout());
    expect(out[0]).toMatch(new RegExp(`^!!! GAP in ${R} \\(trimmed\\): alerts #${held.seq + 1}\\.\\.#${more[2].seq} are no longer held`));
    expect(out.slice(1).map((l) => /#(\d+)/.exec(l)?.[1])).toEqual([String(more[3].seq), String(more[4].seq)]);
  });

  test('an alert whose signature does not verify is printed flagged, warned about, and the exit code is 3', async () => {
    await t.publish(validContent({ region: R2 }));
    const run = runTail(dir, ['--url', url, '--token', t.token(), '--region', R2, '--state-file', stateFile, '--count', '2']);
    await until(() => run.stderr().includes(`subscribed to ${R2}`), 'subscribed');
    const goodEntry = await t.publish(validContent({ region: R2 }));
    // Only the log can hold such an alert (ingest verifies): write one straight into it; the
    // node's position check finds it there and delivers it.
    const forged = validContent({ region: R2 });
    await appendDirect(t.deps, (c) => ({ ...t.sign(c), content: { ...c, title: 'Altered after signing' } }), [forged]);
    expect(await run.done).toBe(3);
    const out = lines(run.stdout());
    expect(out[0]).toContain(`#${goodEntry.seq}`);
    expect(out[0]).not.toContain('UNVERIFIED');
    expect(out[1]).toContain('[UNVERIFIED]');
    expect(run.stderr()).toMatch(/FAILED VERIFICATION: SIGNATURE_INVALID/);
    expect(run.stderr()).toMatch(/1 alert failed signature verification/);
  });

  test('a refused token stops at once with a clear message and exit 1', async () => {
    const [h, p] = t.token().split('.');
    const run = runTail(dir, ['--url', url, '--token', `${h}.${p}.${'A'.repeat(86)}`, '--region', R, '--state-file', stateFile]);
    expect(await run.done).toBe(1);
    expect(run.stderr()).toMatch(/HTTP 401 TOKEN_INVALID/);
  });

  test('a region the token may not watch stops with exit 1 and names the error', async () => {
    const run = runTail(dir, ['--url', url, '--token', t.token({ regions: [R2] }), '--region', R, '--state-file', stateFile]);
    expect(await run.done).toBe(1);
    expect(run.stderr()).toMatch(/STREAM_REGION_FORBIDDEN/);
  });

  test('bad arguments are a usage error (exit 2)', async () => {
    expect(await runTail(dir, ['--url', url, '--token', 'x', '--region', 'nowhere']).done).toBe(2);
    expect(await runTail(dir, ['--url', url, '--token', 'x', '--region', R, '--urgency', 'soon']).done).toBe(2);
    expect(await runTail(dir, ['--token', 'x', '--region', R]).done).toBe(2);
  });
});

describe('cordon tail across two nodes sharing one log and bus', () => {
  let t: TestApp;
  let second: FastifyInstance;
  let urls: string[];
  let R: string;
  let dir: string;

  beforeAll(async () => {
    t = await makeTestApp({ backend: 'memory', config: { CORDON_POSITION_CHECK_MS: '100' } });
    R = t.regions.list()[0].code;
    // A second app on the same memory log and bus: two nodes of one deployment.
    second = await buildApp({ ...t.deps, metrics: createMetrics({ defaultMetrics: false }) }, { logger: pino({ level: 'silent' }) });
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    await second.listen({ port: 0, host: '127.0.0.1' });
    urls = [t.app, second].map((a) => `http://127.0.0.1:${(a.server.address() as AddressInfo).port}`);
    dir = mkdtempSync(join(tmpdir(), 'cordon-tail-'));
  });
  afterAll(async () => {
    await stopLeftovers();
    await second?.close();
    await t.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a node shutting down (4001) sends the desk to the next node, which resumes without loss or duplicate', async () => {
    const stateFile = join(dir, 'state.json');
    const run = runTail(dir, ['--url', urls.join(','), '--token', t.token(), '--region', R, '--state-file', stateFile, '--count', '6', '--json']);
    await until(() => run.stderr().includes('subscribed'), 'subscribed');
    const before = [];
    for (let i = 0; i < 3; i++) before.push(await t.publish(validContent({ region: R })));
    await until(() => lines(run.stdout()).length === 3, '3 alerts');
    // Close the first node's desks the way shutdown does, but keep the app (it holds the shared log).
    for (const s of [...t.app.deskSessions]) s.close(4001, 'shutting down');
    const inject = (a: FastifyInstance) => (c: AlertContent) => a.inject({ method: 'POST', url: '/v1/alerts', payload: t.sign(c) });
    const after = [];
    for (let i = 0; i < 3; i++) after.push((await inject(second)(validContent({ region: R }))).json<Receipt>());
    expect(await run.done).toBe(0);
    const seqs = lines(run.stdout()).map((l) => JSON.parse(l).seq);
    expect(seqs).toEqual([...before, ...after].map((r) => r.seq));
    expect(run.stderr()).toMatch(/disconnected from .* \(4001 shutting down\); reconnecting/);
    expect(second.deskSessions.size).toBe(1);
  });
});

describe('cordon tail after its region log was lost (epoch-changed gap with epoch null)', () => {
  let t: TestApp;
  let url: string;
  let R: string;
  let dir: string;
  let stateFile: string;

  beforeAll(async () => {
    t = await makeTestApp({ backend: 'memory', config: { CORDON_POSITION_CHECK_MS: '100' } });
    R = t.regions.list()[0].code;
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    url = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
    dir = mkdtempSync(join(tmpdir(), 'cordon-tail-lost-'));
    stateFile = join(dir, 'tail.json');
  });
  afterEach(stopLeftovers);
  afterAll(async () => {
    rmSync(dir, { recursive: true, force: true });
    await t.close();
  });
  const args = (...more: string[]) => ['--url', url, '--token', t.token(), '--region', R, '--state-file', stateFile, ...more];

  test('the gap is announced, the saved position has no epoch, and the next run subscribes and resumes from it', async () => {
    // The desk held #7 of an epoch this (never written) log does not have: the log was lost.
    writeFileSync(stateFile, JSON.stringify({ regions: { [R]: { seq: 7, epoch: 'epoch-of-the-lost-log' } } }));
    const first = runTail(dir, args());
    await until(() => first.stdout().includes('!!! GAP'), 'the gap line');
    process.emit('SIGINT');
    expect(await first.done).toBe(0);
    expect(lines(first.stdout())[0]).toBe(`!!! GAP in ${R} (epoch-changed, the log is empty): nothing of the new log was trimmed; continuing at #1`);
    // Before the fix the state held `epoch: null`: the next subscribe was refused
    // (STREAM_FRAME_INVALID /from/…/epoch must be string) and readState refused the file.
    expect(JSON.parse(readFileSync(stateFile, 'utf8')).regions[R]).toEqual({ seq: 0 });
    expect(readState(stateFile).regions[R]).toEqual({ seq: 0 });

    const next = runTail(dir, args('--count', '1'));
    await until(() => next.stderr().includes(`subscribed to ${R}`), 'subscribed');
    const receipt = await t.publish(validContent({ region: R }));
    expect(await next.done).toBe(0);
    expect(next.stderr()).not.toMatch(/STREAM_FRAME_INVALID|error frame/);
    expect(lines(next.stdout())).toHaveLength(1);
    expect(lines(next.stdout())[0]).toContain(`${R} #${receipt.seq}`);
    expect(readState(stateFile).regions[R]).toEqual({ seq: receipt.seq, epoch: receipt.epoch });
  });

  test('--from-start begins at the oldest alert held, --from SEQ after that seq; each line shows TLP, handling codes and the verification', async () => {
    await t.publish(validContent({ region: R }));
    const last = await t.publish(validContent({ region: R, handling: { tlp: 'TLP:RED', codes: ['H2'], evidential_use: false, onward_sharing: 'none' } }));
    const all = runTail(dir, args('--from-start', '--count', String(last.seq), '--state-file', join(dir, 'from-start.json')));
    expect(await all.done).toBe(0);
    expect(all.stderr()).toContain(`watching ${R} from the oldest alert held`);
    const out = lines(all.stdout());
    expect(out.map((l) => /#(\d+)/.exec(l)?.[1])).toEqual(Array.from({ length: last.seq }, (_, i) => String(i + 1)));
    for (const line of out) expect(line).toMatch(/ TLP:[A-Z+]+ (H[0-3]|P|C)\b.*\[(CORRECTED )?verified\] /);
    expect(out[out.length - 1]).toContain('TLP:RED H2  [verified]');

    const after = runTail(dir, args('--from', String(last.seq - 1), '--count', '1', '--state-file', join(dir, 'from.json')));
    expect(await after.done).toBe(0);
    expect(lines(after.stdout())).toHaveLength(1);
    expect(lines(after.stdout())[0]).toContain(`${R} #${last.seq}`);

    expect(await runTail(dir, args('--from-start', '--from', '3')).done).toBe(2);
  });

  test('a state file written by the old tail with `epoch: null` is read as a position without epoch', () => {
    writeFileSync(stateFile, JSON.stringify({ regions: { [R]: { seq: 0, epoch: null } } }));
    expect(readState(stateFile).regions[R]).toEqual({ seq: 0 });
  });
});

describe('cordon tail proves every alert in the transparency log (real Redis and NATS)', () => {
  jest.setTimeout(60_000);
  const regions = testRegions();
  const R = regions[0].code;
  const logKey = generateKeyPairSync('ed25519').privateKey; // one key for every node of the deployment
  let t: TestApp;
  let url: string;
  let dir: string;

  beforeAll(async () => {
    t = await makeTestApp({ backend: 'real', regions, tlog: { key: logKey, delayMs: 20 }, config: { CORDON_POSITION_CHECK_MS: '100' } });
    url = await t.app.listen({ port: 0, host: '127.0.0.1' });
    dir = mkdtempSync(join(tmpdir(), 'cordon-tail-log-'));
  });
  afterEach(stopLeftovers);
  afterAll(async () => {
    rmSync(dir, { recursive: true, force: true });
    await t.close();
  });

  test('live alerts: each line says in log or pending, pending ones are proved in a batch, exit 0', async () => {
    const run = runTail(dir, ['--url', url, '--token', t.token(), '--region', R, '--state-file', join(dir, 'live.json'), '--count', '4']);
    await until(() => run.stderr().includes(`subscribed to ${R}`), 'subscribed');
    const receipts: Receipt[] = [];
    for (let i = 0; i < 4; i++) receipts.push(await t.publish(validContent({ region: R })));
    expect(await run.done).toBe(0);
    const out = lines(run.stdout());
    expect(out).toHaveLength(4);
    for (const line of out) expect(line).toMatch(/\[verified, (in log|not yet in log \(pending\))\]/);
    // A just-delivered alert is usually beyond the latest checkpoint: proved later, in one line per batch.
    expect(run.stderr()).toContain('transparency log: 4 in log of 4 alerts');
    const pendingSeqs = out.filter((l) => l.includes('pending')).map((l) => Number(/#(\d+)/.exec(l)![1]));
    if (pendingSeqs.length > 0) expect(run.stderr()).toMatch(new RegExp(`in log: ${R} (#\\d+-)?#\\d+.*\\(checkpoint size \\d+\\)`));
    expect(receipts.map((r) => r.seq)).toEqual(out.map((l) => Number(/#(\d+)/.exec(l)![1])));
    expect(run.stderr()).not.toMatch(/NOT IN LOG|log unavailable/);
  });

  test('at a high rate: one checkpoint per second at most, proofs made from tiles (one tile per checkpoint here, no proof request)', async () => {
    const tlog = t.deps.tlog!;
    const realCheckpoint = tlog.checkpoint.bind(tlog);
    const realProve = tlog.proveInclusion.bind(tlog);
    const realTile = tlog.tile.bind(tlog);
    let checkpoints = 0; // GET .../log/checkpoint (GET .../log/proof would read it too)
    let proofs = 0;
    let tiles = 0;
    tlog.tile = (tree, path) => {
      tiles++;
      return realTile(tree, path);
    };
    tlog.checkpoint = (tree) => {
      checkpoints++;
      return realCheckpoint(tree);
    };
    tlog.proveInclusion = (tree, index, size) => {
      proofs++;
      return realProve(tree, index, size);
    };
    try {
      const n = 40;
      const run = runTail(dir, ['--url', url, '--token', t.token(), '--region', R, '--state-file', join(dir, 'fast.json'), '--count', String(n), '--json']);
      await until(() => run.stderr().includes(`subscribed to ${R}`), 'subscribed');
      const t0 = Date.now();
      await Promise.all(Array.from({ length: n }, () => t.publish(validContent({ region: R }))));
      expect(await run.done).toBe(0);
      const seconds = (Date.now() - t0) / 1000;
      expect(run.stderr()).toContain(`transparency log: ${n} in log of ${n} alerts`);
      expect(proofs).toBe(0);
      expect(checkpoints).toBeLessThanOrEqual(Math.ceil(seconds) + 2);
      // The tree is under 256 leaves: one partial tile per checkpoint size, fetched once.
      expect(tiles).toBeGreaterThan(0);
      expect(tiles).toBeLessThanOrEqual(checkpoints);
    } finally {
      tlog.checkpoint = realCheckpoint;
      tlog.proveInclusion = realProve;
      tlog.tile = realTile;
    }
  });

  test('from the start, against a node whose stored tree was altered: NOT IN LOG, an error summary and exit 3', async () => {
    // Every alert published so far is in a signed checkpoint first.
    const top = (await t.deps.regionLog.state(R)).latest;
    await t.deps.tlog!.settle();
    const honest = runTail(dir, [
      '--url',
      url,
      '--token',
      t.token(),
      '--region',
      R,
      '--state-file',
      join(dir, 'honest.json'),
      '--from-start',
      '--count',
      String(top),
    ]);
    expect(await honest.done).toBe(0);
    for (const line of lines(honest.stdout())) expect(line).toContain('[verified, in log]');
    expect(honest.stderr()).toContain(`transparency log: ${top} in log of ${top} alerts`);

    // Leaf 1's hash changes in the stored tile behind Cordon's back: the proof of leaf 0 uses it.
    const epoch = (await t.deps.regionLog.state(R)).epoch!;
    await tamperStoredTile(t, { region: R, epoch }, 40);
    // A node that has not cached the tile yet serves proofs from the altered store.
    const fresh = await nodeBeside(t, { tlog: { key: logKey, delayMs: 20 } });
    try {
      const freshUrl = await fresh.app.listen({ port: 0, host: '127.0.0.1' });
      const run = runTail(dir, [
        '--url',
        freshUrl,
        '--token',
        t.token(),
        '--region',
        R,
        '--state-file',
        join(dir, 'bad.json'),
        '--from-start',
        '--count',
        String(top),
      ]);
      expect(await run.done).toBe(3);
      const out = lines(run.stdout());
      expect(out[0]).toContain('[verified, NOT IN LOG]');
      expect(run.stderr()).toMatch(new RegExp(`!!! ${R} #1 \\(.*\\) is NOT IN LOG: the inclusion proof against the signed tree of size ${top} fails`));
      // Leaf 1's hash also enters the subtree hash the proofs of leaves 2 and up use; leaf 1's own proof does not use it.
      expect(out[1]).toContain('[verified, in log]');
      expect(run.stderr()).toMatch(/ERROR: \d+ alerts? NOT IN LOG: the node delivered alerts its signed log does not hold/);
    } finally {
      await fresh.close();
    }
  });

  test('cordon verify --url --token proves each delivered alert it verifies; one whose received_at was altered is NOT IN LOG (exit 1)', async () => {
    await t.deps.tlog!.settle();
    const res = await t.app.inject({ url: `/v1/regions/${R}/alerts?after=0&limit=3`, headers: { authorization: `Bearer ${t.token()}` } });
    const items = res.json<{ items: Array<Record<string, unknown>> }>().items;
    expect(items).toHaveLength(3);
    writeFileSync(join(dir, 'held.ndjson'), items.map((i) => JSON.stringify(i)).join('\n') + '\n');
    const ok = await runCordon(dir, ['verify', '--url', url, '--token', t.token(), '--in', 'held.ndjson']);
    expect(ok.code).toBe(0);
    expect(lines(ok.stdout)).toHaveLength(3);
    for (const line of lines(ok.stdout)) expect(line).toMatch(/^OK .* signed by KG key .*; in log \(signed tree of size \d+\)$/);
    expect(ok.stderr).toContain('transparency log: 3 in log of 3 delivered alerts');

    // received_at is not under the issuer's signature, but it is in the leaf the log signed.
    const altered = items.map((i, n) => (n === 1 ? { ...i, received_at: new Date(Date.parse(String(i.received_at)) + 1000).toISOString() } : i));
    writeFileSync(join(dir, 'altered.ndjson'), altered.map((i) => JSON.stringify(i)).join('\n') + '\n');
    const bad = await runCordon(dir, ['verify', '--url', url, '--token', t.token(), '--in', 'altered.ndjson']);
    expect(bad.code).toBe(1);
    expect(lines(bad.stdout)).toHaveLength(2);
    expect(bad.stderr).toMatch(
      new RegExp(`^FAIL .*${R}#2 signed by KG key .*; NOT IN LOG: the inclusion proof against the signed tree of size \\d+ fails$`, 'm'),
    );
    expect(bad.stderr).toContain('ERROR: 1 alert NOT IN LOG');

    // Without a token the signatures are still checked, and it says inclusion was not.
    const noToken = await runCordon(dir, ['verify', '--url', url, '--in', 'held.ndjson']);
    expect(noToken.code).toBe(0);
    expect(noToken.stderr).toContain('inclusion in the transparency log not checked');
  });

  test('cordon replay verifies against GET /v1/trust of a node with the log (its log member is not a trust-store key)', async () => {
    const r = await runCordon(dir, ['replay', '--url', url, '--token', t.token(), '--region', R, '--out', 'export.ndjson']);
    expect(r.stderr).not.toContain('not allowed');
    expect(r.code).toBe(0);
    expect(lines(readFileSync(join(dir, 'export.ndjson'), 'utf8')).length).toBe((await t.deps.regionLog.state(R)).latest);
  });

  test('log endpoints out of reach: tail goes on and says "log unavailable"', async () => {
    // The node's log store fails (500 on the checkpoint); the stream is unaffected.
    const tlog = t.deps.tlog!;
    const real = tlog.checkpoint.bind(tlog);
    tlog.checkpoint = async () => {
      throw new Error('tree store down');
    };
    try {
      const run = runTail(dir, ['--url', url, '--token', t.token(), '--region', R, '--state-file', join(dir, 'na.json'), '--from-start', '--count', '2']);
      expect(await run.done).toBe(0);
      for (const line of lines(run.stdout())) expect(line).toContain('[verified, log unavailable]');
      expect(run.stderr()).toMatch(/log unavailable \(checkpoint: 500/);
      expect(run.stderr()).toContain('transparency log: 0 in log, 2 not yet in log (pending) when tail stopped of 2 alerts');
    } finally {
      tlog.checkpoint = real;
    }
  });
});
