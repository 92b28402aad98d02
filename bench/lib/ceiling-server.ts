/*
 * The reference broadcasters bench/fanout.ts measures Cordon against, each in its own process
 * (forked with IPC): `ceiling-server.js ws` is a bare `ws` server (one `send` per socket per
 * message, the frame built once), `ceiling-server.js socketio` a Socket.IO 4 server
 * (`io.to(room).emit`, websocket transport only). Both send the same ~1.5 KB delivered-alert frame
 * as Cordon, stamped with `received_at` when the message is built, so the clients measure
 * latency the same way for all three.
 *
 * IPC: parent → { cmd: 'template', region, epoch, body } once, then { cmd: 'publish', upTo } (send
 * every seq up to upTo now), { cmd: 'gc' } (a full collection, when run with --expose-gc); child → { type: 'listening', port }, { type: 'published', seq }
 * and, after a gc, { type: 'memory', heapUsed }.
 */
import { createServer } from 'node:http';
import { WebSocketServer, type WebSocket } from 'ws';
import { Server as SocketIoServer } from 'socket.io';

type Msg = { cmd: 'template'; region: string; epoch: string; body: string } | { cmd: 'publish'; upTo: number } | { cmd: 'gc' };

const kind = process.argv[2];
if (kind !== 'ws' && kind !== 'socketio') {
  process.stderr.write('usage: ceiling-server.js ws|socketio\n');
  process.exit(2);
}

const ROOM = 'region';
const http = createServer((_req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
});
let wss: WebSocketServer | undefined;
let io: SocketIoServer | undefined;
if (kind === 'ws') {
  wss = new WebSocketServer({ server: http, perMessageDeflate: false, clientTracking: true });
  wss.on('connection', (socket: WebSocket) => socket.on('error', () => socket.terminate()));
} else {
  io = new SocketIoServer(http, { transports: ['websocket'], perMessageDeflate: false, serveClient: false });
  io.on('connection', (socket) => void socket.join(ROOM));
}

let region = '';
let epoch = '';
let bodyTail = '';
let bodyObject: Record<string, unknown> = {};
let seq = 0;

function publishOne(): void {
  seq++;
  const receivedAt = new Date().toISOString();
  if (wss) {
    // Built once per message, written to every socket.
    const frame = Buffer.from(
      `{"type":"alert","region":${JSON.stringify(region)},"seq":${seq},"epoch":${JSON.stringify(epoch)},"received_at":"${receivedAt}",${bodyTail}`,
    );
    for (const client of wss.clients) client.send(frame, { binary: false });
  } else if (io) {
    // Socket.IO encodes the packet (and its websocket frame) once per broadcast.
    io.to(ROOM).emit('alert', { region, seq, epoch, received_at: receivedAt, ...bodyObject });
  }
}

process.on('message', (msg: Msg) => {
  if (msg.cmd === 'template') {
    region = msg.region;
    epoch = msg.epoch;
    bodyTail = msg.body.slice(1);
    bodyObject = JSON.parse(msg.body) as Record<string, unknown>;
  } else if (msg.cmd === 'publish') {
    while (seq < msg.upTo) publishOne();
    process.send?.({ type: 'published', seq });
  } else if (msg.cmd === 'gc') {
    const gc = (globalThis as { gc?: () => void }).gc;
    gc?.();
    gc?.();
    process.send?.({ type: 'memory', heapUsed: process.memoryUsage().heapUsed });
  }
});
process.on('disconnect', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));

http.listen(0, '127.0.0.1', () => {
  const { port } = http.address() as { port: number };
  process.send?.({ type: 'listening', port });
});
