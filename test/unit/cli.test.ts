import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { COMMANDS } from '../../src/cli/main';
import { runCordon, sink, type CliRun } from '../helpers/cli';
import { demoContent } from '../../src/cli/publish';
import { ensureDevTrustStore } from '../../src/dev/dev-trust-store';
import { RegionRegistry } from '../../src/domain/regions';
import { verifyToken } from '../../src/domain/tokens';
import { jwkThumbprint, TrustStore } from '../../src/domain/trust-store';
import type { Submission } from '../../src/domain/types';
import { validateContent } from '../../src/domain/validate';

function cordon(cwd: string, ...argv: string[]): Promise<CliRun> {
  return runCordon(cwd, argv);
}

const registry = RegionRegistry.example();
let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'cordon-cli-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

function write(name: string, value: unknown): string {
  writeFileSync(join(dir, name), typeof value === 'string' ? value : JSON.stringify(value, null, 2));
  return name;
}

/** keygen in `dir`, returning the private key file name and the printed entry. */
async function keygen(state: string, use: 'alert' | 'token', regions?: string): Promise<{ file: string; entry: Record<string, unknown> }> {
  const before = new Set(readdirSync(dir));
  const r = await cordon(dir, 'keygen', '--state', state, '--use', use, ...(regions ? ['--regions', regions] : []), '--out', '.');
  expect(r.code).toBe(0);
  const file = readdirSync(dir).find((f) => !before.has(f))!;
  return { file, entry: JSON.parse(r.stdout) as Record<string, unknown> };
}

describe('cordon (top level)', () => {
  test('help lists every registered command and exits 0', async () => {
    const r = await cordon(dir, 'help');
    expect(r.code).toBe(0);
    for (const c of COMMANDS) expect(r.stdout).toContain(c.name);
  });

  test('help <command> and <command> --help print its usage', async () => {
    expect((await cordon(dir, 'help', 'sign')).stdout).toContain('usage: cordon sign --key');
    expect((await cordon(dir, 'keygen', '--help')).stdout).toContain('usage: cordon keygen --state');
  });

  test('--version prints the package version', async () => {
    const { version } = JSON.parse(readFileSync(join(__dirname, '../../package.json'), 'utf8')) as { version: string };
    const r = await cordon(dir, '--version');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`cordon ${version}\n`);
  });

  test('help <command> documents --token-file on every command that takes a token', async () => {
    for (const name of ['tail', 'replay', 'audit']) expect((await cordon(dir, 'help', name)).stdout).toContain('--token-file FILE');
  });

  test('no command or an unknown one exits 2 with the command list', async () => {
    expect((await cordon(dir)).code).toBe(2);
    const r = await cordon(dir, 'frobnicate');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("unknown command 'frobnicate'");
    expect(r.stderr).toContain('keygen');
  });
});

describe('cordon keygen', () => {
  test('writes a 0600 private JWK and prints a trust-store entry whose kid is the RFC 7638 thumbprint', async () => {
    const { file, entry } = await keygen('KZ', 'alert', 'KZ-KG-01,KZ-CN-01');
    expect(statSync(join(dir, file)).mode & 0o777).toBe(0o600);
    const priv = JSON.parse(readFileSync(join(dir, file), 'utf8')) as { d: string; kid: string };
    expect(typeof priv.d).toBe('string');
    expect(entry.kid).toBe(jwkThumbprint(entry.jwk as { kty: string; crv: string; x: string }));
    expect(priv.kid).toBe(entry.kid);
    expect(entry).toMatchObject({ use: 'alert', regions: ['KZ-KG-01', 'KZ-CN-01'], status: 'active' });
    expect(entry).not.toHaveProperty('jwk.d');
    const store = TrustStore.fromJson({ states: { KZ: { name: 'Kazakhstan', keys: [entry] } } });
    expect(store.alertKey(entry.kid as string)?.state).toBe('KZ');
  });

  test.each([
    [['--use', 'alert', '--regions', 'KZ-KG-01'], '--state is required'],
    [['--state', 'kz', '--use', 'alert', '--regions', 'KZ-KG-01'], '--state must be two capital letters'],
    [['--state', 'KZ', '--use', 'signing'], '--use must be alert, token or witness'],
    [['--state', 'KZ', '--use', 'alert'], '--regions is required for an alert key'],
    [['--state', 'KZ', '--use', 'alert', '--regions', 'Korday'], 'not a region code'],
    [['--state', 'KZ', '--use', 'token', '--days', 'ten'], '--days must be an integer'],
    [['--state', 'KZ', '--use', 'token', '--colour', 'red'], "Unknown option '--colour'"],
    [['--state'], "Option '--state <value>' argument missing"],
  ])('bad arguments %j exit 2 with the reason and the usage', async (args, message) => {
    const r = await cordon(dir, 'keygen', ...args);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(message);
    expect(r.stderr).toContain('usage: cordon keygen');
  });
});

