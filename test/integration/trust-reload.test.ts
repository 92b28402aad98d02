import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { makeTestApp, testRegions, type Backend, type TestApp } from '../helpers/app';
import { injectDesk, type Desk } from '../helpers/desk';
import { makeTestTrust, type TestTrust } from '../helpers/keys';
import { uniqueRegion } from '../helpers/env';
import { validContent } from '../fixtures/alerts';
import { LiveTrust } from '../../src/domain/live-trust';
import type { TrustStoreJson } from '../../src/domain/trust-store';
import type { AlertContent, Region } from '../../src/domain/types';
import { readTrustSnapshot, TrustReloader, versionNumber, type TrustFiles } from '../../src/trust-reload';

/**
 * Live trust reload (contract §4 v1.1) on the app with its real doors: the trust store and region
 * registry files are rewritten as an operator would, and the node must act on them within 10 s
 * for submissions (HTTP and NATS), tokens and desks already connected.
 */

const CONTRACT_BOUND_MS = 10_000;

interface Node {
  t: TestApp;
  trust: TestTrust;
  files: Required<TrustFiles>;
  live: LiveTrust;
  reloader: TrustReloader;
  regions: Region[];
  /** a copy of the store as written, to edit and write back. */
  doc(): TrustStoreJson;
  writeStore(doc: unknown): void;
  writeRegions(doc: unknown): void;
  close(): Promise<void>;
}

function writeAtomically(path: string, value: unknown): void {
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, typeof value === 'string' ? value : JSON.stringify(value, null, 2));
  renameSync(tmp, path);
}

