import type { FastifyBaseLogger } from 'fastify';
import type { WebSocket } from 'ws';
import { CordonError, type ErrorCode } from '../errors';
import { isVisible, mayWatch } from '../domain/entitlement';
import type { RegionRegistry } from '../domain/regions';
import type { AlertContent, Token } from '../domain/types';
import type { AuditLog } from '../ports/audit-log';
import type { RegionLog } from '../ports/region-log';
import {
  CLOSE,
  errorFrame,
  gapFrame,
  parseClientFrame,
  subscribedFrame,
  type AckFrame,
  type AlertFilter,
  type FromPosition,
  type SubscribeFrame,
  type UnsubscribeFrame,
  wsTextFrame,
} from './frames';
import type { Delivery, FeedListener, Hub, StreamMetrics } from './hub';
import { recoveryStep, resumePoint } from './recovery';
import type { AckDedup } from './ack-dedup';
import { onReceiverError, rawSocket, senderBusy } from './ws-internals';
import type { FlushScheduler } from './flush-scheduler';

export { FlushScheduler } from './flush-scheduler';

/**
 * One desk's WebSocket session (contract §9): its subscriptions, its bounded outbound queue and
 * its client frames. Frames queue in order (control frames and alerts alike) and are written to
 * the socket once per event-loop turn under cork, so the kernel sees one write per turn per desk.
 */

export interface SessionLimits {
  maxQueueBytes: number;
  maxQueueFrames: number;
  maxFrameBytes: number;
  maxFramesPerS: number;
  /** entries per log read during a recovery */
  replayBatch: number;
  /** a recovery waiting this long for the desk to take its data closes it with 4002 */
  stallMs: number;
}

export interface SessionDeps {
  hub: Hub;
  regionLog: RegionLog;
  regions: RegionRegistry;
  audit: AuditLog;
  metrics: StreamMetrics;
  scheduler: FlushScheduler;
  limits: SessionLimits;
  log: FastifyBaseLogger;
  now: () => number;
  /** acks already recorded, per desk (src/ws/ack-dedup.ts) */
  acks: AckDedup;
}

const MAX_TIMER_MS = 2 ** 31 - 1;
const WS_OPEN = 1;

export class DeskSession {
  readonly actor: string;
  private readonly subs = new Map<string, Subscription>();
  /** complete WebSocket frames (wsTextFrame), written to the socket as they are */
  private queue: Buffer[] = [];
  private queuedBytes = 0;
  private scheduled = false;
  private waitingDrain = false;
  private closed = false;
  private waiters: Array<(ok: boolean) => void> = [];
  private stallTimer: NodeJS.Timeout | undefined;
  private expiryTimer: NodeJS.Timeout | undefined;
  private windowStart = 0;
  private framesInWindow = 0;
  /** Called once when the session ends, whatever ended it. */
  onEnd: (() => void) | undefined;

  constructor(
    readonly ws: WebSocket,
    readonly token: Token,
    private readonly deps: SessionDeps,
  ) {
    this.actor = `${token.iss}/${token.sub}`;
  }

