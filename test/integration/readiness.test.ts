import { makeTestApp, type TestApp } from '../helpers/app';
import { injectDesk, type Desk } from '../helpers/desk';
import { TEST_REDIS_URL } from '../helpers/env';
import { startNatsServer, type NatsServerProcess } from '../helpers/nats-server';
import { startProxy, type TcpProxy } from '../helpers/tcp-proxy';
import { validContent } from '../fixtures/alerts';

/**
 * Readiness says what a node can still do (issue 8, item 12). Without NATS a node still takes
 * HTTP submissions and delivers to its desks from the region log (position check), so it stays in
 * the load balancer's rotation and says it is degraded; without the region log it can do nothing
 * and is not ready.
 */

async function readyz(t: TestApp): Promise<{ code: number; body: Record<string, unknown> }> {
  const res = await t.app.inject({ url: '/readyz' });
  return { code: res.statusCode, body: res.json<Record<string, unknown>>() };
}

async function until(t: TestApp, status: string, timeoutMs = 15_000): Promise<{ code: number; body: Record<string, unknown> }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await readyz(t);
    if (r.body.status === status) return r;
    if (Date.now() > deadline) throw new Error(`readiness stayed ${JSON.stringify(r)}, expected ${status}`);
    await new Promise((res) => setTimeout(res, 50));
  }
}

describe('GET /readyz', () => {
  let nats: NatsServerProcess;
  let redis: TcpProxy;
  let t: TestApp;
  let desk: Desk | undefined;

  beforeEach(async () => {
    nats = await startNatsServer('');
    redis = await startProxy(TEST_REDIS_URL);
    t = await makeTestApp({
      backend: 'real',
      nats: { url: nats.url },
      redisUrl: redis.url,
      config: { CORDON_POSITION_CHECK_MS: '100' },
    });
  });
  afterEach(async () => {
    desk?.close();
    await t.close();
    await redis.close();
    await nats.close();
  });

  test('is ready with the log and the bus up', async () => {
    const r = await readyz(t);
    expect(r).toEqual({
      code: 200,
      body: { status: 'ready', bus: 'ok', checks: { log: true, bus: true, audit: true, shutting_down: false } },
    });
  });

  test('stays ready (200) but degraded while NATS is unreachable, and the node keeps taking and delivering alerts', async () => {
    const region = t.regions.list()[0].code;
    desk = await injectDesk(t.app, t.token());
    desk.subscribe([region]);
    await desk.untilFrames('subscribed', 1);

    await nats.kill();
    const degraded = await until(t, 'degraded');
    expect(degraded).toEqual({
      code: 200,
      body: { status: 'degraded', bus: 'unreachable', checks: { log: true, bus: false, audit: true, shutting_down: false } },
    });

    const submission = t.sign(validContent({ region }));
    const res = await t.app.inject({ method: 'POST', url: '/v1/alerts', payload: submission });
    expect(res.statusCode).toBe(201);
    await desk.untilFrames('alert', 1, 10_000);
    expect(desk.alerts()[0]).toMatchObject({ region, seq: 1, content: submission.content });

    // NATS back on its port: the node reconnects and is fully ready again.
    nats = await startNatsServer('', { port: nats.port, dir: nats.dir });
    expect(await until(t, 'ready')).toMatchObject({ code: 200, body: { bus: 'ok' } });
  });

  test('is not ready (503) while the region log is unreachable, even with the bus up', async () => {
    await redis.pause();
    const r = await until(t, 'not-ready');
    expect(r.code).toBe(503);
    expect(r.body).toMatchObject({ bus: 'ok', checks: { log: false, bus: true, shutting_down: false } });

    await redis.resume();
    expect((await until(t, 'ready')).code).toBe(200);
  });

  test('is not ready (503) when neither is reachable', async () => {
    await redis.pause();
    await nats.kill();
    await until(t, 'not-ready');
    const deadline = Date.now() + 10_000;
    let r = await readyz(t);
    while (r.body.bus !== 'unreachable' && Date.now() < deadline) r = await readyz(t);
    expect(r).toEqual({
      code: 503,
      body: { status: 'not-ready', bus: 'unreachable', checks: { log: false, bus: false, audit: false, shutting_down: false } },
    });
    await redis.resume(); // the app's keys are removed on close
  });
});
