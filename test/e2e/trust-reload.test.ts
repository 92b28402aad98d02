import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { signContent } from '../../src/domain/signature';
import { signingKeyFromJwk, type TrustStoreJson } from '../../src/domain/trust-store';
import type { AlertContent } from '../../src/domain/types';
import { validContent } from '../fixtures/alerts';
import { socketDesk, type Desk } from '../helpers/desk';
import { uniqueRegion } from '../helpers/env';
import { killAllNodes, startNode, type CordonNode } from '../helpers/procs';
import { removeKeys, writeConfigFiles } from './harness';

/*
 * Live trust reload on real processes (contract §4 v1.1): SIGHUP reloads at once and does not stop
 * the node; a node that got no signal finds the changed file by itself within 10 s; a revoked key
 * stops submissions on every node and closes the desks holding its tokens with 4501; a bad file
 * is refused and the store in force stays.
 */

jest.setTimeout(90_000);

const BOUND_MS = 10_000;

function writeAtomically(path: string, value: unknown): void {
  writeFileSync(`${path}.tmp`, typeof value === 'string' ? value : JSON.stringify(value, null, 2));
  renameSync(`${path}.tmp`, path);
}

function setKey(doc: TrustStoreJson, state: string, use: 'alert' | 'token', over: Record<string, unknown>): TrustStoreJson {
  Object.assign(
    doc.states[state].keys.find((k) => k.use === use)!,
    over,
  );
  return doc;
}

async function post(node: CordonNode, body: unknown): Promise<{ status: number; body: { code?: string } }> {
  const res = await fetch(`${node.url}/v1/alerts`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as { code?: string } };
}

