import { makeTestApp, type TestApp } from '../helpers/app';

/**
 * Found by fuzzing (test/fuzz/queries.test.ts): paths the router itself refuses left as Fastify's
 * own JSON (`FST_ERR_MAX_PARAM_LENGTH` with 414, `FST_ERR_BAD_URL` with 400), codes that are in
 * no registry. They must be problem+json with a documented code like every other refusal.
 */
describe('paths the router refuses', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await makeTestApp({ backend: 'memory' });
  });
  afterAll(() => t.close());

  test.each([
    ['a region path segment over 100 characters', `/v1/regions/${'x'.repeat(101)}/alerts`],
    ['an alert id over 100 characters', `/v1/alerts/alert--${'0'.repeat(120)}`],
    ['a malformed %-escape in a path parameter', '/v1/regions/%E0%A4%A/alerts'],
    ['an invalid %-escape in a path parameter', '/v1/alerts/%ZZ'],
  ])('%s: 404 ROUTE_NOT_FOUND as problem+json', async (_what, url) => {
    const res = await t.app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${t.token()}` } });
    expect(res.statusCode).toBe(404);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.json()).toMatchObject({ status: 404, code: 'ROUTE_NOT_FOUND' });
  });

  test('the node still answers afterwards', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/healthz' });
    expect(res.statusCode).toBe(200);
  });
});
