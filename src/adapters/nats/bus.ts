// nats-core is transport-node's own core (pinned by it); this tsconfig's `node` resolution cannot
// see transport-node's re-exports through the `internal` subpath.
import { readFileSync } from 'node:fs';
import { credsAuthenticator, errors, nkeyAuthenticator, type ConnectionOptions, type Msg, type NatsConnection, type Subscription } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import type { FastifyBaseLogger as Logger } from 'fastify';
import { Counter, type Registry } from 'prom-client';
import type { Config } from '../../config';
import { toProblem } from '../../errors';
import { METRICS } from '../../metric-names';
import { BusUnavailableError, type Bus, type BusSubscription, type Doorbell, doorbellOf, type IngestHandler, type IngestReply } from '../../ports/bus';
import { InFlight } from '../in-flight';

export interface NatsBusOptions {
  servers: string | string[];
  /** First subject token; `cordon` in production, unique per test. */
  subjectPrefix?: string;
  /** Queue group of the ingest responders: one node of the group answers each request. */
  queueGroup?: string;
  /** Client name shown by the NATS server's monitoring. */
  name?: string;
  log: Logger;
  /** Upper bound of close(); after it the connection is closed without waiting further. */
  drainTimeoutMs?: number;
  /** ping() rejects when the server has not answered within this time. */
  pingTimeoutMs?: number;
  reconnectTimeWaitMs?: number;
  /** How long the first connection may take (nats.js default 20 s). */
  connectTimeoutMs?: number;
  /** How this client authenticates to NATS and whether it uses TLS. */
  auth?: NatsAuth;
  /**
   * Ingest replies go only to reply subjects under `<inboxPrefix>.` (default `_INBOX`), which the
   * shipped NATS permissions reserve for requesters' inboxes; also this client's own inbox prefix.
   */
  inboxPrefix?: string;
  /** Where the adapter registers its metrics (the app's registry). */
  registry?: Registry;
}

/** NATS credentials (one method) and TLS files; see docs/configuration.md. */
export interface NatsAuth {
  user?: string;
  password?: string;
  token?: string;
  nkeySeedFile?: string;
  credsFile?: string;
  tlsCaFile?: string;
  tlsCertFile?: string;
  tlsKeyFile?: string;
}

/** The NATS login a configuration names. */
export function natsAuthOf(config: Readonly<Config>): NatsAuth {
  return {
    user: config.natsUser,
    password: config.natsPassword,
    token: config.natsToken,
    nkeySeedFile: config.natsNkeySeedFile,
    credsFile: config.natsCredsFile,
    tlsCaFile: config.natsTlsCaFile,
    tlsCertFile: config.natsTlsCertFile,
    tlsKeyFile: config.natsTlsKeyFile,
  };
}

/** true when the client authenticates itself to NATS in some way (a client certificate counts). */
export function hasNatsCredentials(auth: NatsAuth): boolean {
  return Boolean(auth.user || auth.token || auth.nkeySeedFile || auth.credsFile || auth.tlsCertFile);
}

/** The nats.js connection options for `auth`; reads the seed or creds file now, so a bad path fails at start. */
export function natsAuthOptions(auth: NatsAuth): Partial<ConnectionOptions> {
  const options: Partial<ConnectionOptions> = {};
  if (auth.user !== undefined) {
    options.user = auth.user;
    options.pass = auth.password;
  }
  if (auth.token !== undefined) options.token = auth.token;
  if (auth.nkeySeedFile !== undefined) {
    const seed = readSecretFile(auth.nkeySeedFile, 'NATS NKey seed file').toString('utf8').trim();
    options.authenticator = nkeyAuthenticator(new TextEncoder().encode(seed));
  }
  if (auth.credsFile !== undefined) {
    options.authenticator = credsAuthenticator(new Uint8Array(readSecretFile(auth.credsFile, 'NATS .creds file')));
  }
  if (auth.tlsCaFile !== undefined || auth.tlsCertFile !== undefined || auth.tlsKeyFile !== undefined) {
    // Node's TLS checks the server's name (or IP) against its certificate.
    options.tls = { caFile: auth.tlsCaFile, certFile: auth.tlsCertFile, keyFile: auth.tlsKeyFile };
  }
  return options;
}

