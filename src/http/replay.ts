import type { ServerResponse } from 'node:http';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import type { AppContext } from '../app';
import { CordonError } from '../errors';
import { isVisible, isVisibleKey, mayWatch } from '../domain/entitlement';
import type { AlertContent, Token } from '../domain/types';
import type * as S from '../types/generated/schemas';
import {
  deliveredJson,
  LogUnavailableError,
  type LogEntry,
  type RawEntryView,
  type RawScanSink,
  type ReadResult,
  type RegionLog,
  type RegionState,
} from '../ports/region-log';
import { authenticate } from './auth';
import { negotiate, parseQuery, purposeOf, recordReplay, unavailable } from './ops';
import { tokenRateLimit } from './token-rate-limit';

/**
 * History for desks and ops (contract §8): keyset pages of a region log, an NDJSON export of it,
 * and one alert's versions. Items are delivered alerts built around the stored body (never
 * re-serialised). Entitlement is decided from the visibility key stored beside each body; only
 * entries without one (written before it existed) have the needed members parsed from the body.
 */

/** The query schemas' defaults are filled in by the validator (parseQuery). */
type ReplayQuery = S.ReplayQuery & Required<Pick<S.ReplayQuery, 'limit'>>;
type AlertQuery = S.AlertQuery & Required<Pick<S.AlertQuery, 'versions'>>;

