import type { ServerResponse } from 'node:http';
import type { FastifyBaseLogger } from 'fastify';
import { CordonError } from '../errors';
import { RawVisibility, visibleEntry } from '../domain/entitlement-view';
import type { Token } from '../domain/types';
import { deliveredJson, LogUnavailableError, type RawEntryView, type RawScanSink, type ReadResult, type RegionLog } from '../ports/region-log';
import type { LogReader } from './replay-log-reader';

/**
 * The NDJSON export of a region's history (GET /v1/regions/:region/alerts with
 * `Accept: application/x-ndjson`): lines written straight from the stored bytes, packed into a few
 * reused chunks, under the socket's backpressure. The route is in src/http/replay.ts.
 */

export const NDJSON_TYPE = 'application/x-ndjson; charset=utf-8';

/**
 * The NDJSON lines of one export: `deliveredJson(entry) + "\n"` written straight from the stored
 * bytes. Decoding each body into a string and encoding it back cost most of an export's CPU; here
 * the constant parts of a line are encoded once and nothing per line is allocated. The stored body
 * starts with its own `{`, which becomes the `,` after received_at.
 */
export class DeliveredLines {
  /** `{"region":R,"seq":` */
  private readonly head: Buffer;
  /** `,"epoch":E,"received_at":` */
  private readonly mid: Buffer;

  /** `epoch` as `read` reports it in entries (`''` for a log without one). */
  constructor(region: string, epoch: string) {
    this.head = Buffer.from(`{"region":${JSON.stringify(region)},"seq":`, 'utf8');
    this.mid = Buffer.from(`,"epoch":${JSON.stringify(epoch)},"received_at":`, 'utf8');
  }

  /** Upper bound of the bytes `write` takes for `e`. */
  bound(e: RawEntryView): number {
    return this.head.length + this.mid.length + 6 * (e.atEnd - e.atStart) + (e.bodyEnd - e.bodyStart) + 40;
  }

  /** Writes the line of `e` at `at` (room: `bound(e)`); returns the bytes written. */
  write(buf: Buffer, at: number, e: RawEntryView): number {
    buf.set(this.head, at);
    let o = at + this.head.length;
    o += buf.write(String(e.seq), o, 'latin1');
    buf.set(this.mid, o);
    o += this.mid.length;
    if (plain(e.buf, e.atStart, e.atEnd)) {
      // What JSON.stringify gives for a string with nothing to escape (always, for received_at).
      buf[o++] = 0x22;
      o += e.buf.copy(buf, o, e.atStart, e.atEnd);
      buf[o++] = 0x22;
    } else {
      o += buf.write(JSON.stringify(e.buf.toString('utf8', e.atStart, e.atEnd)), o, 'utf8');
    }
    const bodyLen = e.bodyEnd - e.bodyStart;
    e.buf.copy(buf, o, e.bodyStart, e.bodyEnd);
    buf[o] = 0x2c;
    o += Math.max(1, bodyLen);
    buf[o++] = 0x0a;
    return o - at;
  }
}

/** Printable ASCII without `"` and `\\` only: JSON.stringify would just add the quotes. */
function plain(buf: Buffer, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    const c = buf[i];
    if (c < 0x20 || c > 0x7e || c === 0x22 || c === 0x5c) return false;
  }
  return true;
}

const CHUNK_BYTES = 256 * 1024;
/** Written chunks kept for reuse: an export never has more than a few in flight. */
const POOLED_CHUNKS = 4;

/**
 * An export's NDJSON lines packed into chunks of about CHUNK_BYTES, written to the response as they
 * fill. A chunk comes back for reuse when the socket is done with it, so a long export reuses the
 * same few buffers instead of leaving a trail of them for the garbage collector (the node's RSS
 * would grow with the export).
 */
class ExportWriter implements RawScanSink {
  count = 0;
  private buf: Buffer | undefined;
  private used = 0;
  private readonly pool: Buffer[] = [];
  private blocked = false;
  private gone: Error | undefined;