function readSecretFile(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new BusUnavailableError(`cannot read ${what} ${path}`, { cause: err });
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * The bus over core NATS: alerts on `<prefix>.alerts.<region>.<urgency>` (every node subscribes
 * to `<prefix>.alerts.>`, no queue group), ingest requests on `<prefix>.ingest.<region>` answered
 * by one member of the queue group.
 *
 * Subscriptions use the callback form: it measured 15-20% less CPU per message than the async
 * iterator, and it queues nothing in the client, so a node that cannot keep up is cut off by the
 * server as a slow consumer (seen and logged as a disconnect; nats.js reports `slowConsumer` only
 * for iterators) instead of growing its heap. A lost alert is a performance event: the hub
 * repairs it from the region log.
 */
export class NatsBus implements Bus {
  private readonly nc: NatsConnection;
  private readonly log: Logger;
  private readonly alertsPrefix: string;
  private readonly ingestPrefix: string;
  private readonly queueGroup: string;
  private readonly replyPrefix: string;
  private readonly droppedRequests?: Counter<'reason'>;
  private droppedSinceWarning = 0;
  private lastDropWarning = 0;
  private readonly drainTimeoutMs: number;
  private readonly pingTimeoutMs: number;
  private readonly responders = new Set<Responder>();
  private readonly statusWatch: Promise<void>;
  private connected = true;
  private closing?: Promise<void>;

  static async connect(opts: NatsBusOptions): Promise<NatsBus> {
    const options: ConnectionOptions = {
      servers: opts.servers,
      name: opts.name,
      maxReconnectAttempts: -1, // reconnect forever: the hub repairs from the log meanwhile
      reconnectTimeWait: opts.reconnectTimeWaitMs ?? 1000,
      inboxPrefix: opts.inboxPrefix ?? '_INBOX',
      ...(opts.connectTimeoutMs !== undefined ? { timeout: opts.connectTimeoutMs } : {}),
      ...natsAuthOptions(opts.auth ?? {}),
    };
    let nc: NatsConnection;
    try {
      nc = (await connect(options)) as NatsConnection;
    } catch (err) {
      throw new BusUnavailableError('cannot connect to NATS', { cause: err });
    }
    return new NatsBus(nc, opts);
  }

  private constructor(nc: NatsConnection, opts: NatsBusOptions) {
    const prefix = opts.subjectPrefix ?? 'cordon';
    this.nc = nc;
    this.log = opts.log.child({ component: 'bus' });
    this.alertsPrefix = `${prefix}.alerts.`;
    this.ingestPrefix = `${prefix}.ingest.`;
    this.queueGroup = opts.queueGroup ?? 'cordon-ingest';
    this.replyPrefix = `${opts.inboxPrefix ?? '_INBOX'}.`;
    if (opts.registry) {
      this.droppedRequests =
        (opts.registry.getSingleMetric(METRICS.NATS_INGEST_DROPPED) as Counter<'reason'> | undefined) ??
        new Counter({
          name: METRICS.NATS_INGEST_DROPPED,
          help: 'NATS ingest requests dropped unprocessed, by reason (no-reply: no reply subject; reply-subject: a reply subject outside the inbox prefix)',
          labelNames: ['reason'],
          registers: [opts.registry],
        });
    }
    this.drainTimeoutMs = opts.drainTimeoutMs ?? 10_000;
    this.pingTimeoutMs = opts.pingTimeoutMs ?? 2_000;
    this.statusWatch = this.watchStatus();
    this.log.info({ server: nc.getServer() }, 'bus connected');
  }

  async publish(region: string, urgency: string, deliveredJson: string): Promise<void> {
    try {
      // While disconnected the client buffers this and sends it on reconnect.
      this.nc.publish(this.alertsPrefix + region + '.' + urgency, encoder.encode(deliveredJson));
    } catch (err) {
      throw busError(err);
    }
  }

  async subscribeAlerts(onAlert: (deliveredJson: string) => void): Promise<BusSubscription> {
    return this.subscribeFanOut('>', 'alert', (msg) => onAlert(decoder.decode(msg.data)));
  }

  async subscribeDoorbell(onRing: (ring: Doorbell) => void): Promise<BusSubscription> {
    const at = this.alertsPrefix.length;
    // Exactly <prefix>.alerts.<region>.<urgency>: the region is the subject's own token.
    return this.subscribeFanOut('*.*', 'doorbell', (msg) => {
      const ring = doorbellOf(msg.subject.slice(at, msg.subject.indexOf('.', at)), msg.data);
      if (ring) onRing(ring); // else not a region's subject: nothing to look at
    });
  }

  /** One subscription on `<prefix>.alerts.<pattern>` (no queue group) whose handler never throws into the client. */
  private async subscribeFanOut(pattern: string, what: string, onMsg: (msg: Msg) => void): Promise<BusSubscription> {
    const log = this.log;
    let sub: Subscription;
    try {
      sub = this.nc.subscribe(this.alertsPrefix + pattern, {
        callback: (err, msg) => {
          if (err) {
            log.error({ err, what }, 'fan-out subscription failed');
            return;
          }
          try {
            onMsg(msg);
          } catch (err) {
            // The parser loop calls us: an exception must not reach it.
            log.error({ err, what }, 'fan-out subscriber failed');
          }
        },
      });
    } catch (err) {
      throw busError(err);
    }
    await this.subscribed();
    let stopping: Promise<void> | undefined;
    return {
      unsubscribe: () => (stopping ??= this.drainSubscription(sub)),
    };
  }

  async serveIngest(handler: IngestHandler): Promise<BusSubscription> {
    const r = new Responder(handler, this.ingestPrefix.length, this.log);
    try {
      r.sub = this.nc.subscribe(this.ingestPrefix + '*', {
        queue: this.queueGroup,
        callback: (err, msg) => {
          if (err) {
            this.log.error({ err }, 'ingest subscription failed');
            return;
          }
          // A reply subject outside the inboxes would make this node publish, with its own
          // permissions, wherever the requester names (e.g. on the fan-out): drop, never process.
          const refused = this.refusedReply(msg.reply);
          if (refused) {
            this.dropRequest(refused, msg);
            return;
          }
          // Not awaited: each request runs as it arrives, so a slow one never delays the next.
          void r.answer(msg);
        },
      });
    } catch (err) {
      throw busError(err);
    }
    this.responders.add(r);
    await this.subscribed();
    return { unsubscribe: () => this.stopResponder(r) };
  }

  /** Why a request with this reply subject is not answered, or undefined when it is. */
  private refusedReply(reply: string | undefined): 'no-reply' | 'reply-subject' | undefined {
    if (!reply) return 'no-reply';
    if (!reply.startsWith(this.replyPrefix) || reply.length === this.replyPrefix.length) return 'reply-subject';
    // Wildcards or whitespace have no place in a subject one publishes on.
    if (/[\s*>]/.test(reply)) return 'reply-subject';
    return undefined;
  }

  private dropRequest(reason: 'no-reply' | 'reply-subject', msg: Msg): void {
    this.droppedRequests?.inc({ reason });
    this.droppedSinceWarning++;
    // Anyone allowed to publish on the ingest subjects can send these: at most one line a minute.
    const now = Date.now();
    if (now - this.lastDropWarning < 60_000) return;
    this.log.warn({ reason, subject: msg.subject, reply: msg.reply?.slice(0, 200), dropped: this.droppedSinceWarning }, 'ingest request dropped');
    this.lastDropWarning = now;
    this.droppedSinceWarning = 0;
  }

  async requestIngest(region: string, payload: Uint8Array, timeoutMs: number): Promise<Record<string, unknown>> {
    let msg: Msg;
    try {
      msg = await this.nc.request(this.ingestPrefix + region, payload, { timeout: timeoutMs });
    } catch (err) {
      throw busError(err);
    }
    try {
      return JSON.parse(decoder.decode(msg.data)) as Record<string, unknown>;
    } catch (err) {
      throw new BusUnavailableError('malformed ingest reply', { cause: err });
    }
  }

  async ping(): Promise<void> {
    if (this.nc.isClosed() || this.closing) throw new BusUnavailableError('bus closed');
    // A flush while disconnected would wait for the reconnect; readiness needs an answer now.
    if (!this.connected) throw new BusUnavailableError('bus disconnected');
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.nc.flush(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new BusUnavailableError('ping timed out')), this.pingTimeoutMs);
        }),
      ]);
    } catch (err) {
      throw busError(err);
    } finally {
      clearTimeout(timer);
    }
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), this.drainTimeoutMs);
    });
    try {
      const outcome = await Promise.race([this.drainAll(), deadline]);
      if (outcome === 'timeout') this.log.warn({ timeoutMs: this.drainTimeoutMs }, 'bus drain timed out');
    } catch (err) {
      this.log.warn({ err }, 'bus drain failed');
    } finally {
      clearTimeout(timer);
      if (!this.nc.isClosed()) await this.nc.close();
      await this.statusWatch;
    }
  }

  /** Ingest first (answer what is in flight), then the connection: subscriptions, then publishes. */
  private async drainAll(): Promise<'drained'> {
    await Promise.all([...this.responders].map((r) => this.stopResponder(r)));
    if (!this.nc.isClosed()) await this.nc.drain();
    return 'drained';
  }

  private stopResponder(r: Responder): Promise<void> {
    r.stopping ??= (async () => {
      if (r.sub) await this.drainSubscription(r.sub);
      await r.inFlight.idle();
      this.responders.delete(r);
    })();
    return r.stopping;
  }

  private async drainSubscription(sub: Subscription): Promise<void> {
    if (sub.isClosed() || this.nc.isClosed()) return;
    try {
      await sub.drain();
    } catch (err) {
      // Closed meanwhile: nothing left to drain.
      if (!this.nc.isClosed() && !sub.isClosed()) throw busError(err);
    }
  }

  /** Resolves once the server has the new subscription, so nothing published after is missed. */
  private async subscribed(): Promise<void> {
    if (!this.connected) return; // registered again on reconnect
    try {
      await this.nc.flush();
    } catch {
      // Disconnected meanwhile: the client re-subscribes on reconnect.
    }
  }

  private async watchStatus(): Promise<void> {
    try {
      await this.logStatus();
    } catch (err) {
      this.log.error({ err }, 'bus status watch failed');
    }
  }

  private async logStatus(): Promise<void> {
    const log = this.log;
    for await (const s of this.nc.status()) {
      switch (s.type) {
        case 'disconnect':
          this.connected = false;
          // Also how a slow consumer shows: the server cuts it off. The hub repairs from the log.
          log.warn({ server: s.server }, 'bus disconnected');
          break;
        case 'reconnect':
          this.connected = true;
          log.warn({ server: s.server }, 'bus reconnected');
          break;
        case 'error':
          log.error({ err: s.error }, 'bus error');
          break;
        case 'staleConnection':
          log.warn('bus connection stale');
          break;
        case 'ldm':
          log.warn({ server: s.server }, 'bus server entering lame duck mode');
          break;
        case 'close':
          this.connected = false;
          log.info('bus closed');
          break;
        default:
          break;
      }
    }
  }
}