export const NDJSON_TYPE = 'application/x-ndjson; charset=utf-8';
const JSON_TYPE = 'application/json; charset=utf-8';
const ALERT_ID = /^alert--[0-9a-f]{8}-[0-9a-f]{4}-[47][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** The oldest seq held, or latest + 1 when nothing is held: the held range is [earliest, latest]. */
export function effectiveEarliest(s: RegionState): number {
  return s.earliest > 0 ? s.earliest : s.latest + 1;
}

function historyTrimmed(s: RegionState, detail: string): CordonError {
  return new CordonError('HISTORY_TRIMMED', detail, { extra: { earliest: effectiveEarliest(s), epoch: s.epoch } });
}

function visibleEntry(token: Token, e: LogEntry): boolean {
  return isVisible(token, entitlementView(e.body) as AlertContent);
}

/** Distinct keys seen per request before the cache starts over (a region has few audiences). */
const MAX_CACHED_KEYS = 1024;

/**
 * Visibility of raw entries for one token. An export meets the same few keys over and over, so
 * each key is decided once, and a run of entries with the key of the entry before costs one byte
 * comparison; an entry without a usable key decodes its body and takes the view.
 */
export class RawVisibility {
  private readonly byKey = new Map<string, boolean>();
  /** the key of the last entry decided by key, and its answer */
  private lastKey = Buffer.alloc(0);
  private lastVisible: boolean | undefined;

  constructor(private readonly token: Token) {}

  visible(e: RawEntryView): boolean {
    if (e.visStart >= 0) {
      const len = e.visEnd - e.visStart;
      if (this.lastVisible !== undefined && len === this.lastKey.length && e.buf.compare(this.lastKey, 0, len, e.visStart, e.visEnd) === 0) {
        return this.lastVisible;
      }
      const key = e.buf.toString('utf8', e.visStart, e.visEnd);
      let v = this.byKey.get(key);
      if (v === undefined) {
        v = isVisibleKey(this.token, key);
        if (v !== undefined) {
          if (this.byKey.size >= MAX_CACHED_KEYS) this.byKey.clear();
          this.byKey.set(key, v);
        }
      }
      if (v !== undefined) {
        this.lastKey = Buffer.from(key, 'utf8');
        this.lastVisible = v;
        return v;
      }
    }
    return isVisible(this.token, entitlementView(e.buf.toString('utf8', e.bodyStart, e.bodyEnd)) as AlertContent);
  }
}

/**
 * The members entitlement reads (issuer, audience, region) of a stored body, without building the
 * whole alert: on an export, parsing every body (and collecting what that leaves behind) costs
 * more than everything else the node does (measured: 25 -> 17 µs of node CPU per alert).
 * One pass walks the body string by string; outside strings the next quote always opens one, so
 * text inside strings can never pass for a key. A name counts when it occurs as a key exactly
 * once: content has all three and its schema is closed, so that one is content's own. Anything
 * else (a repeated or escaped name, an unexpected shape) takes the full parse.
 */
export function entitlementView(body: string): Pick<AlertContent, 'issuer' | 'audience' | 'region'> {
  let issuerAt = -1;
  let audienceAt = -1;
  let regionAt = -1;
  let repeated = false;
  for (let i = body.indexOf('"'); i !== -1; ) {
    const end = stringEnd(body, i);
    if (end === -1) break;
    // Only a key is followed by ':'.
    let k = skipSpace(body, end + 1);
    if (body.charCodeAt(k) === 0x3a) {
      const len = end - i - 1;
      k = skipSpace(body, k + 1);
      if (len === 6 && body.startsWith('issuer', i + 1)) {
        repeated ||= issuerAt !== -1;
        issuerAt = k;
      } else if (len === 8 && body.startsWith('audience', i + 1)) {
        repeated ||= audienceAt !== -1;
        audienceAt = k;
      } else if (len === 6 && body.startsWith('region', i + 1)) {
        repeated ||= regionAt !== -1;
        regionAt = k;
      }
    }
    i = body.indexOf('"', end + 1);
  }
  if (!repeated && issuerAt !== -1 && audienceAt !== -1 && regionAt !== -1) {
    const issuer = objectJson(body, issuerAt);
    const audience = objectJson(body, audienceAt);
    const regionEnd = body.charCodeAt(regionAt) === 0x22 ? stringEnd(body, regionAt) : -1;
    if (issuer !== undefined && audience !== undefined && regionEnd !== -1) {
      try {
        const view = {
          issuer: JSON.parse(issuer) as AlertContent['issuer'],
          audience: JSON.parse(audience) as AlertContent['audience'],
          region: JSON.parse(body.slice(regionAt, regionEnd + 1)) as string,
        };
        if (typeof view.issuer.state === 'string' && Array.isArray(view.audience.states) && typeof view.audience.min_clearance === 'string') {
          return view;
        }
      } catch {
        /* take the full parse */
      }
    }
  }
  return (JSON.parse(body) as { content: AlertContent }).content;
}

function skipSpace(text: string, i: number): number {
  let c = text.charCodeAt(i);
  while (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) c = text.charCodeAt(++i);
  return i;
}

/** Index of the quote closing the string that opens at `i` (-1 if none). */
function stringEnd(text: string, i: number): number {
  let j = text.indexOf('"', i + 1);
  for (;;) {
    if (j === -1) return -1;
    let b = j - 1;
    while (text.charCodeAt(b) === 0x5c) b--;
    // An even run of backslashes before the quote escapes only themselves.
    if ((j - 1 - b) % 2 === 0) return j;
    j = text.indexOf('"', j + 1);
  }
}

/** The JSON text of the object starting at `start`, or undefined when none starts there. */
function objectJson(text: string, start: number): string | undefined {
  if (text.charCodeAt(start) !== 0x7b) return undefined;
  let depth = 0;
  for (let k = start; k < text.length; k++) {
    const c = text.charCodeAt(k);
    if (c === 0x22) {
      k = stringEnd(text, k);
      if (k === -1) return undefined;
    } else if (c === 0x7b || c === 0x5b) {
      depth++;
    } else if ((c === 0x7d || c === 0x5d) && --depth === 0) {
      return text.slice(start, k + 1);
    }
  }
  return undefined;
}


/**
 * Reads one region log forward in bounded batches and never skips: a hole (history trimmed under
 * the reader, or before the position asked for) or a change of epoch is a HISTORY_TRIMMED error.
 */
class LogReader {
  /** the last seq read (or the position asked for, before the first read). */
  cursor: number;
  /** the position the reading really started after, once first() has run. */
  start = 0;
  private epoch: string | null = null;

  constructor(
    private readonly log: RegionLog,
    private readonly region: string,
    private readonly from: { after: number; fromOldest?: boolean; sinceSeq?: number; epoch?: string },
  ) {
    this.cursor = from.after;
  }

  async first(limit: number): Promise<ReadResult> {
    let r = await this.fetch(limit);
    const { epoch, fromOldest, sinceSeq } = this.from;
    if (epoch !== undefined && r.epoch !== epoch) {
      throw historyTrimmed(r, `The region log's epoch is now ${String(r.epoch)}; positions in epoch ${epoch} mean nothing in it`);
    }
    if (this.hasGap(r)) {
      // No position asked for: start at whatever is oldest now.
      if (fromOldest) {
        this.cursor = effectiveEarliest(r) - 1;
        r = await this.fetch(limit);
      }
      if (this.hasGap(r)) {
        throw historyTrimmed(r, `History after seq ${this.cursor} is no longer held; the oldest alert held is seq ${effectiveEarliest(r)}`);
      }
    }
    // The first alert at or after `since` is the oldest held: older ones, trimmed, may have been too.
    const earliest = effectiveEarliest(r);
    if (sinceSeq !== undefined && sinceSeq <= earliest && earliest > 1) {
      throw historyTrimmed(r, `History before seq ${earliest} is no longer held and may have been received after since`);
    }
    this.start = this.cursor;
    this.epoch = r.epoch;
    this.advance(r);
    return r;
  }

  async read(limit: number): Promise<ReadResult> {
    const r = await this.fetch(limit);
    if (this.epoch !== null && r.epoch !== this.epoch) {
      throw historyTrimmed(r, 'The region log was replaced (new epoch) while it was being read; start again from earliest');
    }
    this.epoch ??= r.epoch;
    if (this.hasGap(r)) throw historyTrimmed(r, `History after seq ${this.cursor} was trimmed while it was being read`);
    this.advance(r);
    return r;
  }

  private async fetch(limit: number): Promise<ReadResult> {
    try {
      return await this.log.read(this.region, this.cursor, limit);
    } catch (err) {
      return unavailable(err);
    }
  }

  private hasGap(r: ReadResult): boolean {
    const want = this.cursor + 1;
    return want <= r.latest && (r.entries.length === 0 || r.entries[0].seq !== want);
  }

  private advance(r: ReadResult): void {
    if (r.entries.length > 0) this.cursor = r.entries[r.entries.length - 1].seq;
  }
}

/** Where reading starts: `after`, the first alert at or after `since`, or the oldest held. */
async function startOf(log: RegionLog, region: string, q: ReplayQuery): Promise<LogReader> {
  if (q.since === undefined) {
    return new LogReader(log, region, { after: q.after ?? 0, fromOldest: q.after === undefined, epoch: q.epoch });
  }
  const sinceMs = Date.parse(q.since);
  let before: RegionState;
  let seq: number | null;
  try {
    // State first: when nothing held is at or after `since`, everything up to this latest is older.
    before = await log.state(region);
    seq = await log.seqAtOrAfter(region, sinceMs);
  } catch (err) {
    return unavailable(err);
  }
  if (seq === null) {
    if (before.earliest === 0 && before.latest > 0) {
      throw historyTrimmed(before, 'Every alert of this region was trimmed; some may have been received after since');
    }
    return new LogReader(log, region, { after: before.latest, epoch: q.epoch });
  }
  return new LogReader(log, region, { after: seq - 1, sinceSeq: seq, epoch: q.epoch });
}

/** The JSON page (contract §8), concatenated from the stored bodies. */
async function readPage(
  reader: LogReader,
  token: Token,
  limit: number,
  batch: number,
  maxExamined: number,
): Promise<{ body: string; from: number; to: number; count: number; epoch: string | null }> {
  // A page examines at most `budget` entries, even short of `limit`, so one request over a long
  // run of alerts the caller may not see stays cheap (issue 8); `next` lets the caller carry on.
  let budget = Math.max(limit, maxExamined);
  let r = await reader.first(Math.min(limit, batch, budget));
  const epoch = r.epoch;
  let examined = reader.start;
  const items: string[] = [];
  for (;;) {
    budget -= r.entries.length;
    for (const e of r.entries) {
      examined = e.seq;
      if (visibleEntry(token, e)) {
        items.push(deliveredJson(e));
        if (items.length === limit) break;
      }
    }
    if (items.length === limit || examined >= r.latest || budget <= 0 || r.entries.length === 0) break;
    r = await reader.read(Math.min(batch, budget));
  }
  const next = examined >= r.latest ? null : examined;
  const body =
    `{"region":${JSON.stringify(r.region)},"epoch":${JSON.stringify(epoch)},"items":[${items.join(',')}],` +
    `"next":${next},"earliest":${effectiveEarliest(r)},"latest":${r.latest}}`;
  return { body, from: reader.start + 1, to: examined, count: items.length, epoch };
}

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
async function streamExport(
  res: ServerResponse,
  log: RegionLog,
  reader: LogReader,
  first: ReadResult,
  top: number,
  token: Token,
  batch: number,
  ctx: AppContext,
  logger: FastifyBaseLogger,
): Promise<void> {
  const epoch = first.epoch ?? '';
  const writer = new ExportWriter(res, new DeliveredLines(first.region, epoch), new RawVisibility(token), ctx.shuttingDown);
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

export async function replayRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  const batch = ctx.config.replayBatch;
  const limitReads = await tokenRateLimit(app, 'history', ctx.config.readRateLimitMax, ctx.config.tokenRateLimitWindowMs);

  app.get<{ Params: { region: string } }>('/v1/regions/:region/alerts', async (request, reply) => {
    const token = authenticate(request, ctx.trust, ctx.now());
    await limitReads(request, reply, token);
    const format = negotiate(request.headers.accept);
    const q = parseQuery<ReplayQuery>('replay-query', request.query);
    if (q.after !== undefined && q.since !== undefined) {
      throw new CordonError('QUERY_INVALID', 'after and since exclude each other', {
        errors: [{ path: '/querystring/since', message: 'cannot be combined with after' }],
      });
    }
    if (q.since !== undefined && !Number.isFinite(Date.parse(q.since))) {
      throw new CordonError('QUERY_INVALID', 'since is not an instant', {
        errors: [{ path: '/querystring/since', message: 'must be an RFC 3339 date-time' }],
      });
    }
    const purpose = purposeOf(token, q.purpose);
    // A region outside the token's `regions` answers exactly as one that does not exist.
    const region = ctx.regions.get(request.params.region);
    if (!region || !mayWatch(token, region)) throw new CordonError('REGION_NOT_FOUND');

    const log = ctx.regionLog;
    const reader = await startOf(log, region.code, q);
    if (format === 'json') {
      const page = await readPage(reader, token, q.limit, batch, ctx.config.pageMaxExamined);
      if (purpose !== undefined) {
        await recordReplay(ctx.audit, token, purpose, {
          target: 'region',
          mode: 'page',
          region: region.code,
          epoch: page.epoch,
          from: page.from,
          to: page.to,
          count: page.count,
        });
      }
      return reply.type(JSON_TYPE).send(page.body);
    }

    // Errors up to the first read still answer as problems; the top is fixed now.
    const first = await reader.first(1);
    const top = Math.max(first.latest, reader.start);
    if (purpose !== undefined) {
      await recordReplay(ctx.audit, token, purpose, {
        target: 'region',
        mode: 'stream',
        region: region.code,
        epoch: first.epoch,
        from: reader.start + 1,
        to: top,
      });
    }
    // Written by hand: the body is streamed under the socket's own backpressure, in reused chunks.
    reply.hijack();
    reply.raw.writeHead(200, {
      'content-type': NDJSON_TYPE,
      'cache-control': 'no-store',
      'cordon-epoch': first.epoch ?? '',
      'cordon-earliest': String(effectiveEarliest(first)),
      'cordon-latest': String(top),
      'cordon-after': String(reader.start),
    });
    await streamExport(reply.raw, log, reader, first, top, token, batch, ctx, request.log);
    return reply;
  });

  app.get<{ Params: { id: string } }>('/v1/alerts/:id', async (request, reply) => {
    const token = authenticate(request, ctx.trust, ctx.now());
    await limitReads(request, reply, token);
    const q = parseQuery<AlertQuery>('alert-query', request.query);
    const purpose = purposeOf(token, q.purpose);
    const id = request.params.id;
    // Unknown, malformed and out of scope all answer the same bare 404.
    if (!ALERT_ID.test(id)) throw new CordonError('ALERT_NOT_FOUND');
    let versions: LogEntry[];
    try {
      versions = await ctx.regionLog.versions(id);
    } catch (err) {
      return unavailable(err);
    }
    const shown = versions.filter((e) => {
      const region = ctx.regions.get(e.region);
      return region !== undefined && mayWatch(token, region) && visibleEntry(token, e);
    });
    if (purpose !== undefined) {
      await recordReplay(ctx.audit, token, purpose, {
        target: 'alert',
        id,
        versions: q.versions,
        count: q.versions === 'all' ? shown.length : Math.min(1, shown.length),
        ...(shown.length > 0 ? { region: shown[0].region } : {}),
      });
    }
    if (shown.length === 0) throw new CordonError('ALERT_NOT_FOUND');
    const body =
      q.versions === 'all'
        ? `{"id":${JSON.stringify(id)},"items":[${shown.map(deliveredJson).join(',')}]}`
        : deliveredJson(shown[shown.length - 1]);
    return reply.type(JSON_TYPE).send(body);
  });
}
