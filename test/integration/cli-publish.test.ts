import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { demoContent } from '../../src/cli/publish';
import { makeTestApp, sharedBackend, type TestApp } from '../helpers/app';
import { runCordon, type CliRun } from '../helpers/cli';
import { TEST_NATS_URL } from '../helpers/env';

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
    const mine = t.regions.list().filter((r) => r.states.includes('KG')).map((r) => r.code);
    const jwk = k.privateKey.export({ format: 'jwk' });
    write('kg.jwk.json', { ...jwk, kid: k.kid, cordon: { state: 'KG', use: 'alert', regions: mine } });
    write('regions.json', { regions: t.regions.list() });
    return { key: 'kg.jwk.json', regions: 'regions.json', region: mine[0]! };
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

  test('publish needs exactly one of --in and --demo (exit 2)', async () => {
    expect((await cordon(dir, 'publish', '--key', 'k.json')).code).toBe(2);
    expect((await cordon(dir, 'publish', '--key', 'k.json', '--demo', '--in', 'c.json')).code).toBe(2);
  });
});
