import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Config } from './config';
import type { RegionLog } from './ports/region-log';
import type { Bus } from './ports/bus';
import type { AuditLog } from './ports/audit-log';
import type { TrustStore } from './domain/trust-store';
import type { RegionRegistry } from './domain/regions';
import type { Metrics } from './metrics';
import { createIngest, type Ingest } from './ingest/pipeline';
import { problemRoutes } from './http/problem';
import { alertRoutes } from './http/alerts';
import { regionRoutes } from './http/regions';
import { trustRoutes } from './http/trust';
import { healthRoutes } from './http/health';
import { replayRoutes } from './http/replay';
import { auditRoutes } from './http/audit';
import { natsIngestDoor } from './ingest/nats-door';
import { streamPlugin } from './ws/stream';
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
  metrics: Metrics;
  /** Milliseconds since the epoch; tests may pin it. */
  now: () => number;
  /** Ingest's signature check on worker threads (src/ingest/verify-pool.ts); unset: on the event loop. */
  check?: SubmissionCheck;
  /** The transparency log (contract §12); unset when it is off. */
  tlog?: TransparencyLog;
}

/** Shared across plugins of one app; set by buildApp. */
export interface AppContext extends AppDeps {
  ingest: Ingest;
  /** true once shutdown has begun: readiness fails and new work is refused. */
  shuttingDown: { value: boolean };
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
 * The app factory: pure, no listening, no signals (src/server.ts does those). Tests build the same
 * app with other adapters and drive it with inject() / injectWS().
 */
export async function buildApp(
  deps: AppDeps,
  opts: { logger?: FastifyBaseLogger } = {},
): Promise<FastifyInstance> {
  const app = Fastify({
    ...(opts.logger
      ? { loggerInstance: opts.logger }
      : { logger: { level: deps.config.logLevel, redact: REDACT_PATHS } }),
    bodyLimit: deps.config.maxBodyBytes,
    // Ingest parses bodies itself (hostile-input rules); see src/http/alerts.ts.
    trustProxy: deps.config.trustProxy,
    return503OnClosing: true,
    forceCloseConnections: true,
    // One log line per request would dominate the ingest hot path; routes log what matters.
    logController: new LogController({ disableRequestLogging: true }),
  });
  const ctx: AppContext = {
    ...deps,
    ingest: createIngest(deps, app.log.child({ component: 'ingest' })),
    shuttingDown: { value: false },
  };
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
  return app;
}
