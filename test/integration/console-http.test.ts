import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { buildApp } from '../../src/app';
import { compose } from '../../src/compose';
import { loadConfig } from '../../src/config';
import { DevDesks } from '../../src/dev/dev-desks';
import { verifyToken } from '../../src/domain/tokens';
import { consoleAssetsDir } from '../../src/http/console';
import { createMetrics } from '../../src/metrics';
import { makeTestApp, type TestApp } from '../helpers/app';
import { ensureConsoleBuilt } from '../helpers/browser';

/** The console as served: security headers, caching, the redirect, and development desks. */

let t: TestApp;

beforeAll(async () => {
  await ensureConsoleBuilt();
  t = await makeTestApp({ backend: 'memory' });
});
afterAll(async () => {
  await t?.close();
});

describe('serving the console', () => {
  test('GET / redirects to /console/', async () => {
    const res = await t.app.inject({ url: '/' });
    expect(res.statusCode).toBe(302);
    expect(res.headers.location).toBe('/console/');
  });

  test('the page has a strict Content-Security-Policy and no inline script', async () => {
    const res = await t.app.inject({ url: '/console/', headers: { host: '127.0.0.1:8080' } });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    const csp = String(res.headers['content-security-policy']);
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).toContain("connect-src 'self' ws://127.0.0.1:8080 wss://127.0.0.1:8080");
    expect(csp).not.toContain('unsafe');
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['referrer-policy']).toBe('no-referrer');
    expect(res.headers['cache-control']).toBe('no-cache');
    // Every script is a file of this origin; nothing inline, nothing from elsewhere.
    const scripts = [...res.body.matchAll(/<script([^>]*)>([\s\S]*?)<\/script>/g)];
    expect(scripts.length).toBeGreaterThan(0);
    for (const [, attrs, body] of scripts) {
      expect(attrs).toMatch(/src="[a-z]+\.[A-Z0-9]{8}\.js"/);
      expect(body.trim()).toBe('');
    }
    expect(res.body).not.toMatch(/(?:src|href)="(?:https?:)?\/\//);
  });

  test('a hostile Host header never reaches the policy', async () => {
    const res = await t.app.inject({ url: '/console/', headers: { host: "evil; script-src 'unsafe-inline'" } });
    expect(String(res.headers['content-security-policy'])).not.toContain('unsafe-inline');
  });

  test('hashed assets are cached for a year and served compressed', async () => {
    const js = readdirSync(consoleAssetsDir()).find((f) => /^app\.[A-Z0-9]{8}\.js$/.test(f));
    const res = await t.app.inject({ url: `/console/${js}`, headers: { 'accept-encoding': 'gzip' } });
    expect(res.statusCode).toBe(200);
    expect(res.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expect(res.headers['content-encoding']).toBe('gzip');
    expect(res.headers['content-type']).toMatch(/javascript/);
    expect(res.headers['x-content-type-options']).toBe('nosniff');
  });

  test('the JSON API keeps its own answers (a 404 stays problem+json)', async () => {
    const res = await t.app.inject({ url: '/console/nope.js' });
    expect(res.statusCode).toBe(404);
    expect(res.json().code).toBe('ROUTE_NOT_FOUND');
  });
});

describe('development desks', () => {
  test('not offered without the development trust store', async () => {
    expect((await t.app.inject({ url: '/console/dev-desks' })).statusCode).toBe(404);
    expect((await t.app.inject({ method: 'POST', url: '/console/dev-desks/desk-kg' })).statusCode).toBe(404);
  });

  test('with development keys: listed, and a click mints a token the node accepts', async () => {
    const key = t.trust.tokenKey('KG');
    const devDesks = DevDesks.fromKeys(t.deps.trust, new Map([['KG', { privateKey: key.privateKey, kid: key.kid, state: 'KG', use: 'token' as const }]]));
    const app = await buildApp({ ...t.deps, metrics: createMetrics({ defaultMetrics: false }), devDesks }, { logger: pino({ level: 'silent' }) });
    try {
      const list = (await app.inject({ url: '/console/dev-desks' })).json<{ desks: Array<{ id: string; role: string }> }>();
      expect(list.desks.map((d) => d.id)).toEqual(['desk-kg', 'ops-kg']);
      const res = await app.inject({ method: 'POST', url: '/console/dev-desks/desk-kg' });
      expect(res.statusCode).toBe(200);
      expect(res.headers['cache-control']).toBe('no-store');
      const { token } = res.json<{ token: string }>();
      const regions = await app.inject({ url: '/v1/regions', headers: { authorization: `Bearer ${token}` } });
      expect(regions.statusCode).toBe(200);
      expect((await app.inject({ method: 'POST', url: '/console/dev-desks/desk-zz' })).statusCode).toBe(404);
    } finally {
      await app.close();
    }
  });

  test('the composition root offers them with the generated development store only, never with a real trust store', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cordon-console-'));
    const log = pino({ level: 'silent' });
    try {
      const dev = await compose(loadConfig({ CORDON_DATA_DIR: dir, CORDON_LOG_LEVEL: 'silent', CORDON_VERIFY_THREADS: '0' }), log);
      try {
        expect(dev.deps.devDesks).toBeDefined();
        const token = dev.deps.devDesks!.mint('ops-kz', Date.now()) as string;
        expect(verifyToken(token, dev.deps.trust, Date.now())).toMatchObject({ iss: 'KZ', role: 'ops', sub: 'ops-kz' });
      } finally {
        await dev.close();
      }
      // The same store and keys, named as a real trust store: no development desks.
      const storePath = join(dir, 'real-trust-store.json');
      writeFileSync(storePath, readFileSync(join(dir, 'trust-store.json')));
      const real = await compose(
        loadConfig({ CORDON_DATA_DIR: dir, CORDON_TRUST_STORE: storePath, CORDON_LOG_LEVEL: 'silent', CORDON_VERIFY_THREADS: '0' }),
        log,
      );
      try {
        expect(real.deps.devDesks).toBeUndefined();
        const app = await buildApp(real.deps, { logger: log });
        expect((await app.inject({ url: '/console/dev-desks' })).statusCode).toBe(404);
        expect((await app.inject({ method: 'POST', url: '/console/dev-desks/desk-kg' })).statusCode).toBe(404);
        await app.close();
      } finally {
        await real.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
