/*
 * A benchmark client process: opens many WebSocket desks to one server and counts what arrives.
 * Forked by bench/fanout.ts and bench/resume-storm.ts (child_process.fork, IPC messages below).
 *
 * The client must cost far less than the server it measures (they share the machine), so an
 * alert frame is never JSON-parsed: `seq` and `received_at` are read by position near the start
 * of the frame, and latency goes into a histogram of whole milliseconds.
 *
 * Three server kinds speak three dialects over the same `ws` client:
 *   cordon   — contract §9: bearer token, `subscribe` frame, `{"type":"alert",...}` frames;
 *   ws       — the bare ceiling server: the same alert frames, no handshake;
 *   socketio — the Socket.IO 4 wire protocol (engine.io v4 over websocket): `0{open}` → `40`,
 *              ping `2` → pong `3`, events as `42["alert",{...}]`. A raw client keeps the
 *              receiving cost equal across the three servers (socket.io-client parses every
 *              packet with JSON.parse).
 */
import WebSocket from 'ws';

export type ServerKind = 'cordon' | 'ws' | 'socketio';

export interface ConnectCommand {
  cmd: 'connect';
  kind: ServerKind;
  /** ws://host:port/path (cordon: /v1/stream; socketio: /socket.io/?EIO=4&transport=websocket) */
  url: string;
  count: number;
  /** cordon: bearer token */
  token?: string;
  /** cordon: the subscribe frame text sent on open */
  subscribe?: string;
  /** spread the connects evenly over this many ms (0: as fast as `concurrency` allows) */
  spreadMs?: number;
  /** at most this many handshakes in flight (when not spread) */
  concurrency?: number;
  /** record per desk the time from its connect until it holds this seq */
  target?: number;
  /** the seq each desk already holds (a resuming desk): the first expected is fromSeq + 1 */
  fromSeq?: number;
}

export type ParentCommand = ConnectCommand | { cmd: 'reset' } | { cmd: 'report' } | { cmd: 'close' };

export interface WorkerReport {
  type: 'report';
  /** alert frames received since the last reset */
  deliveries: number;
  /** frames whose seq was not last + 1 (duplicate, reordering or gap) */
  outOfOrder: number;
  /** latency histogram since the last reset: [ms, count] pairs */
  latency: Array<[number, number]>;
  /** lowest and highest last-seq over this worker's open desks */
  minSeq: number;
  maxSeq: number;
  open: number;
  /** close codes seen (code → count) */
  closes: Record<string, number>;
  /** per desk with a target: ms from its connect start until it held `target` (-1: not yet) */
  catchUpMs: number[];
  /** frames other than alerts (subscribed, gap, error), by type */
  other: Record<string, number>;
  /** CPU this worker used since the last reset, in ms */
  cpuMs: number;
}

export type WorkerMessage =
  | { type: 'ready' }
  | { type: 'connected'; ok: number; failed: number; errors: string[]; ms: number }
  | { type: 'progress'; minSeq: number; deliveries: number }
  | { type: 'reset' }
  | WorkerReport
  | { type: 'closed' };

interface Desk {
  ws: WebSocket;
  lastSeq: number;
  startedAt: number;
  caughtUpMs: number;
  open: boolean;
}

const MAX_LATENCY_MS = 60_000;
const PROGRESS_MS = 5;

const ALERT_PREFIX = Buffer.from('{"type":"alert"');
const SIO_EVENT_PREFIX = Buffer.from('42["alert"');
const SEQ_KEY = Buffer.from('"seq":');
const RECEIVED_KEY = Buffer.from('"received_at":"');

const desks: Desk[] = [];
let histogram = new Uint32Array(MAX_LATENCY_MS + 1);
let deliveries = 0;
let outOfOrder = 0;
let target = 0;
let cpuBase = process.cpuUsage();
const closes: Record<string, number> = {};
const other: Record<string, number> = {};

function send(msg: WorkerMessage): void {
  process.send?.(msg);
}

/** Reads a non-negative integer starting at `at`. */
function readInt(buf: Buffer, at: number): number {
  let n = 0;
  for (let i = at; i < buf.length; i++) {
    const c = buf[i];
    if (c < 48 || c > 57) break;
    n = n * 10 + (c - 48);
  }
  return n;
}

