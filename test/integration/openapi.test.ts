import Ajv2020 from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import { validContent } from '../fixtures/alerts';
import { makeTestApp, type TestApp } from '../helpers/app';

interface Parameter {
  in: string;
  name: string;
  required?: boolean;
  schema?: unknown;
}
interface Operation {
  parameters?: Parameter[];
  responses?: Record<string, unknown>;
  requestBody?: unknown;
  security?: unknown[];
}
interface Doc {
  openapi: string;
  info: { title: string; version: string };
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, { properties?: Record<string, unknown> }> };
}

/** Fastify's `/v1/regions/:region/log/tile/*` as an OpenAPI path template. */
function openApiPath(url: string): string {
  return url.replace(/:([A-Za-z0-9_]+)/g, '{$1}').replace(/\*$/, '{*}');
}

function refsOf(node: unknown, out: string[] = []): string[] {
  if (Array.isArray(node)) node.forEach((n) => refsOf(n, out));
  else if (node && typeof node === 'object') {
    for (const [k, v] of Object.entries(node)) {
      if (k === '$ref' && typeof v === 'string') out.push(v);
      else refsOf(v, out);
    }
  }
  return out;
}

/**
 * GET /v1/openapi.json (issue 9): the OpenAPI 3.1 document generated from the route schemas, served
 * without a token. Every route the app serves (but the console's, hidden) is in it with its path
 * and query parameters, and every reference in it resolves inside it.
 */
