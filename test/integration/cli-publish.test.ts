import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { demoContent } from '../../src/cli/publish';
import { makeTestApp, sharedBackend, type TestApp } from '../helpers/app';
import { runCordon, type CliRun } from '../helpers/cli';
import { TEST_NATS_URL } from '../helpers/env';
import { RegionRegistry } from '../../src/domain/regions';

/** `cordon publish` and `cordon verify` against a listening app, over HTTP and over NATS. */

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'cordon-cli-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

function cordon(cwd: string, ...argv: string[]): Promise<CliRun> {
  return runCordon(cwd, argv);
}

function write(name: string, value: unknown): string {
  writeFileSync(join(dir, name), typeof value === 'string' ? value : JSON.stringify(value, null, 2));
  return name;
}

describe('cordon publish and verify --url against a running app', () => {
  /** The test app's in-memory KG alert key as a key file, plus its region registry as a file. */
  function keyFiles(t: TestApp): { key: string; regions: string; region: string } {
    const k = t.trust.alertKey('KG');
    const mine = t.regions
      .list()
      .filter((r) => r.states.includes('KG'))
      .map((r) => r.code);
    const jwk = k.privateKey.export({ format: 'jwk' });
    write('kg.jwk.json', { ...jwk, kid: k.kid, cordon: { state: 'KG', use: 'alert', regions: mine } });
    write('regions.json', { regions: t.regions.list() });
    return { key: 'kg.jwk.json', regions: 'regions.json', region: mine[0] };
  }

  test('over HTTP: --demo is accepted (201), the same content again answers 200, an equivocation is refused with exit 1', async () => {
    const t = await makeTestApp({ backend: 'memory' });
    try {
      await t.app.listen({ port: 0, host: '127.0.0.1' });
      const url = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
      const { key, regions, region } = keyFiles(t);

      const demo = await cordon(dir, 'publish', '--demo', '--key', key, '--regions', regions, '--url', url);
      expect(demo.stderr).toContain('published: alert--');
      expect(demo.code).toBe(0);
      expect(JSON.parse(demo.stdout)).toMatchObject({ region, seq: 1 });

      const content = demoContent('KG', t.regions.get(region)!);
      write('content.json', content);
      expect((await cordon(dir, 'publish', '--in', 'content.json', '--key', key, '--regions', regions, '--url', url)).code).toBe(0);
      const again = await cordon(dir, 'publish', '--in', 'content.json', '--key', key, '--regions', regions, '--url', url);
      expect(again.code).toBe(0);
      expect(again.stderr).toContain('already published');

      write('changed.json', { ...content, title: 'A different title under the same version' });
      const clash = await cordon(dir, 'publish', '--in', 'changed.json', '--key', key, '--regions', regions, '--url', url);
      expect(clash.code).toBe(1);
      expect(clash.stderr).toContain('rejected with status 409');
      expect(JSON.parse(clash.stdout)).toMatchObject({ code: 'VERSION_EQUIVOCATION' });

      // What a desk received verifies end to end with the node's public trust store.
      const page = await fetch(`${url}/v1/regions/${region}/alerts?after=0`, { headers: { authorization: `Bearer ${t.token()}` } });
      expect(page.status).toBe(200);
      write('page.json', await page.text());
      const verified = await cordon(dir, 'verify', '--url', url, '--in', 'page.json');
      expect(verified.code).toBe(0);
      expect(verified.stdout.trim().split('\n')).toHaveLength(2);
    } finally {
      await t.close();
    }
  });

  test('publish to an unreachable URL is a clear error with exit 1', async () => {
    const t = await makeTestApp({ backend: 'memory' });
    try {
      const { key, regions } = keyFiles(t);
      const r = await cordon(dir, 'publish', '--demo', '--key', key, '--regions', regions, '--url', 'http://127.0.0.1:9');
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('cannot reach http://127.0.0.1:9/v1/alerts');
    } finally {
      await t.close();
    }
  });

  test('over NATS: a request on <prefix>.ingest.<region> returns the receipt with status 201', async () => {
    const shared = sharedBackend();
    const t = await makeTestApp({ backend: 'real', shared });
    try {
      const { key, regions, region } = keyFiles(t);
      const r = await cordon(dir, 'publish', '--demo', '--key', key, '--regions', regions, '--nats', TEST_NATS_URL, '--subject-prefix', shared.subjectPrefix);
      expect(r.stderr).toContain('published');
      expect(r.code).toBe(0);
      expect(JSON.parse(r.stdout)).toMatchObject({ region, seq: 1, status: 201 });
    } finally {
      await t.close();
    }
  });

  test('--correct and --revoke make the next versions; a 409 says what to do; a signed submission is published as it is', async () => {
    const t = await makeTestApp({ backend: 'memory' });
    try {
      await t.app.listen({ port: 0, host: '127.0.0.1' });
      const url = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
      const { key, regions, region } = keyFiles(t);
      const content = demoContent('KG', t.regions.get(region)!);
      write('content.json', content);
      expect((await cordon(dir, 'publish', '--in', 'content.json', '--key', key, '--regions', regions, '--url', url)).code).toBe(0);

      // The newcomer's mistake: edit the published content and publish it again as it is.
      write('edited.json', { ...content, title: 'Plate number corrected' });
      const clash = await cordon(dir, 'publish', '--in', 'edited.json', '--key', key, '--regions', regions, '--url', url);
      expect(clash.code).toBe(1);
      expect(JSON.parse(clash.stdout).detail).toMatch(/later modified and a correction_note \(cordon sign --correct "<note>"\)/);

      // The way: sign the edited content as a correction, then publish the signed file as it is.
      const signed = await cordon(
        dir,
        'sign',
        '--in',
        'edited.json',
        '--key',
        key,
        '--regions',
        regions,
        '--correct',
        'Plate number corrected',
        '--out',
        'correction.sub.json',
      );
      expect(signed.code).toBe(0);
      const sub = JSON.parse(readFileSync(join(dir, 'correction.sub.json'), 'utf8'));
      expect(sub.content).toMatchObject({ id: content.id, created: content.created, correction_note: 'Plate number corrected' });
      expect(sub.content.modified > content.modified).toBe(true);
      const withKey = await cordon(dir, 'publish', '--in', 'correction.sub.json', '--key', key, '--url', url);
      expect(withKey.code).toBe(2);
      expect(withKey.stderr).toContain('is a signed submission already');
      const corrected = await cordon(dir, 'publish', '--in', 'correction.sub.json', '--url', url);
      expect(corrected.stderr).toContain('is signed already');
      expect(corrected.stderr).toContain(`published: correction of ${content.id}`);
      expect(corrected.code).toBe(0);
      expect(JSON.parse(corrected.stdout)).toMatchObject({ id: content.id, seq: 2 });

      // Revoking from the signed correction: its content is the version being replaced.
      const revoked = await cordon(
        dir,
        'publish',
        '--in',
        'correction.sub.json',
        '--key',
        key,
        '--regions',
        regions,
        '--url',
        url,
        '--revoke',
        'Searched, nothing found',
      );
      expect(revoked.stderr).toContain(`published: revocation of ${content.id}`);
      expect(revoked.code).toBe(0);
      const versions = await fetch(`${url}/v1/alerts/${content.id}?versions=all`, { headers: { authorization: `Bearer ${t.token()}` } });
      const body = (await versions.json()) as { items: { content: Record<string, unknown> }[] };
      expect(body.items.map((i) => [i.content.revoked ?? false, i.content.correction_note ?? null])).toEqual([
        [false, null],
        [false, 'Plate number corrected'],
        [true, 'Searched, nothing found'],
      ]);

      // After a revocation nothing may follow: the CLI refuses to version revoked content, the node any version.
      write('revoked.json', body.items[2].content);
      const again = await cordon(dir, 'sign', '--in', 'revoked.json', '--key', key, '--regions', regions, '--correct', 'again');
      expect(again.code).toBe(1);
      expect(again.stderr).toContain('is already revoked; no version may follow');
      const refused = await cordon(dir, 'publish', '--in', 'correction.sub.json', '--key', key, '--regions', regions, '--url', url, '--correct', 'too late');
      expect(refused.code).toBe(1);
      expect(JSON.parse(refused.stdout)).toMatchObject({ code: 'VERSION_AFTER_REVOCATION' });
      expect(JSON.parse(refused.stdout).detail).toContain('--new-id');
    } finally {
      await t.close();
    }
  });

  test('the example content files in examples/ publish in order: a first alert, its correction, its revocation', async () => {
    const example = RegionRegistry.example().list();
    const t = await makeTestApp({ backend: 'memory', regions: example });
    try {
      await t.app.listen({ port: 0, host: '127.0.0.1' });
      const url = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
      const { key, regions } = keyFiles(t);
      const seqs: number[] = [];
      for (const name of ['first-alert.json', 'correction.json', 'revocation.json']) {
        copyFileSync(resolve(__dirname, '../../examples', name), join(dir, name));
        const r = await cordon(dir, 'publish', '--key', key, '--regions', regions, '--url', url, '--in', name);
        expect(r.stderr).toContain('published: ');
        expect(r.code).toBe(0);
        seqs.push(JSON.parse(r.stdout).seq);
      }
      expect(seqs).toEqual([1, 2, 3]);
    } finally {
      await t.close();
    }
  });

  test('publish --nats to a subject nobody answers names the subject and the prefix option', async () => {
    const t = await makeTestApp({ backend: 'memory' });
    try {
      const { key, regions, region } = keyFiles(t);
      const r = await cordon(
        dir,
        'publish',
        '--demo',
        '--key',
        key,
        '--regions',
        regions,
        '--nats',
        TEST_NATS_URL,
        '--subject-prefix',
        'nobody-listens-here',
        '--timeout',
        '3000',
      );
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`no Cordon node listens on nobody-listens-here.ingest.${region}`);
      expect(r.stderr).toContain('--subject-prefix');
      expect(r.stderr).toContain('CORDON_NATS_SUBJECT_PREFIX');
    } finally {
      await t.close();
    }
  });

  test('publish needs exactly one of --in and --demo (exit 2)', async () => {
    expect((await cordon(dir, 'publish', '--key', 'k.json')).code).toBe(2);
    expect((await cordon(dir, 'publish', '--key', 'k.json', '--demo', '--in', 'c.json')).code).toBe(2);
  });
});
