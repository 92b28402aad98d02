import { fork, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import type { ConnectCommand, ParentCommand, WorkerMessage, WorkerReport } from './ws-client-worker';

/** What all workers of a pool saw since the last reset. */
export interface PoolReport {
  deliveries: number;
  outOfOrder: number;
  p50: number;
  p99: number;
  max: number;
  open: number;
  minSeq: number;
  maxSeq: number;
  closes: Record<string, number>;
  other: Record<string, number>;
  /** per desk, ms from its connect start until it held the target seq (-1: never) */
  catchUpMs: number[];
  /** CPU the workers used since the last reset (ms, summed) */
  cpuMs: number;
}

/** Percentile of a merged [ms, count] histogram. */
export function histogramPercentile(hist: Map<number, number>, p: number): number {
  const total = [...hist.values()].reduce((a, b) => a + b, 0);
  if (total === 0) return NaN;
  const rank = Math.ceil((p / 100) * total);
  let seen = 0;
  for (const ms of [...hist.keys()].sort((a, b) => a - b)) {
    seen += hist.get(ms) ?? 0;
    if (seen >= rank) return ms;
  }
  return NaN;
}

/**
 * Desks spread over several client processes (bench/lib/ws-client-worker.js), so that receiving
 * 1,000 sockets' frames does not run on one event loop. The pool tracks the lowest seq every desk
 * holds: the publisher's in-flight window is measured against it.
 */
export class DeskPool {
  private readonly progress: number[];
  private readonly delivered: number[];
  /** desks per worker: a worker without desks does not hold the window back */
  private readonly counts: number[];
  private waiters: Array<{ type: WorkerMessage['type']; left: number; got: WorkerMessage[]; resolve: (m: WorkerMessage[]) => void }> = [];
  private progressListener?: () => void;

  private constructor(private readonly workers: ChildProcess[]) {
    this.progress = workers.map(() => 0);
    this.delivered = workers.map(() => 0);
    this.counts = workers.map(() => 0);
    workers.forEach((w, i) => {
      w.on('message', (msg: WorkerMessage) => {
        if (msg.type === 'progress') {
          this.progress[i] = msg.minSeq;
          this.delivered[i] = msg.deliveries;
          this.progressListener?.();
          return;
        }
        for (const waiter of this.waiters) {
          if (waiter.type === msg.type) {
            waiter.got[i] = msg;
            if (--waiter.left === 0) {
              this.waiters = this.waiters.filter((x) => x !== waiter);
              waiter.resolve(waiter.got);
            }
            break;
          }
        }
      });
    });
  }

  static async start(count: number): Promise<DeskPool> {
    const script = resolve(__dirname, 'ws-client-worker.js');
    const workers = Array.from({ length: count }, () => fork(script, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
    await Promise.all(workers.map((w) => new Promise<void>((res) => w.once('message', () => res()))));
    return new DeskPool(workers);
  }

  get size(): number {
    return this.workers.length;
  }

  /** The lowest seq that every desk holds (per the workers' latest progress messages). */
  minSeq(): number {
    let min = Infinity;
    this.progress.forEach((p, i) => {
      if (this.counts[i] > 0 && p < min) min = p;
    });
    return min === Infinity ? 0 : min;
  }

  /** Alert frames received since the last reset (per the latest progress messages). */
  deliveries(): number {
    return this.delivered.reduce((a, b) => a + b, 0);
  }

  onProgress(listener: (() => void) | undefined): void {
    this.progressListener = listener;
  }

  private all(type: WorkerMessage['type'], cmd: (i: number) => ParentCommand): Promise<WorkerMessage[]> {
    const p = new Promise<WorkerMessage[]>((res) => this.waiters.push({ type, left: this.workers.length, got: [], resolve: res }));
    this.workers.forEach((w, i) => w.send(cmd(i)));
    return p;
  }

  /** Opens `total` desks split evenly over the workers; `perWorker` may vary the command (e.g. token). */
  async connect(
    base: Omit<ConnectCommand, 'cmd' | 'count'>,
    total: number,
    perWorker: (i: number) => Partial<ConnectCommand> = () => ({}),
  ): Promise<{ ok: number; failed: number; errors: string[]; ms: number }> {
    const n = this.workers.length;
    const share = (i: number) => Math.floor(total / n) + (i < total % n ? 1 : 0);
    this.workers.forEach((_, i) => (this.counts[i] += share(i)));
    const res = (await this.all('connected', (i) => ({ cmd: 'connect', ...base, count: share(i), ...perWorker(i) }))) as Array<
      Extract<WorkerMessage, { type: 'connected' }>
    >;
    this.progress.fill(base.fromSeq ?? 0);
    return {
      ok: res.reduce((a, r) => a + r.ok, 0),
      failed: res.reduce((a, r) => a + r.failed, 0),
      errors: res.flatMap((r) => r.errors),
      ms: Math.max(...res.map((r) => r.ms)),
    };
  }

  async reset(): Promise<void> {
    await this.all('reset', () => ({ cmd: 'reset' }));
    this.delivered.fill(0);
  }

  async report(): Promise<PoolReport> {
    const reports = (await this.all('report', () => ({ cmd: 'report' }))) as WorkerReport[];
    const hist = new Map<number, number>();
    const closes: Record<string, number> = {};
    const other: Record<string, number> = {};
    for (const r of reports) {
      for (const [ms, c] of r.latency) hist.set(ms, (hist.get(ms) ?? 0) + c);
      for (const [k, v] of Object.entries(r.closes)) closes[k] = (closes[k] ?? 0) + v;
      for (const [k, v] of Object.entries(r.other)) other[k] = (other[k] ?? 0) + v;
    }
    const maxMs = hist.size ? Math.max(...hist.keys()) : NaN;
    return {
      deliveries: reports.reduce((a, r) => a + r.deliveries, 0),
      outOfOrder: reports.reduce((a, r) => a + r.outOfOrder, 0),
      p50: histogramPercentile(hist, 50),
      p99: histogramPercentile(hist, 99),
      max: maxMs,
      open: reports.reduce((a, r) => a + r.open, 0),
      minSeq: Math.min(...reports.map((r) => (r.open ? r.minSeq : Infinity))),
      maxSeq: Math.max(...reports.map((r) => r.maxSeq)),
      closes,
      other,
      catchUpMs: reports.flatMap((r) => r.catchUpMs),
      cpuMs: reports.reduce((a, r) => a + r.cpuMs, 0),
    };
  }

  /** Closes every desk and ends the workers. */
  async close(): Promise<void> {
    await Promise.race([this.all('closed', () => ({ cmd: 'close' })), new Promise((r) => setTimeout(r, 3000))]);
    await Promise.all(
      this.workers.map(
        (w) =>
          new Promise<void>((res) => {
            if (w.exitCode !== null || w.signalCode !== null) return res();
            w.once('exit', () => res());
            setTimeout(() => {
              w.kill('SIGKILL');
              res();
            }, 2000).unref();
          }),
      ),
    );
  }
}
