import Fastify, { type FastifyBaseLogger } from 'fastify';
import pino from 'pino';
import { alertRoutes } from '../../src/http/alerts';
import { problemHandlers } from '../../src/http/problem';
import { serializerCompiler, validatorCompiler } from '../../src/http/schema';
import type { Ingest } from '../../src/ingest/pipeline';
import { makeTestApp, type TestApp } from '../helpers/app';

/**
 * The shape of the HTTP side (issue 9): route plugins with their own options, authentication as
 * an onRequest hook, route schemas. What a client gets is as before: the checks run in the order
 * the handlers ran them (token, role, rate limit, Accept, query string), each with its code.
 */
describe('route plugins', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await makeTestApp({ backend: 'memory' });
  });
  afterAll(() => t.close());

  const get = (url: string, token?: string, headers: Record<string, string> = {}) =>
    t.app.inject({ url, headers: token ? { authorization: `Bearer ${token}`, ...headers } : headers });
  const region = () => t.regions.list()[0].code;

  test('no token comes before a bad query string (401 TOKEN_MISSING)', async () => {
    for (const url of [`/v1/regions/${region()}/alerts?limit=abc`, '/v1/audit?limit=abc', '/v1/alerts/x?versions=some']) {
      const res = await get(url);
      expect({ url, status: res.statusCode, code: res.json().code }).toEqual({ url, status: 401, code: 'TOKEN_MISSING' });
    }
  });

  test('a desk token on /v1/audit is 403 before its query string is looked at', async () => {
    const res = await get('/v1/audit?limit=abc', t.token());
    expect(res.statusCode).toBe(403);
    expect(res.json()).toMatchObject({ code: 'ROLE_FORBIDDEN' });
  });

  test('an Accept the page cannot meet is 406 before the query string is looked at', async () => {
    const res = await get(`/v1/regions/${region()}/alerts?limit=abc`, t.token(), { accept: 'text/html' });
    expect(res.statusCode).toBe(406);
    expect(res.json()).toMatchObject({ code: 'NOT_ACCEPTABLE' });
  });

  test('the route schema refuses a query string with the documented 400 QUERY_INVALID and every problem listed', async () => {
    const res = await get(`/v1/regions/${region()}/alerts?limit=abc&limit=2&after=0x10&bogus=1`, t.token());
    expect(res.statusCode).toBe(400);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    const body = res.json();
    expect(body.code).toBe('QUERY_INVALID');
    expect(body.errors.map((e: { path: string }) => e.path).sort()).toEqual(['/querystring/after', '/querystring/bogus', '/querystring/limit']);
  });

  test('an unknown region is 404 before the tree query string is looked at (transparency-log routes)', async () => {
    const res = await get('/v1/regions/XX-YY-99/log/proof?seq=abc', t.token());
    expect(res.statusCode).toBe(404);
    expect(res.json()).toMatchObject({ code: 'REGION_NOT_FOUND' });
  });

  test('routes without a token still answer without one', async () => {
    for (const url of ['/healthz', '/v1/trust', '/v1/openapi.json']) expect((await get(url)).statusCode).toBe(200);
  });
});

/**
 * POST /v1/alerts reads its body as raw bytes (the ingest pipeline's hostile-input parser): that
 * content-type parser is the ingest plugin's own and changes no other route.
 */
describe('the raw-body parser of the ingest plugin', () => {
  test('applies to POST /v1/alerts only: a sibling route still gets parsed JSON', async () => {
    const seen: unknown[] = [];
    const ingest: Ingest = async (raw) => {
      seen.push(raw);
      return { status: 201, body: { ok: true } as never };
    };
    const loggerInstance: FastifyBaseLogger = pino({ level: 'silent' });
    const app = Fastify({ loggerInstance });
    app.setValidatorCompiler(validatorCompiler);
    app.setSerializerCompiler(serializerCompiler);
    problemHandlers(app);
    await app.register(alertRoutes, { ingest, config: { rateLimitMax: 0, rateLimitWindowMs: 1000 } });
    await app.register(async (sibling) => {
      sibling.post('/echo', async (request) => ({ isBuffer: Buffer.isBuffer(request.body), body: request.body }));
    });
    await app.ready();
    try {
      const payload = '{"a":1,"a":2}';
      const headers = { 'content-type': 'application/json' };
      const ingested = await app.inject({ method: 'POST', url: '/v1/alerts', payload, headers });
      expect(ingested.statusCode).toBe(201);
      expect(Buffer.isBuffer(seen[0]) && seen[0].toString()).toBe(payload);

      const echoed = await app.inject({ method: 'POST', url: '/echo', payload, headers });
      expect(echoed.json()).toEqual({ isBuffer: false, body: { a: 2 } });
      const malformed = await app.inject({ method: 'POST', url: '/echo', payload: '{', headers });
      expect(malformed.statusCode).toBe(400);
      expect(malformed.json()).toMatchObject({ code: 'REQUEST_MALFORMED_JSON' });
    } finally {
      await app.close();
    }
  });
});
