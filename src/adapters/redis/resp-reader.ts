import type { RawEntryView } from '../../ports/region-log';

/**
 * The RESP side of the raw export scan (raw-scan.ts holds the socket): a reader fed bytes, in
 * whatever pieces they arrive, that parses the replies it was told to expect and reports each to
 * its handler, as nats.js's protocol parser does. It owns one read buffer, reused: bytes land at
 * `fill` (either read straight into `readInto()` or copied in by `feed()`), and a stream entry is
 * handed out as a view into that buffer, so parsing allocates nothing per entry.
 *
 * Replies it knows: `ok` (a simple string, AUTH and SELECT), `bulk` (a bulk string or null, HGET)
 * and `entries` (an XRANGE reply: an array of `[id, [field, value, ...]]`, whose fields `at`, `k`
 * and `b` fill the view). A reply of another type (a Redis error) or malformed bytes throw.
 */

/** A reply the reader is told to expect, in the order the commands were sent. */
export type ReplyKind = 'ok' | 'bulk' | 'entries';

export interface RespHandler {
  /** a simple-string reply (`+OK`) */
  ok(): void;
  /** a bulk-string reply at buf[start, end); start -1 for a null bulk. False stops reading. */
  bulk(buf: Buffer, start: number, end: number): boolean;
  /** an `entries` reply begins: n entries follow */
  entriesStart(n: number): void;
  /** one entry, as a view valid until the next call. False stops reading. */
  entry(view: RawEntryView): boolean;
  /** the `entries` reply is complete. False stops reading. */
  entriesEnd(): boolean;
}

/** The read buffer starts here and doubles while an entry does not fit. */
export const INITIAL_BUFFER = 256 * 1024;

const CR = 0x0d;
const LF = 0x0a;

export class RespReader {
  private buf: Buffer;
  /** parse position and end of the bytes read, in buf */
  private pos = 0;
  private fill = 0;
  private readonly expected: ReplyKind[] = [];
  /** entries left in the `entries` reply being parsed; -1 before its header */
  private left = -1;
  private stopped = false;
  readonly view: RawEntryView;

  constructor(
    private readonly handler: RespHandler,
    initialBuffer = INITIAL_BUFFER,
  ) {
    this.buf = Buffer.allocUnsafe(initialBuffer);
    this.view = { seq: 0, buf: this.buf, atStart: 0, atEnd: 0, visStart: -1, visEnd: -1, bodyStart: 0, bodyEnd: 0 };
  }

  /** Expects one more reply, after those already expected. */
  expect(kind: ReplyKind): void {
    this.expected.push(kind);
  }

  /** Replies expected and not yet complete. */
  get pending(): number {
    return this.expected.length;
  }

  /** Free room of at least `min` bytes after what was read, for a read straight into it (then `written(n)`). */
  readInto(min: number): Buffer {
    this.room(min);
    return this.buf.subarray(this.fill);
  }

  /** n bytes were read into `readInto()`'s buffer: parses what is complete. */
  written(n: number): void {
    this.fill += n;
    this.parse();
  }

  /** Copies a chunk in and parses what is complete. */
  feed(chunk: Buffer): void {
    this.room(chunk.length);
    chunk.copy(this.buf, this.fill);
    this.written(chunk.length);
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

  /** Reports every complete reply; stops for good once the handler returns false. */
  private parse(): void {
    const { handler } = this;
    while (!this.stopped && this.expected.length > 0) {
      const kind = this.expected[0];
      if (kind === 'ok') {
        const eol = this.lineEnd(this.pos);
        if (eol < 0) return;
        if (this.buf[this.pos] !== 0x2b /* + */) throw this.replyError(eol);
        this.pos = eol + 2;
        this.expected.shift();
        handler.ok();
      } else if (kind === 'bulk') {
        const b = this.pos;
        if (b >= this.fill) return;
        if (this.buf[b] !== 0x24 /* $ */) throw this.replyError(this.lineEnd(b));
        const len = this.int(b + 1);
        if (len === undefined) return;
        const dataStart = this.intEnd + 2;
        const end = len < 0 ? dataStart : dataStart + len + 2;
        if (end > this.fill) return;
        this.pos = end;
        this.expected.shift();
        if (!handler.bulk(this.buf, len < 0 ? -1 : dataStart, len < 0 ? -1 : dataStart + len)) this.stopped = true;
      } else {
        if (this.left < 0) {
          const b = this.pos;
          if (b >= this.fill) return;
          if (this.buf[b] !== 0x2a /* * */) throw this.replyError(this.lineEnd(b));
          const n = this.int(b + 1);
          if (n === undefined) return;
          this.pos = this.intEnd + 2;
          this.left = Math.max(0, n);
          handler.entriesStart(this.left);
        }
        while (this.left > 0) {
          const end = this.entry(this.pos);
          if (end < 0) return;
          this.pos = end;
          this.left--;
          if (!handler.entry(this.view)) {
            this.stopped = true;
            return;
          }
        }
        this.left = -1;
        this.expected.shift();
        if (!handler.entriesEnd()) this.stopped = true;
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
}
