import { canonicalize } from '../../src/domain/jcs';
import type { DeliveredAlert } from '../../src/domain/types';
import { getJson, request } from './api';
import { b64Bytes, checkInclusion, equal, leafHash, openCheckpoint, parseVkey, type LogKey } from './tlog-check';

/**
 * "In log" in the browser: each alert's inclusion in its region's transparency log (RFC 6962
 * Merkle tree, C2SP signed checkpoints), checked with WebCrypto like the signature. The checkpoint
 * is verified with the log key of GET /v1/trust (`log.vkey`, Ed25519), cached per region and
 * fetched again at most once a second while alerts wait beyond it; the alert's inclusion proof is
 * checked against it with the leaf recomputed from the alert as received (RFC 8785 of
 * `{ region, seq, epoch, received_at, content, sig }`), with the checks of ./tlog-check.
 */

export type InLogState = 'included' | 'pending' | 'not-included';

export interface InLogResult {
  state: InLogState;
  /** the signed tree size the proof was checked against */
  size?: number;
}

interface Held {
  epoch: string;
  size: number;
  root: Uint8Array;
}

type Waiter = { alert: DeliveredAlert; done: (r: InLogResult) => void };

/**
 * Checks alerts as they arrive; those beyond the latest checkpoint wait and are checked again in
 * one batch about once a second (one checkpoint per region and round, one proof per alert).
 */
export class LogChecker {
  private readonly key: Promise<LogKey | null>;
  private readonly checkpoints = new Map<string, Held | 'bad'>();
  private readonly fetchedAt = new Map<string, number>();
  private readonly inflight = new Map<string, Promise<Held | 'bad' | undefined>>();
  private readonly waiting = new Map<string, Waiter>();
  private timer: ReturnType<typeof setInterval> | undefined;
  private running = false;

  constructor(
    private readonly token: string,
    vkey: string,
    private readonly intervalMs = 1000,
  ) {
    this.key = parseVkey(vkey).catch(() => null);
  }

  /** Reports the alert's state now, and again once when a pending one is settled. */
  watch(alert: DeliveredAlert, report: (r: InLogResult) => void): void {
    void this.check(alert, false).then((r) => {
      report(r);
      if (r.state === 'pending') {
        this.waiting.set(`${alert.region}:${alert.epoch}:${alert.seq}`, { alert, done: report });
        this.timer ??= setInterval(() => void this.round(), this.intervalMs);
      }
    });
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    this.waiting.clear();
  }

  private async round(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      const list = [...this.waiting.entries()].sort((a, b) => a[1].alert.seq - b[1].alert.seq);
      const refreshed = new Set<string>();
      for (const [k, w] of list) {
        const fresh = !refreshed.has(w.alert.region);
        refreshed.add(w.alert.region);
        const r = await this.check(w.alert, fresh);
        if (r.state === 'pending') continue;
        this.waiting.delete(k);
        w.done(r);
      }
    } finally {
      this.running = false;
      if (this.waiting.size === 0 && this.timer !== undefined) {
        clearInterval(this.timer);
        this.timer = undefined;
      }
    }
  }

  private checkpoint(region: string, refresh: boolean): Promise<Held | 'bad' | undefined> {
    // Alerts checked at once (history after a load) share one fetch.
    const pending = this.inflight.get(region);
    if (pending) return pending;
    const held = this.checkpoints.get(region);
    const age = Date.now() - (this.fetchedAt.get(region) ?? 0);
    if (held && (!refresh || age < this.intervalMs)) return Promise.resolve(held);
    if (!held && age < this.intervalMs) return Promise.resolve(undefined);
    const p = this.fetchCheckpoint(region, held).finally(() => this.inflight.delete(region));
    this.inflight.set(region, p);
    return p;
  }

  private async fetchCheckpoint(region: string, held: Held | 'bad' | undefined): Promise<Held | 'bad' | undefined> {
    this.fetchedAt.set(region, Date.now());
    const key = await this.key;
    if (!key) return 'bad';
    let note: string;
    try {
      note = await (await request(`/v1/regions/${encodeURIComponent(region)}/log/checkpoint`, { token: this.token, accept: 'text/plain' })).text();
    } catch {
      return held; // no checkpoint yet, or the log is out of reach: stay pending
    }
    const cp = await openCheckpoint(note, key);
    if (!cp) {
      this.checkpoints.set(region, 'bad');
      return 'bad';
    }
    const next = { epoch: cp.origin.split('/').pop() ?? '', size: cp.size, root: cp.root };
    // Never back to a smaller tree of the same epoch (a lagging node).
    if (held && held !== 'bad' && held.epoch === next.epoch && held.size > next.size) return held;
    this.checkpoints.set(region, next);
    return next;
  }

  private async check(a: DeliveredAlert, refresh: boolean): Promise<InLogResult> {
    const held = this.checkpoints.get(a.region);
    const beyond = !held || held === 'bad' || held.epoch !== a.epoch || a.seq > held.size;
    const cp = await this.checkpoint(a.region, refresh || beyond);
    if (cp === 'bad') return { state: 'not-included' }; // a checkpoint the log key did not sign
    if (!cp || cp.epoch !== a.epoch || a.seq > cp.size) return { state: 'pending' };
    let proof: Uint8Array[];
    let servedRoot: Uint8Array | null;
    try {
      const p = await getJson<{ proof: string[]; root?: string }>(`/v1/regions/${encodeURIComponent(a.region)}/log/proof?seq=${a.seq}&size=${cp.size}`, {
        token: this.token,
      });
      const decoded = p.proof.map(b64Bytes);
      if (decoded.some((x) => x === null)) return { state: 'not-included', size: cp.size };
      proof = decoded as Uint8Array[];
      servedRoot = b64Bytes(p.root ?? '');
    } catch {
      return { state: 'pending' };
    }
    if (!servedRoot || !equal(servedRoot, cp.root)) {
      // Another tree answered: a new epoch since the checkpoint (this alert's tree is no longer
      // served: it stays pending), or a fork (the check below fails).
      const now = await this.fetchCheckpoint(a.region, cp);
      if (now && now !== 'bad' && now.epoch !== a.epoch) return { state: 'pending' };
    }
    const leaf = await leafHash(canonicalize({ region: a.region, seq: a.seq, epoch: a.epoch, received_at: a.received_at, content: a.content, sig: a.sig }));
    const ok = await checkInclusion(proof, cp.size, cp.root, a.seq - 1, leaf);
    return { state: ok ? 'included' : 'not-included', size: cp.size };
  }
}
