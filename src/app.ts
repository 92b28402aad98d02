import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Config } from './config';
import type { LogEntry, RegionLog } from './ports/region-log';
import type { Bus } from './ports/bus';
import type { AuditLog } from './ports/audit-log';
import type { TrustStore } from './domain/trust-store';
import { LiveTrust } from './domain/live-trust';
import type { TokenPolicy } from './domain/tokens';
import type { RegionRegistry } from './domain/regions';
import { createHttpMetrics, type Metrics } from './metrics';
import { createIngest, type Ingest } from './ingest/pipeline';
import { clientErrorHandler, problemRoutes, sendProblem } from './http/problem';
import { problemBody } from './errors';
import { alertRoutes } from './http/alerts';
import { regionRoutes } from './http/regions';
import { trustRoutes } from './http/trust';
import { healthRoutes } from './http/health';
import { replayRoutes } from './http/replay';
import { auditRoutes } from './http/audit';
import { natsIngestDoor } from './ingest/nats-door';
import { streamPlugin } from './ws/stream';
import { consoleRoutes } from './http/console';
import type { DevDesks } from './dev/dev-desks';
import { retentionPlugin } from './retention';
import type { SubmissionCheck } from './domain/signature';
import type { TransparencyLog } from './tlog/service';
import { tlogRoutes } from './http/tlog';

/** Everything the app needs, chosen by the composition root (src/compose.ts) or by a test. */
export interface AppDeps {
  config: Readonly<Config>;
  regionLog: RegionLog;
  bus: Bus;
  audit: AuditLog;
  trust: TrustStore;
  regions: RegionRegistry;
  /** The reloadable trust store and region registry (src/trust-reload.ts); unset: trust and regions never change. */
  live?: LiveTrust;
  metrics: Metrics;
  /** Milliseconds since the epoch; tests may pin it. */
  now: () => number;
  /** Ingest's signature check on worker threads (src/ingest/verify-pool.ts); unset: on the event loop. */
  check?: SubmissionCheck;
  /** One-click development desks for the console; set only with the development trust store. */
  devDesks?: DevDesks;
  /** The transparency log (contract §12); unset when it is off. */
  tlog?: TransparencyLog;
}

/** Shared across plugins of one app; set by buildApp. */
export interface AppContext extends AppDeps {
  /** `trust` and `regions` read through it: always the snapshot in force. */
  live: LiveTrust;
  tokenPolicy: TokenPolicy;
  ingest: Ingest;
  /** true once shutdown has begun: readiness fails and new work is refused. */
  shuttingDown: { value: boolean };
  /**
   * Told of every entry this node's own appends stored (the log's answer, never a bus message):
   * the hub delivers it at once when it is the next seq, instead of waiting for the doorbell.
   */
  appended: Set<(entry: LogEntry) => void>;
}

export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers["sec-websocket-protocol"]',
  'sig',
  '*.sig',
  'token',
  '*.token',
];

/**
 * Fastify takes a bare number as "trust nobody"; a hop count is a function of the hop: the
 * socket's peer is hop 0, the entry X-Forwarded-For's last writer added is hop 1, and so on.
 */
function trustedProxy(trust: Config['trustProxy']): boolean | string[] | ((address: string, hop: number) => boolean) {
  return typeof trust === 'number' ? (_address, hop) => hop < trust : trust;
}

/**
 * The app factory: pure, no listening, no signals (src/server.ts does those). Tests build the same
 * app with other adapters and drive it with inject() / injectWS().
 */
export async function buildApp(
  deps: AppDeps,
  opts: { logger?: FastifyBaseLogger } = {},
): Promise<FastifyInstance> {
  const { config } = deps;
  const httpMetrics = createHttpMetrics(deps.metrics.registry);
  const app = Fastify({
    ...(opts.logger
      ? { loggerInstance: opts.logger }
      : { logger: { level: deps.config.logLevel, redact: REDACT_PATHS } }),
    bodyLimit: deps.config.maxBodyBytes,
    // Ingest parses bodies itself (hostile-input rules); see src/http/alerts.ts.
    // A hop count or the proxies' addresses, never every hop (X-Forwarded-For is client-written).
    trustProxy: trustedProxy(config.trustProxy),
    // Slow and hostile clients: bounded header, request, keep-alive and idle times (Node checks
    // the first two every connectionsCheckingInterval). Upgraded desk sockets leave all of them.
    http: {
      headersTimeout: config.httpHeadersTimeoutMs,
      requestTimeout: config.httpRequestTimeoutMs,
      connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(config.httpHeadersTimeoutMs / 4))),
    },
    requestTimeout: config.httpRequestTimeoutMs,
    keepAliveTimeout: config.httpKeepAliveTimeoutMs,
    connectionTimeout: config.httpIdleTimeoutMs,
    clientErrorHandler: clientErrorHandler((code) => httpMetrics.refused.inc({ code })),
    return503OnClosing: true,
    forceCloseConnections: true,
    // One log line per request would dominate the ingest hot path; routes log what matters.
    logController: new LogController({ disableRequestLogging: true }),
    // The router's own refusals (a malformed %-escape in the path, a path segment over
    // maxParamLength) would otherwise leave as Fastify's JSON with an undocumented code.
    frameworkErrors: (_err, _request, reply) => {
      sendProblem(reply, problemBody('ROUTE_NOT_FOUND', 'The request path is malformed or a path segment is too long'));
    },
  });
  const live = deps.live ?? LiveTrust.fixed(deps.trust, deps.regions);
  // Connections beyond the bound are closed by Node as they arrive (its 'drop' event).
  app.server.maxConnections = config.httpMaxConnections;
  app.server.on('drop', () => httpMetrics.refused.inc({ code: 'MAX_CONNECTIONS' }));
  const appended = new Set<(entry: LogEntry) => void>();
  const ctx: AppContext = {
    ...deps,
    live,
    appended,
    // Read at the time of use, so a reload reaches every door (contract §4).
    get trust() {
      return live.store;
    },
    get regions() {
      return live.regions;
    },
    tokenPolicy: { maxTtlS: deps.config.tokenMaxTtlS },
    ingest: createIngest({ ...deps, live, appended }, app.log.child({ component: 'ingest' })),
    shuttingDown: { value: false },
  };
  app.decorate('tokenPolicy', ctx.tokenPolicy);
  app.addHook('preClose', async () => {
    ctx.shuttingDown.value = true;
  });

  await problemRoutes(app, ctx);
  await healthRoutes(app, ctx);
  await trustRoutes(app, ctx);
  await alertRoutes(app, ctx);
  await regionRoutes(app, ctx);
  await replayRoutes(app, ctx);
  await auditRoutes(app, ctx);
  await tlogRoutes(app, ctx);
  await streamPlugin(app, ctx);
  await natsIngestDoor(app, ctx);
  await retentionPlugin(app, ctx);
  await consoleRoutes(app, ctx);
  return app;
}
