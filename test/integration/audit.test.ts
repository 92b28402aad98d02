import { makeTestApp, type TestApp } from '../helpers/app';
import { validContent } from '../fixtures/alerts';
import { validator } from '../../src/domain/schemas';
import type { AuditRecord } from '../../src/ports/audit-log';
import type { Receipt } from '../../src/domain/types';

describe('GET /v1/audit on Redis', () => {
  let t: TestApp;
  let region: string;
  const receipts: Receipt[] = [];

  const get = (url: string, token?: string) => t.app.inject({ method: 'GET', url, headers: token ? { authorization: `Bearer ${token}` } : {} });
  const ops = (sub = 'ops-1') => t.token({ iss: 'KG', sub, role: 'ops' });
  const readAll = async (token: string, limit: number) => {
    const items: AuditRecord[] = [];
    const nexts: (number | null)[] = [];
    let after: number | null = 0;
    // Each read adds a record of itself: stop at the top seen by the first read.
    const top = (await t.deps.audit.read(0, 100000)).items.length;
    while (after !== null && after < top) {
      const res = await get(`/v1/audit?after=${after}&limit=${limit}&purpose=review`, token);
      expect(res.statusCode).toBe(200);
      const page = res.json<{ items: AuditRecord[]; next: number | null }>();
      expect(validator('audit-page')(page)).toBe(true);
      items.push(...page.items);
      nexts.push(page.next);
      after = page.next;
    }
    return { items: items.slice(0, top), nexts };
  };

  beforeAll(async () => {
    t = await makeTestApp({ backend: 'real' });
    region = t.regions.list()[0].code;
    for (let i = 0; i < 3; i++) receipts.push(await t.publish(validContent({ region })));
  });

  afterAll(async () => {
    await t.close();
  });

  test('shows the trail oldest first, n growing by one, with next for the following page', async () => {
    const res = await get('/v1/audit?limit=2&purpose=review', ops());
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    const page = res.json();
    expect(page.items.map((r: AuditRecord) => r.n)).toEqual([1, 2]);
    expect(page.next).toBe(2);
    expect(page.items[0]).toMatchObject({ kind: 'published', id: receipts[0].id, region, seq: receipts[0].seq });

    const { items } = await readAll(ops(), 2);
    expect(items.map((r) => r.n)).toEqual(items.map((_, i) => i + 1));
    for (const r of items) expect(validator('audit-record')(r)).toBe(true);
    const ats = items.map((r) => r.at);
    expect([...ats].sort()).toEqual(ats);
    expect(items.filter((r) => r.kind === 'published').map((r) => r.seq)).toEqual([1, 2, 3]);
  });

  test('the last page says next: null', async () => {
    const top = (await t.deps.audit.read(0, 100000)).items.length;
    const page = (await get(`/v1/audit?after=${top - 1}&purpose=review`, ops())).json();
    expect(page.items.map((r: AuditRecord) => r.n)).toEqual([top]);
    expect(page.next).toBeNull();
  });

  test('reading the trail is itself recorded, with who, why and the range read', async () => {
    const res = await get('/v1/audit?after=1&limit=2&purpose=quarterly%20review', ops('auditor-7'));
    expect(res.statusCode).toBe(200);
    const { items } = await t.deps.audit.read(0, 100000);
    expect(items[items.length - 1]).toMatchObject({
      kind: 'replayed',
      actor: 'KG/auditor-7',
      purpose: 'quarterly review',
      target: 'audit',
      from: 2,
      to: 3,
      count: 2,
    });
  });

  test('ops reads of alerts appear in the trail as replayed records', async () => {
    await get(`/v1/regions/${region}/alerts?after=1&limit=1&purpose=case%2042`, ops('ops-2'));
    await get(`/v1/alerts/${receipts[2].id}?versions=all&purpose=case%2042`, ops('ops-2'));
    const { items } = await t.deps.audit.read(0, 100000);
    const mine = items.filter((r) => r.actor === 'KG/ops-2');
    expect(mine).toEqual([
      expect.objectContaining({ kind: 'replayed', purpose: 'case 42', target: 'region', mode: 'page', region, from: 2, to: 2, count: 1 }),
      expect.objectContaining({ kind: 'replayed', purpose: 'case 42', target: 'alert', id: receipts[2].id, versions: 'all', count: 1 }),
    ]);
  });

  test('a desk token is 403 ROLE_FORBIDDEN', async () => {
    const res = await get('/v1/audit?purpose=curious', t.token({ iss: 'KG', role: 'desk' }));
    expect(res.statusCode).toBe(403);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.json()).toMatchObject({ status: 403, code: 'ROLE_FORBIDDEN' });
  });

  test('an ops token without a purpose is 400 PURPOSE_REQUIRED, and nothing is recorded', async () => {
    const before = (await t.deps.audit.read(0, 100000)).items.length;
    for (const q of ['', '?purpose=', '?after=0&purpose=%20']) {
      const res = await get(`/v1/audit${q}`, ops());
      expect(res.statusCode).toBe(400);
      expect(res.json()).toMatchObject({ code: 'PURPOSE_REQUIRED' });
    }
    expect((await t.deps.audit.read(0, 100000)).items.length).toBe(before);
  });

  test('no token is 401 TOKEN_MISSING, a bad one 401 TOKEN_INVALID', async () => {
    expect((await get('/v1/audit?purpose=x')).json()).toMatchObject({ status: 401, code: 'TOKEN_MISSING' });
    expect((await get('/v1/audit?purpose=x', 'a.b.c')).json()).toMatchObject({ status: 401, code: 'TOKEN_INVALID' });
  });

  test.each([
    ['after=-1', '/querystring/after'],
    ['limit=abc', '/querystring/limit'],
    ['limit=5000', '/querystring/limit'],
    ['after=1&after=2', '/querystring/after'],
    ['since=2026-01-01T00:00:00Z', '/querystring/since'],
  ])('?%s is 400 QUERY_INVALID naming %s', async (q, path) => {
    const res = await get(`/v1/audit?${q}&purpose=x`, ops());
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ code: 'QUERY_INVALID', errors: expect.arrayContaining([expect.objectContaining({ path })]) });
  });
});
