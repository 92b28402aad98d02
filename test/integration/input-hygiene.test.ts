import { makeTestApp, type TestApp } from '../helpers/app';
import { refusedUpgrade } from '../helpers/desk';
import { validContent } from '../fixtures/alerts';

/**
 * Issue 8 item 9: bearer tokens with `=` padding are TOKEN_INVALID (they were TOKEN_MISSING),
 * titles and purposes refuse characters that make text read otherwise than it is, with the path.
 */
describe('tokens, titles and purposes (memory backend, real socket for the stream)', () => {
  let t: TestApp;
  let R: string;
  let url: string;

  beforeAll(async () => {
    t = await makeTestApp({ backend: 'memory' });
    R = t.regions.list()[0].code;
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    url = `ws://127.0.0.1:${(t.app.server.address() as { port: number }).port}/v1/stream`;
  });
  afterAll(() => t.close());

  const get = (path: string, authorization?: string) => t.app.inject({ method: 'GET', url: path, headers: authorization ? { authorization } : {} });

  test.each([
    ['a padded token', (tok: string) => `Bearer ${tok}==`],
    ['a padded signature part', (tok: string) => `Bearer ${tok.split('.').slice(0, 2).join('.')}.${tok.split('.')[2]}=`],
    ['a token with a stray character', (tok: string) => `Bearer ${tok}!`],
  ])('%s is 401 TOKEN_INVALID, on HTTP and on the stream upgrade', async (_name, header) => {
    const h = header(t.token());
    for (const path of [`/v1/regions`, `/v1/regions/${R}/alerts`, '/v1/audit?purpose=x']) {
      expect((await get(path, h)).json()).toMatchObject({ status: 401, code: 'TOKEN_INVALID' });
    }
    expect(await refusedUpgrade(url, { authorization: h })).toMatchObject({ status: 401, body: { code: 'TOKEN_INVALID' } });
  });

  test('no bearer credential at all is still 401 TOKEN_MISSING', async () => {
    for (const h of [undefined, 'Bearer', 'Bearer   ', `Basic ${Buffer.from('a:b').toString('base64')}`]) {
      expect((await get('/v1/regions', h)).json()).toMatchObject({ status: 401, code: 'TOKEN_MISSING' });
    }
    expect((await get('/v1/regions', `Bearer ${t.token()}`)).statusCode).toBe(200);
  });

  test.each([
    ['a right-to-left override', 'case 12\u202E'],
    ['an isolate', 'case \u2066 12'],
    ['a zero-width space', 'ca\u200Bse 12'],
    ['a word joiner', 'case\u2060 12'],
    ['a byte order mark', '\uFEFFcase 12'],
  ])('a purpose with %s is 400 QUERY_INVALID naming /querystring/purpose, and nothing is recorded', async (_name, purpose) => {
    const ops = `Bearer ${t.token({ sub: 'ops-1', role: 'ops' })}`;
    const before = (await t.deps.audit.read(0, 100_000)).items.length;
    const q = `purpose=${encodeURIComponent(purpose)}`;
    for (const path of [`/v1/regions/${R}/alerts?${q}`, `/v1/audit?${q}`, `/v1/alerts/alert--00000000-0000-4000-8000-000000000000?${q}`]) {
      const res = await get(path, ops);
      expect(res.statusCode).toBe(400);
      expect(res.json()).toMatchObject({ code: 'QUERY_INVALID', errors: [expect.objectContaining({ path: '/querystring/purpose' })] });
    }
    expect((await t.deps.audit.read(0, 100_000)).items.length).toBe(before);
  });

  test('a blank purpose is 400 PURPOSE_REQUIRED', async () => {
    const ops = `Bearer ${t.token({ sub: 'ops-1', role: 'ops' })}`;
    for (const purpose of ['   ', '\u3000\u00A0']) {
      expect((await get(`/v1/audit?purpose=${encodeURIComponent(purpose)}`, ops)).json()).toMatchObject({ status: 400, code: 'PURPOSE_REQUIRED' });
    }
  });

  test.each([
    ['a right-to-left override', 'Truck \u202Eeton\u202C to Torugart'],
    ['a zero-width joiner', 'Tru\u200Dck to Torugart'],
    ['a byte order mark', '\uFEFFTruck to Torugart'],
    ['only white space', ' \u2003 '],
  ])('a submission whose title has %s is 400 SUBMISSION_INVALID at /content/title, and nothing is stored', async (_name, title) => {
    const before = (await t.deps.regionLog.state(R)).latest;
    const res = await t.app.inject({ method: 'POST', url: '/v1/alerts', payload: t.sign(validContent({ region: R, title })) });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ code: 'SUBMISSION_INVALID', errors: [expect.objectContaining({ path: '/content/title' })] });
    expect((await t.deps.regionLog.state(R)).latest).toBe(before);
  });
});
