import type { FastifyBaseLogger as Logger } from 'fastify';
import pino from 'pino';
import { toProblem } from '../../errors';
import { BusUnavailableError, type Bus, type BusSubscription, type Doorbell, doorbellOf, type IngestHandler, type IngestReply } from '../../ports/bus';
import { InFlight } from '../in-flight';

/**
 * The in-process bus of the embedded single-node mode. It keeps the NATS adapter's semantics so
 * the code above the port behaves the same: alerts reach every subscriber asynchronously and in
 * publish order, each ingest request is answered by exactly one responder, replies fold the status
 * into the body, and a throwing handler still answers (500, nothing internal leaked).
 *
 * Several MemoryBus instances may share one MemoryBusNetwork: each instance is then one "node"
 * (tests run two nodes in one process this way).
 */

interface AlertSubscriber {
  /** gets each message's region (its subject token) and payload */
  readonly onAlert: (region: string, deliveredJson: string) => void;
  readonly log: Logger;
  active: boolean;
}

interface Responder {
  readonly handler: IngestHandler;
  readonly inFlight: InFlight;
  readonly log: Logger;
}

export class MemoryBusNetwork {
  /** Replaced, never mutated, so a delivery loop can iterate a stable snapshot. */
  private subscribers: readonly AlertSubscriber[] = [];
  private responders: readonly Responder[] = [];
  private nextResponder = 0;
  /** region, payload, region, payload, ... */
  private pending: string[] = [];
  private scheduled = false;
  private settledWaiters: Array<() => void> = [];

  publish(region: string, deliveredJson: string): void {
    this.pending.push(region, deliveredJson);
    if (!this.scheduled) {
      this.scheduled = true;
      queueMicrotask(this.flush);
    }
  }

  /** Resolves once every alert published so far has been handed to the subscribers. */
  settled(): Promise<void> {
    if (!this.scheduled) return Promise.resolve();
    return new Promise((resolve) => this.settledWaiters.push(resolve));
  }

  addSubscriber(s: AlertSubscriber): void {
    this.subscribers = [...this.subscribers, s];
  }

  removeSubscriber(s: AlertSubscriber): void {
    s.active = false;
    this.subscribers = this.subscribers.filter((x) => x !== s);
  }

  addResponder(r: Responder): void {
    this.responders = [...this.responders, r];
  }

  removeResponder(r: Responder): void {
    this.responders = this.responders.filter((x) => x !== r);
  }

  /** Round robin, like a NATS queue group: one responder answers each request. */
  pickResponder(): Responder | undefined {
    const rs = this.responders;
    if (rs.length === 0) return undefined;
    this.nextResponder = (this.nextResponder + 1) % rs.length;
    return rs[this.nextResponder];
  }

  private readonly flush = (): void => {
    const batch = this.pending;
    this.pending = [];
    this.scheduled = false;
    const subs = this.subscribers;
    for (let i = 0; i < batch.length; i += 2) {
      const region = batch[i];
      const json = batch[i + 1];
      for (let j = 0; j < subs.length; j++) {
        const s = subs[j];
        if (!s.active) continue;
        try {
          s.onAlert(region, json);
        } catch (err) {
          // One failing subscriber must not starve the others or later alerts.
          s.log.error({ err }, 'alert subscriber failed');
        }
      }
    }
    // A subscriber may have published during the loop: then the next flush resolves the waiters.
    if (!this.scheduled && this.settledWaiters.length > 0) {
      const waiters = this.settledWaiters;
      this.settledWaiters = [];
      for (const w of waiters) w();
    }
  };
}

export interface MemoryBusOptions {
  /** Where subscriber and handler failures go; pass the app's logger (silent by default). */
  log?: Logger;
  /** Shared by the buses that should see each other; a private network by default. */
  network?: MemoryBusNetwork;
}

export class MemoryBus implements Bus {
  readonly network: MemoryBusNetwork;
  private readonly log: Logger;
  private readonly subscribers = new Set<AlertSubscriber>();
  private readonly responders = new Set<Responder>();
  private closed = false;
  private closing?: Promise<void>;

  constructor(opts: MemoryBusOptions = {}) {
    this.network = opts.network ?? new MemoryBusNetwork();
    this.log = (opts.log ?? pino({ enabled: false })).child({ component: 'bus' });
  }

  async publish(region: string, _urgency: string, deliveredJson: string): Promise<void> {
    this.assertOpen();
    this.network.publish(region, deliveredJson);
  }

  async subscribeAlerts(onAlert: (deliveredJson: string) => void): Promise<BusSubscription> {
    return this.subscribe((_region, json) => onAlert(json));
  }

  async subscribeDoorbell(onRing: (ring: Doorbell) => void): Promise<BusSubscription> {
    return this.subscribe((region, json) => {
      const ring = doorbellOf(region, json);
      if (ring) onRing(ring);
    });
  }

  private async subscribe(onAlert: AlertSubscriber['onAlert']): Promise<BusSubscription> {
    this.assertOpen();
    const s: AlertSubscriber = { onAlert, log: this.log, active: true };
    this.subscribers.add(s);
    this.network.addSubscriber(s);
    return {
      unsubscribe: async () => {
        this.subscribers.delete(s);
        this.network.removeSubscriber(s);
      },
    };
  }

  async serveIngest(handler: IngestHandler): Promise<BusSubscription> {
    this.assertOpen();
    const r: Responder = { handler, inFlight: new InFlight(), log: this.log };
    this.responders.add(r);
    this.network.addResponder(r);
    return { unsubscribe: () => this.stopResponder(r) };
  }

  async requestIngest(region: string, payload: Uint8Array, timeoutMs: number): Promise<Record<string, unknown>> {
    this.assertOpen();
    const r = this.network.pickResponder();
    if (!r) throw new BusUnavailableError('no responders');
    const answer = answerIngest(r, region, payload);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new BusUnavailableError('request timed out')), timeoutMs);
    });
    try {
      const text = await Promise.race([answer, timeout]);
      // The same bytes a NATS requester would parse, so both adapters answer identically.
      return JSON.parse(text) as Record<string, unknown>;
    } finally {
      clearTimeout(timer);
    }
  }

  async ping(): Promise<void> {
    this.assertOpen();
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.closed = true;
    // Stop taking requests and let the ones in flight answer, then deliver what was published.
    await Promise.all([...this.responders].map((r) => this.stopResponder(r)));
    await this.network.settled();
    for (const s of this.subscribers) this.network.removeSubscriber(s);
    this.subscribers.clear();
  }

  private async stopResponder(r: Responder): Promise<void> {
    this.responders.delete(r);
    this.network.removeResponder(r);
    await r.inFlight.idle();
  }

  private assertOpen(): void {
    if (this.closed) throw new BusUnavailableError('bus closed');
  }
}

/** Runs the handler and returns the reply text; never rejects, whatever the handler does. */
async function answerIngest(r: Responder, region: string, payload: Uint8Array): Promise<string> {
  r.inFlight.start();
  try {
    const reply: IngestReply = await r.handler(region, payload);
    return JSON.stringify({ ...reply.body, status: reply.status });
  } catch (err) {
    r.log.error({ err, region }, 'ingest handler failed');
    // toProblem keeps a CordonError's code and turns anything else into a bare INTERNAL 500.
    return JSON.stringify(toProblem(err));
  } finally {
    r.inFlight.end();
  }
}
