import { Readable } from 'node:stream';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import type { AppContext } from '../app';
import { CordonError } from '../errors';
import { isVisible, isVisibleKey, mayWatch } from '../domain/entitlement';
import type { AlertContent, Token } from '../domain/types';
import {
  deliveredJson,
  type LogEntry,
  type RawLogEntry,
  type RawReadResult,
  type ReadResult,
  type RegionLog,
  type RegionState,
} from '../ports/region-log';
import { authenticate } from './auth';
import { negotiate, parseQuery, purposeOf, recordReplay, unavailable } from './ops';

/**
 * History for desks and ops (contract §8): keyset pages of a region log, an NDJSON export of it,
 * and one alert's versions. Items are delivered alerts built around the stored body (never
 * re-serialised). Entitlement is decided from the visibility key stored beside each body; only
 * entries without one (written before it existed) have the needed members parsed from the body.
 */

interface ReplayQuery {
  after?: number;
  limit: number;
  since?: string;
  epoch?: string;
  purpose?: string;
}

interface AlertQuery {
  versions: 'latest' | 'all';
  purpose?: string;
}

export const NDJSON_TYPE = 'application/x-ndjson; charset=utf-8';
const JSON_TYPE = 'application/json; charset=utf-8';
const ALERT_ID = /^alert--[0-9a-f]{8}-[0-9a-f]{4}-[47][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
/**
 * A page stops after this many reads even short of `limit`, so one request over a long run of
 * alerts the caller may not see stays bounded; `next` lets the caller carry on.
 */
const MAX_READS_PER_PAGE = 100;

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
 * each key is decided once; an entry without a usable key decodes its body and takes the view.
 */
export class RawVisibility {
  private readonly byKey = new Map<string, boolean>();

  constructor(private readonly token: Token) {}

  visible(e: RawLogEntry): boolean {
    const key = e.visibility;
    if (key !== undefined) {
      let v = this.byKey.get(key);
      if (v === undefined) {
        v = isVisibleKey(this.token, key);
        if (v !== undefined) {
          if (this.byKey.size >= MAX_CACHED_KEYS) this.byKey.clear();
          this.byKey.set(key, v);
        }
      }
      if (v !== undefined) return v;
    }
    return isVisible(this.token, entitlementView(e.body.toString('utf8')) as AlertContent);
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

/** One page of a region log as text (`read`) or as bytes (`readRaw`). */
type Page = ReadResult | RawReadResult;
/** Reads the page after a seq: `read` or `readRaw` of one region. */
type PageFetch<R extends Page> = (after: number, limit: number) => Promise<R>;

/**
 * Reads one region log forward in bounded batches and never skips: a hole (history trimmed under
 * the reader, or before the position asked for) or a change of epoch is a HISTORY_TRIMMED error.
 */
class LogReader<R extends Page> {
  /** the last seq read (or the position asked for, before the first read). */
  cursor: number;
  /** the position the reading really started after, once first() has run. */
  start = 0;
  private epoch: string | null = null;

  constructor(
    private readonly page: PageFetch<R>,
    private readonly from: { after: number; fromOldest?: boolean; sinceSeq?: number; epoch?: string },
  ) {
    this.cursor = from.after;
  }

  async first(limit: number): Promise<R> {
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

  async read(limit: number): Promise<R> {
    const r = await this.fetch(limit);
    if (this.epoch !== null && r.epoch !== this.epoch) {
      throw historyTrimmed(r, 'The region log was replaced (new epoch) while it was being read; start again from earliest');
    }
    this.epoch ??= r.epoch;
    if (this.hasGap(r)) throw historyTrimmed(r, `History after seq ${this.cursor} was trimmed while it was being read`);
    this.advance(r);
    return r;
  }

  private async fetch(limit: number): Promise<R> {
    try {
      return await this.page(this.cursor, limit);
    } catch (err) {
      return unavailable(err);
    }
  }

  private hasGap(r: R): boolean {
    const want = this.cursor + 1;
    return want <= r.latest && (r.entries.length === 0 || r.entries[0].seq !== want);
  }

  private advance(r: R): void {
    if (r.entries.length > 0) this.cursor = r.entries[r.entries.length - 1].seq;
  }
}

/** Where reading starts: `after`, the first alert at or after `since`, or the oldest held. */
async function startOf<R extends Page>(log: RegionLog, region: string, q: ReplayQuery, page: PageFetch<R>): Promise<LogReader<R>> {
  if (q.since === undefined) {
    return new LogReader(page, { after: q.after ?? 0, fromOldest: q.after === undefined, epoch: q.epoch });
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
    return new LogReader(page, { after: before.latest, epoch: q.epoch });
  }
  return new LogReader(page, { after: seq - 1, sinceSeq: seq, epoch: q.epoch });
}

/** The JSON page (contract §8), concatenated from the stored bodies. */
async function readPage(
  reader: LogReader<ReadResult>,
  token: Token,
  limit: number,
  batch: number,
): Promise<{ body: string; from: number; to: number; count: number; epoch: string | null }> {
  let r = await reader.first(Math.min(limit, batch));
  const epoch = r.epoch;
  let examined = reader.start;
  const items: string[] = [];
  let batches = 1;
  for (;;) {
    for (const e of r.entries) {
      examined = e.seq;
      if (visibleEntry(token, e)) {
        items.push(deliveredJson(e));
        if (items.length === limit) break;
      }
    }
    if (items.length === limit || examined >= r.latest || batches >= MAX_READS_PER_PAGE) break;
    r = await reader.read(batch);
    batches++;
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
  bound(e: RawLogEntry): number {
    return this.head.length + this.mid.length + 6 * e.receivedAt.length + e.body.length + 40;
  }

  /** Writes the line of `e` at `at` (room: `bound(e)`); returns the bytes written. */
  write(buf: Buffer, at: number, e: RawLogEntry): number {
    buf.set(this.head, at);
    let o = at + this.head.length;
    o += buf.write(String(e.seq), o, 'latin1');
    buf.set(this.mid, o);
    o += this.mid.length;
    const t = e.receivedAt;
    if (PLAIN.test(t)) {
      // What JSON.stringify gives for a string with nothing to escape (always, for received_at).
      buf[o++] = 0x22;
      o += buf.write(t, o, 'latin1');
      buf[o++] = 0x22;
    } else {
      o += buf.write(JSON.stringify(t), o, 'utf8');
    }
    buf.set(e.body, o);
    buf[o] = 0x2c;
    o += Math.max(1, e.body.length);
    buf[o++] = 0x0a;
    return o - at;
  }
}

/** Printable ASCII without `"` and `\\`: JSON.stringify only adds the quotes. */
const PLAIN = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

const CHUNK_BYTES = 256 * 1024;

/** NDJSON lines packed into chunk buffers of about CHUNK_BYTES each. */
class LineChunks {
  private buf: Buffer | undefined;
  private used = 0;

  constructor(private readonly lines: DeliveredLines) {}

  /** Adds a line; returns the previous chunk when it had no room left for this one. */
  add(e: RawLogEntry): Buffer | undefined {
    const need = this.lines.bound(e);
    let full: Buffer | undefined;
    if (this.buf && this.used + need > this.buf.length) full = this.take();
    this.buf ??= Buffer.allocUnsafe(Math.max(CHUNK_BYTES, need));
    this.used += this.lines.write(this.buf, this.used, e);
    return full;
  }

  take(): Buffer | undefined {
    const out = this.buf && this.used > 0 ? this.buf.subarray(0, this.used) : undefined;
    this.buf = undefined;
    this.used = 0;
    return out;
  }
}

/**
 * What the export may hold ready beyond the socket's own buffer: enough that the next batch is
 * read and encoded while the last one drains, little enough that a million alerts never sit in
 * memory.
 */
const STREAM_HIGH_WATER_BYTES = 1024 * 1024;

/**
 * Every visible alert from the first read to `top`, one per line. The stream pulls chunks only
 * while less than STREAM_HIGH_WATER_BYTES waits for the socket, and the next batch is read from
 * the log while the current one is encoded. A hole met mid-stream ends the response without its
 * terminating chunk, so a client sees an incomplete export, never a silent gap.
 */
async function* ndjsonChunks(
  reader: LogReader<RawReadResult>,
  first: RawReadResult,
  top: number,
  token: Token,
  batch: number,
  ctx: AppContext,
  log: FastifyBaseLogger,
): AsyncGenerator<Buffer> {
  const lines = new LineChunks(new DeliveredLines(first.region, first.epoch ?? ''));
  const visibility = new RawVisibility(token);
  let r = first;
  let count = 0;
  let complete = false;
  try {
    for (;;) {
      const ahead = reader.cursor < top ? reader.read(batch) : undefined;
      // Observed below; this only keeps a client leaving early from leaving a rejection unhandled.
      ahead?.catch(() => undefined);
      const entries: (RawLogEntry | undefined)[] = r.entries;
      for (let i = 0; i < entries.length; i++) {
        const e = entries[i]!;
        // Drop each entry once written: held by the batch, bodies would outlive the next scavenge
        // and be promoted, and the old generation (RSS) would grow with the export.
        entries[i] = undefined;
        if (e.seq > top) break;
        if (visibility.visible(e)) {
          count++;
          const full = lines.add(e);
          if (full) yield full;
        }
      }
      if (!ahead) break;
      if (ctx.shuttingDown.value) throw new CordonError('SHUTTING_DOWN', 'This node is shutting down; resume on another node');
      r = await ahead;
    }
    const last = lines.take();
    if (last) yield last;
    complete = true;
  } finally {
    log.info({ region: first.region, from: reader.start + 1, to: top, count, complete }, 'replay stream ended');
  }
}

export async function replayRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  const batch = ctx.config.replayBatch;

  app.get<{ Params: { region: string } }>('/v1/regions/:region/alerts', async (request, reply) => {
    const token = authenticate(request, ctx.trust, ctx.now());
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
    if (format === 'json') {
      const reader = await startOf(log, region.code, q, (after, limit) => log.read(region.code, after, limit));
      const page = await readPage(reader, token, q.limit, batch);
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

    const reader = await startOf(log, region.code, q, (after, limit) => log.readRaw(region.code, after, limit));
    // Errors up to the first read still answer as problems; the top is fixed now.
    const first = await reader.first(batch);
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
    const chunks = ndjsonChunks(reader, first, top, token, batch, ctx, request.log);
    return reply
      .type(NDJSON_TYPE)
      .header('cache-control', 'no-store')
      .header('cordon-epoch', first.epoch ?? '')
      .header('cordon-earliest', String(effectiveEarliest(first)))
      .header('cordon-latest', String(top))
      .header('cordon-after', String(reader.start))
      .send(Readable.from(chunks, { objectMode: false, highWaterMark: STREAM_HIGH_WATER_BYTES }));
  });

  app.get<{ Params: { id: string } }>('/v1/alerts/:id', async (request, reply) => {
    const token = authenticate(request, ctx.trust, ctx.now());
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