async function startNode(backend: Backend, intervalMs = 5000): Promise<Node> {
  const dir = mkdtempSync(join(tmpdir(), 'cordon-trust-'));
  const regions = testRegions();
  const trust = makeTestTrust(['KG', 'KZ', 'CN'], regions);
  const files = { trustStorePath: join(dir, 'trust-store.json'), regionsPath: join(dir, 'regions.json') };
  writeAtomically(files.regionsPath, { regions });
  writeAtomically(files.trustStorePath, trust.storeJson);
  const live = new LiveTrust(readTrustSnapshot(files));
  const t = await makeTestApp({ backend, regions, trust, live });
  const reloader = new TrustReloader(live, { files, intervalMs, log: pino({ level: 'silent' }), registry: t.deps.metrics.registry });
  reloader.start();
  return {
    t,
    trust,
    files,
    live,
    reloader,
    regions,
    doc: () => structuredClone(trust.storeJson),
    writeStore: (doc) => writeAtomically(files.trustStorePath, doc),
    writeRegions: (doc) => writeAtomically(files.regionsPath, doc),
    async close() {
      reloader.close();
      await t.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function setKey(doc: TrustStoreJson, state: string, use: 'alert' | 'token', over: Record<string, unknown>): TrustStoreJson {
  const key = doc.states[state].keys.find((k) => k.use === use)!;
  Object.assign(key, over);
  return doc;
}

const revoked = () => ({ status: 'revoked', revoked_at: new Date().toISOString() });

async function metric(n: Node, name: string): Promise<string> {
  return (await n.t.deps.metrics.registry.getSingleMetricAsString(name)) ?? '';
}

async function waitFor<T>(what: string, ms: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe.each<Backend>(['memory', 'real'])('live trust reload on the %s backend', (backend) => {
  let n: Node;
  let R: string;
  const desks: Desk[] = [];
  beforeEach(async () => {
    n = await startNode(backend);
    R = n.regions[0].code;
  });
  afterEach(async () => {
    for (const d of desks.splice(0)) d.close();
    await n.close();
  });

  const content = (over: Partial<AlertContent> = {}) => validContent({ region: R, ...over });
  const post = (body: unknown) => n.t.app.inject({ method: 'POST', url: '/v1/alerts', payload: body as object });
  const desk = async (token: string): Promise<Desk> => {
    const d = await injectDesk(n.t.app, token);
    desks.push(d);
    d.subscribe([R]);
    await d.until((x) => x.ofType('subscribed').length === 1, 5000, 'subscribed');
    return d;
  };

  test('a gateway key revoked by rewriting the file: its submissions are refused within 10 s, on HTTP and NATS', async () => {
    expect((await post(n.trust.sign(content()))).statusCode).toBe(201);
    const before = await metric(n, 'cordon_trust_store_version');

    n.writeStore(setKey(n.doc(), 'KG', 'alert', revoked()));
    const t0 = Date.now();
    // Only the periodic check (every CORDON_TRUST_RELOAD_MS, 5 s by default) is at work here.
    const refused = await waitFor('a KG submission to be refused', CONTRACT_BOUND_MS + 2000, async () => {
      const res = await post(n.trust.sign(content()));
      return res.statusCode === 201 ? undefined : res;
    });
    const elapsed = Date.now() - t0;
    expect(refused.statusCode).toBe(403);
    expect(refused.json()).toMatchObject({ code: 'KEY_NOT_VALID', detail: 'key is revoked' });
    expect(elapsed).toBeLessThan(CONTRACT_BOUND_MS);

    if (backend === 'real') {
      // The NATS door goes through the same pipeline, with the same store.
      const reply = await n.t.deps.bus.requestIngest(R, Buffer.from(JSON.stringify(n.trust.sign(content()))), 5000);
      expect(reply).toMatchObject({ status: 403, code: 'KEY_NOT_VALID' });
      const kz = n.regions.find((r) => r.states.includes('KZ'))!.code;
      const ok = await n.t.deps.bus.requestIngest(
        kz,
        Buffer.from(
          JSON.stringify(
            n.trust.sign(
              validContent({
                region: kz,
                issuer: { state: 'KZ', agency: 'kz-border', gateway: 'kz-gw-1' },
                audience: { states: ['KZ', 'KG'], min_clearance: 'restricted' },
              }),
            ),
          ),
        ),
        5000,
      );
      expect(ok).toMatchObject({ status: 201 });
    }
    // The public store says so; the metrics name the new version.
    const trust = (await n.t.app.inject({ url: '/v1/trust' })).json<TrustStoreJson>();
    expect(trust.states.KG.keys.find((k) => k.use === 'alert')?.status).toBe('revoked');
    const after = await metric(n, 'cordon_trust_store_version');
    expect(after).not.toBe(before);
    expect(after).toContain(`cordon_trust_store_version ${versionNumber(n.live.current.version)}`);
    expect(await metric(n, 'cordon_trust_reloads_total')).toContain('cordon_trust_reloads_total{outcome="applied"} 1');
    // The rejection of a correctly signed submission is audited as before.
    expect((await post(n.trust.sign(content()))).statusCode).toBe(403);
  });

  test('desks holding tokens of a token key that is revoked are closed with 4501; other desks stay', async () => {
    const kg = await desk(n.t.token({ iss: 'KG' }));
    const kz = await desk(n.t.token({ iss: 'KZ', sub: 'desk-almaty' }));

    n.writeStore(setKey(n.doc(), 'KG', 'token', revoked()));
    expect(await n.reloader.reload('file-changed')).toMatchObject({ outcome: 'applied' });

    const closed = await kg.closed;
    expect(closed).toEqual({ code: 4501, reason: 'token key no longer active' });
    // A new token of that key is refused on every door.
    const res = await n.t.app.inject({ url: '/v1/regions', headers: { authorization: `Bearer ${n.t.token({ iss: 'KG' })}` } });
    expect(res.statusCode).toBe(401);
    expect(res.json().code).toBe('TOKEN_INVALID');
    // The KZ desk is untouched and still gets live alerts.
    const receipt = await n.t.publish(content());
    await kz.until((d) => d.alerts(R).some((a) => a.seq === receipt.seq), 5000, 'the alert on the KZ desk');
    expect(kz.closeCode).toBeUndefined();
    expect(await metric(n, 'cordon_stream_token_key_closes_total')).toContain('cordon_stream_token_key_closes_total 1');
  });

  test('an invalid file is refused and the store in force stays', async () => {
    const version = n.live.current.version;
    const kid = n.trust.alertKey('KG').kid;
    const badKid = setKey(n.doc(), 'KG', 'alert', { kid: n.trust.alertKey('KZ').kid });
    const unknownMember = setKey(n.doc(), 'KG', 'alert', { revoked: true });
    const badWindow = setKey(n.doc(), 'KG', 'alert', { nbf: '2026-02-01T00:00:00Z', exp: '2026-01-01T00:00:00Z' });
    const cases: [string, () => void, RegExp][] = [
      ['a half-written file', () => writeFileSync(n.files.trustStorePath, JSON.stringify(revokedDoc()).slice(0, 200)), /not valid JSON/],
      ['a kid that is not the thumbprint of its jwk', () => n.writeStore(badKid), /thumbprint|duplicate kid/],
      ['a member the schema does not know', () => n.writeStore(unknownMember), /invalid trust store/],
      ['a key whose exp is before its nbf', () => n.writeStore(badWindow), /exp is not after nbf/],
      ['a region registry with a bad code', () => n.writeRegions({ regions: [{ code: 'kg-cn', name: 'x', states: ['KG', 'CN'] }] }), /invalid region registry/],
      ['a missing file', () => rmSync(n.files.trustStorePath), /cannot read/],
    ];
    function revokedDoc(): TrustStoreJson {
      return setKey(n.doc(), 'KG', 'alert', revoked());
    }
    let refusals = 0;
    for (const [name, write, error] of cases) {
      write();
      const result = await n.reloader.reload('signal');
      refusals++;
      expect({ name, outcome: result.outcome }).toEqual({ name, outcome: 'refused' });
      expect(result.error).toMatch(error);
      expect(n.live.current.version).toBe(version);
      // The old store still decides: the KG key signs, KG tokens work.
      expect((await post(n.trust.sign(content()))).statusCode).toBe(201);
      expect((await n.t.app.inject({ url: '/v1/regions', headers: { authorization: `Bearer ${n.t.token()}` } })).statusCode).toBe(200);
      // Put the good files back for the next case.
      n.writeRegions({ regions: n.regions });
      n.writeStore(n.trust.storeJson);
    }
    expect(await metric(n, 'cordon_trust_reloads_total')).toContain(`cordon_trust_reloads_total{outcome="refused"} ${refusals}`);
    expect(await n.reloader.reload('signal')).toMatchObject({ outcome: 'unchanged', version });
    // A valid file after all that is applied.
    n.writeStore(revokedDoc());
    expect(await n.reloader.reload('signal')).toMatchObject({ outcome: 'applied' });
    expect(n.live.store.alertKey(kid)?.status).toBe('revoked');
    expect((await post(n.trust.sign(content()))).json()).toMatchObject({ code: 'KEY_NOT_VALID' });
  });

  test('a region added to the registry file (and to a key) is served after the reload', async () => {
    const code = uniqueRegion('KG', 'KZ');
    const fresh = { code, name: 'New crossing (test)', states: ['KG', 'KZ'] };
    const sub = () => n.trust.sign(content({ region: code, audience: { states: ['KG', 'KZ'], min_clearance: 'restricted' } }));
    expect((await post(sub())).json()).toMatchObject({ code: 'SUBMISSION_INVALID' });

    n.writeRegions({ regions: [...n.regions, fresh] });
    const doc = n.doc();
    const kgAlert = doc.states.KG.keys.find((k) => k.use === 'alert')!;
    kgAlert.regions = [...(kgAlert.regions ?? []), code];
    n.writeStore(doc);
    expect(await n.reloader.reload('signal')).toMatchObject({ outcome: 'applied' });

    expect((await post(sub())).statusCode).toBe(201);
    const listed = await n.t.app.inject({ url: '/v1/regions', headers: { authorization: `Bearer ${n.t.token()}` } });
    expect(listed.json().regions.map((r: Region) => r.code)).toContain(code);
    const d = await injectDesk(n.t.app, n.t.token());
    desks.push(d);
    d.subscribe([code]);
    await d.until((x) => x.ofType('subscribed', code).length === 1, 5000, 'subscribed to the new region');
  });
});

describe('token keys at the time of use on a live session', () => {
  test('a desk is closed with 4501 when its own token expires (a timer at exp)', async () => {
    const t = await makeTestApp({ backend: 'memory' });
    try {
      const iat = Math.floor(Date.now() / 1000);
      const d = await injectDesk(t.app, t.token({ iat, exp: iat + 2 }));
      d.subscribe([t.regions.list()[0].code]);
      expect(await d.closed).toEqual({ code: 4501, reason: 'token expired' });
      expect(Date.now()).toBeGreaterThanOrEqual((iat + 2) * 1000);
    } finally {
      await t.close();
    }
  });

  test('a desk whose token key runs out while it is connected is closed with 4501', async () => {
    const n = await startNode('memory');
    try {
      // The KG token key ends in 3 s; the token itself would last an hour.
      n.writeStore(setKey(n.doc(), 'KG', 'token', { exp: new Date(Date.now() + 3000).toISOString() }));
      expect(await n.reloader.reload('signal')).toMatchObject({ outcome: 'applied' });
      const d = await injectDesk(n.t.app, n.t.token({ iss: 'KG', exp: Math.floor(Date.now() / 1000) + 3600 }));
      d.subscribe([n.regions[0].code]);
      const t0 = Date.now();
      expect(await d.closed).toEqual({ code: 4501, reason: 'token key no longer active' });
      expect(Date.now() - t0).toBeLessThan(10_000);
    } finally {
      await n.close();
    }
  });

  test('the attack tokens (expired or retired key, backdated iat, 100-year exp) are refused at the upgrade and over HTTP', async () => {
    const n = await startNode('memory');
    try {
      const DAY_S = 86_400;
      const now = Math.floor(Date.now() / 1000);
      const doc = n.doc();
      setKey(doc, 'KG', 'token', { nbf: new Date((now - 365 * DAY_S) * 1000).toISOString(), exp: new Date((now - DAY_S) * 1000).toISOString() });
      setKey(doc, 'KZ', 'token', { status: 'retired', retired_at: new Date((now - 3600) * 1000).toISOString() });
      n.writeStore(doc);
      expect(await n.reloader.reload('signal')).toMatchObject({ outcome: 'applied' });
      const forged = [
        n.t.token({ iss: 'KG', iat: now - 2 * DAY_S, exp: now + 100 * 365 * DAY_S }),
        n.t.token({ iss: 'KZ', iat: now - 7200, exp: now + 100 * 365 * DAY_S }),
      ];
      for (const token of forged) {
        const res = await n.t.app.inject({ url: '/v1/regions', headers: { authorization: `Bearer ${token}` } });
        expect(res.json()).toMatchObject({ status: 401, code: 'TOKEN_INVALID' });
        const up = await n.t.app.inject({ url: '/v1/stream', headers: { authorization: `Bearer ${token}` } });
        expect(up.json()).toMatchObject({ status: 401, code: 'TOKEN_INVALID' });
      }
      // Over the configured lifetime (default 12 h) from an active key.
      const long = n.t.token({ iss: 'CN', iat: now, exp: now + 43_201 });
      expect((await n.t.app.inject({ url: '/v1/regions', headers: { authorization: `Bearer ${long}` } })).json()).toMatchObject({
        code: 'TOKEN_INVALID',
        detail: 'token lifetime exceeds the maximum',
      });
    } finally {
      await n.close();
    }
  });

  test('CORDON_TOKEN_MAX_TTL_S bounds the lifetime on every door', async () => {
    const t = await makeTestApp({ backend: 'memory', config: { CORDON_TOKEN_MAX_TTL_S: '600' } });
    try {
      const now = Math.floor(Date.now() / 1000);
      const call = (token: string) => t.app.inject({ url: '/v1/regions', headers: { authorization: `Bearer ${token}` } });
      expect((await call(t.token({ iat: now, exp: now + 600 }))).statusCode).toBe(200);
      expect((await call(t.token({ iat: now, exp: now + 601 }))).json()).toMatchObject({ code: 'TOKEN_INVALID' });
      const up = await t.app.inject({ url: '/v1/stream', headers: { authorization: `Bearer ${t.token({ iat: now, exp: now + 601 })}` } });
      expect(up.json()).toMatchObject({ code: 'TOKEN_INVALID', detail: 'token lifetime exceeds the maximum' });
    } finally {
      await t.close();
    }
  });
});