/** Polls until `probe` gives a value; returns it with the time it took. */
async function within<T>(what: string, ms: number, probe: () => Promise<T | undefined>): Promise<{ value: T; ms: number }> {
  const t0 = Date.now();
  for (;;) {
    const value = await probe();
    if (value !== undefined) return { value, ms: Date.now() - t0 };
    if (Date.now() - t0 > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('two production nodes (Redis, NATS) reloading one trust store', () => {
  const region = uniqueRegion();
  const cfg = writeConfigFiles(region);
  const storePath = cfg.env.CORDON_TRUST_STORE;
  const kzRegion = cfg.trust.storeJson.states.KZ.keys.find((k) => k.use === 'alert')!.regions![0];
  let a: CordonNode;
  let b: CordonNode;
  const desks: Desk[] = [];

  beforeAll(async () => {
    // info: the reload log lines are part of what is checked.
    [a, b] = await Promise.all(['a', 'b'].map((id) => startNode({ ...cfg.env, CORDON_NODE_ID: `e2e-trust-${id}`, CORDON_LOG_LEVEL: 'info' })));
  });
  afterAll(async () => {
    for (const d of desks) d.close();
    await killAllNodes();
    await removeKeys(cfg.prefix);
    rmSync(cfg.dir, { recursive: true, force: true });
  });

  const kg = (over: Partial<AlertContent> = {}) => cfg.trust.sign(validContent({ region, ...over }));
  const kz = () =>
    cfg.trust.sign(
      validContent({
        region: kzRegion,
        issuer: { state: 'KZ', agency: 'kz-border', gateway: 'kz-gw-1' },
        audience: { states: ['KZ', 'KG'], min_clearance: 'restricted' },
      }),
    );
  const refusedOn = (node: CordonNode) => async () => {
    const r = await post(node, kg());
    return r.status === 201 ? undefined : r;
  };

  test('SIGHUP reloads at once, the other node by itself within 10 s, desks of a revoked token key get 4501, a bad file is refused', async () => {
    expect((await post(a, kg())).status).toBe(201);
    expect((await post(b, kg())).status).toBe(201);
    const kgDesk = await socketDesk(`${b.url.replace('http', 'ws')}/v1/stream`, cfg.trust.token({ iss: 'KG', sub: 'desk-kg' }));
    const kzDesk = await socketDesk(`${a.url.replace('http', 'ws')}/v1/stream`, cfg.trust.token({ iss: 'KZ', sub: 'desk-kz' }));
    desks.push(kgDesk, kzDesk);
    for (const d of desks) d.subscribe([region]);
    for (const d of desks) await d.until((x) => x.ofType('subscribed').length === 1, 10_000, 'subscribed');

    // 1. The KG gateway key is revoked in the file; node a gets SIGHUP, node b nothing.
    writeAtomically(storePath, setKey(structuredClone(cfg.trust.storeJson), 'KG', 'alert', { status: 'revoked', revoked_at: new Date().toISOString() }));
    a.proc.kill('SIGHUP');
    const onA = await within('node a to refuse the revoked key', BOUND_MS, refusedOn(a));
    expect(onA.value).toEqual({ status: 403, body: expect.objectContaining({ code: 'KEY_NOT_VALID' }) });
    await within('the reload log line of node a', 5000, async () => (/"reason":"signal"[^\n]*"msg":"trust store reloaded"/.test(a.logs()) ? true : undefined));
    const onB = await within('node b to refuse the revoked key', BOUND_MS + 2000, refusedOn(b));
    expect(onB.value.body.code).toBe('KEY_NOT_VALID');
    expect(onB.ms).toBeLessThan(BOUND_MS);
    expect(b.logs()).toMatch(/"reason":"file-changed"[^\n]*"msg":"trust store reloaded"/);
    // SIGHUP did not stop node a (close-with-grace would have, before); others still publish.
    expect((await fetch(`${a.url}/healthz`)).status).toBe(200);
    expect((await post(a, kz())).status).toBe(201);

    // 2. The KG token key is revoked too, with no signal: the KG desk on b is closed with 4501.
    writeAtomically(
      storePath,
      setKey(setKey(structuredClone(cfg.trust.storeJson), 'KG', 'alert', { status: 'revoked', revoked_at: new Date().toISOString() }), 'KG', 'token', {
        status: 'revoked',
        revoked_at: new Date().toISOString(),
      }),
    );
    const t0 = Date.now();
    expect(await kgDesk.closed).toEqual({ code: 4501, reason: 'token key no longer active' });
    expect(Date.now() - t0).toBeLessThan(BOUND_MS + 1000);
    // A new KG token is refused on both nodes; the KZ desk stays.
    await within('node a to refuse KG tokens', BOUND_MS, async () => {
      const res = await fetch(`${a.url}/v1/regions`, { headers: { authorization: `Bearer ${cfg.trust.token({ iss: 'KG' })}` } });
      return res.status === 401 ? true : undefined;
    });
    expect((await fetch(`${b.url}/v1/regions`, { headers: { authorization: `Bearer ${cfg.trust.token({ iss: 'KG' })}` } })).status).toBe(401);
    expect(kzDesk.closeCode).toBeUndefined();

    // 3. A broken file with SIGHUP: refused, logged, the store in force stays.
    const inForce = readFileSync(storePath, 'utf8');
    writeAtomically(storePath, inForce.slice(0, inForce.length / 2));
    a.proc.kill('SIGHUP');
    await within('the refusal in the log of node a', 5000, async () =>
      a.logs().includes('trust store reload refused; the store in force stays') ? true : undefined,
    );
    expect((await post(a, kz())).status).toBe(201);
    expect((await post(a, kg())).body.code).toBe('KEY_NOT_VALID');
    expect((await fetch(`${a.url}/v1/trust`)).status).toBe(200);

    // Both still stop cleanly.
    expect(await a.stop()).toBe(0);
    expect(await b.stop()).toBe(0);
  });
});

describe('embedded mode with the generated development store', () => {
  test('starts, accepts the development keys, and reloads the store on SIGHUP', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'cordon-e2e-dev-'));
    try {
      const node = await startNode({ CORDON_DATA_DIR: dataDir, CORDON_RATE_LIMIT_MAX: '0' });
      const key = signingKeyFromJwk(JSON.parse(readFileSync(join(dataDir, 'keys', 'KG-alert.jwk.json'), 'utf8')));
      const sign = () => signContent(validContent({ region: 'KG-CN-01' }), key);
      expect((await post(node, sign())).status).toBe(201);

      const storePath = join(dataDir, 'trust-store.json');
      const doc = JSON.parse(readFileSync(storePath, 'utf8')) as TrustStoreJson;
      writeAtomically(storePath, setKey(doc, 'KG', 'alert', { status: 'revoked', revoked_at: new Date().toISOString() }));
      node.proc.kill('SIGHUP');
      const refused = await within('the dev KG key to be refused', BOUND_MS, async () => {
        const r = await post(node, sign());
        return r.status === 201 ? undefined : r;
      });
      expect(refused.value.body.code).toBe('KEY_NOT_VALID');
      expect(await node.stop()).toBe(0);
    } finally {
      await killAllNodes();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
