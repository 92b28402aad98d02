import { generateKeyPairSync } from 'node:crypto';
import Redis from 'ioredis';
import { deleteKeysWithPrefix } from '../../src/adapters/redis/client';
import { checkRecord, checkTree, leafHash } from '../../src/domain/tlog/merkle';
import { openNote, parseCheckpoint, parseVerifierKey } from '../../src/domain/tlog/note';
import { deliveredLeafData } from '../../src/tlog/leaves';
import type { DeliveredAlert } from '../../src/domain/types';
import { makeTestApp, sharedBackend, testRegions, type TestApp } from '../helpers/app';
import { makeTestTrust } from '../helpers/keys';
import { TEST_REDIS_URL } from '../helpers/env';
import { validContent } from '../fixtures/alerts';

/** The transparency log through the HTTP API, on real Redis and NATS (contract §12). */
describe('transparency log (real Redis and NATS)', () => {
  jest.setTimeout(60_000);
  const regions = testRegions();
  const [A] = regions.map((r) => r.code);
  const trust = makeTestTrust(['KG', 'KZ', 'CN'], regions);
  const logKey = generateKeyPairSync('ed25519').privateKey;
  const apps: TestApp[] = [];
  const shared = sharedBackend();

  async function node(config: Record<string, string> = {}): Promise<TestApp> {
    const t = await makeTestApp({ backend: 'real', shared, trust, regions, config, tlog: { key: logKey, delayMs: 20 } });
    apps.push(t);
    return t;
  }

  afterAll(async () => {
    for (const t of apps) await t.close();
    const admin = new Redis(TEST_REDIS_URL);
    await deleteKeysWithPrefix(admin, shared.keyPrefix);
    await admin.quit();
  });

  const content = (region: string) => validContent({ region, audience: { states: ['KG', 'CN', 'KZ'], min_clearance: 'restricted' } });

  async function get(t: TestApp, url: string, token = t.token()) {
    return t.app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${token}` } });
  }

  async function vkeyOf(t: TestApp) {
    const res = await t.app.inject({ method: 'GET', url: '/v1/trust' });
    const log = res.json().log as { vkey: string; jwk: { x: string }; name: string };
    expect(log.name).toBe('cordon.localhost');
    return parseVerifierKey(log.vkey);
  }

  async function checkpointOf(t: TestApp, url = `/v1/regions/${A}/log/checkpoint`, token?: string) {
    const res = await get(t, url, token);
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('text/plain; charset=utf-8');
    return { note: res.body, ...parseCheckpoint(openNote(res.body, [await vkeyOf(t)]).text) };
  }

  async function waitForSize(t: TestApp, size: number, url = `/v1/regions/${A}/log/checkpoint`, token?: string) {
    const deadline = Date.now() + 15_000;
    for (;;) {
      const res = await get(t, url, token);
      if (res.statusCode === 200 && parseCheckpoint(res.body.slice(0, res.body.lastIndexOf('\n\n') + 1)).size >= size) return;
      if (Date.now() > deadline) throw new Error(`checkpoint did not reach ${size}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  async function delivered(t: TestApp, region: string): Promise<DeliveredAlert[]> {
    const res = await get(t, `/v1/regions/${region}/alerts?after=0&limit=1000`);
    return res.json().items as DeliveredAlert[];
  }

  it('signs a checkpoint within a second of growth; every delivered alert proves its inclusion; tiles and consistency match', async () => {
    const t = await node();
    expect((await get(t, `/v1/regions/${A}/log/checkpoint`)).statusCode).toBe(404);
    const receipts = [];
    for (let i = 0; i < 5; i++) receipts.push(await t.publish(content(A)));
    expect(receipts.map((r) => r.leaf_index)).toEqual(receipts.map((r) => r.seq - 1));
    const t0 = Date.now();
    await waitForSize(t, 5);
    expect(Date.now() - t0).toBeLessThan(1000 + 500);
    const cp = await checkpointOf(t);
    expect(cp.origin).toBe(`cordon.localhost/${A}/${receipts[0].epoch}`);
    expect(cp.size).toBe(5);

    const items = await delivered(t, A);
    for (const d of items) {
      const res = await get(t, `/v1/regions/${A}/log/proof?seq=${d.seq}`);
      expect(res.statusCode).toBe(200);
      const p = res.json<{ index: number; size: number; root: string; proof: string[] }>();
      expect(p.index).toBe(d.seq - 1);
      expect(p.root).toBe(cp.root.toString('base64'));
      const proof = p.proof.map((h) => Buffer.from(h, 'base64'));
      expect(checkRecord(proof, p.size, cp.root, p.index, leafHash(deliveredLeafData(d)))).toBe(true);
      // A leaf altered by one character does not prove.
      expect(checkRecord(proof, p.size, cp.root, p.index, leafHash(deliveredLeafData({ ...d, received_at: d.received_at.replace(/.$/, 'Y') })))).toBe(false);
    }

    const tile = await get(t, `/v1/regions/${A}/log/tile/0/000.p/5`);
    expect(tile.statusCode).toBe(200);
    expect(tile.headers['content-type']).toBe('application/octet-stream');
    expect(tile.rawPayload.equals(Buffer.concat(items.map((d) => leafHash(deliveredLeafData(d)))))).toBe(true);
    expect((await get(t, `/v1/regions/${A}/log/tile/0/000.p/6`)).statusCode).toBe(404);
    expect((await get(t, `/v1/regions/${A}/log/tile/0/000`)).statusCode).toBe(404);
    expect((await get(t, `/v1/regions/${A}/log/tile/0/00x`)).statusCode).toBe(404);

    for (let i = 0; i < 4; i++) await t.publish(content(A));
    await waitForSize(t, 9);
    const cp2 = await checkpointOf(t);
    const c = await get(t, `/v1/regions/${A}/log/consistency?from=5&to=9`);
    const cj = c.json<{ from: number; to: number; proof: string[] }>();
    expect(cj.from).toBe(5);
    expect(
      checkTree(
        cj.proof.map((h) => Buffer.from(h, 'base64')),
        9,
        cp2.root,
        5,
        cp.root,
      ),
    ).toBe(true);
    // Proofs against an older size are still served.
    const old = (await get(t, `/v1/regions/${A}/log/proof?seq=2&size=5`)).json<{ root: string }>();
    expect(old.root).toBe(cp.root.toString('base64'));

    // Range and query errors have their codes; entitlement is enforced.
    expect((await get(t, `/v1/regions/${A}/log/proof?seq=10`)).json().code).toBe('LOG_TREE_RANGE');
    expect((await get(t, `/v1/regions/${A}/log/proof?seq=1&size=99`)).json().code).toBe('LOG_TREE_RANGE');
    expect((await get(t, `/v1/regions/${A}/log/consistency?from=9&to=5`)).json().code).toBe('LOG_TREE_RANGE');
    expect((await get(t, `/v1/regions/${A}/log/proof?seq=abc`)).json().code).toBe('QUERY_INVALID');
    expect((await t.app.inject({ method: 'GET', url: `/v1/regions/${A}/log/checkpoint` })).statusCode).toBe(401);
    expect((await get(t, `/v1/regions/${A}/log/checkpoint`, t.token({ regions: [regions[1].code] }))).statusCode).toBe(403);
    expect((await get(t, '/v1/regions/ZZ-ZZ-99/log/checkpoint')).json().code).toBe('REGION_NOT_FOUND');
  });

  it('keeps the audit trail as a tree of its own, for ops only', async () => {
    const t = apps[0] ?? (await node());
    const ops = t.token({ role: 'ops' });
    expect((await get(t, '/v1/audit/log/checkpoint')).statusCode).toBe(403);
    const res = await get(t, '/v1/audit?after=0&limit=1000&purpose=tlog-test', ops);
    const records = res.json().items as Array<{ n: number }>;
    await waitForSize(t, records.length, '/v1/audit/log/checkpoint', ops);
    const cp = await checkpointOf(t, '/v1/audit/log/checkpoint', ops);
    expect(cp.origin).toBe('cordon.localhost/audit');
    expect(cp.size).toBeGreaterThanOrEqual(records.length);
  });

  it('two nodes appending concurrently to one region build one tree and never sign two roots for one size', async () => {
    const region = regions[1].code;
    const [n1, n2] = [await node(), await node()];
    const seen = new Map<number, string>();
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        const res = await get(n1, `/v1/regions/${region}/log/checkpoint`);
        if (res.statusCode === 200) {
          const size = parseCheckpoint(res.body.slice(0, res.body.lastIndexOf('\n\n') + 1)).size;
          const before = seen.get(size);
          if (before !== undefined && before !== res.body) throw new Error(`two checkpoints for size ${size}`);
          seen.set(size, res.body);
        }
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    const c = () =>
      validContent({
        region,
        issuer: { state: 'KZ', agency: 'kz-border', gateway: 'kz-gw-1' },
        audience: { states: ['KG', 'KZ'], min_clearance: 'restricted' },
      });
    await Promise.all(Array.from({ length: 30 }, (_, i) => (i % 2 ? n1 : n2).publish(c(), 'KZ')));
    const deadline = Date.now() + 15_000;
    for (;;) {
      const res = await get(n2, `/v1/regions/${region}/log/checkpoint`);
      if (res.statusCode === 200 && res.body.includes(`\n30\n`)) break;
      if (Date.now() > deadline) throw new Error('not integrated');
      await new Promise((r) => setTimeout(r, 25));
    }
    watching = false;
    await watcher;
    const cp1 = (await get(n1, `/v1/regions/${region}/log/checkpoint`)).body;
    const cp2 = (await get(n2, `/v1/regions/${region}/log/checkpoint`)).body;
    expect(cp1).toBe(cp2);
    const root = parseCheckpoint(openNote(cp1, [await vkeyOf(n1)]).text).root;
    for (const d of await delivered(n1, region)) {
      const p = (await get(n2, `/v1/regions/${region}/log/proof?seq=${d.seq}&size=30`)).json<{ proof: string[] }>();
      expect(
        checkRecord(
          p.proof.map((h) => Buffer.from(h, 'base64')),
          30,
          root,
          d.seq - 1,
          leafHash(deliveredLeafData(d)),
        ),
      ).toBe(true);
    }
  });
});

describe('transparency log with retention (real Redis)', () => {
  jest.setTimeout(60_000);
  it('still proves leaves whose alerts retention trimmed', async () => {
    const regions = testRegions();
    const region = regions[0].code;
    const t = await makeTestApp({ backend: 'real', regions, config: { CORDON_RETENTION_MAX_ALERTS: '3' }, tlog: { delayMs: 20 } });
    try {
      const token = t.token();
      const get = (url: string) => t.app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${token}` } });
      await t.publish(validContent({ region }));
      const first = ((await get(`/v1/regions/${region}/alerts?after=0`)).json().items as DeliveredAlert[])[0];
      for (let i = 0; i < 9; i++) await t.publish(validContent({ region }));
      const deadline = Date.now() + 15_000;
      let body = '';
      while (!(body = (await get(`/v1/regions/${region}/log/checkpoint`)).body).includes('\n10\n')) {
        if (Date.now() > deadline) throw new Error('not integrated');
        await new Promise((r) => setTimeout(r, 25));
      }
      // Retention trims in the background: wait until seq 1 is gone from the log.
      while ((await t.deps.regionLog.state(region)).earliest <= 1) {
        if (Date.now() > deadline) throw new Error('not trimmed');
        await new Promise((r) => setTimeout(r, 25));
      }
      expect((await t.deps.regionLog.read(region, 0, 1)).entries[0].seq).toBeGreaterThan(1);
      const root = parseCheckpoint(body.slice(0, body.lastIndexOf('\n\n') + 1)).root;
      const p = (await get(`/v1/regions/${region}/log/proof?seq=1`)).json<{ proof: string[] }>();
      expect(
        checkRecord(
          p.proof.map((h) => Buffer.from(h, 'base64')),
          10,
          root,
          0,
          leafHash(deliveredLeafData(first)),
        ),
      ).toBe(true);
    } finally {
      await t.close();
    }
  });
});