describe('GET /v1/openapi.json', () => {
  let t: TestApp;
  let doc: Doc;
  beforeAll(async () => {
    t = await makeTestApp({ backend: 'memory', tlog: { delayMs: 10 } });
    const res = await t.app.inject({ url: '/v1/openapi.json' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    doc = res.json<Doc>();
  });
  afterAll(() => t.close());

  test('is OpenAPI 3.1, needs no token, and names the API', () => {
    expect(doc.openapi).toMatch(/^3\.1\./);
    expect(doc.info.title).toBe('Cordon');
  });

  test('has every route the app serves, with its path and query parameters', () => {
    const routes = t.app.registeredRoutes.filter((r) => r.method !== 'HEAD' && !r.hidden);
    expect(routes.length).toBeGreaterThanOrEqual(18);
    for (const r of routes) {
      const op = doc.paths[openApiPath(r.url)]?.[r.method.toLowerCase()];
      expect({ route: `${r.method} ${r.url}`, documented: op !== undefined }).toEqual({
        route: `${r.method} ${r.url}`,
        documented: true,
      });
      const params = op.parameters ?? [];
      const inPath = [...r.url.matchAll(/:([A-Za-z0-9_]+)|\*$/g)].map((m) => m[1] ?? '*');
      expect(
        params
          .filter((p) => p.in === 'path')
          .map((p) => p.name)
          .sort(),
      ).toEqual(inPath.sort());
      for (const p of params.filter((x) => x.in === 'path')) expect(p.required).toBe(true);
      expect(op.responses && Object.keys(op.responses).some((s) => /^2|^101$/.test(s))).toBe(true);
    }
    // Nothing documented that is not served.
    const served = new Set(routes.map((r) => `${r.method.toLowerCase()} ${openApiPath(r.url)}`));
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const method of Object.keys(ops)) expect(served).toContain(`${method} ${path}`);
    }
  });

  test('query parameters are those of the schemas the routes validate with', () => {
    const query = (path: string) =>
      (doc.paths[path].get.parameters ?? [])
        .filter((p) => p.in === 'query')
        .map((p) => p.name)
        .sort();
    expect(query('/v1/regions/{region}/alerts')).toEqual(['after', 'epoch', 'limit', 'purpose', 'since']);
    expect(query('/v1/alerts/{id}')).toEqual(['purpose', 'versions']);
    expect(query('/v1/audit')).toEqual(['after', 'limit', 'purpose']);
    expect(query('/v1/regions/{region}/log/proof')).toEqual(['n', 'seq', 'size']);
    const from = doc.paths['/v1/audit/log/consistency'].get.parameters!.find((p) => p.name === 'from')!;
    expect(from).toMatchObject({ in: 'query', required: true, schema: { type: 'integer', minimum: 0 } });
    expect(doc.paths['/v1/alerts'].post.requestBody).toBeDefined();
  });

  test('token-taking routes say so; the public ones do not', () => {
    expect(doc.paths['/v1/audit'].get.security).toEqual([{ bearer: [] }]);
    expect(doc.paths['/v1/regions/{region}/alerts'].get.security).toEqual([{ bearer: [] }]);
    expect(doc.paths['/v1/trust'].get.security).toBeUndefined();
    expect(doc.paths['/v1/openapi.json'].get.security).toBeUndefined();
  });

  test('leaves the console out', () => {
    expect(Object.keys(doc.paths).filter((p) => p === '/' || p.startsWith('/console'))).toEqual([]);
  });

  test('every reference resolves inside the document (schemas/ as components)', () => {
    const refs = refsOf(doc);
    expect(refs.length).toBeGreaterThan(10);
    for (const ref of refs) {
      expect(ref).toMatch(/^#\/components\/schemas\//);
      const [, , , name, ...rest] = ref.split('/');
      let node: unknown = doc.components.schemas[name];
      for (const key of rest) node = (node as Record<string, unknown> | undefined)?.[key];
      expect({ ref, found: node !== undefined }).toEqual({ ref, found: true });
    }
    expect(doc.components.schemas.submission).toBeDefined();
    expect(doc.components.schemas['replay-page']).toBeDefined();
  });

  /** The schema the document gives for `method path` answering `status` as JSON. */
  function answerSchema(path: string, method: string, status: number): object {
    const responses = doc.paths[path][method].responses as Record<string, { content?: Record<string, { schema: object }> }>;
    const schema = responses[String(status)]?.content?.['application/json']?.schema;
    if (!schema) throw new Error(`${method} ${path} documents no JSON answer for ${status}`);
    return schema;
  }

  test("the node's answers are what the document says they are", async () => {
    const ajv = new Ajv2020({ strict: false, allErrors: true });
    addFormats(ajv);
    let n = 0;
    const check = (path: string, method: string, status: number, body: unknown) => {
      // The answer's schema at the root of a copy of the document's components, so that its
      // `#/components/...` references resolve.
      const validate = ajv.compile({
        $id: `https://cordon.invalid/openapi-${++n}.json`,
        components: doc.components,
        ...answerSchema(path, method, status),
      });
      const ok = validate(body);
      expect({ path, status, errors: ok ? null : validate.errors }).toEqual({ path, status, errors: null });
    };
    // The check can fail: an answer that is not what the document says is caught.
    expect(() => check('/v1/regions', 'get', 200, { regions: [{ code: 'KG-CN-01' }] })).toThrow();
    expect(() => check('/readyz', 'get', 200, { status: 'fine', bus: 'ok', checks: {} })).toThrow();

    const region = t.regions.list()[0].code;
    const sub = t.sign(validContent({ region }));
    const posted = await t.app.inject({ method: 'POST', url: '/v1/alerts', payload: sub });
    check('/v1/alerts', 'post', 201, posted.json());
    const again = await t.app.inject({ method: 'POST', url: '/v1/alerts', payload: sub });
    check('/v1/alerts', 'post', 200, again.json());
    const id = posted.json<{ id: string }>().id;

    const desk = t.token();
    const ops = t.token({ sub: 'ops-1', role: 'ops' });
    const get = async (url: string, token?: string, status = 200) => {
      const res = await t.app.inject({ url, headers: token ? { authorization: `Bearer ${token}` } : {} });
      expect({ url, status: res.statusCode }).toEqual({ url, status });
      return res.json<unknown>();
    };
    check('/healthz', 'get', 200, await get('/healthz'));
    check('/readyz', 'get', 200, await get('/readyz'));
    check('/v1/trust', 'get', 200, await get('/v1/trust'));
    check('/v1/regions', 'get', 200, await get('/v1/regions', desk));
    check('/v1/regions/{region}/alerts', 'get', 200, await get(`/v1/regions/${region}/alerts`, desk));
    check('/v1/alerts/{id}', 'get', 200, await get(`/v1/alerts/${id}`, desk));
    check('/v1/alerts/{id}', 'get', 200, await get(`/v1/alerts/${id}?versions=all`, desk));
    check('/v1/audit', 'get', 200, await get('/v1/audit?purpose=review', ops));

    const deadline = Date.now() + 10_000;
    while ((await t.app.inject({ url: `/v1/regions/${region}/log/checkpoint`, headers: { authorization: `Bearer ${desk}` } })).statusCode !== 200) {
      if (Date.now() > deadline) throw new Error('no checkpoint');
      await new Promise((r) => setTimeout(r, 20));
    }
    check('/v1/regions/{region}/log/proof', 'get', 200, await get(`/v1/regions/${region}/log/proof?seq=1`, desk));
    check('/v1/regions/{region}/log/consistency', 'get', 200, await get(`/v1/regions/${region}/log/consistency?from=1`, desk));
  });
});
