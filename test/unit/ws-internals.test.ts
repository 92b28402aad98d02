import { readFileSync } from 'node:fs';
import { Socket, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { WebSocket, WebSocketServer } from 'ws';
import {
  checkWsInternals,
  closeFrameReceived,
  installedWsVersion,
  onReceiverError,
  rawSocket,
  senderBusy,
  WS_PINNED_VERSION,
  WsInternalsError,
} from '../../src/ws/ws-internals';

const ROOT = join(__dirname, '../..');

async function until(cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A real ws server on port 0 and one client; resolves with the server side of the connection. */
async function pair(maxPayload = 1 << 20): Promise<{ wss: WebSocketServer; server: WebSocket; client: WebSocket }> {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', maxPayload });
  await new Promise<void>((r) => wss.once('listening', () => r()));
  const { port } = wss.address() as AddressInfo;
  const serverSide = new Promise<WebSocket>((r) => wss.once('connection', (ws) => r(ws)));
  const client = new WebSocket(`ws://127.0.0.1:${port}`);
  client.on('error', () => {});
  await new Promise<void>((r) => client.once('open', () => r()));
  return { wss, server: await serverSide, client };
}

describe('ws internals', () => {
  test('the installed ws is the pinned one, and the start-up check passes on it', () => {
    expect(installedWsVersion()).toBe(WS_PINNED_VERSION);
    expect(() => checkWsInternals()).not.toThrow();
  });

  test('any other ws version is refused loudly, naming the versions and the file to review', () => {
    expect(() => checkWsInternals('8.24.0')).toThrow(WsInternalsError);
    expect(() => checkWsInternals('9.0.0')).toThrow(/installed ws is 9\.0\.0.*ws 8\.23\.0|ws 8\.23\.0.*installed ws is 9\.0\.0/);
    expect(() => checkWsInternals('9.0.0')).toThrow(/src\/ws\/ws-internals\.ts/);
  });

  test('ws is a run-time dependency (the CLI imports it) and the lockfile holds the pinned version', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
    expect(pkg.dependencies.ws).toBeDefined();
    expect(pkg.devDependencies?.ws).toBeUndefined();
    const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8'));
    expect(lock.packages['node_modules/ws'].version).toBe(WS_PINNED_VERSION);
    expect(lock.packages[''].dependencies.ws).toBe(pkg.dependencies.ws);
  });

  test('over a real connection: the raw socket, an idle sender, a receiver error hook and the close handshake', async () => {
    const { wss, server, client } = await pair(64);
    try {
      const sock = rawSocket(server);
      expect(sock).toBeInstanceOf(Socket);
      expect(senderBusy(server)).toBe(false);
      expect(closeFrameReceived(server)).toBe(false);

      // A frame written straight to the raw socket arrives as a message (what the session does).
      const got = new Promise<string>((r) => client.once('message', (d) => r((d as Buffer).toString())));
      // unmasked server text frame "hi": FIN+text, length 2
      sock!.write(Buffer.from([0x81, 0x02, 0x68, 0x69]));
      await expect(got).resolves.toBe('hi');

      // An oversized frame from the client: the hook runs before ws's own handling.
      let hooked = 0;
      onReceiverError(server, () => hooked++);
      server.on('error', () => {});
      client.send('x'.repeat(200));
      await until(() => hooked === 1);
    } finally {
      client.terminate();
      server.terminate();
      await new Promise<void>((r) => wss.close(() => r()));
    }
  });

  test('closeFrameReceived turns true once the peer answers the close frame', async () => {
    const { wss, server, client } = await pair();
    try {
      server.close(1000, 'bye');
      await until(() => closeFrameReceived(server));
      expect(closeFrameReceived(server)).toBe(true);
    } finally {
      client.terminate();
      server.terminate();
      await new Promise<void>((r) => wss.close(() => r()));
    }
  });
});