describe('keygen → sign → verify', () => {
  async function setup(): Promise<{ key: string; trust: string }> {
    const { file, entry } = await keygen('KG', 'alert', 'KG-CN-01,KZ-KG-01');
    const trust = write('trust.json', { states: { KG: { name: 'Kyrgyzstan', keys: [entry] } } });
    return { key: file, trust };
  }

  test('a signed submission verifies against the trust store and tampering is caught', async () => {
    const { key, trust } = await setup();
    write('content.json', demoContent('KG', registry.get('KG-CN-01')!));
    const signed = await cordon(dir, 'sign', '--key', key, '--in', 'content.json', '--out', 'sub.json');
    expect(signed.code).toBe(0);
    expect(signed.stderr).toContain('signed alert--');

    const ok = await cordon(dir, 'verify', '--trust', trust, '--in', 'sub.json');
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/^OK {3}alert--.* signed by KG key /);

    const sub = JSON.parse(readFileSync(join(dir, 'sub.json'), 'utf8')) as Submission;
    write('tampered.json', { ...sub, content: { ...sub.content, title: sub.content.title + ' (edited)' } });
    const bad = await cordon(dir, 'verify', '--trust', trust, '--in', 'tampered.json');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('SIGNATURE_INVALID');
  });

  test('sign prints to stdout, honours --iat and --new-id --now', async () => {
    const { key } = await setup();
    const content = demoContent('KG', registry.get('KZ-KG-01')!, Date.parse('2026-01-01T00:00:00.000Z'));
    write('content.json', content);
    const r = await cordon(dir, 'sign', '--key', key, '--in', 'content.json', '--iat', '1767225600', '--new-id', '--now');
    expect(r.code).toBe(0);
    const sub = JSON.parse(r.stdout) as Submission;
    expect(JSON.parse(Buffer.from(sub.sig.protected, 'base64url').toString()).iat).toBe(1767225600);
    expect(sub.content.id).not.toBe(content.id);
    expect(sub.content.created).toBe(sub.content.modified);
    expect(Date.parse(sub.content.created)).toBeGreaterThan(Date.parse(content.created));
  });

  test('verify reads delivered alerts as an array, a page or NDJSON and judges them at received_at', async () => {
    const { key, trust } = await setup();
    write('content.json', demoContent('KG', registry.get('KG-CN-01')!));
    const sub = JSON.parse((await cordon(dir, 'sign', '--key', key, '--in', 'content.json')).stdout) as Submission;
    const delivered = { region: 'KG-CN-01', seq: 7, epoch: 'e1', received_at: new Date().toISOString(), ...sub };
    write('page.json', { region: 'KG-CN-01', items: [delivered, delivered] });
    write('export.ndjson', `${JSON.stringify(delivered)}\n${JSON.stringify({ type: 'alert', ...delivered })}\n`);
    const page = await cordon(dir, 'verify', '--trust', trust, '--in', 'page.json');
    expect(page.code).toBe(0);
    expect(page.stdout.trim().split('\n')).toHaveLength(2);
    expect(page.stdout).toContain('KG-CN-01#7');
    expect((await cordon(dir, 'verify', '--trust', trust, '--in', 'export.ndjson')).code).toBe(0);
  });

  test('sign refuses invalid content and lists every problem, signing nothing', async () => {
    const { key } = await setup();
    const content = demoContent('KG', registry.get('KG-CN-01')!);
    write('content.json', { ...content, title: '', handling: { ...(content.handling as object), codes: ['H1'], evidential_use: true } });
    const r = await cordon(dir, 'sign', '--key', key, '--in', 'content.json', '--out', 'sub.json');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('content is invalid, nothing signed');
    expect(r.stderr).toContain('/title');
    expect(r.stderr).toContain('/handling');
    expect(existsSync(join(dir, 'sub.json'))).toBe(false);
  });

  test('sign refuses content of another state or region than the key may sign for', async () => {
    const { key } = await setup();
    write('cn.json', demoContent('CN', registry.get('KG-CN-01')!));
    expect((await cordon(dir, 'sign', '--key', key, '--in', 'cn.json')).stderr).toContain('the key belongs to KG but content.issuer.state is CN');
    write('kz.json', demoContent('KG', registry.get('KG-CN-02')!));
    expect((await cordon(dir, 'sign', '--key', key, '--in', 'kz.json')).stderr).toContain('not for region KG-CN-02');
  });

  test('missing files, bad JSON and a non-key file are clear errors with exit 1', async () => {
    const { key } = await setup();
    write('broken.json', '{"spec": ');
    const missing = await cordon(dir, 'sign', '--key', key, '--in', 'nope.json');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('cannot read content file nope.json: no such file');
    const broken = await cordon(dir, 'sign', '--key', key, '--in', 'broken.json');
    expect(broken.code).toBe(1);
    expect(broken.stderr).toContain('content file broken.json is not valid JSON');
    write('notakey.json', { hello: 'world' });
    expect((await cordon(dir, 'sign', '--key', 'notakey.json', '--in', 'broken.json')).stderr).toContain('not an Ed25519 private JWK');
    const badTrust = await cordon(dir, 'verify', '--trust', 'broken.json', '--in', 'broken.json');
    expect(badTrust.code).toBe(1);
  });

  test('sign and verify without required options exit 2', async () => {
    expect((await cordon(dir, 'sign', '--in', 'x.json')).code).toBe(2);
    expect((await cordon(dir, 'verify', '--in', 'x.json')).stderr).toContain('give exactly one of --trust and --url');
    expect((await cordon(dir, 'verify', '--trust', 'a', '--url', 'http://x', '--in', 'x')).code).toBe(2);
  });
});

