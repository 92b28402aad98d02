import type { FastifyBaseLogger } from 'fastify';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { AlertContent } from '../domain/types';
import { deliveredJson, type LogEntry, type ReadResult, type RegionLog, type RegionState } from '../ports/region-log';
import { alertFrame, wsTextFrame } from './frames';
import { firstHeld } from './recovery';

/**
 * The hub: this node's side of fan-out (design notes "The log: append and publish", receiving
 * side). Every node receives every delivered alert from the bus; per watched region the hub keeps
 * the last seq it delivered and hands alerts to local subscriptions strictly in seq order. The bus
 * is only the doorbell: a seq that jumps ahead makes the hub read the missing range from the
 * region log first, and a periodic position check finds a lost last message. Regions nobody on
 * this node watches cost nothing but a prefix match per message.
 */

/** One delivered alert as the hub hands it to subscriptions: parsed once per node. */
export interface Delivery {
  region: string;
  seq: number;
  epoch: string;
  /** the `alert` frame as complete WebSocket frame bytes, built once per alert and shared by every session */
  frame: Buffer;
  /** the fields entitlement and filters read (isVisible takes it as AlertContent) */
  key: AlertContent;
  id: string;
  modified: string;
}

/** A page of a region log with its entries as deliveries (shared, read-only). */
export interface LogPage {
  read: ReadResult;
  page: readonly Delivery[];
}

/** A subscription of one desk session to one region. */
export interface FeedListener {
  readonly region: string;
  /** Called in seq order for every alert of the region the hub delivers. */
  offer(d: Delivery): void;
  /** The region's epoch changed under it: recover from the log (announcing the gap). */
  resync(): void;
}

export interface StreamMetrics {
  desks: Gauge;
  deliveries: Counter;
  resumes: Counter<'recovered'>;
  gaps: Counter<'reason'>;
  slowCloses: Counter;
  regionLag: Gauge<'region'>;
  repairs: Counter<'region'>;
}

/**
 * The stream's metrics on the app's registry. A metric already registered there (two apps built
 * on one registry) is reused rather than registered twice.
 */
export function createStreamMetrics(registry: Registry): StreamMetrics {
  const registers = [registry];
  const once = <M>(name: string, make: () => M): M => (registry.getSingleMetric(name) as M | undefined) ?? make();
  return {
    desks: once('cordon_ws_desks', () => new Gauge({ name: 'cordon_ws_desks', help: 'Desk sessions connected to this node', registers })),
    deliveries: once(
      'cordon_ws_deliveries_total',
      () => new Counter({ name: 'cordon_ws_deliveries_total', help: 'Alert frames queued to desks (live and replayed)', registers }),
    ),
    resumes: once(
      'cordon_ws_resumes_total',
      () =>
        new Counter({
          name: 'cordon_ws_resumes_total',
          help: 'Subscriptions with a from position, by whether everything after it was delivered without a gap',
          labelNames: ['recovered'] as const,
          registers,
        }),
    ),
    gaps: once(
      'cordon_ws_gaps_total',
      () => new Counter({ name: 'cordon_ws_gaps_total', help: 'gap frames sent, by reason', labelNames: ['reason'] as const, registers }),
    ),
    slowCloses: once(
      'cordon_ws_slow_closes_total',
      () => new Counter({ name: 'cordon_ws_slow_closes_total', help: 'Desks closed with 4002 because their queue was full', registers }),
    ),
    regionLag: once(
      'cordon_ws_region_lag',
      () =>
        new Gauge({
          name: 'cordon_ws_region_lag',
          help: "Per watched region: the log's newest seq minus the seq this node last delivered",
          labelNames: ['region'] as const,
          registers,
        }),
    ),
    repairs: once(
      'cordon_ws_repairs_total',
      () =>
        new Counter({
          name: 'cordon_ws_repairs_total',
          help: 'Alerts the hub read from the region log because the bus skipped or lost them',
          labelNames: ['region'] as const,
          registers,
        }),
    ),
  };
}

