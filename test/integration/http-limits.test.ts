import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { makeTestApp, type TestApp } from '../helpers/app';
import { socketDesk } from '../helpers/desk';

/**
 * Slow and hostile HTTP clients, played with raw sockets against a listening app (issue 8 item 6):
 * an unfinished body, headers sent byte by byte, more connections than the bound, a malformed
 * chunked body. Each is cut or refused within the configured time and the server stays up.
 */

interface RawAnswer {
  /** everything the server sent before the connection closed. */
  text: string;
  /** ms from the start of the attack to the close. */
  ms: number;
  closed: boolean;
}

/** Opens a raw connection, lets `feed` write to it, and collects the answer until close or `waitMs`. */
function attack(port: number, feed: (socket: net.Socket) => void, waitMs: number): Promise<RawAnswer> {
  return new Promise((resolve) => {
    const start = Date.now();
    const socket = net.connect({ port, host: '127.0.0.1' });
    let text = '';
    let settled = false;
    const done = (closed: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ text, ms: Date.now() - start, closed });
    };
    const timer = setTimeout(() => done(false), waitMs);
    socket.on('data', (b) => (text += b.toString('latin1')));
    socket.on('error', () => undefined);
    socket.on('close', () => done(true));
    socket.on('connect', () => feed(socket));
  });
}

/** Writes `bytes` one at a time every `everyMs` ms while the socket is open. */
function trickle(socket: net.Socket, bytes: string, everyMs: number): void {
  let i = 0;
  const timer = setInterval(() => {
    if (i >= bytes.length || socket.destroyed) return clearInterval(timer);
    socket.write(bytes[i++]);
  }, everyMs);
  socket.on('close', () => clearInterval(timer));
}

function parseAnswer(text: string): { status: number; contentType: string; body: Record<string, unknown> } {
  const [head, body] = text.split('\r\n\r\n');
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]);
  const contentType = /^content-type: (.*)$/im.exec(head)?.[1]?.trim() ?? '';
  return { status, contentType, body: JSON.parse(body) as Record<string, unknown> };
}

/** The server answered a cut with a documented problem, or just closed: never held the socket. */
function expectCut(answer: RawAnswer, code: string): void {
  expect(answer.closed).toBe(true);
  if (answer.text !== '') {
    const a = parseAnswer(answer.text);
    expect(a.contentType).toBe('application/problem+json');
    expect(a.body.code).toBe(code);
  }
}

async function healthy(port: number): Promise<void> {
  const res = await fetch(`http://127.0.0.1:${port}/healthz`);
  expect(res.status).toBe(200);
}

const HEADERS_MS = 600;
const REQUEST_MS = 1500;

