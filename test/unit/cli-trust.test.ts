import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { trustVersion, versionNumber } from '../../src/trust-reload';
import { runCordon } from '../helpers/cli';
import { makeTestTrust, TEST_REGIONS } from '../helpers/keys';

/** `cordon trust check FILE [--regions REGISTRY]`: the validation a node runs, before roll-out. */

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'cordon-cli-trust-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function write(name: string, value: unknown): string {
  writeFileSync(join(dir, name), typeof value === 'string' ? value : JSON.stringify(value, null, 2));
  return name;
}

const registry = { regions: TEST_REGIONS.map((r) => ({ ...r, name: `Crossing ${r.code}` })) };

describe('cordon trust check', () => {
  test('a valid store: exit 0, every state and key with use, status, window and regions, and the version a node shows', async () => {
    const t = makeTestTrust(['KG', 'KZ', 'CN']);
    const doc = structuredClone(t.storeJson);
    const kgToken = doc.states.KG.keys[1];
    kgToken.status = 'retired';
    kgToken.retired_at = '2026-01-02T00:00:00.000Z';
    const kzAlert = doc.states.KZ.keys[0];
    kzAlert.exp = new Date(Date.now() - 1000).toISOString();
    write('trust.json', doc);
    write('regions.json', registry);

    const r = await runCordon(dir, ['trust', 'check', 'trust.json', '--regions', 'regions.json']);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('OK trust.json\n');
    const version = trustVersion(readFileSync(join(dir, 'trust.json')), readFileSync(join(dir, 'regions.json')));
    expect(r.stdout).toContain(`version ${version} (cordon_trust_store_version ${versionNumber(version)})`);
    for (const state of ['KG', 'KZ', 'CN']) expect(r.stdout).toContain(`\n${state} State ${state}\n`);
    expect(r.stdout).toMatch(
      new RegExp(`alert   ${t.alertKey('KG').kid}\\n      status  active\\n      window  \\S+ \\.\\. \\S+\\n      regions KG-CN-01, KZ-KG-01`),
    );
    expect(r.stdout).toContain(`token   ${kgToken.kid}\n      status  retired since 2026-01-02T00:00:00.000Z`);
    expect(r.stdout).toContain(`alert   ${kzAlert.kid}\n      status  active, expired`);
    expect(r.stdout).toContain('warning: KG has no token key in force now');
    expect(r.stdout).toContain('warning: KZ has no alert key in force now');
  });

  test('--at judges the key windows at another time', async () => {
    const t = makeTestTrust(['KG']);
    write('trust.json', t.storeJson);
    const r = await runCordon(dir, ['trust', 'check', 'trust.json', '--at', '2000-01-01T00:00:00Z']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('checked at 2000-01-01T00:00:00.000Z');
    expect(r.stdout).toContain('status  active, not yet valid');
    expect(r.stdout).toContain('warning: regions of alert keys not checked against a registry (give --regions)');
  });

  type StoreJson = ReturnType<typeof makeTestTrust>['storeJson'];
  test.each<[string, (doc: StoreJson) => void, RegExp]>([
    ['a kid that is not the thumbprint of its key', (d) => void (d.states.KG.keys[0].kid = d.states.KG.keys[1].kid), /thumbprint|duplicate kid/],
    ['an unknown member', (d) => void Object.assign(d.states.KG.keys[0], { private: 'x' }), /invalid trust store/],
    ['exp before nbf', (d) => void Object.assign(d.states.KG.keys[0], { nbf: '2026-02-01T00:00:00Z', exp: '2026-01-01T00:00:00Z' }), /exp is not after nbf/],
    ['an unknown status', (d) => void Object.assign(d.states.KG.keys[0], { status: 'paused' }), /invalid trust store/],
  ])('an invalid store (%s): exit 1 and the reason', async (_name, spoil, reason) => {
    const doc = structuredClone(makeTestTrust(['KG']).storeJson);
    spoil(doc);
    write('trust.json', doc);
    const r = await runCordon(dir, ['trust', 'check', 'trust.json']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^INVALID trust\.json: /);
    expect(r.stderr).toMatch(reason);
    expect(r.stdout).toBe('');
  });

  test('alert key regions are checked against the registry: exit 1 with each problem', async () => {
    const t = makeTestTrust(['KG', 'KZ']);
    const doc = structuredClone(t.storeJson);
    doc.states.KG.keys[0].regions = ['KG-CN-01', 'TJ-AF-01', 'KZ-CN-01'];
    write('trust.json', doc);
    write('regions.json', registry);
    const r = await runCordon(dir, ['trust', 'check', 'trust.json', '--regions', 'regions.json']);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('problem: alert key');
    expect(r.stdout).toContain('names region TJ-AF-01, which the region registry does not list');
    expect(r.stdout).toContain('names region KZ-CN-01, whose member states are KZ, CN');
    expect(r.stdout).toContain('warning: states of the region registry without keys: CN');
    expect(r.stderr).toBe('INVALID trust.json: 2 key region(s) disagree with the region registry\n');
  });

  test('unreadable or broken files exit 1; an invalid registry too', async () => {
    expect((await runCordon(dir, ['trust', 'check', 'missing.json'])).stderr).toContain('cannot read trust store missing.json: no such file');
    write('half.json', '{"states": {');
    const half = await runCordon(dir, ['trust', 'check', 'half.json']);
    expect(half.code).toBe(1);
    expect(half.stderr).toContain('trust store half.json is not valid JSON');
    write('trust.json', makeTestTrust(['KG']).storeJson);
    write('regions.json', { regions: [{ code: 'bad', name: 'x', states: ['KG'] }] });
    const reg = await runCordon(dir, ['trust', 'check', 'trust.json', '--regions', 'regions.json']);
    expect(reg.code).toBe(1);
    expect(reg.stderr).toMatch(/^INVALID region registry regions\.json: invalid region registry/);
  });

  test('bad arguments exit 2 with the usage', async () => {
    for (const argv of [
      ['trust'],
      ['trust', 'show', 'x.json'],
      ['trust', 'check'],
      ['trust', 'check', 'a', 'b'],
      ['trust', 'check', 'a', '--at', 'yesterday'],
    ]) {
      const r = await runCordon(dir, argv);
      expect({ argv, code: r.code }).toEqual({ argv, code: 2 });
      expect(r.stderr).toContain('usage: cordon trust check FILE');
    }
  });
});
