import type { FastifyBaseLogger } from 'fastify';
import { Counter, Gauge, type Registry } from 'prom-client';
import { METRICS } from '../metric-names';
import type { AlertContent } from '../domain/types';
import type { Doorbell } from '../ports/bus';
import { deliveredJson, type LogEntry, type ReadResult, type RegionLog, type RegionState } from '../ports/region-log';
import { alertFrame, wsTextFrame } from './frames';
import { firstHeld } from './recovery';

/**
 * The hub: this node's side of fan-out (design notes "The doorbell, strictly"). The bus is only a
 * doorbell: a message on a region's alert subject tells the hub that the region grew, nothing
 * more. Per watched region the hub keeps the last seq it delivered and reads what follows from the
 * region log, one read per burst (doorbells that ring while a read is in flight coalesce into the
 * next), handing the entries to local subscriptions strictly in seq order. A forged or altered bus
 * message can therefore at most make the hub read the log early. A periodic position check finds a
 * lost last doorbell, a new epoch, and a log rolled back under its epoch (which it answers by
 * rotating the epoch, so desks hear of it). Regions nobody on this node watches cost one map look-up
 * per message.
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
  /** the entry's received_at: a different one at a delivered seq means the log was rolled back */
  receivedAt: string;
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
  /** The region log has been unreachable from this node for too long: send the desk elsewhere. */
  logLost(): void;
}

export interface StreamMetrics {
  desks: Gauge;
  deliveries: Counter;
  resumes: Counter<'recovered'>;
  gaps: Counter<'reason'>;
  slowCloses: Counter;
  regionLag: Gauge<'region'>;
  deliveredFromLog: Counter<'region'>;
  rollbacks: Counter<'region'>;
}

/**
 * The stream's metrics on the app's registry. A metric already registered there (two apps built
 * on one registry) is reused rather than registered twice.
 */
