import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import type { FastifyInstance } from 'fastify';
import { buildOperatorApp } from '../../src/http/operator';
import { makeTestApp, type TestApp } from '../helpers/app';
import { validContent } from '../fixtures/alerts';

/**
 * Issue 8 item 7: /metrics only on the operator listener (contract §8 v1.1), never on the public
 * port whatever the encoding; and X-Forwarded-For trusted only from the configured proxy hops or
 * addresses, so a client cannot pick its own rate-limit key.
 */

/** One raw HTTP/1.1 request with the path exactly as written (no client-side normalisation). */
function rawGet(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    let text = '';
    s.on('data', (b) => (text += b.toString()));
    s.on('error', reject);
    s.on('close', () => {
      const [head, body] = text.split('\r\n\r\n');
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]), body: body ?? '' });
    });
    s.write(`GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
  });
}

const METRICS_PATHS = [
  '/metrics',
  '/%6detrics',
  '/%6D%65trics',
  '/metrics/',
  '//metrics',
  '/metrics?x=1',
  '/./metrics',
  '/v1/../metrics',
  '/METRICS',
  '/metrics%00',
  '/metrics;x',
];

describe('/metrics is served on the operator listener only', () => {
  let t: TestApp;
  let publicPort: number;
  let operator: FastifyInstance;
  let operatorPort: number;

  beforeAll(async () => {
    t = await makeTestApp({ backend: 'memory' });
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    publicPort = (t.app.server.address() as AddressInfo).port;
    operator = await buildOperatorApp(t.deps.metrics, { logger: pino({ level: 'silent' }) });
    await operator.listen({ port: 0, host: '127.0.0.1' });
    operatorPort = (operator.server.address() as AddressInfo).port;
  });

  afterAll(async () => {
    await operator.close();
    await t.close();
  });

  it('answers 404 ROUTE_NOT_FOUND on the public port for /metrics in every spelling', async () => {
    await t.publish(validContent({ region: t.regions.list()[0].code }));
    for (const path of METRICS_PATHS) {
      const res = await rawGet(publicPort, path);
      expect([path, res.status]).toEqual([path, res.status === 400 ? 400 : 404]);
      expect(res.body).not.toContain('cordon_ingest');
      if (res.status === 404) expect(JSON.parse(res.body).code).toBe('ROUTE_NOT_FOUND');
    }
    const injected = await t.app.inject({ url: '/%6detrics' });
    expect(injected.statusCode).toBe(404);
  });

  it("serves Prometheus text on the operator listener, with the node's own counters", async () => {
    const res = await fetch(`http://127.0.0.1:${operatorPort}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(await res.text()).toMatch(/cordon_ingest_accepted_total\{door="http",outcome="new"\} [1-9]/);
  });

  it('serves nothing else there: no API, no health, no stream', async () => {
    for (const path of ['/v1/trust', '/healthz', '/readyz', '/v1/regions', '/v1/stream']) {
      const res = await rawGet(operatorPort, path);
      expect([path, res.status]).toEqual([path, 404]);
    }
  });
});

/** A reverse proxy that appends the peer's address to X-Forwarded-For (like HAProxy's `option forwardfor`). */
async function appendingProxy(targetPort: number): Promise<{ port: number; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    const xff = req.headers['x-forwarded-for'];
    const peer = req.socket.remoteAddress!;
    const headers = { ...req.headers, 'x-forwarded-for': xff ? `${String(xff)}, ${peer}` : peer };
    const up = http.request({ host: '127.0.0.1', port: targetPort, method: req.method, path: req.url, headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function post(port: number, xff?: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/v1/alerts',
        agent: false,
        headers: { 'content-type': 'application/json', ...(xff ? { 'x-forwarded-for': xff } : {}) },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end('{}');
  });
}

describe('X-Forwarded-For spoofing does not bypass the rate limit', () => {
  const LIMIT = 3;

  it('with one trusted hop, a client sending its own X-Forwarded-For through the proxy is still limited as itself', async () => {
    const t = await makeTestApp({
      backend: 'memory',
      config: { CORDON_TRUST_PROXY: '1', CORDON_RATE_LIMIT_MAX: String(LIMIT), CORDON_RATE_LIMIT_WINDOW_MS: '60000' },
    });
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    const proxy = await appendingProxy((t.app.server.address() as AddressInfo).port);
    try {
      const statuses: number[] = [];
      for (let i = 0; i < LIMIT + 3; i++) statuses.push(await post(proxy.port, `1.2.3.${i}, 10.9.8.${i}`));
      // junk bodies are 400 until the client's own budget is spent, whatever it claims to be
      expect(statuses).toEqual([...Array(LIMIT).fill(400), ...Array(3).fill(429)]);
    } finally {
      await proxy.close();
      await t.close();
    }
  });

  it('takes the address the trusted proxy saw, so two clients behind it have a budget each', async () => {
    const t = await makeTestApp({
      backend: 'memory',
      config: { CORDON_TRUST_PROXY: '10.0.0.5,10.1.0.0/16', CORDON_RATE_LIMIT_MAX: String(LIMIT), CORDON_RATE_LIMIT_WINDOW_MS: '60000' },
    });
    try {
      const send = (remoteAddress: string, xff?: string) =>
        t.app
          .inject({
            method: 'POST',
            url: '/v1/alerts',
            remoteAddress,
            headers: { 'content-type': 'application/json', ...(xff ? { 'x-forwarded-for': xff } : {}) },
            payload: '{}',
          })
          .then((r) => r.statusCode);
      // client 203.0.113.9 behind the proxies 10.1.2.3 -> 10.0.0.5, each request claiming another origin
      const a: number[] = [];
      for (let i = 0; i < LIMIT + 1; i++) a.push(await send('10.0.0.5', `198.18.0.${i}, 203.0.113.9, 10.1.2.3`));
      expect(a).toEqual([...Array(LIMIT).fill(400), 429]);
      // another client behind the same proxy still has its budget
      expect(await send('10.0.0.5', '203.0.113.10')).toBe(400);
      // a client that reaches the node directly is not a trusted proxy: its header is ignored
      const direct: number[] = [];
      for (let i = 0; i < LIMIT + 1; i++) direct.push(await send('198.51.100.7', `203.0.113.${20 + i}`));
      expect(direct).toEqual([...Array(LIMIT).fill(400), 429]);
    } finally {
      await t.close();
    }
  });

  it('trusts no X-Forwarded-For by default', async () => {
    const t = await makeTestApp({ backend: 'memory', config: { CORDON_RATE_LIMIT_MAX: String(LIMIT), CORDON_RATE_LIMIT_WINDOW_MS: '60000' } });
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    try {
      const port = (t.app.server.address() as AddressInfo).port;
      const statuses: number[] = [];
      for (let i = 0; i < LIMIT + 1; i++) statuses.push(await post(port, `1.2.3.${i}`));
      expect(statuses).toEqual([...Array(LIMIT).fill(400), 429]);
    } finally {
      await t.close();
    }
  });
});