  constructor(
    private readonly res: ServerResponse,
    private readonly lines: DeliveredLines,
    private readonly visibility: RawVisibility,
    private readonly shuttingDown: { value: boolean },
  ) {
    res.once('close', () => {
      if (!res.writableFinished) this.gone ??= new Error('the client went away');
    });
  }

  entry(e: RawEntryView): void {
    if (this.gone || !this.visibility.visible(e)) return;
    this.count++;
    const need = this.lines.bound(e);
    if (this.buf && this.used + need > this.buf.length) this.send();
    this.buf ??= this.chunk(need);
    this.used += this.lines.write(this.buf, this.used, e);
  }

  /** A line built elsewhere (the first entry, read as text). */
  text(line: string): void {
    this.count++;
    this.send();
    this.res.write(line);
  }

  flush(): Promise<void> | undefined {
    if (this.shuttingDown.value) this.gone ??= new CordonError('SHUTTING_DOWN', 'This node is shutting down; resume on another node');
    if (this.gone) return Promise.reject(this.gone);
    if (!this.blocked) return undefined;
    return new Promise<void>((resolve, reject) => {
      const done = () => {
        this.res.off('drain', done);
        this.res.off('close', done);
        this.blocked = false;
        if (this.gone) reject(this.gone);
        else resolve();
      };
      this.res.on('drain', done);
      this.res.on('close', done);
    });
  }

  /** Writes the chunk being filled, if any. */
  send(): void {
    const full = this.buf;
    if (!full || this.used === 0) return;
    this.buf = undefined;
    const n = this.used;
    this.used = 0;
    const ok = this.res.write(full.subarray(0, n), () => {
      if (this.pool.length < POOLED_CHUNKS && full.length === CHUNK_BYTES) this.pool.push(full);
    });
    if (!ok) this.blocked = true;
  }

  private chunk(need: number): Buffer {
    if (need <= CHUNK_BYTES) return this.pool.pop() ?? Buffer.allocUnsafe(CHUNK_BYTES);
    return Buffer.allocUnsafe(need);
  }
}

/**
 * Every visible alert after the reader's start up to `top`, one per line, as the response body:
 * the first read (already made, as text) and then a raw scan of the log under the socket's
 * backpressure. A hole met mid-stream (history trimmed under the reader, another epoch) or a
 * failure ends the response without its terminating chunk, so a client sees an incomplete export,
 * never a silent gap.
 */
export async function streamExport(
  res: ServerResponse,
  log: RegionLog,
  reader: LogReader,
  first: ReadResult,
  top: number,
  token: Token,
  batch: number,
  shuttingDown: { value: boolean },
  logger: FastifyBaseLogger,
): Promise<void> {
  const epoch = first.epoch ?? '';
  const writer = new ExportWriter(res, new DeliveredLines(first.region, epoch), new RawVisibility(token), shuttingDown);
  let complete = false;
  let last = reader.start;
  try {
    for (const e of first.entries) {
      if (e.seq > top) break;
      if (visibleEntry(token, e)) writer.text(deliveredJson(e) + '\n');
      last = e.seq;
    }
    if (last < top) last = await log.scanRaw({ region: first.region, epoch, after: last, top, batch }, writer);
    writer.send();
    complete = last >= top;
    if (!complete) logger.warn({ region: first.region, at: last, top }, 'replay stream ended early: history trimmed or replaced while read');
  } catch (err) {
    if (err instanceof LogUnavailableError) logger.warn({ err, region: first.region, at: last }, 'replay stream failed: region log unavailable');
    else logger.info({ reason: (err as Error).message, region: first.region, at: last }, 'replay stream stopped');
  } finally {
    logger.info({ region: first.region, from: reader.start + 1, to: top, count: writer.count, complete }, 'replay stream ended');
  }
  if (complete) res.end();
  else res.destroy();
}