  start(): void {
    const { ws } = this;
    ws.on('message', (data, isBinary) => this.onMessage(data as Buffer, isBinary));
    ws.on('close', () => this.dispose());
    ws.on('error', () => this.dispose());
    // Oversized or broken frames: ws would close with 1009/1002; the contract says 4500.
    onReceiverError(ws, () => this.close(CLOSE.PROTOCOL_VIOLATION, 'protocol violation'));
    this.armExpiry();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Closes the session with a contract close code (§9). Queued frames not yet written are dropped. */
  close(code: number, reason: string): void {
    if (this.closed) return;
    this.dispose();
    try {
      this.ws.close(code, reason);
    } catch {
      this.ws.terminate();
    }
  }

  private closeSlow(): void {
    if (this.closed) return;
    this.deps.metrics.slowCloses.inc();
    this.deps.log.info({ actor: this.actor }, 'desk too slow; closed with 4002');
    this.close(CLOSE.TOO_SLOW, 'too slow');
  }

  private dispose(): void {
    if (this.closed) return;
    this.closed = true;
    for (const sub of this.subs.values()) sub.stop();
    this.subs.clear();
    this.queue = [];
    this.queuedBytes = 0;
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    if (this.stallTimer) clearTimeout(this.stallTimer);
    this.resolveWaiters(false);
    this.onEnd?.();
  }

  private armExpiry(): void {
    const ms = this.token.exp * 1000 - this.deps.now();
    if (ms <= 0) {
      this.close(CLOSE.UNAUTHORISED, 'token expired');
      return;
    }
    this.expiryTimer = setTimeout(() => this.armExpiry(), Math.min(ms, MAX_TIMER_MS));
    this.expiryTimer.unref();
  }

  // ---- outbound queue ------------------------------------------------------------------------

  /** Queues a frame; false (and the session closed with 4002) when the queue bound is reached. */
  private enqueue(frame: Buffer): boolean {
    if (this.closed) return false;
    const bytes = frame.length;
    const { maxQueueBytes, maxQueueFrames } = this.deps.limits;
    if (this.queue.length >= maxQueueFrames || this.queuedBytes + bytes + this.ws.bufferedAmount > maxQueueBytes) {
      this.closeSlow();
      return false;
    }
    this.queue.push(frame);
    this.queuedBytes += bytes;
    if (!this.scheduled && !this.waitingDrain) {
      this.scheduled = true;
      this.deps.scheduler.schedule(this);
    }
    return true;
  }

  /** Queues a control frame (subscribed, gap, error): JSON text, framed here. */
  enqueueText(json: string): boolean {
    return this.enqueue(wsTextFrame(json));
  }

  enqueueAlert(d: Delivery): boolean {
    if (!this.enqueue(d.frame)) return false;
    this.deps.scheduler.delivered++;
    return true;
  }

  /** How full the queue is, 0..1, by the stricter of the two bounds. */
  get fill(): number {
    const { maxQueueBytes, maxQueueFrames } = this.deps.limits;
    return Math.max(this.queue.length / maxQueueFrames, (this.queuedBytes + this.ws.bufferedAmount) / maxQueueBytes);
  }

  /**
   * Writes everything queued straight to the socket: the frames are complete WebSocket frames
   * (ws would only re-frame them per send), and a batch every desk shares is joined once per
   * flush, so a desk costs one write. Waits for 'drain' when the socket asks for it.
   */
  flush(): void {
    this.scheduled = false;
    if (this.closed) return;
    const sock = rawSocket(this.ws);
    if (sock?.writableNeedDrain) {
      if (!this.waitingDrain) {
        this.waitingDrain = true;
        sock.once('drain', () => {
          this.waitingDrain = false;
          this.flush();
        });
      }
      return;
    }
    const frames = this.queue;
    if (frames.length > 0) {
      if (senderBusy(this.ws)) {
        // ws holds frames of its own (never with compression off): keep the order, try next turn.
        this.flushSoon();
        return;
      }
      this.queue = [];
      this.queuedBytes = 0;
      // Like ws.send once closing (close frame sent) or closed: the frames are dropped.
      if (this.ws.readyState === WS_OPEN && sock && !sock.destroyed) {
        if (frames.length === 1) sock.write(frames[0]);
        else sock.write(this.deps.scheduler.joined(frames));
      }
    }
    if (!sock?.writableNeedDrain) this.resolveWaiters(true);
    else if (this.waiters.length > 0) this.flushSoon();
  }

  private flushSoon(): void {
    if (!this.scheduled) {
      this.scheduled = true;
      this.deps.scheduler.schedule(this);
    }
  }

  /**
   * Resolves once everything queued has been handed to a socket that is not asking for 'drain'
   * (true), or the session ended (false). A desk that takes nothing for stallMs is closed with 4002.
   */
  writable(): Promise<boolean> {
    if (this.closed) return Promise.resolve(false);
    const p = new Promise<boolean>((resolve) => this.waiters.push(resolve));
    if (!this.stallTimer) {
      this.stallTimer = setTimeout(() => {
        this.stallTimer = undefined;
        if (this.waiters.length > 0) this.closeSlow();
      }, this.deps.limits.stallMs);
      this.stallTimer.unref();
    }
    this.flushSoon();
    return p;
  }

  private resolveWaiters(ok: boolean): void {
    if (this.stallTimer) {
      clearTimeout(this.stallTimer);
      this.stallTimer = undefined;
    }
    if (this.waiters.length === 0) return;
    const w = this.waiters;
    this.waiters = [];
    for (const resolve of w) resolve(ok);
  }

  sendError(code: ErrorCode, message: string): void {
    this.enqueueText(errorFrame(code, message));
  }

  // ---- client frames -------------------------------------------------------------------------

  private onMessage(data: Buffer, isBinary: boolean): void {
    if (this.closed) return;
    const now = Date.now();
    if (now - this.windowStart >= 1000) {
      this.windowStart = now;
      this.framesInWindow = 0;
    }
    if (++this.framesInWindow > this.deps.limits.maxFramesPerS) {
      this.close(CLOSE.PROTOCOL_VIOLATION, 'too many frames');
      return;
    }
    if (isBinary) {
      this.sendError('STREAM_FRAME_MALFORMED', 'frames must be JSON text');
      return;
    }
    try {
      const frame = parseClientFrame(data, this.deps.limits.maxFrameBytes);
      if (frame.type === 'subscribe') this.onSubscribe(frame);
      else if (frame.type === 'unsubscribe') this.onUnsubscribe(frame);
      else void this.onAck(frame);
    } catch (err) {
      if (err instanceof CordonError) this.sendError(err.code, err.message);
      else {
        this.deps.log.error({ err, actor: this.actor }, 'stream frame handling failed');
        this.sendError('INTERNAL', 'An internal error occurred');
      }
    }
  }

  private onSubscribe(f: SubscribeFrame): void {
    // All or nothing: a frame naming one bad region subscribes none.
    for (const code of f.regions) {
      const region = this.deps.regions.get(code);
      if (!region) throw new CordonError('REGION_NOT_FOUND', `unknown region ${code}`);
      if (!mayWatch(this.token, region)) throw new CordonError('STREAM_REGION_FORBIDDEN', `this token may not watch ${code}`);
      if (this.subs.has(code)) throw new CordonError('STREAM_ALREADY_SUBSCRIBED', `already subscribed to ${code}; unsubscribe first`);
    }
    for (const code of f.regions) {
      const sub = new Subscription(this, code, f.filter, this.deps);
      this.subs.set(code, sub);
      sub.begin(f.from?.[code]);
    }
  }

  private onUnsubscribe(f: UnsubscribeFrame): void {
    for (const code of f.regions) {
      if (!this.deps.regions.has(code)) throw new CordonError('REGION_NOT_FOUND', `unknown region ${code}`);
    }
    for (const code of f.regions) {
      this.subs.get(code)?.stop();
      this.subs.delete(code);
    }
  }

  /** A subscription ended on its own (position ahead, log unreachable): forget it. */
  dropSubscription(sub: Subscription): void {
    if (this.subs.get(sub.region) === sub) this.subs.delete(sub.region);
    sub.stop();
  }

  private async onAck(f: AckFrame): Promise<void> {
    const unknown = (): void => this.sendError('STREAM_ACK_UNKNOWN', `no alert at ${f.region} seq ${f.seq} for this desk`);
    const region = this.deps.regions.get(f.region);
    if (!region) return this.sendError('REGION_NOT_FOUND', `unknown region ${f.region}`);
    // Out of scope answers exactly as not existing (contract §6.6).
    if (!mayWatch(this.token, region)) return unknown();
    try {
      let found: { id: string; modified: string; epoch: string; key: AlertContent } | undefined = this.deps.hub.recent(f.region, f.seq);
      if (!found) {
        const read = await this.deps.regionLog.read(f.region, f.seq - 1, 1);
        const e = read.entries[0];
        if (e && e.seq === f.seq) {
          const content = (JSON.parse(e.body) as { content: AlertContent }).content;
          found = { id: content.id, modified: content.modified, epoch: e.epoch, key: content };
        }
      }
      if (!found || !isVisible(this.token, found.key)) return unknown();
      // One record per desk and position, however many sessions or repeats (issue 8 item 8).
      const position = { region: f.region, seq: f.seq, epoch: found.epoch };
      if (!this.deps.acks.claim(this.actor, position)) return;
      try {
        await this.deps.audit.append({
          kind: 'ack',
          actor: this.actor,
          region: f.region,
          seq: f.seq,
          epoch: found.epoch,
          id: found.id,
          modified: found.modified,
          // Audit visibility (contract §7 v1.1): the issuing state's ops read who received its alerts.
          issuer_state: found.key.issuer.state,
        });
      } catch (err) {
        this.deps.acks.release(this.actor, position);
        throw err;
      }
    } catch (err) {
      this.deps.log.warn({ err, region: f.region, seq: f.seq }, 'ack not recorded');
      this.sendError('LOG_UNAVAILABLE', 'the ack could not be recorded; send it again');
    }
  }

  // ---- tests and benches ----------------------------------------------------------------------

  subscriptions(): string[] {
    return [...this.subs.keys()];
  }
}

const yieldTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * One region of one session. Live: takes the hub's deliveries in seq order, dropping what it
 * already has. Recovering: buffers them while it pages the log from its position to the top,
 * merges the two by seq and goes live at the edge. Any break in the live sequence (a seq ahead,
 * an epoch change) sends it back to recovery: the log is the truth.
 */
class Subscription implements FeedListener {
  private mode: 'recovering' | 'live' | 'stopped' = 'recovering';
  private buffer: Delivery[] = [];
  private epoch: string | null = null;
  /** the next seq this desk expects in this region */
  private next = 1;
  private readonly urgency: readonly string[] | undefined;
  private readonly category: readonly string[] | undefined;
  /** the hub's mark of this watch: log reads it shares must be issued after it */
  private since = 0;