export interface HubOptions {
  regionLog: RegionLog;
  log: FastifyBaseLogger;
  metrics: StreamMetrics;
  /** entries per log read (config wsReplayBatch) */
  batch: number;
  /** config positionCheckMs */
  positionCheckMs: number;
  /** alerts the bus may deliver ahead of a catch-up before the hub drops them and relies on the log */
  maxPending?: number;
  /** recent deliveries kept per watched region (ack look-ups, replay reuse) */
  recent?: number;
}

/** `{"region":"KG-CN-01",...`: every delivered alert starts so (deliveredJson builds it). */
const REGION_PREFIX = /^\{"region":"([^"\\]{1,32})"/;

const yieldTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export class Hub {
  readonly opts: Required<HubOptions>;
  private readonly feeds = new Map<string, Feed>();
  private timer: NodeJS.Timeout | undefined;
  private checking = false;
  /** orders watches and log reads: see `shared` */
  private tick = 0;
  private readonly inflight = new Map<string, { at: number; p: Promise<unknown> }>();

  constructor(opts: HubOptions) {
    this.opts = { maxPending: 10_000, recent: 256, ...opts };
  }

  /** Starts the periodic position check. */
  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.checkPositions(), this.opts.positionCheckMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** The bus handler: one delivered alert (JSON text) of any region. */
  onDelivered(json: string): void {
    const m = REGION_PREFIX.exec(json);
    if (m && !this.feeds.has(m[1])) return; // nobody here watches it
    const d = parseDelivered(json);
    if (!d) {
      this.opts.log.warn({ bytes: json.length }, 'bus message is not a delivered alert; ignored');
      return;
    }
    this.feeds.get(d.region)?.receive(d);
  }

  /** Starts delivering the region to `l`; returns its mark for readState / readPage. */
  watch(l: FeedListener): number {
    let feed = this.feeds.get(l.region);
    if (!feed) {
      feed = new Feed(l.region, this);
      this.feeds.set(l.region, feed);
    }
    feed.listeners.add(l);
    return ++this.tick;
  }

  /** The region log's state, shared with concurrent callers (see `shared`). */
  readState(region: string, since: number): Promise<RegionState> {
    return this.shared(`s\0${region}`, since, () => this.opts.regionLog.state(region));
  }

  /**
   * Entries after `after` as deliveries, one Redis read and one parse shared by every recovery
   * asking for the same page at the same time (a resume storm: every desk missed the same range).
   */
  readPage(region: string, after: number, limit: number, since: number): Promise<LogPage> {
    return this.shared(`r\0${region}\0${after}\0${limit}`, since, async () => {
      const read = await this.opts.regionLog.read(region, after, limit);
      return { read, page: read.entries.map((e) => this.fromEntry(e)) };
    });
  }

  /**
   * Single flight: joins a read of the same key already in flight, but only one issued after the
   * caller's watch (`since`). Such a read reaches the log after everything the hub delivered
   * before the watch was appended, so it is as fresh as the caller's own would be; an older one
   * could miss an alert delivered just before the watch and never buffered.
   */
  private shared<T>(key: string, since: number, make: () => Promise<T>): Promise<T> {
    const f = this.inflight.get(key);
    if (f && f.at > since) return f.p as Promise<T>;
    const entry = { at: ++this.tick, p: make() };
    this.inflight.set(key, entry);
    const done = (): void => {
      if (this.inflight.get(key) === entry) this.inflight.delete(key);
    };
    entry.p.then(done, done);
    return entry.p;
  }

  unwatch(l: FeedListener): void {
    const feed = this.feeds.get(l.region);
    if (!feed || !feed.listeners.delete(l)) return;
    if (feed.listeners.size === 0) {
      this.feeds.delete(l.region);
      feed.closed = true;
      this.opts.metrics.regionLag.remove(l.region);
    }
  }

  /**
   * A subscription finished its recovery at `next` (everything before is in the log): a feed that
   * has delivered nothing yet starts there; one on another epoch checks the log.
   */
  wentLive(region: string, next: number, epoch: string | null): void {
    const feed = this.feeds.get(region);
    if (!feed) return;
    if (feed.last < 0) {
      // An empty region (epoch null) starts at 0 too, so the position check can find a lost first alert.
      feed.epoch = epoch;
      feed.last = next - 1;
      feed.drainPending();
    } else if (epoch !== null && feed.epoch !== epoch) {
      void feed.check();
    }
  }

  /** A recent delivery of the region's current epoch, if this node still holds it. */
  recent(region: string, seq: number): Delivery | undefined {
    return this.feeds.get(region)?.recentAt(seq);
  }

  /** A log entry as a Delivery, reusing the one the hub already built when it is recent. */
  fromEntry(e: LogEntry): Delivery {
    const feed = this.feeds.get(e.region);
    const cached = feed?.cachedAt(e.seq, e.epoch);
    if (cached) return cached;
    const body = JSON.parse(e.body) as { content: AlertContent };
    const d = makeDelivery(e.region, e.seq, e.epoch, body.content, deliveredJson(e));
    // The next recoveries reading the same history reuse it (an entry never changes in its epoch).
    feed?.remember(d);
    return d;
  }

  /** Compares each watched region's delivered position with its log's top; repairs what is missing. */
  async checkPositions(): Promise<void> {
    if (this.checking) return;
    this.checking = true;
    try {
      await Promise.all([...this.feeds.values()].map((f) => f.check()));
    } finally {
      this.checking = false;
    }
  }

  /** For tests and benches: the seq this node last delivered in `region` (-1: not yet known). */
  position(region: string): { seq: number; epoch: string | null } | undefined {
    const f = this.feeds.get(region);
    return f ? { seq: f.last, epoch: f.epoch } : undefined;
  }
}