function onAlert(desk: Desk, buf: Buffer, from: number, now: number): void {
  const s = buf.indexOf(SEQ_KEY, from);
  if (s < 0) return;
  const seq = readInt(buf, s + SEQ_KEY.length);
  const r = buf.indexOf(RECEIVED_KEY, s);
  if (r >= 0) {
    const at = r + RECEIVED_KEY.length;
    const t = Date.parse(buf.toString('latin1', at, at + 24));
    if (t === t) histogram[Math.max(0, Math.min(MAX_LATENCY_MS, now - t))]++;
  }
  if (desk.lastSeq !== 0 && seq !== desk.lastSeq + 1) outOfOrder++;
  if (seq > desk.lastSeq) desk.lastSeq = seq;
  deliveries++;
  if (target > 0 && desk.caughtUpMs < 0 && seq >= target) desk.caughtUpMs = now - desk.startedAt;
}

function startsWith(buf: Buffer, prefix: Buffer): boolean {
  return buf.length >= prefix.length && buf.compare(prefix, 0, prefix.length, 0, prefix.length) === 0;
}

/** The subscribe frame again, from `lastSeq` (keeping the epoch the original named). */
function resubscribe(subscribe: string, lastSeq: number): string {
  const f = JSON.parse(subscribe) as { regions: string[]; from?: Record<string, { seq: number; epoch?: string }> };
  if (lastSeq === 0 && !f.from) return subscribe;
  const from: Record<string, { seq: number; epoch?: string }> = {};
  for (const r of f.regions) from[r] = { ...(f.from?.[r] ?? {}), seq: lastSeq };
  return JSON.stringify({ ...f, from });
}

function countOther(type: string): void {
  other[type] = (other[type] ?? 0) + 1;
}

/** Opens one desk; resolves when it is ready to receive (cordon: all `subscribed` frames seen). */
function openDesk(c: ConnectCommand, regionsToConfirm: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = {};
    if (c.token) headers.authorization = `Bearer ${c.token}`;
    const ws = new WebSocket(c.url, { headers, perMessageDeflate: false, skipUTF8Validation: true });
    const desk: Desk = { ws, lastSeq: c.fromSeq ?? 0, startedAt: Date.now(), caughtUpMs: -1, open: false };
    let pending = regionsToConfirm;
    let settled = false;
    const done = (err?: Error) => {
      if (settled) return;
      settled = true;
      if (err) reject(err);
      else resolve();
    };
    ws.on('open', () => {
      desk.open = true;
      desks.push(desk);
      if (c.kind === 'cordon') {
        if (c.subscribe) ws.send(c.subscribe);
        if (pending === 0) done();
      } else if (c.kind === 'ws') done();
    });
    ws.on('message', (data: Buffer) => {
      const now = Date.now();
      if (c.kind === 'socketio') {
        if (startsWith(data, SIO_EVENT_PREFIX)) return onAlert(desk, data, SIO_EVENT_PREFIX.length, now);
        const t = data[0];
        if (t === 50 /* '2' ping */) ws.send('3');
        else if (t === 48 /* '0' open */) ws.send('40');
        else if (t === 52 && data[1] === 48 /* '40' namespace joined */) done();
        else countOther(`sio:${data.toString('latin1', 0, 2)}`);
        return;
      }
      if (startsWith(data, ALERT_PREFIX)) return onAlert(desk, data, ALERT_PREFIX.length, now);
      let frame: { type?: string; code?: string; message?: string };
      try {
        frame = JSON.parse(data.toString('utf8')) as typeof frame;
      } catch {
        countOther('unparsable');
        return;
      }
      countOther(frame.type === 'error' ? `error:${frame.code}` : (frame.type ?? 'untyped'));
      if (frame.type === 'subscribed' && --pending === 0) done();
      if (frame.type === 'error') {
        // What a real desk does when the node could not read the log: subscribe again from the
        // last seq it holds (the subscription was dropped, the session stays open).
        if (frame.code === 'LOG_UNAVAILABLE' && c.subscribe) {
          setTimeout(() => ws.send(resubscribe(c.subscribe!, desk.lastSeq)), 100 + Math.random() * 200);
        } else if (!settled) done(new Error(`error frame ${frame.code}: ${frame.message}`));
      }
    });
    ws.on('unexpected-response', (_req, res) => done(new Error(`upgrade refused: HTTP ${res.statusCode}`)));
    ws.on('error', (err) => done(err));
    ws.on('close', (code) => {
      desk.open = false;
      closes[code] = (closes[code] ?? 0) + 1;
      done(new Error(`closed ${code} before ready`));
    });
  });
}

