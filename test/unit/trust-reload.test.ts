import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pino from 'pino';
import { Registry } from 'prom-client';
import { LiveTrust } from '../../src/domain/live-trust';
import { keyChanges, readTrustSnapshot, TrustReloader, trustVersion, versionNumber } from '../../src/trust-reload';
import { makeTestTrust } from '../helpers/keys';

function logSink(): { log: pino.Logger; lines: () => Array<Record<string, unknown>> } {
  const out: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      out.push(chunk.toString());
      cb();
    },
  });
  const log = pino({ level: 'info' }, stream);
  return {
    log,
    lines: () =>
      out
        .join('')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

describe('trustVersion and versionNumber', () => {
  test('the version changes with either file, and the two files cannot be confused', () => {
    const v = trustVersion(Buffer.from('ab'), Buffer.from('c'));
    expect(v).toMatch(/^[0-9a-f]{64}$/);
    expect(trustVersion(Buffer.from('a'), Buffer.from('bc'))).not.toBe(v);
    expect(trustVersion(Buffer.from('ab'), Buffer.from('d'))).not.toBe(v);
    expect(trustVersion(Buffer.from('ab'), undefined)).not.toBe(v);
    expect(trustVersion(Buffer.from('ab'), Buffer.from('c'))).toBe(v);
  });

  test('the metric value is the first 48 bits, an exact integer', () => {
    expect(versionNumber('ffffffffffff' + '0'.repeat(52))).toBe(2 ** 48 - 1);
    expect(Number.isSafeInteger(versionNumber(trustVersion(Buffer.from('x'), undefined)))).toBe(true);
    expect(versionNumber('')).toBe(0);
  });
});

describe('keyChanges', () => {
  test('names keys whose status or window changed, and keys added or removed', () => {
    const t = makeTestTrust(['KG', 'KZ']);
    const before = structuredClone(t.storeJson);
    const after = structuredClone(t.storeJson);
    const kgAlert = after.states.KG.keys[0];
    kgAlert.status = 'revoked';
    kgAlert.revoked_at = new Date().toISOString();
    const removed = after.states.KZ.keys.pop()!;
    const lines = keyChanges(before, after);
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(new RegExp(`^${kgAlert.kid} KG alert active .* -> KG alert revoked`));
    expect(lines[1]).toMatch(new RegExp(`^${removed.kid} removed`));
    expect(keyChanges(after, before).some((l) => l.startsWith(`${removed.kid} added`))).toBe(true);
    expect(keyChanges(before, before)).toEqual([]);
  });
});

describe('TrustReloader', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'cordon-reload-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  function setup(intervalMs = 60_000) {
    const t = makeTestTrust(['KG', 'KZ']);
    const files = { trustStorePath: join(dir, 'trust.json') };
    writeFileSync(files.trustStorePath, JSON.stringify(t.storeJson));
    const live = new LiveTrust(readTrustSnapshot(files));
    const sink = logSink();
    const registry = new Registry();
    const reloader = new TrustReloader(live, { files, intervalMs, log: sink.log, registry });
    return { t, files, live, sink, registry, reloader };
  }

  test('applies a changed valid file, says unchanged for the same content, refuses a bad one', async () => {
    const { t, files, live, reloader, registry } = setup();
    const first = live.current;
    expect(await reloader.reload('signal')).toEqual({ outcome: 'unchanged', version: first.version });
    expect(live.current).toBe(first);

    const doc = structuredClone(t.storeJson);
    doc.states.KG.keys[1].status = 'retired';
    doc.states.KG.keys[1].retired_at = new Date().toISOString();
    writeFileSync(files.trustStorePath, JSON.stringify(doc));
    const applied = await reloader.reload('file-changed');
    expect(applied.outcome).toBe('applied');
    expect(live.current.version).toBe(applied.version);
    expect(live.store.tokenKey(t.tokenKey('KG').kid)?.status).toBe('retired');

    writeFileSync(files.trustStorePath, '{"states":');
    const refused = await reloader.reload('signal');
    expect(refused).toMatchObject({ outcome: 'refused', error: expect.stringMatching(/not valid JSON/) });
    expect(live.current.version).toBe(applied.version);
    const metrics = await registry.metrics();
    expect(metrics).toContain(`cordon_trust_store_version ${versionNumber(applied.version)}`);
    expect(metrics).toContain('cordon_trust_reloads_total{outcome="applied"} 1');
    expect(metrics).toContain('cordon_trust_reloads_total{outcome="refused"} 1');
    expect(metrics).toMatch(/cordon_trust_store_loaded_seconds \d+/);
  });

  test('the periodic check reports a bad file once; SIGHUP reports it every time', async () => {
    const { files, reloader, sink } = setup();
    writeFileSync(files.trustStorePath, 'garbage');
    for (let i = 0; i < 3; i++) await reloader.reload('file-changed');
    const refusals = () => sink.lines().filter((l) => l.msg === 'trust store reload refused; the store in force stays');
    expect(refusals()).toHaveLength(1);
    expect(refusals()[0]).toMatchObject({ level: 50, reason: 'file-changed' });
    await reloader.reload('signal');
    await reloader.reload('signal');
    expect(refusals()).toHaveLength(3);
    // Another bad content is news again.
    writeFileSync(files.trustStorePath, 'other garbage');
    await reloader.reload('file-changed');
    expect(refusals()).toHaveLength(4);
  });

  test('the periodic check finds a change by itself', async () => {
    const { t, files, live, reloader } = setup(100);
    const before = live.current.version;
    reloader.start();
    try {
      const doc = structuredClone(t.storeJson);
      doc.states.KZ.keys[0].status = 'revoked';
      doc.states.KZ.keys[0].revoked_at = new Date().toISOString();
      writeFileSync(files.trustStorePath, JSON.stringify(doc));
      const deadline = Date.now() + 5000;
      while (live.current.version === before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(live.current.version).not.toBe(before);
      expect(live.store.alertKey(t.alertKey('KZ').kid)?.status).toBe('revoked');
    } finally {
      reloader.close();
    }
  });

  test('concurrent reloads run one after the other: one applies, the next finds nothing new', async () => {
    const { t, files, reloader } = setup();
    const doc = structuredClone(t.storeJson);
    doc.states.KZ.name = 'Kazakhstan (renamed)';
    writeFileSync(files.trustStorePath, JSON.stringify(doc));
    const results = await Promise.all([reloader.reload('signal'), reloader.reload('file-changed')]);
    expect(results.map((r) => r.outcome)).toEqual(['applied', 'unchanged']);
  });

  test('a listener that throws does not undo the reload, and the others still hear of it', async () => {
    const { t, files, live, reloader, sink } = setup();
    const heard: string[] = [];
    live.onChange(() => {
      throw new Error('listener bug');
    });
    const stop = live.onChange((next) => heard.push(next.version));
    const doc = structuredClone(t.storeJson);
    doc.states.KZ.name = 'Kazakhstan (renamed)';
    writeFileSync(files.trustStorePath, JSON.stringify(doc));
    const r = await reloader.reload('signal');
    expect(r.outcome).toBe('applied');
    expect(heard).toEqual([r.version]);
    expect(live.store.publicView().states.KZ.name).toBe('Kazakhstan (renamed)');
    expect(sink.lines().some((l) => l.msg === 'a consumer of the trust store failed to apply a reload')).toBe(true);
    stop();
    doc.states.KZ.name = 'Kazakhstan';
    writeFileSync(files.trustStorePath, JSON.stringify(doc));
    await reloader.reload('signal');
    expect(heard).toHaveLength(1);
  });
});