/** One serveIngest registration: its handler and the requests it is answering. */
class Responder {
  sub?: Subscription;
  stopping?: Promise<void>;
  readonly inFlight = new InFlight();

  constructor(
    private readonly handler: IngestHandler,
    private readonly regionAt: number,
    private readonly log: Logger,
  ) {}

  /** Always replies, whatever the handler does: a gateway must never be left waiting. */
  async answer(msg: Msg): Promise<void> {
    // `*` matches exactly one token, so the rest of the subject is the region.
    const region = msg.subject.slice(this.regionAt);
    this.inFlight.start();
    let text: string;
    try {
      const reply: IngestReply = await this.handler(region, msg.data);
      text = JSON.stringify({ ...reply.body, status: reply.status });
    } catch (err) {
      this.log.error({ err, region }, 'ingest handler failed');
      // toProblem keeps a CordonError's code and turns anything else into a bare INTERNAL 500.
      text = JSON.stringify(toProblem(err));
    }
    try {
      msg.respond(encoder.encode(text));
    } catch (err) {
      this.log.warn({ err, region }, 'ingest reply not sent');
    } finally {
      this.inFlight.end();
    }
  }
}

function busError(err: unknown): BusUnavailableError {
  if (err instanceof BusUnavailableError) return err;
  if (err instanceof errors.RequestError && err.isNoResponders()) {
    return new BusUnavailableError('no responders', { cause: err });
  }
  if (err instanceof errors.TimeoutError) return new BusUnavailableError('request timed out', { cause: err });
  if (err instanceof errors.ClosedConnectionError || err instanceof errors.DrainingConnectionError) {
    return new BusUnavailableError('bus closed', { cause: err });
  }
  return new BusUnavailableError('bus unavailable', { cause: err });
}