describe('HTTP limits against slow and hostile clients', () => {
  let t: TestApp;
  let port: number;

  beforeAll(async () => {
    t = await makeTestApp({
      backend: 'memory',
      config: {
        CORDON_HTTP_HEADERS_TIMEOUT_MS: String(HEADERS_MS),
        CORDON_HTTP_REQUEST_TIMEOUT_MS: String(REQUEST_MS),
        CORDON_HTTP_KEEP_ALIVE_TIMEOUT_MS: '500',
        CORDON_HTTP_IDLE_TIMEOUT_MS: '1000',
        // no ping traffic that could keep a desk's socket busy during the idle test
        CORDON_WS_PING_MS: '600000',
      },
    });
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    port = (t.app.server.address() as AddressInfo).port;
  });

  afterAll(async () => {
    await t.close();
  });

  it('cuts a POST whose body never finishes (even trickled byte by byte) within the request time', async () => {
    const answer = await attack(
      port,
      (s) => {
        s.write('POST /v1/alerts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 20000\r\n\r\n{');
        trickle(s, ' '.repeat(1000), 100);
      },
      REQUEST_MS + 8000,
    );
    expectCut(answer, 'REQUEST_TIMEOUT');
    expect(answer.ms).toBeGreaterThanOrEqual(REQUEST_MS - 100);
    expect(answer.ms).toBeLessThan(REQUEST_MS + 5000);
    await healthy(port);
  });

  it('cuts headers sent one byte at a time within the header time, with 408 REQUEST_TIMEOUT', async () => {
    const answer = await attack(port, (s) => trickle(s, 'GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ' + 'a'.repeat(500), 50), HEADERS_MS + 8000);
    expectCut(answer, 'REQUEST_TIMEOUT');
    expect(answer.text).toMatch(/^HTTP\/1\.1 408 /);
    expect(answer.ms).toBeLessThan(HEADERS_MS + 5000);
    await healthy(port);
  });

  it('answers a malformed chunked body with 400 REQUEST_MALFORMED_HTTP as problem+json', async () => {
    const answer = await attack(
      port,
      (s) =>
        s.write(
          'POST /v1/alerts HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n' +
            '5\r\n{"a":\r\nzz-not-a-size\r\n1}\r\n0\r\n\r\n',
        ),
      5000,
    );
    expect(answer.closed).toBe(true);
    const a = parseAnswer(answer.text);
    expect(a.status).toBe(400);
    expect(a.contentType).toBe('application/problem+json');
    expect(a.body).toMatchObject({ status: 400, code: 'REQUEST_MALFORMED_HTTP' });
    await healthy(port);
  });

  it('answers a malformed request line with the same problem, before any route runs', async () => {
    const answer = await attack(port, (s) => s.write('GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header Line\r\n\r\n'), 5000);
    const a = parseAnswer(answer.text);
    expect([a.status, a.contentType, a.body.code]).toEqual([400, 'application/problem+json', 'REQUEST_MALFORMED_HTTP']);
  });

  it('answers oversized headers with 431 REQUEST_HEADERS_TOO_LARGE as problem+json', async () => {
    const answer = await attack(port, (s) => s.write(`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`), 5000);
    const a = parseAnswer(answer.text);
    expect([a.status, a.contentType, a.body.code]).toEqual([431, 'application/problem+json', 'REQUEST_HEADERS_TOO_LARGE']);
    expect(await t.metrics()).toMatch(/cordon_http_connections_refused_total\{code="REQUEST_HEADERS_TOO_LARGE"\} [1-9]/);
  });

  it('closes an idle keep-alive connection after the keep-alive time', async () => {
    const answer = await attack(port, (s) => s.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'), 8000);
    expect(answer.closed).toBe(true);
    expect(answer.text).toMatch(/^HTTP\/1\.1 200 /);
    expect(answer.ms).toBeLessThan(5000);
  });

  it('leaves an upgraded desk WebSocket alone: idle past every HTTP time, it still works', async () => {
    const desk = await socketDesk(`ws://127.0.0.1:${port}/v1/stream`, t.token());
    // longer than the header, request, keep-alive and idle times together
    await new Promise((r) => setTimeout(r, REQUEST_MS + 1500));
    expect(desk.closeCode).toBeUndefined();
    const region = t.regions.list()[0].code;
    desk.subscribe([region]);
    await desk.until((d) => d.ofType('subscribed', region).length === 1, 5000, 'subscribed');
    desk.close();
    await desk.closed;
  });
});

describe('HTTP connection bound', () => {
  let t: TestApp;
  let port: number;

  beforeAll(async () => {
    t = await makeTestApp({ backend: 'memory', config: { CORDON_HTTP_MAX_CONNECTIONS: '3' } });
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    port = (t.app.server.address() as AddressInfo).port;
  });

  afterAll(async () => {
    await t.close();
  });

  const connections = (): Promise<number> => new Promise((resolve, reject) => t.app.server.getConnections((err, n) => (err ? reject(err) : resolve(n))));

  async function until(cond: () => Promise<boolean>, ms = 5000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!(await cond())) {
      if (Date.now() > deadline) throw new Error('condition not reached');
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  it('refuses connections beyond CORDON_HTTP_MAX_CONNECTIONS at once, and serves again when one closes', async () => {
    const held: net.Socket[] = [];
    for (let i = 0; i < 3; i++) {
      const s = net.connect({ port, host: '127.0.0.1' });
      s.on('error', () => undefined);
      held.push(s);
    }
    await until(async () => (await connections()) === 3);

    const extra = await attack(port, (s) => s.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'), 5000);
    expect(extra.closed).toBe(true);
    expect(extra.text).toBe('');
    expect(extra.ms).toBeLessThan(2000);
    const metrics = await t.deps.metrics.registry.metrics();
    expect(metrics).toMatch(/cordon_http_connections_refused_total\{code="MAX_CONNECTIONS"\} [1-9]/);

    held.pop()!.destroy();
    await until(async () => (await connections()) === 2);
    const ok = await attack(port, (s) => s.write('GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'), 5000);
    expect(ok.text).toMatch(/^HTTP\/1\.1 200 /);
    for (const s of held) s.destroy();
  });
});