/** One watched region on this node. */
class Feed {
  epoch: string | null = null;
  /** the last seq delivered to listeners; -1 until known */
  last = -1;
  readonly listeners = new Set<FeedListener>();
  closed = false;
  private readonly pending = new Map<number, Delivery>();
  private busy = false;
  private checking = false;
  private readonly ring: (Delivery | undefined)[];

  constructor(
    readonly region: string,
    private readonly hub: Hub,
  ) {
    this.ring = new Array<Delivery | undefined>(hub.opts.recent);
  }

  receive(d: Delivery): void {
    if (this.epoch !== null && d.epoch !== this.epoch) {
      // Only the log may announce a new epoch: a late message of an old one must not flip it.
      void this.check();
      return;
    }
    if (this.last < 0) this.last = d.seq - 1;
    // The first alert of a region that was empty when it went live names the epoch.
    if (this.epoch === null) this.epoch = d.epoch;
    if (d.seq <= this.last) return; // duplicate
    if (this.busy || d.seq !== this.last + 1) {
      if (this.pending.size < this.hub.opts.maxPending) this.pending.set(d.seq, d);
      this.catchUp();
      return;
    }
    this.emit(d);
  }

  recentAt(seq: number): Delivery | undefined {
    const d = this.ring[seq % this.ring.length];
    return d && d.seq === seq && d.epoch === this.epoch ? d : undefined;
  }

  /** The delivery of (seq, epoch) if the ring holds it, whatever the feed's own epoch. */
  cachedAt(seq: number, epoch: string): Delivery | undefined {
    const d = this.ring[seq % this.ring.length];
    return d && d.seq === seq && d.epoch === epoch ? d : undefined;
  }

  /** Keeps a delivery built from the log in the ring unless the slot holds a newer one of its epoch. */
  remember(d: Delivery): void {
    if (this.epoch !== null && d.epoch !== this.epoch) return;
    const i = d.seq % this.ring.length;
    const cur = this.ring[i];
    if (cur && cur.epoch === d.epoch && cur.seq >= d.seq) return;
    this.ring[i] = d;
  }

  drainPending(): void {
    if (this.pending.size === 0) return;
    for (;;) {
      const d = this.pending.get(this.last + 1);
      if (!d) break;
      this.pending.delete(d.seq);
      this.emit(d);
    }
    for (const seq of this.pending.keys()) if (seq <= this.last) this.pending.delete(seq);
  }

  private emit(d: Delivery): void {
    this.last = d.seq;
    this.ring[d.seq % this.ring.length] = d;
    for (const l of this.listeners) l.offer(d);
  }

  /** Reads what the bus skipped from the log, in bounded pages, merging what the bus delivers meanwhile. */
  catchUp(): void {
    if (this.busy || this.closed) return;
    this.busy = true;
    void this.runCatchUp().finally(() => {
      this.busy = false;
    });
  }

