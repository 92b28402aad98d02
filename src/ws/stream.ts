import type { LogEntry, RegionLog } from '../ports/region-log';
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import fastifyWebsocket from '@fastify/websocket';
import type { WebSocket } from 'ws';
import type { Config } from '../config';
import type { Metrics } from '../metrics';
import type { LiveTrust } from '../domain/live-trust';
import type { AuditLog } from '../ports/audit-log';
import type { Bus } from '../ports/bus';
import { CordonError, problemBody, toProblem } from '../errors';
import { bearerToken } from '../http/auth';
import { PROBLEM_CONTENT_TYPE } from '../http/problem';
import { verifyTokenKey, type TokenPolicy } from '../domain/tokens';
import type { Token } from '../domain/types';
import type { BusSubscription } from '../ports/bus';
import { CLOSE } from './frames';
import { createStreamMetrics, Hub } from './hub';
import { DeskSession, type SessionDeps } from './desk-session';
import { FlushScheduler } from './flush-scheduler';
import { AckDedup } from './ack-dedup';
import { TokenKeyWatch } from './token-keys';
import { checkWsInternals, closeFrameReceived, rawSocketObject } from './ws-internals';

/**
 * GET /v1/stream (contract §9): desks watch regions live and resume on any node. Authentication
 * runs in the route's onRequest hook, before any socket exists: a bad token gets a 401 problem
 * body, never an upgrade. The hub listens to the bus and delivers to this node's sessions.
 *
 * The token check is the stream's own, not the HTTP routes' authHook: the token may come as a
 * `cordon.token.<token>` subprotocol (browsers cannot set Authorization on a WebSocket), the
 * refusal is written before the upgrade without going through the error handler, shutdown is
 * refused first, the role must be desk, the per-token session slot is taken in the same step, and
 * the session keeps the token key's kid (src/ws/token-keys.ts).
 */

declare module 'fastify' {
  interface FastifyInstance {
    /** This node's stream hub (benches and the CLI drive it; tests read positions from it). */
    streamHub: Hub;
    /** The open desk sessions of this node. */
    deskSessions: ReadonlySet<DeskSession>;
  }
}

export const STREAM_SUBPROTOCOL = 'cordon.v1';
const TOKEN_SUBPROTOCOL_PREFIX = 'cordon.token.';
/** A desk told to close gets this long to answer before its socket is destroyed. */
const CLOSE_HANDSHAKE_MS = 5000;
/** A recovery waiting this long for a desk to take its data closes it with 4002. */
const RECOVERY_STALL_MS = 10_000;

/** The token from `Authorization: Bearer` or from the `cordon.token.<token>` subprotocol. */
export function streamToken(request: FastifyRequest): string | undefined {
  const bearer = bearerToken(request.headers.authorization);
  if (bearer) return bearer;
  const header = request.headers['sec-websocket-protocol'];
  if (typeof header !== 'string') return undefined;
  for (const p of header.split(',')) {
    const proto = p.trim();
    if (proto.startsWith(TOKEN_SUBPROTOCOL_PREFIX) && proto.length > TOKEN_SUBPROTOCOL_PREFIX.length) {
      return proto.slice(TOKEN_SUBPROTOCOL_PREFIX.length);
    }
  }
  return undefined;
}

/** A socket whose peer answered our close frame may be cut at once. */
function handshakeDone(ws: WebSocket): boolean {
  return closeFrameReceived(ws);
}

