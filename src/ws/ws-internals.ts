import { readFileSync } from 'node:fs';
import { Duplex } from 'node:stream';
import { WebSocket } from 'ws';

/**
 * Every read of a private field of `ws` is here, and nowhere else. The session writes complete
 * frames to the TCP socket itself (so it needs `_socket`, and `_sender` to know ws holds nothing
 * queued), maps receiver errors to the contract's close code (`_receiver`), and cuts a socket
 * whose close handshake is done (`_closeFrameReceived`). These fields are not ws's API: they were
 * read against the version below, and `checkWsInternals()` (run at start-up by the stream plugin)
 * refuses to start on any other version or when a field is missing. After upgrading ws, read
 * these uses against its lib/websocket.js and lib/sender.js, then move the pin.
 */
export const WS_PINNED_VERSION = '8.23.0';

/** Node's net.Socket members the session uses for batching and back-pressure. */
export interface RawSocket {
  cork(): void;
  uncork(): void;
  write(chunk: Buffer): boolean;
  destroyed: boolean;
  writableNeedDrain: boolean;
  once(event: 'drain', fn: () => void): unknown;
}

/** The private part of a ws WebSocket that this module reads. */
interface Internals {
  _socket?: (RawSocket & Record<string, unknown>) | null;
  /** `_state` is 0 (DEFAULT) unless ws is compressing or reading a Blob (neither happens here) */
  _sender?: { _state: number; _queue: unknown[] } | null;
  _receiver?: { prependListener(e: 'error', fn: () => void): void } | null;
  _closeFrameReceived?: boolean;
}

const internals = (ws: WebSocket): Internals => ws as unknown as Internals;

export class WsInternalsError extends Error {
  constructor(detail: string) {
    super(
      `the installed ws does not match what src/ws/ws-internals.ts was written against (ws ${WS_PINNED_VERSION}): ${detail}. ` +
        'Install the pinned version (npm ci), or review src/ws/ws-internals.ts against the new ws and move WS_PINNED_VERSION.',
    );
    this.name = 'WsInternalsError';
  }
}

/** The version of the ws that `require('ws')` loads. */
export function installedWsVersion(): string {
  const pkg = JSON.parse(readFileSync(require.resolve('ws/package.json'), 'utf8')) as { version?: unknown };
  return String(pkg.version);
}

let checked = false;

/**
 * Throws WsInternalsError unless the installed ws is the pinned version and a socket it sets up
 * has every private field read here, with the expected shape. Checked once per process.
 */
export function checkWsInternals(version: string = installedWsVersion()): void {
  if (checked && version === WS_PINNED_VERSION) return;
  if (version !== WS_PINNED_VERSION) throw new WsInternalsError(`installed ws is ${version}`);
  // A server-side WebSocket over an in-memory stream: what @fastify/websocket hands the session.
  const stream = new Duplex({ read() {}, write: (_chunk, _enc, cb) => cb() });
  // As WebSocketServer builds one: new WebSocket(null, undefined, options), then setSocket.
  const ws = new (WebSocket as unknown as new (a: null, p: undefined, o: object) => WebSocket)(null, undefined, {});
  try {
    // setSocket is what ws's WebSocketServer calls on an upgraded socket (public in JS, untyped).
    (ws as unknown as { setSocket(s: Duplex, head: Buffer, o: { maxPayload: number }): void }).setSocket(stream, Buffer.alloc(0), {
      maxPayload: 1024,
    });
    const i = internals(ws);
    const missing: string[] = [];
    if ((i._socket as unknown) !== stream) missing.push('_socket');
    if (!i._sender || typeof i._sender._state !== 'number' || !Array.isArray(i._sender._queue)) missing.push('_sender._state/_queue');
    if (!i._receiver || typeof i._receiver.prependListener !== 'function') missing.push('_receiver');
    if (i._closeFrameReceived !== false) missing.push('_closeFrameReceived');
    if (missing.length > 0) throw new WsInternalsError(`missing or changed: ${missing.join(', ')}`);
  } finally {
    ws.on('error', () => {});
    stream.destroy();
  }
  checked = true;
}

/** The TCP socket under the WebSocket (undefined before it is set). */
export function rawSocket(ws: WebSocket): RawSocket | undefined {
  return internals(ws)._socket ?? undefined;
}

/** The TCP socket as an object, for Node's own private fields (`_httpMessage`). */
export function rawSocketObject(ws: WebSocket): Record<string, unknown> | undefined {
  return internals(ws)._socket ?? undefined;
}

/** True while ws holds frames of its own (never with compression off): write nothing past them. */
export function senderBusy(ws: WebSocket): boolean {
  const sender = internals(ws)._sender;
  return !!sender && (sender._state !== 0 || sender._queue.length > 0);
}

/** Runs `fn` before ws's own handler when the receiver meets an oversized or broken frame. */
export function onReceiverError(ws: WebSocket, fn: () => void): void {
  internals(ws)._receiver?.prependListener('error', fn);
}

/** True once the peer's close frame arrived (the close handshake is done on its side). */
export function closeFrameReceived(ws: WebSocket): boolean {
  return internals(ws)._closeFrameReceived === true;
}