  constructor(
    private readonly session: DeskSession,
    readonly region: string,
    filter: AlertFilter | undefined,
    private readonly deps: SessionDeps,
  ) {
    this.urgency = filter?.urgency;
    this.category = filter?.category;
  }

  /** Subscribes: buffer live alerts from now, then recover from `from` (or from the top). */
  begin(from: FromPosition | undefined): void {
    this.since = this.deps.hub.watch(this);
    void this.recover(from, true);
  }

  stop(): void {
    if (this.mode === 'stopped') return;
    this.mode = 'stopped';
    this.buffer = [];
    this.deps.hub.unwatch(this);
  }

  offer(d: Delivery): void {
    if (this.mode === 'live') {
      if (d.seq === this.next && (d.epoch === this.epoch || this.epoch === null)) {
        this.epoch = d.epoch;
        this.next = d.seq + 1;
        if (this.accepts(d)) this.session.enqueueAlert(d);
      } else if (d.seq > this.next || (this.epoch !== null && d.epoch !== this.epoch)) {
        this.buffer = [d];
        this.resync();
      }
      // else: seq < next, already delivered
    } else if (this.mode === 'recovering') {
      // Bounded: beyond it the buffer is dropped and the log (which holds everything) takes over.
      if (this.buffer.length >= this.deps.limits.maxQueueFrames) this.buffer = [];
      this.buffer.push(d);
    }
  }

