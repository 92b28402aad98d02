import { connect as netConnect, type NetConnectOpts, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { LogUnavailableError, type RawEntryView, type RawScanRange, type RawScanSink } from '../../ports/region-log';

/**
 * The export path of the Redis region log: a range of a stream read over a connection of its own,
 * its RESP replies parsed where they land and every entry handed out as a view into the bytes read.
 *
 * Why not ioredis: its reply parser makes a Buffer per field and an array per entry, all of them
 * slices that keep the socket's 64 KB reads alive until the next scavenge. An export of 100,000
 * alerts then held tens of MB of read buffers and grew V8's young generation to its maximum. Here a
 * plain TCP connection reads into one reusable buffer (`onread`), so an export allocates nothing per
 * entry and its memory stays flat however long it runs (bench/replay prints the node's RSS).
 *
 * Each batch is `HGET <meta> epoch` + `XRANGE <log> <from>-0 <to>-0`: entry IDs are `<seq>-0`, so
 * the ranges are known in advance and the next batch is asked for as soon as the current reply
 * starts to arrive (at most two batches outstanding: Redis never buffers more than that for us).
 * Reading pauses while the sink applies backpressure. A missing seq or another epoch ends the scan
 * early; it never skips.
 */

/** Where the scanning connection goes: ioredis' own options for the shared client. */
export interface RawConnectionOptions {
  host?: string;
  port?: number;
  /** a Unix socket path instead of host and port */
  path?: string;
  username?: string | null;
  password?: string | null;
  db?: number;
  /** TLS options (rediss://); such a connection receives chunks and copies them in */
  tls?: ConnectionOptions;
  connectTimeout?: number;
}

export interface RawScanKeys {
  meta: string;
  log: string;
}

/** Bound on the silence of a connection that is not paused by the sink. */
const IDLE_TIMEOUT_MS = 10_000;
/** The read buffer starts here and doubles while an entry does not fit. */
const INITIAL_BUFFER = 256 * 1024;
/** Free room below which the unparsed tail moves to the front before the next read. */
const MIN_FREE = 32 * 1024;

const CR = 0x0d;
const LF = 0x0a;

function command(args: string[]): string {
  let out = `*${args.length}\r\n`;
  for (const a of args) out += `$${Buffer.byteLength(a, 'utf8')}\r\n${a}\r\n`;
  return out;
}

export function scanRawRange(conn: RawConnectionOptions, keys: RawScanKeys, range: RawScanRange, sink: RawScanSink): Promise<number> {
  if (range.top <= range.after) return Promise.resolve(range.after);
  return new Promise<number>((resolve, reject) => {
    new RawScan(conn, keys, range, sink, resolve, reject).start();
  });
}

type Expect = 'ok' | 'epoch' | 'range';

class RawScan {
  private buf = Buffer.allocUnsafe(INITIAL_BUFFER);
  /** parse position and end of the bytes read, in buf */
  private pos = 0;
  private fill = 0;
  private readonly expect: Expect[] = [];
  /** entries asked for by each outstanding XRANGE, oldest first */
  private readonly asked: number[] = [];
  /** entries left in the range reply being parsed; -1 before its header */
  private left = -1;
  private got = 0;
  private nextSeq: number;
  private sentUpTo: number;
  private readonly epoch: Buffer;
  private done = false;
  private socket!: Socket;
  private readonly view: RawEntryView;

  constructor(
    private readonly conn: RawConnectionOptions,
    private readonly keys: RawScanKeys,
    private readonly range: RawScanRange,
    private readonly sink: RawScanSink,
    private readonly resolve: (last: number) => void,
    private readonly reject: (err: unknown) => void,
  ) {
    this.nextSeq = range.after + 1;
    this.sentUpTo = range.after;
    this.epoch = Buffer.from(range.epoch, 'utf8');
    this.view = { seq: 0, buf: this.buf, atStart: 0, atEnd: 0, visStart: -1, visEnd: -1, bodyStart: 0, bodyEnd: 0 };
  }

  start(): void {
    const { conn } = this;
    const where = conn.path !== undefined ? { path: conn.path } : { host: conn.host ?? '127.0.0.1', port: conn.port ?? 6379 };
    if (conn.tls) {
      this.socket = tlsConnect({ ...conn.tls, ...where });
      this.socket.on('data', (chunk: Buffer) => {
        this.room(chunk.length);
        chunk.copy(this.buf, this.fill);
        if (!this.onRead(chunk.length)) this.socket.pause();
      });
    } else {
      this.socket = netConnect({
        ...where,
        onread: {
          buffer: () => {
            this.room(MIN_FREE);
            return this.buf.subarray(this.fill);
          },
          callback: (n: number) => this.onRead(n),
        },
      } as NetConnectOpts);
    }
    this.socket.setNoDelay(true);
    this.socket.setTimeout(this.conn.connectTimeout ?? IDLE_TIMEOUT_MS);
    this.socket.on('connect', () => this.socket.setTimeout(IDLE_TIMEOUT_MS));
    this.socket.on('timeout', () => this.fail(new Error('redis connection timed out')));
    this.socket.on('error', (err) => this.fail(err));
    this.socket.on('close', () => this.fail(new Error('redis connection closed')));

    let hello = '';
    if (conn.password) {
      hello += command(conn.username ? ['AUTH', conn.username, conn.password] : ['AUTH', conn.password]);
      this.expect.push('ok');
    }
    if (conn.db) {
      hello += command(['SELECT', String(conn.db)]);
      this.expect.push('ok');
    }
    this.socket.write(hello + this.batch());
  }

  /** The next batch's commands ('' when everything up to top was asked for). */
  private batch(): string {
    if (this.sentUpTo >= this.range.top) return '';
    const from = this.sentUpTo + 1;
    const to = Math.min(this.range.top, this.sentUpTo + Math.max(1, this.range.batch));
    this.sentUpTo = to;
    this.expect.push('epoch', 'range');
    this.asked.push(to - from + 1);
    return command(['HGET', this.keys.meta, 'epoch']) + command(['XRANGE', this.keys.log, `${from}-0`, `${to}-0`]);
  }

  /** Makes room for at least `need` bytes after fill: the unparsed tail moves to the front, or the buffer grows. */
  private room(need: number): void {
    if (this.buf.length - this.fill >= need) return;
    const tail = this.fill - this.pos;
    const target = this.buf.length >= tail + need ? this.buf : Buffer.allocUnsafe(Math.max(this.buf.length * 2, tail + need));
    this.buf.copy(target, 0, this.pos, this.fill);
    this.buf = target;
    this.view.buf = target;
    this.pos = 0;
    this.fill = tail;
  }

  /** n new bytes at fill; returns false to pause the socket. */
  private onRead(n: number): boolean {
    if (this.done) return false;
    this.fill += n;
    try {
      this.parse();
    } catch (err) {
      this.fail(err);
      return false;
    }
    if (this.done) return false;
    let wait: Promise<void> | undefined;
    try {
      wait = this.sink.flush();
    } catch (err) {
      this.end(err);
      return false;
    }
    if (!wait) return true;
    this.socket.setTimeout(0);
    wait.then(
      () => {
        if (this.done) return;
        this.socket.setTimeout(IDLE_TIMEOUT_MS);
        this.socket.resume();
      },
      (err: unknown) => this.end(err),
    );
    return false;
  }

  private parse(): void {
    while (!this.done && this.expect.length > 0) {
      const kind = this.expect[0];
      if (kind === 'ok') {
        const eol = this.lineEnd(this.pos);
        if (eol < 0) return;
        if (this.buf[this.pos] !== 0x2b /* + */) throw this.replyError(eol);
        this.pos = eol + 2;
        this.expect.shift();
      } else if (kind === 'epoch') {
        const b = this.pos;
        if (b >= this.fill) return;
        if (this.buf[b] !== 0x24 /* $ */) throw this.replyError(this.lineEnd(b));
        const len = this.int(b + 1);
        if (len === undefined) return;
        const dataStart = this.intEnd + 2;
        const end = len < 0 ? dataStart : dataStart + len + 2;
        if (end > this.fill) return;
        this.pos = end;
        this.expect.shift();
        if (len < 0 || len !== this.epoch.length || this.buf.compare(this.epoch, 0, len, dataStart, dataStart + len) !== 0) {
          // Another epoch (or no log at all): the positions asked for mean nothing in it.
          this.finish();
          return;
        }
      } else {
        if (this.left < 0) {
          const b = this.pos;
          if (b >= this.fill) return;
          if (this.buf[b] !== 0x2a /* * */) throw this.replyError(this.lineEnd(b));
          const n = this.int(b + 1);
          if (n === undefined) return;
          this.pos = this.intEnd + 2;
          this.left = Math.max(0, n);
          this.got = 0;
          // The reply is on its way: ask for the next batch so Redis works while this one is parsed.
          const next = this.batch();
          if (next) this.socket.write(next);
        }
        while (this.left > 0) {
          const end = this.entry(this.pos);
          if (end < 0) return;
          this.pos = end;
          this.left--;
          if (this.view.seq !== this.nextSeq) {
            // A hole: what was asked for was trimmed while the scan ran.
            this.finish();
            return;
          }
          this.got++;
          this.nextSeq++;
          this.sink.entry(this.view);
        }
        this.left = -1;
        this.expect.shift();
        if (this.got < this.asked.shift()! || this.nextSeq > this.range.top) {
          this.finish();
          return;
        }
      }
    }
  }

  /** Where the integer parsed by `int` ended (its CR). */
  private intEnd = 0;

  /** The decimal (optionally negative) integer at p up to CRLF; undefined until the line is complete. */
  private int(p: number): number | undefined {
    const { buf, fill } = this;
    let neg = false;
    if (p < fill && buf[p] === 0x2d) {
      neg = true;
      p++;
    }
    let v = 0;
    for (; p < fill; p++) {
      const c = buf[p];
      if (c === CR) {
        if (p + 1 >= fill) return undefined;
        if (buf[p + 1] !== LF) throw new Error('malformed RESP reply');
        this.intEnd = p;
        return neg ? -v : v;
      }
      if (c < 0x30 || c > 0x39) throw new Error('malformed RESP reply');
      v = v * 10 + (c - 0x30);
    }
    return undefined;
  }

  private lineEnd(p: number): number {
    const i = this.buf.indexOf(CR, p);
    return i < 0 || i + 1 >= this.fill ? -1 : i;
  }

  private replyError(eol: number): Error {
    if (eol < 0) return new Error('unexpected RESP reply');
    return new Error(`redis replied ${this.buf.toString('utf8', this.pos, Math.min(eol, this.pos + 200))}`);
  }

  /** One bulk string at p: sets bulkStart/bulkEnd and returns the position after it, or -1 if incomplete. */
  private bulkStart = 0;
  private bulkEnd = 0;
  private bulk(p: number): number {
    if (p >= this.fill) return -1;
    if (this.buf[p] !== 0x24) throw new Error('malformed RESP reply: a bulk string was expected');
    const len = this.int(p + 1);
    if (len === undefined) return -1;
    if (len < 0) throw new Error('malformed RESP reply: null in a stream entry');
    this.bulkStart = this.intEnd + 2;
    this.bulkEnd = this.bulkStart + len;
    return this.bulkEnd + 2 <= this.fill ? this.bulkEnd + 2 : -1;
  }

  /** One stream entry `[id, [field, value, ...]]` at p into the view; the position after it, or -1 if incomplete. */
  private entry(p: number): number {
    const { buf, view } = this;
    if (p >= this.fill) return -1;
    if (buf[p] !== 0x2a) throw new Error('malformed RESP reply: a stream entry was expected');
    const two = this.int(p + 1);
    if (two === undefined) return -1;
    if (two !== 2) throw new Error('malformed RESP reply: a stream entry has two parts');
    p = this.bulk(this.intEnd + 2);
    if (p < 0) return -1;
    let seq = 0;
    for (let i = this.bulkStart; i < this.bulkEnd; i++) {
      const c = buf[i];
      if (c < 0x30 || c > 0x39) break;
      seq = seq * 10 + (c - 0x30);
    }
    if (p >= this.fill) return -1;
    if (buf[p] !== 0x2a) throw new Error('malformed RESP reply: stream entry fields were expected');
    const fields = this.int(p + 1);
    if (fields === undefined) return -1;
    p = this.intEnd + 2;
    let atStart = 0;
    let atEnd = 0;
    let visStart = -1;
    let visEnd = -1;
    let bodyStart = 0;
    let bodyEnd = 0;
    for (let f = 0; f + 1 < fields; f += 2) {
      p = this.bulk(p);
      if (p < 0) return -1;
      const nameStart = this.bulkStart;
      const nameLen = this.bulkEnd - nameStart;
      p = this.bulk(p);
      if (p < 0) return -1;
      const c0 = buf[nameStart];
      if (nameLen === 1 && c0 === 0x62 /* b */) {
        bodyStart = this.bulkStart;
        bodyEnd = this.bulkEnd;
      } else if (nameLen === 1 && c0 === 0x6b /* k */) {
        visStart = this.bulkStart;
        visEnd = this.bulkEnd;
      } else if (nameLen === 2 && c0 === 0x61 && buf[nameStart + 1] === 0x74 /* at */) {
        atStart = this.bulkStart;
        atEnd = this.bulkEnd;
      }
    }
    view.seq = seq;
    view.atStart = atStart;
    view.atEnd = atEnd;
    view.visStart = visStart;
    view.visEnd = visEnd;
    view.bodyStart = bodyStart;
    view.bodyEnd = bodyEnd;
    return p;
  }

  private finish(): void {
    if (this.done) return;
    this.done = true;
    this.socket.destroy();
    this.resolve(this.nextSeq - 1);
  }

  /** The sink's own error ends the scan as it is. */
  private end(err: unknown): void {
    if (this.done) return;
    this.done = true;
    this.socket.destroy();
    this.reject(err);
  }

  private fail(err: unknown): void {
    if (this.done) return;
    this.done = true;
    this.socket?.destroy();
    this.reject(new LogUnavailableError('region log unavailable', { cause: err }));
  }
}
