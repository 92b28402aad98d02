import { startProxy, type TcpProxy } from '../helpers/tcp-proxy';
import { TEST_REDIS_URL } from '../helpers/env';
import { validContent } from '../fixtures/alerts';
import { makeTestApp, type TestApp } from '../helpers/app';

/**
 * The read side with Redis unreachable (issue 9): every route that reads the region log or the
 * audit trail answers 503 LOG_UNAVAILABLE (one rule in the error handler, not a try/catch per
 * handler), as problem+json without internals, and serves again once Redis is back.
 */
describe('history reads with Redis unreachable', () => {
  let proxy: TcpProxy;
  let t: TestApp;
  beforeAll(async () => {
    proxy = await startProxy(TEST_REDIS_URL);
    t = await makeTestApp({ backend: 'real', redisUrl: proxy.url });
  });
  afterAll(async () => {
    await t.close();
    await proxy.close();
  });

  test('every read route answers 503 LOG_UNAVAILABLE, then serves again', async () => {
    const region = t.regions.list()[0].code;
    const receipt = await t.publish(validContent({ region }));
    const desk = t.token();
    const ops = t.token({ sub: 'ops-1', role: 'ops' });
    const urls: Array<[string, string]> = [
      [`/v1/regions/${region}/alerts`, desk],
      [`/v1/regions/${region}/alerts?since=2026-01-01T00:00:00Z`, desk],
      [`/v1/alerts/${receipt.id}`, desk],
      ['/v1/regions', desk],
      ['/v1/audit?purpose=review', ops],
    ];
    const get = (url: string, token: string) => t.app.inject({ url, headers: { authorization: `Bearer ${token}` } });
    for (const [url, token] of urls) expect((await get(url, token)).statusCode).toBe(200);

    await proxy.pause();
    for (const [url, token] of urls) {
      const res = await get(url, token);
      expect({ url, status: res.statusCode }).toEqual({ url, status: 503 });
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(res.json()).toMatchObject({ status: 503, code: 'LOG_UNAVAILABLE' });
      expect(res.body).not.toMatch(/ECONNREFUSED|127\.0\.0\.1|Connection is closed|unavailable:/);
    }

    await proxy.resume();
    for (const [url, token] of urls) {
      let status = 0;
      for (let i = 0; i < 50 && status !== 200; i++) {
        status = (await get(url, token)).statusCode;
        if (status !== 200) await new Promise((r) => setTimeout(r, 100));
      }
      expect({ url, status }).toEqual({ url, status: 200 });
    }
  });
});