/** What the stream uses of the app, and nothing more. */
export interface StreamOptions {
  /**
   * The trust store and region registry in force, read at each use (a reload reaches new upgrades
   * and subscriptions); its changes end the sessions whose token key is no longer active.
   */
  live: LiveTrust;
  regionLog: RegionLog;
  /** The hub listens to the doorbell from onReady to close. */
  bus: Pick<Bus, 'subscribeDoorbell'>;
  /** Desk acks are recorded there. */
  audit: AuditLog;
  /** The stream's metrics are registered on this registry. */
  metrics: Pick<Metrics, 'registry'>;
  now: () => number;
  tokenPolicy: TokenPolicy;
  /** true once shutdown has begun: upgrades are refused with 503 SHUTTING_DOWN. */
  shuttingDown: { readonly value: boolean };
  /** This node's own appends: the hub joins it from onReady to close (local delivery). */
  appended: Pick<Set<(entry: LogEntry) => void>, 'add' | 'delete'>;
  config: Pick<
    Config,
    | 'wsReplayBatch'
    | 'positionCheckMs'
    | 'wsLogLostCloseMs'
    | 'wsMaxQueueBytes'
    | 'wsMaxQueueFrames'
    | 'wsMaxFrameBytes'
    | 'wsMaxFramesPerS'
    | 'wsMaxSessionsPerToken'
    | 'shutdownGraceMs'
    | 'wsPingMs'
  >;
}