async function connect(c: ConnectCommand): Promise<void> {
  const started = Date.now();
  target = c.target ?? 0;
  const regions = c.kind === 'cordon' && c.subscribe ? (JSON.parse(c.subscribe) as { regions: string[] }).regions.length : 0;
  let ok = 0;
  const errors: string[] = [];
  const attempt = () =>
    openDesk(c, regions).then(
      () => void ok++,
      (err: Error) => void (errors.length < 5 ? errors.push(err.message) : undefined),
    );
  if (c.spreadMs && c.spreadMs > 0) {
    const all: Promise<void>[] = [];
    for (let i = 0; i < c.count; i++) {
      const at = started + (i * c.spreadMs) / c.count;
      all.push(new Promise<void>((r) => setTimeout(r, Math.max(0, at - Date.now()))).then(attempt));
    }
    await Promise.all(all);
  } else {
    const concurrency = c.concurrency ?? 25;
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(concurrency, c.count) }, async () => {
        while (next < c.count) {
          next++;
          await attempt();
        }
      }),
    );
  }
  send({ type: 'connected', ok, failed: c.count - ok, errors, ms: Date.now() - started });
}

function minMax(): { min: number; max: number; open: number } {
  let min = Infinity;
  let max = 0;
  let open = 0;
  for (const d of desks) {
    if (!d.open) continue;
    open++;
    if (d.lastSeq < min) min = d.lastSeq;
    if (d.lastSeq > max) max = d.lastSeq;
  }
  return { min: open ? min : 0, max, open };
}

function report(): WorkerReport {
  const latency: Array<[number, number]> = [];
  for (let ms = 0; ms <= MAX_LATENCY_MS; ms++) if (histogram[ms] > 0) latency.push([ms, histogram[ms]]);
  const { min, max, open } = minMax();
  const cpu = process.cpuUsage(cpuBase);
  return {
    type: 'report',
    deliveries,
    outOfOrder,
    latency,
    minSeq: min,
    maxSeq: max,
    open,
    closes: { ...closes },
    catchUpMs: target > 0 ? desks.map((d) => d.caughtUpMs) : [],
    other: { ...other },
    cpuMs: (cpu.user + cpu.system) / 1000,
  };
}

// Progress for the publisher's in-flight window: the lowest seq every desk of this worker holds.
let lastProgress = -1;
let lastDeliveries = -1;
setInterval(() => {
  if (desks.length === 0) return;
  const { min } = minMax();
  if (min !== lastProgress || deliveries !== lastDeliveries) {
    lastProgress = min;
    lastDeliveries = deliveries;
    send({ type: 'progress', minSeq: min, deliveries });
  }
}, PROGRESS_MS);

process.on('message', (msg: ParentCommand) => {
  switch (msg.cmd) {
    case 'connect':
      void connect(msg);
      break;
    case 'reset':
      histogram = new Uint32Array(MAX_LATENCY_MS + 1);
      deliveries = 0;
      outOfOrder = 0;
      cpuBase = process.cpuUsage();
      for (const k of Object.keys(other)) delete other[k];
      send({ type: 'reset' });
      break;
    case 'report':
      send(report());
      break;
    case 'close': {
      for (const d of desks) d.ws.terminate();
      send({ type: 'closed' });
      setTimeout(() => process.exit(0), 50);
      break;
    }
  }
});

// The parent going away must not leave desks open.
process.on('disconnect', () => process.exit(0));
send({ type: 'ready' });