  logLost(): void {
    if (this.stopped) return;
    this.session.close(CLOSE.LOG_UNREACHABLE, 'region log unreachable from this node; resume on another');
  }

  resync(): void {
    if (this.mode !== 'live') return;
    this.mode = 'recovering';
    void this.recover(this.next > 1 ? { seq: this.next - 1, epoch: this.epoch ?? undefined } : { seq: 0 }, false);
  }

  private accepts(d: Delivery): boolean {
    const k = d.key;
    if (this.urgency && !this.urgency.includes(k.urgency)) return false;
    if (this.category && !this.category.includes(k.category)) return false;
    return isVisible(this.session.token, k);
  }

  private get stopped(): boolean {
    return this.mode === 'stopped' || this.session.isClosed;
  }

  private async recover(from: FromPosition | undefined, initial: boolean): Promise<void> {
    const { hub, metrics, limits } = this.deps;
    try {
      const state = await hub.readState(this.region, this.since);
      if (this.stopped) return;
      const start = resumePoint(this.region, from, state);
      if (start.kind === 'ahead') {
        this.session.sendError(
          'STREAM_POSITION_AHEAD',
          `${this.region}: seq ${from?.seq} is beyond the newest seq ${start.latest}; subscribe again without from, or with the epoch you hold`,
        );
        this.session.dropSubscription(this);
        return;
      }
      if (start.gap) {
        this.session.enqueueText(gapFrame(start.gap));
        metrics.gaps.inc({ reason: start.gap.reason });
      }
      if (initial) {
        this.session.enqueueText(subscribedFrame(this.region, state.epoch, state.latest, start.recovered));
        if (from) metrics.resumes.inc({ recovered: String(start.recovered) });
      }
      this.epoch = state.epoch;
      this.next = start.next;

      let read = true;
      for (;;) {
        let page: readonly Delivery[] = [];
        let atTop = false;
        if (read) {
          const { read: r, page: shared } = await hub.readPage(this.region, this.next - 1, limits.replayBatch, this.since);
          if (this.stopped) return;
          // History may have been trimmed, or the log replaced, while we paged.
          const at = resumePoint(this.region, { seq: this.next - 1, epoch: this.epoch ?? undefined }, r);
          if (at.kind === 'ahead') {
            this.session.sendError('STREAM_POSITION_AHEAD', `${this.region}: the log no longer holds seq ${this.next - 1}; subscribe again`);
            this.session.dropSubscription(this);
            return;
          }
          this.epoch = r.epoch;
          if (at.gap) {
            this.session.enqueueText(gapFrame(at.gap));
            metrics.gaps.inc({ reason: at.gap.reason });
            this.next = at.next;
            if (at.gap.reason === 'epoch-changed') continue; // read the new log from its start
          }
          page = shared;
          atTop = r.entries.length < limits.replayBatch;
        }
        const step = recoveryStep(this.next, this.epoch, page, atTop, this.buffer);
        this.buffer = step.buffer;
        for (const d of step.deliver) {
          this.next = d.seq + 1;
          if (this.accepts(d) && !this.session.enqueueAlert(d)) return;
          // Keep well inside the queue bound: let the desk take what it has before queueing more.
          if (this.session.fill > 0.5 && !(await this.session.writable())) return;
          if (this.stopped) return;
        }
        if (step.live && this.buffer.length === 0) {
          this.mode = 'live';
          hub.wentLive(this.region, this.next, this.epoch);
          return;
        }
        read = !step.live;
        // Page by page, never stalling the node: the desk takes each page before the next is read.
        if (this.session.fill > 0) {
          if (!(await this.session.writable())) return;
        } else {
          await yieldTurn();
        }
        if (this.stopped) return;
      }
    } catch (err) {
      if (this.stopped) return;
      this.deps.log.warn({ err, region: this.region }, 'stream recovery failed');
      this.session.sendError('LOG_UNAVAILABLE', `${this.region}: the region log is unreachable; subscribe again from your last seq`);
      this.session.dropSubscription(this);
    }
  }
}