describe('cordon token', () => {
  test('issues a token that verifyToken accepts with the given claims', async () => {
    const { file, entry } = await keygen('KZ', 'token');
    const store = TrustStore.fromJson({ states: { KZ: { name: 'Kazakhstan', keys: [entry] } } });
    const r = await cordon(
      dir,
      'token',
      '--key',
      file,
      '--sub',
      'desk-almaty',
      '--role',
      'desk',
      '--clearance',
      'restricted',
      '--regions',
      'KZ-KG-01',
      '--ttl',
      '2h',
    );
    expect(r.code).toBe(0);
    const t = verifyToken(r.stdout.trim(), store, Date.now());
    expect(t).toMatchObject({ iss: 'KZ', sub: 'desk-almaty', role: 'desk', clearance: 'restricted', regions: ['KZ-KG-01'] });
    expect(t.exp - t.iat).toBe(7200);
  });

  test('bad claims exit 2 naming the option; an alert key or another state exit 1', async () => {
    const { file } = await keygen('KZ', 'token');
    const bad = await cordon(dir, 'token', '--key', file, '--sub', 'd', '--role', 'admin', '--clearance', 'secret');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--role must be equal to one of the allowed values');
    expect((await cordon(dir, 'token', '--key', file, '--sub', 'd', '--role', 'ops', '--clearance', 'secret', '--ttl', 'soon')).code).toBe(2);
    const other = await cordon(dir, 'token', '--key', file, '--iss', 'KG', '--sub', 'd', '--role', 'ops', '--clearance', 'secret');
    expect(other.stderr).toContain('the key belongs to KZ, not to KG');
    const alert = await keygen('KZ', 'alert', 'KZ-KG-01');
    expect((await cordon(dir, 'token', '--key', alert.file, '--sub', 'd', '--role', 'ops', '--clearance', 'secret')).stderr).toContain('this is an alert key');
  });
});