export function createStreamMetrics(registry: Registry): StreamMetrics {
  const registers = [registry];
  const once = <M>(name: string, make: () => M): M => (registry.getSingleMetric(name) as M | undefined) ?? make();
  return {
    desks: once(METRICS.WS_DESKS, () => new Gauge({ name: METRICS.WS_DESKS, help: 'Desk sessions connected to this node', registers })),
    deliveries: once(
      METRICS.WS_DELIVERIES,
      () => new Counter({ name: METRICS.WS_DELIVERIES, help: 'Alert frames queued to desks (live and replayed)', registers }),
    ),
    resumes: once(
      METRICS.WS_RESUMES,
      () =>
        new Counter({
          name: METRICS.WS_RESUMES,
          help: 'Subscriptions with a from position, by whether everything after it was delivered without a gap',
          labelNames: ['recovered'] as const,
          registers,
        }),
    ),
    gaps: once(METRICS.WS_GAPS, () => new Counter({ name: METRICS.WS_GAPS, help: 'gap frames sent, by reason', labelNames: ['reason'] as const, registers })),
    slowCloses: once(
      METRICS.WS_SLOW_CLOSES,
      () => new Counter({ name: METRICS.WS_SLOW_CLOSES, help: 'Desks closed with 4002 because their queue was full', registers }),
    ),
    regionLag: once(
      METRICS.WS_REGION_LAG,
      () =>
        new Gauge({
          name: METRICS.WS_REGION_LAG,
          help: "Per watched region: the log's newest seq minus the seq this node last delivered",
          labelNames: ['region'] as const,
          registers,
        }),
    ),
    deliveredFromLog: once(
      METRICS.WS_LOG_READS,
      () =>
        new Counter({
          name: METRICS.WS_LOG_READS,
          help: "Alerts the hub read from the region log after a doorbell or position check and handed to this node's desks",
          labelNames: ['region'] as const,
          registers,
        }),
    ),
    rollbacks: once(
      METRICS.REGION_ROLLBACKS,
      () =>
        new Counter({
          name: METRICS.REGION_ROLLBACKS,
          help: 'Region logs found rolled back under their epoch (a new epoch was started)',
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
  /** recent deliveries kept per watched region (ack look-ups, replay reuse) */
  recent?: number;
  /**
   * How long the region log may stay unreachable before the hub closes this node's desks of that
   * region with a reconnect-and-resume code, so they resume on a node that can reach it.
   */
  logLostCloseMs?: number;
}

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
    this.opts = { recent: 256, logLostCloseMs: 5_000, ...opts };
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

  /** The bus handler: a region grew (perhaps up to `ring.seq`, an untrusted hint). */
  onDoorbell(ring: Doorbell): void {
    this.feeds.get(ring.region)?.ringDoorbell(ring.seq); // nobody here watches it: nothing to do
  }

  /**
   * An entry this node's own append stored (the log's answer, trusted; never a bus message): the
   * next seq of a live feed is delivered at once, anything else rings the doorbell (a log read).
   */
  onLocalAppend(entry: LogEntry): void {
    this.feeds.get(entry.region)?.localAppend(entry);
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
      // A doorbell may have rung while the first subscription read the log: look once more.
      feed.pull();
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
    const d = makeDelivery(e.region, e.seq, e.epoch, e.receivedAt, body.content, deliveredJson(e));
    // The next recoveries reading the same history reuse it (an entry never changes in its epoch).
    feed?.remember(d);
    return d;
  }

  /** Compares each watched region's delivered position with its log's top; repairs what is missing. */
  async checkPositions(): Promise<void> {
    // Before the guard: a check hanging on an unreachable log must not hide that it is unreachable.
    const now = Date.now();
    for (const f of this.feeds.values()) f.closeIfLogLost(now);
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
  /** a log read is in flight */
  private reading = false;
  /** a doorbell rang since the read in flight began: read again when it ends */
  private rung = false;
  /** a local append proved the log rolled back under this epoch (see localAppend) */
  private rollbackSeen = false;
  private checking = false;
  /** when the log last answered this feed */
  private reachedAt = Date.now();
  private readonly ring: (Delivery | undefined)[];

  constructor(
    readonly region: string,
    private readonly hub: Hub,
  ) {
    this.ring = new Array<Delivery | undefined>(hub.opts.recent);
  }

  /** A doorbell: read the log unless the hint says this node already delivered that far. */
  ringDoorbell(hint: number | undefined): void {
    if (hint !== undefined && this.last >= 0 && hint <= this.last) return;
    this.rung = true;
    this.pull();
  }

  localAppend(e: LogEntry): void {
    if (this.last > 0 && e.epoch === this.epoch && e.seq <= this.last) {
      // Delivered already: a read (another node's doorbell) overtook our append's answer. Unless
      // what was delivered at that seq is another entry: then the log was rolled back.
      const held = this.recentAt(e.seq);
      if (!held || held.receivedAt === e.receivedAt) return;
      this.rollbackSeen = true;
    }
    if (this.rollbackSeen || this.closed || this.reading || this.last < 0 || e.epoch !== this.epoch || e.seq !== this.last + 1) {
      this.rung = true;
      this.pull();
      return;
    }
    this.emit(this.hub.fromEntry(e));
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

  private emit(d: Delivery): void {
    this.last = d.seq;
    this.ring[d.seq % this.ring.length] = d;
    for (const l of this.listeners) l.offer(d);
  }

  /**
   * Reads what follows the last delivered seq from the log, in bounded pages, until the top. One
   * read at a time per region: doorbells meanwhile only mark that another read is due. Before the
   * feed is live (no subscription finished its recovery) there is nothing to read for.
   */
  pull(): void {
    if (this.reading || this.closed || this.last < 0) return;
    this.reading = true;
    this.rung = false;
    void this.runPull().finally(() => {
      this.reading = false;
      if (this.rung) this.pull();
    });
  }

  private async runPull(): Promise<void> {
    const { regionLog, batch, log, metrics } = this.hub.opts;
    try {
      for (;;) {
        if (this.closed) return;
        // From the last delivered seq itself, when there is one: its entry must still be the one
        // delivered, or the log was rolled back under its epoch.
        const from = Math.max(this.last - 1, 0);
        const limit = batch + (this.last - from);
        const read = await regionLog.read(this.region, from, limit);
        if (this.closed) return;
        this.reachedAt = Date.now();
        if (read.epoch === null) return; // still empty
        if (this.epoch !== null && read.epoch !== this.epoch) {
          this.applyEpoch(read);
          continue;
        }
        this.epoch = read.epoch;
        if (this.rolledBack(read)) {
          await this.rotate(read);
          continue;
        }
        let delivered = 0;
        for (const e of read.entries) {
          if (e.seq <= this.last) continue;
          // A hole in the log is trimmed history: move on, sessions announce their own gap.
          this.emit(this.hub.fromEntry(e));
          delivered++;
        }
        if (delivered > 0) metrics.deliveredFromLog.inc({ region: this.region }, delivered);
        if (read.entries.length < limit) {
          // At the top as of the read.
          metrics.regionLag.set({ region: this.region }, Math.max(0, read.latest - this.last));
          return;
        }
        await yieldTurn();
      }
    } catch (err) {
      log.warn({ err, region: this.region }, 'reading the region log failed; the position check retries');
    }
  }

  /**
   * The log is behind what this node delivered in the same epoch, or holds another entry at the
   * last delivered seq: it was rolled back (for example Redis restarted from an older snapshot)
   * and would reuse seqs silently.
   */
  private rolledBack(state: ReadResult): boolean {
    if (this.last <= 0 || state.epoch !== this.epoch) return false;
    if (this.rollbackSeen || state.latest < this.last) return true;
    const first = state.entries[0];
    if (!first || first.seq !== this.last) return false;
    const held = this.recentAt(this.last);
    return held !== undefined && held.receivedAt !== first.receivedAt;
  }

  /** Starts a new epoch on the log (compare-and-set: one node wins, the others see its epoch). */
  private async rotate(state: RegionState): Promise<void> {
    const { regionLog, log, metrics } = this.hub.opts;
    log.error(
      { region: this.region, epoch: state.epoch, latest: state.latest, delivered: this.last },
      'region log rolled back under its epoch; starting a new epoch so desks hear of it',
    );
    metrics.rollbacks.inc({ region: this.region });
    const now = await regionLog.rotateEpoch(this.region, state.epoch!);
    if (this.closed) return;
    this.applyEpoch(now);
  }

  /** The log says the region has a new epoch: start over at its oldest entry and make every listener recover. */
  private applyEpoch(state: RegionState): void {
    this.hub.opts.log.warn({ region: this.region, from: this.epoch, to: state.epoch }, 'region log epoch changed');
    this.epoch = state.epoch;
    this.last = firstHeld(state) - 1;
    this.rollbackSeen = false;
    this.ring.fill(undefined);
    for (const l of this.listeners) l.resync();
  }

  /**
   * The position check of this region: a lost last doorbell, a new epoch, a log rolled back under
   * its epoch (even to the very top delivered, which only the entry at `last` shows). A live feed
   * reads from its last delivered seq (runPull, which also sets the lag gauge); one not live yet
   * only reads the state for the gauge.
   */
  async check(): Promise<void> {
    if (this.checking || this.closed) return;
    if (this.last >= 0) {
      this.rung = true;
      this.pull();
      return;
    }
    this.checking = true;
    try {
      const state = await this.hub.opts.regionLog.state(this.region);
      if (this.closed) return;
      this.reachedAt = Date.now();
      this.hub.opts.metrics.regionLag.set({ region: this.region }, state.latest);
    } catch (err) {
      this.hub.opts.log.warn({ err, region: this.region }, 'position check failed');
    } finally {
      this.checking = false;
    }
  }

  /** Closes the listeners when the log has not answered for longer than the hub allows. */
  closeIfLogLost(now: number): void {
    if (this.closed || now - this.reachedAt <= this.hub.opts.logLostCloseMs) return;
    this.hub.opts.log.warn({ region: this.region, silentMs: now - this.reachedAt }, 'region log unreachable; closing its desks so they resume elsewhere');
    this.reachedAt = now; // the listeners go; a new one starts the clock again
    for (const l of [...this.listeners]) l.logLost();
  }
}

/** Builds the shared frame and the small visibility key once per alert per node. */
export function makeDelivery(region: string, seq: number, epoch: string, receivedAt: string, content: AlertContent, delivered: string): Delivery {
  const key = {
    issuer: { state: content.issuer.state },
    audience: { states: content.audience.states, min_clearance: content.audience.min_clearance },
    region: content.region,
    urgency: content.urgency,
    category: content.category,
  } as AlertContent;
  return { region, seq, epoch, frame: wsTextFrame(alertFrame(delivered)), key, id: content.id, modified: content.modified, receivedAt };
}