async function stream(app: FastifyInstance, ctx: StreamOptions): Promise<void> {
  // The session reads private fields of ws: refuse to start on a ws they were not checked against.
  checkWsInternals();
  const { config, live } = ctx;
  const log = app.log.child({ component: 'stream' });
  const metrics = createStreamMetrics(ctx.metrics.registry);
  const hub = new Hub({
    regionLog: ctx.regionLog,
    log,
    metrics,
    batch: config.wsReplayBatch,
    positionCheckMs: config.positionCheckMs,
    logLostCloseMs: config.wsLogLostCloseMs,
  });
  const sessions = new Set<DeskSession>();
  const openSockets = new Set<WebSocket>();
  /** Sockets pinged since their last pong. */
  const unanswered = new WeakSet<WebSocket>();
  const tokens = new WeakMap<FastifyRequest, Token>();
  /** the kid of each upgrade's token: its session ends when that key stops being active. */
  const tokenKids = new WeakMap<FastifyRequest, string>();
  const deps: SessionDeps = {
    hub,
    regionLog: ctx.regionLog,
    // The registry in force when asked (a reload may add regions).
    get regions() {
      return live.regions;
    },
    audit: ctx.audit,
    metrics,
    scheduler: new FlushScheduler(metrics),
    limits: {
      maxQueueBytes: config.wsMaxQueueBytes,
      maxQueueFrames: config.wsMaxQueueFrames,
      maxFrameBytes: config.wsMaxFrameBytes,
      maxFramesPerS: config.wsMaxFramesPerS,
      replayBatch: config.wsReplayBatch,
      stallMs: RECOVERY_STALL_MS,
    },
    log,
    now: ctx.now,
    acks: new AckDedup(),
  };
  const slots = new SessionSlots(config.wsMaxSessionsPerToken);
  /** The session slot an upgrade request holds, released once whatever it became ends. */
  const releases = new WeakMap<FastifyRequest, () => void>();
  let busSub: BusSubscription | undefined;
  const keyWatch = new TokenKeyWatch(sessions, { live, now: ctx.now, log, registry: ctx.metrics.registry });

  /** Shutdown: every desk gets 4001 and resumes elsewhere; stragglers are cut after a grace. */
  async function closeAll(): Promise<void> {
    hub.stop();
    keyWatch.stop();
    const sub = busSub;
    busSub = undefined;
    await sub?.unsubscribe().catch((err: unknown) => log.warn({ err }, 'bus unsubscribe failed'));
    for (const s of [...sessions]) s.close(CLOSE.SHUTTING_DOWN, 'shutting down');
    // Every socket not yet closed, including those of sessions already ended mid-handshake.
    const sockets = [...openSockets];
    // Wait for each desk's closing handshake (its close frame back), bounded by a grace period.
    const deadline = Date.now() + Math.min(config.shutdownGraceMs, 2000);
    while (Date.now() < deadline) {
      for (const ws of sockets) if (ws.readyState !== ws.CLOSED && handshakeDone(ws)) ws.terminate();
      if (sockets.every((ws) => ws.readyState === ws.CLOSED)) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    for (const ws of sockets) if (ws.readyState !== ws.CLOSED) ws.terminate();
  }

  await app.register(fastifyWebsocket, {
    options: {
      maxPayload: config.wsMaxFrameBytes,
      perMessageDeflate: false,
      clientTracking: false,
      // Browsers send the token as a second subprotocol; the one we speak is cordon.v1.
      handleProtocols: (protocols: Set<string>) => (protocols.has(STREAM_SUBPROTOCOL) ? STREAM_SUBPROTOCOL : false),
      ...({ closeTimeout: CLOSE_HANDSHAKE_MS } as object),
    },
    preClose: closeAll,
    errorHandler: (err: Error, socket: WebSocket) => {
      log.debug({ err }, 'desk socket error');
      if (socket.readyState === socket.OPEN || socket.readyState === socket.CONNECTING) socket.terminate();
    },
  });

  // Listeners shared by every socket (ws calls them with the socket as `this`): no closure per desk.
  function onSocketClose(this: WebSocket): void {
    openSockets.delete(this);
  }
  function onPong(this: WebSocket): void {
    unanswered.delete(this);
  }
  function onSocketError(this: WebSocket, err: Error): void {
    log.debug({ err }, 'desk socket error');
    if (this.readyState === this.OPEN || this.readyState === this.CONNECTING) this.terminate();
  }

  /**
   * Lets the upgrade request go once the socket is open: @fastify/websocket's per-socket error
   * listener closes over the request and reply (headers with the token, a child logger), and the
   * hijacked response stays attached to the TCP socket. Kept, they cost kilobytes per idle desk
   * for the whole connection. The error listener is replaced by one that does the same.
   */
  function releaseRequest(socket: WebSocket): void {
    socket.removeAllListeners('error');
    socket.on('error', onSocketError);
    const raw = rawSocketObject(socket);
    const res = raw?._httpMessage as { detachSocket?(s: unknown): void } | null | undefined;
    if (raw && res && typeof res.detachSocket === 'function') res.detachSocket(raw);
  }

  async function authenticate(request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> {
    try {
      if (ctx.shuttingDown.value) throw new CordonError('SHUTTING_DOWN');
      const compact = streamToken(request);
      if (!compact) throw new CordonError('TOKEN_MISSING');
      const { token, kid } = verifyTokenKey(compact, live.store, ctx.now(), ctx.tokenPolicy);
      if (token.role !== 'desk') throw new CordonError('ROLE_FORBIDDEN', 'The stream is for desk tokens');
      // Per-token session cap (issue 8): refused before the upgrade, so no socket is ever made.
      const release = slots.take(`${token.iss}/${token.sub}`);
      if (!release) {
        throw new CordonError('STREAM_TOO_MANY_SESSIONS', `This token already has ${config.wsMaxSessionsPerToken} sessions open on this node`);
      }
      // Until a session holds it, the slot lives as long as the connection (an upgrade that fails
      // in between frees it when its socket closes).
      (request.raw.socket as { once?: (e: 'close', fn: () => void) => unknown } | undefined)?.once?.('close', release);
      releases.set(request, release);
      tokens.set(request, token);
      tokenKids.set(request, kid);
      return undefined;
    } catch (err) {
      const body = err instanceof CordonError ? err.toProblem() : toProblem(err);
      return reply.code(body.status).type(PROBLEM_CONTENT_TYPE).send(body);
    }
  }

  app.route({
    method: 'GET',
    url: '/v1/stream',
    // Documentation only (no query, no body): the frames are in docs/protocol.md.
    schema: {
      summary: "The desks' live stream: a WebSocket upgrade (subprotocol cordon.v1, frames in docs/protocol.md)",
      security: [{ bearer: [] }],
      response: {
        101: { description: 'Switching Protocols: the desk session', type: 'null' },
        400: {
          description: 'QUERY_INVALID: a GET that is not a WebSocket upgrade',
          content: { 'application/problem+json': { schema: { $ref: 'https://cordon.invalid/schemas/problem.json' } } },
        },
      },
    },
    onRequest: authenticate,
    handler: (request, reply) => {
      releases.get(request)?.();
      // A plain GET with a valid token: this endpoint only speaks WebSocket.
      void reply.code(400).type(PROBLEM_CONTENT_TYPE).send(problemBody('QUERY_INVALID', 'GET /v1/stream must be a WebSocket upgrade'));
    },
    wsHandler: (socket: WebSocket, request: FastifyRequest) => {
      releaseRequest(socket);
      openSockets.add(socket);
      socket.on('close', onSocketClose);
      socket.on('pong', onPong);
      const token = tokens.get(request);
      const release = releases.get(request);
      if (!token) {
        release?.();
        socket.close(CLOSE.UNAUTHORISED, 'unauthorised');
        return;
      }
      if (ctx.shuttingDown.value) {
        release?.();
        socket.close(CLOSE.SHUTTING_DOWN, 'shutting down');
        return;
      }
      const session = new DeskSession(socket, token, deps);
      sessions.add(session);
      metrics.desks.inc();
      session.onEnd = () => {
        sessions.delete(session);
        metrics.desks.dec();
        release?.();
      };
      session.start();
      keyWatch.track(session, tokenKids.get(request) ?? '');
    },
  });

  app.decorate('streamHub', hub);
  app.decorate('deskSessions', sessions as ReadonlySet<DeskSession>);

  // Heartbeat: a connection that died silently (laptop lid, NAT timeout) answers no ping; cut it so
  // its queue and subscriptions are freed. The desk resumes from its own position when it returns.
  const heartbeat = setInterval(() => {
    for (const ws of openSockets) {
      if (unanswered.has(ws)) {
        log.debug('desk did not answer a ping; cutting the connection');
        ws.terminate();
        continue;
      }
      unanswered.add(ws);
      ws.ping();
    }
  }, config.wsPingMs);
  heartbeat.unref();

  const onLocalAppend = (entry: LogEntry): void => hub.onLocalAppend(entry);
  app.addHook('onReady', async () => {
    busSub = await ctx.bus.subscribeDoorbell((ring) => hub.onDoorbell(ring));
    ctx.appended.add(onLocalAppend);
    hub.start();
    keyWatch.start();
  });
  app.addHook('onClose', async () => {
    clearInterval(heartbeat);
    ctx.appended.delete(onLocalAppend);
    hub.stop();
    keyWatch.stop();
    await busSub?.unsubscribe().catch(() => undefined);
    busSub = undefined;
  });
}

/**
 * The stream as a plugin: `app.register(streamPlugin, { ...StreamOptions })`. Not encapsulated
 * (Fastify's `skip-override`, what fastify-plugin sets): it decorates the app (`streamHub`,
 * `deskSessions`) and registers @fastify/websocket for the whole app (`injectWS`; its hooks wrap
 * every route registered after it, so an upgrade to one of those is still accepted and closed),
 * exactly as when it was called with the app itself. Its options are still only what it uses.
 */
export const streamPlugin: FastifyPluginAsync<StreamOptions> = Object.assign(stream, { [Symbol.for('skip-override')]: true });

/**
 * Open sessions per token (`<iss>/<sub>`) on this node, capped (CORDON_WS_MAX_SESSIONS_PER_TOKEN,
 * 0 = no cap). A slot is taken when the upgrade request is authenticated, before the socket exists,
 * so a burst of upgrades cannot all pass the check before any of them becomes a session.
 */
class SessionSlots {
  private readonly open = new Map<string, number>();

  constructor(private readonly max: number) {}

  /** A release function (idempotent) for a free slot, or undefined when the token is at its cap. */
  take(key: string): (() => void) | undefined {
    const n = this.open.get(key) ?? 0;
    if (this.max > 0 && n >= this.max) return undefined;
    this.open.set(key, n + 1);
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      const left = (this.open.get(key) ?? 1) - 1;
      if (left > 0) this.open.set(key, left);
      else this.open.delete(key);
    };
  }
}