  private async runCatchUp(): Promise<void> {
    const { regionLog, batch, log, metrics } = this.hub.opts;
    try {
      for (;;) {
        if (this.closed) return;
        this.drainPending();
        const read = await regionLog.read(this.region, Math.max(this.last, 0), batch);
        if (this.closed) return;
        if (read.epoch !== null && this.epoch !== null && read.epoch !== this.epoch) {
          this.applyEpoch(read);
          continue;
        }
        if (this.epoch === null) this.epoch = read.epoch;
        let repaired = 0;
        for (const e of read.entries) {
          if (e.seq <= this.last) continue;
          const d = this.pending.get(e.seq) ?? this.hub.fromEntry(e);
          if (this.pending.delete(e.seq) === false) repaired++;
          // A hole in the log is trimmed history: move on, sessions announce their own gap.
          this.emit(d);
        }
        if (repaired > 0) metrics.repairs.inc({ region: this.region }, repaired);
        this.drainPending();
        if (read.entries.length < batch) {
          // At the top as of the read; what is still pending lies beyond it and waits for the next check.
          return;
        }
        await yieldTurn();
      }
    } catch (err) {
      log.warn({ err, region: this.region }, 'catch-up from the region log failed; the position check retries');
    }
  }

  /** The log says the region has a new epoch: start over at its oldest entry and make every listener recover. */
  private applyEpoch(state: RegionState): void {
    this.hub.opts.log.warn({ region: this.region, from: this.epoch, to: state.epoch }, 'region log epoch changed');
    this.epoch = state.epoch;
    this.last = firstHeld(state) - 1;
    this.pending.clear();
    this.ring.fill(undefined);
    for (const l of this.listeners) l.resync();
  }

  /** The position check of this region: a lost last message, a new epoch, the lag gauge. */
  async check(): Promise<void> {
    if (this.checking || this.closed) return;
    this.checking = true;
    try {
      const state = await this.hub.opts.regionLog.state(this.region);
      if (this.closed) return;
      this.hub.opts.metrics.regionLag.set({ region: this.region }, Math.max(0, state.latest - Math.max(this.last, 0)));
      if (state.epoch === null || this.busy) return;
      if (this.epoch !== null && state.epoch !== this.epoch) {
        this.applyEpoch(state);
        this.catchUp();
        return;
      }
      if (this.last >= 0 && state.latest > this.last) this.catchUp();
    } catch (err) {
      this.hub.opts.log.warn({ err, region: this.region }, 'position check failed');
    } finally {
      this.checking = false;
    }
  }
}

/** Parses a delivered alert from the bus; undefined when it is not one. */
export function parseDelivered(json: string): Delivery | undefined {
  let v: { region?: unknown; seq?: unknown; epoch?: unknown; content?: AlertContent };
  try {
    v = JSON.parse(json) as typeof v;
  } catch {
    return undefined;
  }
  if (v === null || typeof v !== 'object') return undefined;
  const c = v.content;
  if (
    typeof v.region !== 'string' ||
    typeof v.seq !== 'number' ||
    !Number.isSafeInteger(v.seq) ||
    v.seq < 1 ||
    typeof v.epoch !== 'string' ||
    c === null ||
    typeof c !== 'object' ||
    typeof c.issuer?.state !== 'string' ||
    !Array.isArray(c.audience?.states) ||
    typeof c.audience.min_clearance !== 'string'
  ) {
    return undefined;
  }
  return makeDelivery(v.region, v.seq, v.epoch, c, json);
}

/** Builds the shared frame and the small visibility key once per alert per node. */
export function makeDelivery(region: string, seq: number, epoch: string, content: AlertContent, delivered: string): Delivery {
  const key = {
    issuer: { state: content.issuer.state },
    audience: { states: content.audience.states, min_clearance: content.audience.min_clearance },
    region: content.region,
    urgency: content.urgency,
    category: content.category,
  } as AlertContent;
  return { region, seq, epoch, frame: wsTextFrame(alertFrame(delivered)), key, id: content.id, modified: content.modified };
}
