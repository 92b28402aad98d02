import type { StreamMetrics } from './hub';

/** What the scheduler flushes: a desk session (src/ws/desk-session.ts) writing its queued frames. */
export interface Flushable {
  flush(): void;
}

/**
 * Coalesces every session's pending frames into one write per socket per flush. A flush runs on
 * the next turn of the event loop; when the previous flush wrote to many sockets (a busy fan-out
 * node), the next one waits until `minIntervalMs` after it, so alerts arriving one per turn still
 * share a write: the kernel call per socket is the cost, not the bytes (design notes, "Where the
 * time goes"). The wait adds at most `minIntervalMs` of latency and only under load.
 */
export class FlushScheduler {
  private dirty: Flushable[] = [];
  private scheduled = false;
  private lastRun = 0;
  private lastWidth = 0;
  private lastFrames: Buffer[] | undefined;
  private lastJoined: Buffer | undefined;
  /** alert frames queued since the last flush (the deliveries counter is bumped once per flush) */
  delivered = 0;

  constructor(
    private readonly metrics: StreamMetrics,
    readonly opts: { minIntervalMs: number; busyWidth: number } = { minIntervalMs: 10, busyWidth: 64 },
  ) {}

  schedule(s: Flushable): void {
    this.dirty.push(s);
    if (this.scheduled) return;
    this.scheduled = true;
    const wait = this.lastWidth >= this.opts.busyWidth ? this.lastRun + this.opts.minIntervalMs - Date.now() : 0;
    if (wait > 0) setTimeout(this.run, wait);
    else setImmediate(this.run);
  }

  /**
   * The frames as one buffer. Live fan-out queues the same alerts for every desk between two
   * flushes, so the previous desk's join is reused: one copy per flush, not one per desk.
   */
  joined(frames: Buffer[]): Buffer {
    const last = this.lastFrames;
    if (last !== undefined && last.length === frames.length) {
      let same = true;
      for (let i = 0; i < frames.length && same; i++) same = last[i] === frames[i];
      if (same) return this.lastJoined!;
    }
    const joined = Buffer.concat(frames);
    this.lastFrames = frames;
    this.lastJoined = joined;
    return joined;
  }

  private readonly run = (): void => {
    this.scheduled = false;
    const batch = this.dirty;
    this.dirty = [];
    this.lastRun = Date.now();
    this.lastWidth = batch.length;
    for (let i = 0; i < batch.length; i++) batch[i].flush();
    this.lastFrames = undefined;
    this.lastJoined = undefined;
    if (this.delivered > 0) {
      this.metrics.deliveries.inc(this.delivered);
      this.delivered = 0;
    }
  };
}