describe('development trust store', () => {
  function recordingLog(): { log: pino.Logger; lines: () => { level: number; msg: string }[] } {
    const out = sink();
    return {
      log: pino({ level: 'info' }, out.stream),
      lines: () =>
        out
          .text()
          .trim()
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as { level: number; msg: string }),
    };
  }

  test('is generated on first start for every state of the registry, with 0600 key files and a loud warning', () => {
    const rec = recordingLog();
    const { path, store } = ensureDevTrustStore(join(dir, '.cordon'), registry, rec.log);
    expect(path).toBe(join(dir, '.cordon', 'trust-store.json'));
    expect(store.states().sort()).toEqual([...registry.states].sort());
    for (const state of registry.states) {
      for (const use of ['alert', 'token']) {
        const f = join(dir, '.cordon', 'keys', `${state}-${use}.jwk.json`);
        expect(statSync(f).mode & 0o777).toBe(0o600);
      }
    }
    const kg = JSON.parse(readFileSync(join(dir, '.cordon', 'keys', 'KG-alert.jwk.json'), 'utf8')) as { kid: string };
    expect([...store.alertKey(kg.kid)!.regions!].sort()).toEqual(['KG-CN-01', 'KG-CN-02', 'KZ-KG-01']);
    expect(rec.lines().some((l) => l.level === 40 && /DEVELOPMENT TRUST STORE/.test(l.msg))).toBe(true);
  });

  test('is reused on later starts', () => {
    const silent = pino({ level: 'silent' });
    const first = ensureDevTrustStore(dir, registry, silent);
    const before = readFileSync(first.path, 'utf8');
    const second = ensureDevTrustStore(dir, registry, silent);
    expect(readFileSync(second.path, 'utf8')).toBe(before);
    expect(second.store.publicView()).toEqual(first.store.publicView());
  });

  test('its key files work with sign, verify and token (the README demo path)', async () => {
    const { store } = ensureDevTrustStore(join(dir, '.cordon'), registry, pino({ level: 'silent' }));
    write('content.json', demoContent('TJ', registry.get('TJ-AF-01')!));
    const signed = await cordon(dir, 'sign', '--key', '.cordon/keys/TJ-alert.jwk.json', '--in', 'content.json', '--out', 'sub.json');
    expect(signed.code).toBe(0);
    expect((await cordon(dir, 'verify', '--trust', '.cordon/trust-store.json', '--in', 'sub.json')).code).toBe(0);
    const tok = await cordon(dir, 'token', '--key', '.cordon/keys/KZ-token.jwk.json', '--sub', 'desk-almaty', '--role', 'desk', '--clearance', 'secret');
    expect(verifyToken(tok.stdout.trim(), store, Date.now()).iss).toBe('KZ');
  });
});

test('demo content is valid for every region and state of the example registry', () => {
  for (const region of registry.list()) {
    for (const state of region.states) {
      expect(validateContent(demoContent(state, region), { regions: registry, memberStates: registry.states })).toEqual([]);
    }
  }
});
