import { mkdtempSync } from 'node:fs';
import { generateKeyPairSync } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import { deleteKeysWithPrefix } from '../../src/adapters/redis/client';
import { makeTestApp, nodeBeside, sharedBackend, testRegions, type TestApp } from '../helpers/app';
import { TEST_REDIS_URL } from '../helpers/env';
import { runCordon } from '../helpers/cli';
import { validContent } from '../fixtures/alerts';
import { tamperStoredTile } from '../helpers/tlog-tamper';

/** `cordon log verify` against a listening node on real Redis and NATS. */
describe('cordon log verify', () => {
  jest.setTimeout(60_000);
  const regions = testRegions();
  const region = regions[0].code;
  let t: TestApp;
  let url: string;
  const dir = mkdtempSync(join(tmpdir(), 'cordon-logverify-'));
  const logKey = generateKeyPairSync('ed25519').privateKey; // every node of a deployment signs with one key

  // Its own keys, so that the node can be restarted on them.
  const shared = sharedBackend();

  beforeAll(async () => {
    t = await makeTestApp({ backend: 'real', regions, shared, tlog: { key: logKey, delayMs: 20 } });
    url = await t.app.listen({ port: 0, host: '127.0.0.1' });
  });
  afterAll(async () => {
    await t.close();
    const admin = new Redis(TEST_REDIS_URL);
    await deleteKeysWithPrefix(admin, shared.keyPrefix);
    await admin.quit();
  });

  async function integrated(size: number): Promise<void> {
    const deadline = Date.now() + 15_000;
    for (;;) {
      const res = await t.app.inject({ method: 'GET', url: `/v1/regions/${region}/log/checkpoint`, headers: { authorization: `Bearer ${t.token()}` } });
      if (res.statusCode === 200 && res.body.includes(`\n${size}\n`)) return;
      if (Date.now() > deadline) throw new Error(`not integrated to ${size}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }
  const verify = (...extra: string[]) => runCordon(dir, ['log', 'verify', '--url', url, '--token', t.token(), '--region', region, ...extra]);

  it('passes on an honest log, run after run, and catches a split view between two runs', async () => {
    for (let i = 0; i < 4; i++) await t.publish(validContent({ region }));
    await integrated(4);
    const first = await verify();
    expect(first.stderr).toBe('');
    expect(first).toMatchObject({ code: 0 });
    expect(first.stdout).toContain('4 alert(s) proved included');
    // No witness in the trust store: a required cosignature fails.
    const cosig = await verify('--min-cosignatures', '1');
    expect(cosig.code).toBe(1);
    expect(cosig.stderr).toContain('0 witness cosignature(s), 1 required');

    for (let i = 0; i < 3; i++) await t.publish(validContent({ region }));
    await integrated(7);
    const second = await verify();
    expect(second.code).toBe(0);
    expect(second.stdout).toContain('consistent with size 4 seen before');

    // The operator rewrites history behind Cordon's back while the node restarts: a stored leaf hash
    // changes, and the trees the log signs from then on no longer extend what this verifier saw. (A
    // running node extends the right-edge tiles from memory and would overwrite the change.)
    const epoch = (await t.deps.regionLog.state(region)).epoch!;
    await t.close();
    await tamperStoredTile(t, { region, epoch }, 40);
    t = await nodeBeside(t, { tlog: { key: logKey, delayMs: 20 } });
    url = await t.app.listen({ port: 0, host: '127.0.0.1' });
    for (let i = 0; i < 2; i++) await t.publish(validContent({ region }));
    await integrated(9);
    const third = await verify();
    expect(third.code).toBe(1);
    expect(third.stderr).toMatch(/SPLIT VIEW|NOT in the signed tree/);
  });

  it('cordon audit --verify proves every record it prints against the signed audit tree, and catches an edit', async () => {
    const ops = t.token({ role: 'ops' });
    // At least one audit record (this read itself is audited).
    await t.app.inject({ method: 'GET', url: '/v1/audit?purpose=seed', headers: { authorization: `Bearer ${ops}` } });
    const audit = () => runCordon(dir, ['audit', '--url', url, '--token', ops, '--purpose', 'tlog test', '--verify']);
    // Wait until the audit tree holds the records written so far.
    const deadline = Date.now() + 15_000;
    let ok = await audit();
    while (!/([1-9][0-9]*) record\(s\) proved/.test(ok.stderr)) {
      if (Date.now() > deadline) throw new Error(`audit tree not integrated: ${ok.stderr}`);
      await new Promise((r) => setTimeout(r, 100));
      ok = await audit();
    }
    expect(ok.code).toBe(0);
    // Change a stored hash of the audit tree behind Cordon's back, with the node stopped: a running
    // node integrates the records of the reads just made, and could rewrite the tile in between the
    // edit's read and write (or overwrite the edit from memory). Records whose proofs use it no longer prove.
    await t.close();
    await tamperStoredTile(t, 'audit', 0);
    // A node started on the edited store serves its tiles.
    t = await nodeBeside(t, { tlog: { key: logKey, delayMs: 20 } });
    url = await t.app.listen({ port: 0, host: '127.0.0.1' });
    const bad = await runCordon(dir, ['audit', '--url', url, '--token', ops, '--purpose', 'tlog test', '--verify']);
    expect(bad.code).toBe(1);
    // The edited hash is leaf 0's: the proofs that use it as a sibling fail (record 1's own proof does not use it).
    expect(bad.stderr).toMatch(/audit record \d+ is NOT the record the log signed/);
  });

  it('proves a region of 600 alerts from its hash tiles (a handful of tile requests, no proof request), and refuses a tile of the wrong length', async () => {
    const own = testRegions();
    const R = own[0].code;
    const big = await makeTestApp({ backend: 'real', regions: own, tlog: { key: logKey, delayMs: 20 } });
    const tlog = big.deps.tlog!;
    const realTile = tlog.tile.bind(tlog);
    const realProve = tlog.proveInclusion.bind(tlog);
    const served: string[] = [];
    let proofs = 0;
    tlog.tile = (tree, path) => {
      served.push(path);
      return realTile(tree, path);
    };
    tlog.proveInclusion = (tree, index, size) => {
      proofs++;
      return realProve(tree, index, size);
    };
    try {
      const bigUrl = await big.app.listen({ port: 0, host: '127.0.0.1' });
      const run = (state: string) => runCordon(dir, ['log', 'verify', '--url', bigUrl, '--token', big.token(), '--region', R, '--state-file', state]);
      for (let i = 0; i < 600; i += 50) await Promise.all(Array.from({ length: 50 }, () => big.publish(validContent({ region: R }))));
      await tlog.settle();
      const ok = await run('big-state.json');
      expect(ok.stderr).toBe('');
      expect(ok.code).toBe(0);
      expect(ok.stdout).toContain('size 600 root');
      expect(ok.stdout).toContain('600 alert(s) proved included');
      expect(proofs).toBe(0);
      // Leaves 0-511 are two full tiles, 512-599 a partial one; level 1 holds the two full tiles' hashes.
      expect(new Set(served)).toEqual(new Set(['tile/0/000', 'tile/0/001', 'tile/0/002.p/88', 'tile/1/000.p/2']));
      expect(served).toHaveLength(4);

      // A node that serves a tile one hash short (broken or hostile): refused, and said so.
      tlog.tile = async (tree, path) => {
        const data = await realTile(tree, path);
        return data && path === 'tile/0/001' ? data.subarray(0, data.length - 32) : data;
      };
      const short = await run('big-state-2.json');
      expect(short.code).toBe(1);
      expect(short.stderr).toContain('tile/0/001 has 8160 bytes, not 256 hashes');

      // One whose tile has one hash altered: the proofs made from it do not reach the signed root.
      tlog.tile = async (tree, path) => {
        const data = await realTile(tree, path);
        if (!data || path !== 'tile/0/001') return data;
        const altered = Buffer.from(data);
        altered[100] ^= 1;
        return altered;
      };
      const altered = await run('big-state-3.json');
      expect(altered.code).toBe(1);
      expect(altered.stderr).toMatch(/alert at seq \d+ is NOT in the signed tree/);
    } finally {
      tlog.tile = realTile;
      tlog.proveInclusion = realProve;
      await big.close();
    }
  });

  it('on a region whose oldest alerts retention trimmed: checkpoint and consistency as before, then every alert still held, and how many leaves were trimmed', async () => {
    const trimmedRegions = testRegions();
    const R = trimmedRegions[0].code;
    const small = await makeTestApp({
      backend: 'real',
      regions: trimmedRegions,
      tlog: { key: logKey, delayMs: 20 },
      config: { CORDON_RETENTION_MAX_ALERTS: '3', CORDON_RETENTION_INTERVAL_MS: '100' },
    });
    try {
      const smallUrl = await small.app.listen({ port: 0, host: '127.0.0.1' });
      const run = (...extra: string[]) =>
        runCordon(dir, ['log', 'verify', '--url', smallUrl, '--token', small.token(), '--region', R, '--state-file', 'trimmed-state.json', ...extra]);
      for (let i = 0; i < 2; i++) await small.publish(validContent({ region: R }));
      await small.deps.tlog!.settle();
      const before = await run();
      expect(before.code).toBe(0);
      expect(before.stdout).toContain('2 alert(s) proved included\n');
      expect(before.stdout).not.toContain('trimmed');

      // Five more: only the last three bodies are held (seq 5..7), the tree keeps all seven hashes.
      for (let i = 0; i < 5; i++) await small.publish(validContent({ region: R }));
      await small.deps.tlog!.settle();
      expect(await small.deps.regionLog.state(R)).toMatchObject({ earliest: 5, latest: 7 });
      const after = await run();
      expect(after.stderr).toBe('');
      expect(after.code).toBe(0);
      expect(after.stdout).toContain(`checkpoint ${small.deps.config.logOrigin}/${R}/`);
      expect(after.stdout).toContain('size 7 root');
      expect(after.stdout).toContain('consistent with size 2 seen before');
      expect(after.stdout).toContain('4 leaves (seq 1..4) trimmed by retention');
      expect(after.stdout).toContain('inclusion proofs for them still work');
      expect(after.stdout).toContain('3 alert(s) proved included (every alert held, from seq 5, the oldest one held)');
    } finally {
      await small.close();
    }
  });
});
