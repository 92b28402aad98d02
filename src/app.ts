import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type RouteOptions } from 'fastify';
import type { Config } from './config';
import type { LogEntry } from './ports/region-log';
import { LiveTrust } from './domain/live-trust';
import { createHttpMetrics } from './metrics';
import { createIngest } from './ingest/pipeline';
import { clientErrorHandler, PROBLEM_CONTENT_TYPE, problemHandlers, sendProblem } from './http/problem';
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
import { retentionPlugin } from './retention';
import { tlogRoutes } from './http/tlog';
import { openApiCollector, openApiRoutes } from './http/openapi';
import { ref, serializerCompiler, validatorCompiler } from './http/schema';
import type { Authenticator } from './http/auth';
import type { AppDeps } from './deps';
import type { AppContext } from './context';

export type { AppDeps } from './deps';
export type { AppContext } from './context';

declare module 'fastify' {
  interface FastifyInstance {
    /** Every route this app registered, in order (HEAD included); `hidden`: left out of the API document. */
    registeredRoutes: readonly RegisteredRoute[];
  }
}

export interface RegisteredRoute {
  method: string;
  url: string;
  hidden: boolean;
}

/**
 * Every documented route can refuse: its 4xx and 5xx answers are problem+json (schemas/problem.json),
 * with the codes of docs/errors.md. Added to the route's schema for the OpenAPI document only.
 */
function documentProblems(route: RouteOptions): void {
  const schema = route.schema as { hide?: boolean; response?: Record<string, unknown> } | undefined;
  if (!schema || schema.hide) return;
  const problem = { description: 'problem details with a code of docs/errors.md', content: { [PROBLEM_CONTENT_TYPE]: { schema: ref('problem') } } };
  schema.response = { ...schema.response, '4xx': problem, '5xx': problem };
}

/** The API's version in the OpenAPI document. */
const API_VERSION = '1.1';

export const REDACT_PATHS = ['req.headers.authorization', 'req.headers["sec-websocket-protocol"]', 'sig', '*.sig', 'token', '*.token'];

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
export async function buildApp(deps: AppDeps, opts: { logger?: FastifyBaseLogger } = {}): Promise<FastifyInstance> {
  const { config } = deps;
  const httpMetrics = createHttpMetrics(deps.metrics.registry);
  const app = Fastify({
    ...(opts.logger ? { loggerInstance: opts.logger } : { logger: { level: deps.config.logLevel, redact: REDACT_PATHS } }),
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

  // Route schemas are checked by the project's strict Ajv and answers written as before (src/http/schema.ts).
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  // Every error of every plugin leaves through the root's handler (src/http/problem.ts).
  problemHandlers(app);
  // The route table, as registered (tests check the OpenAPI document against it).
  const routes: RegisteredRoute[] = [];
  app.addHook('onRoute', (r) => {
    documentProblems(r);
    for (const method of [r.method].flat()) {
      routes.push({ method, url: r.url, hidden: Boolean(r.schema?.hide) });
    }
  });
  app.decorate('registeredRoutes', routes);
  await openApiCollector(app, API_VERSION);

  // Each route plugin gets only what its routes use.
  const auth: Authenticator = { trust: () => live.store, now: ctx.now, policy: ctx.tokenPolicy };
  const regions = () => live.regions;
  await app.register(healthRoutes, { regionLog: ctx.regionLog, bus: ctx.bus, audit: ctx.audit, shuttingDown: ctx.shuttingDown });
  await app.register(trustRoutes, { trust: () => live.store, tlog: ctx.tlog });
  await app.register(alertRoutes, { ingest: ctx.ingest, config });
  await app.register(regionRoutes, { auth, regions, regionLog: ctx.regionLog });
  await app.register(replayRoutes, {
    auth,
    regions,
    regionLog: ctx.regionLog,
    audit: ctx.audit,
    shuttingDown: ctx.shuttingDown,
    config,
  });
  await app.register(auditRoutes, { auth, audit: ctx.audit, config });
  await app.register(tlogRoutes, { auth, regions, tlog: ctx.tlog });
  await app.register(openApiRoutes);
  await app.register(streamPlugin, {
    live,
    regionLog: ctx.regionLog,
    bus: ctx.bus,
    audit: ctx.audit,
    metrics: ctx.metrics,
    now: ctx.now,
    tokenPolicy: ctx.tokenPolicy,
    shuttingDown: ctx.shuttingDown,
    appended,
    config,
  });
  await natsIngestDoor(app, ctx);
  await retentionPlugin(app, ctx);
  await app.register(consoleRoutes, { devDesks: ctx.devDesks, now: ctx.now });
  return app;
}
