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
    t = await makeTestApp({ backend: 'memory', tlog: {} });
    const res = await t.app.inject({ url: '/v1/openapi.json' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    doc = res.json() as Doc;
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
      expect(op.responses && Object.keys(op.responses).some((s) => /^2/.test(s))).toBe(true);
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
});
