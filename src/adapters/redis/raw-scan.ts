import { connect as netConnect, type NetConnectOpts, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { LogUnavailableError, type RawEntryView, type RawScanRange, type RawScanSink } from '../../ports/region-log';
import { RespReader, type RespHandler } from './resp-reader';

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
 * This file holds the socket and the scan's logic; the RESP replies are parsed by `RespReader`
 * (resp-reader.ts), fed the bytes as they arrive.
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
/** Free room below which the unparsed tail moves to the front before the next read. */
const MIN_FREE = 32 * 1024;

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

class RawScan implements RespHandler {
  private readonly reader = new RespReader(this);
  /** entries asked for by each outstanding XRANGE, oldest first */
  private readonly asked: number[] = [];
  private got = 0;
  private nextSeq: number;
  private sentUpTo: number;
  private readonly epoch: Buffer;
  private done = false;
  private socket!: Socket;

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
  }

  start(): void {
    const { conn } = this;
    const where = conn.path !== undefined ? { path: conn.path } : { host: conn.host ?? '127.0.0.1', port: conn.port ?? 6379 };
    if (conn.tls) {
      this.socket = tlsConnect({ ...conn.tls, ...where });
      this.socket.on('data', (chunk: Buffer) => {
        if (!this.onRead(() => this.reader.feed(chunk))) this.socket.pause();
      });
    } else {
      this.socket = netConnect({
        ...where,
        onread: {
          buffer: () => this.reader.readInto(MIN_FREE),
          callback: (n: number) => this.onRead(() => this.reader.written(n)),
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
      this.reader.expect('ok');
    }
    if (conn.db) {
      hello += command(['SELECT', String(conn.db)]);
      this.reader.expect('ok');
    }
    this.socket.write(hello + this.batch());
  }

  /** The next batch's commands ('' when everything up to top was asked for). */
  private batch(): string {
    if (this.sentUpTo >= this.range.top) return '';
    const from = this.sentUpTo + 1;
    const to = Math.min(this.range.top, this.sentUpTo + Math.max(1, this.range.batch));
    this.sentUpTo = to;
    this.reader.expect('bulk');
    this.reader.expect('entries');
    this.asked.push(to - from + 1);
    return command(['HGET', this.keys.meta, 'epoch']) + command(['XRANGE', this.keys.log, `${from}-0`, `${to}-0`]);
  }

  /** New bytes (handed to the reader by `read`); returns false to pause the socket. */
  private onRead(read: () => void): boolean {
    if (this.done) return false;
    try {
      read();
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

  // ---- the replies (RespHandler) -------------------------------------------------------------

  ok(): void {}

  /** The region's epoch (HGET): another epoch (or no log at all) ends the scan. */
  bulk(buf: Buffer, start: number, end: number): boolean {
    const len = end - start;
    if (start < 0 || len !== this.epoch.length || buf.compare(this.epoch, 0, len, start, end) !== 0) {
      // Another epoch (or no log at all): the positions asked for mean nothing in it.
      this.finish();
      return false;
    }
    return true;
  }

  entriesStart(): void {
    this.got = 0;
    // The reply is on its way: ask for the next batch so Redis works while this one is parsed.
    const next = this.batch();
    if (next) this.socket.write(next);
  }

  entry(view: RawEntryView): boolean {
    if (view.seq !== this.nextSeq) {
      // A hole: what was asked for was trimmed while the scan ran.
      this.finish();
      return false;
    }
    this.got++;
    this.nextSeq++;
    this.sink.entry(view);
    return true;
  }

  entriesEnd(): boolean {
    if (this.got < this.asked.shift()! || this.nextSeq > this.range.top) {
      this.finish();
      return false;
    }
    return true;
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
