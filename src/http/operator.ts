import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Metrics } from '../metrics';
import { problemBody } from '../errors';
import { sendProblem } from './problem';

/**
 * The operator listener (contract §8 v1.1): `GET /metrics` and nothing else, on its own address
 * (CORDON_METRICS_HOST:CORDON_METRICS_PORT, loopback by default), so the public port never serves
 * metrics whatever a proxy in front lets through. A pure factory like buildApp: src/server.ts
 * listens; tests drive it with inject() or listen on port 0.
 */
export async function buildOperatorApp(metrics: Metrics, opts: { logger: FastifyBaseLogger }): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: opts.logger.child({ component: 'operator' }),
    logController: new LogController({ disableRequestLogging: true }),
    // A scrape is one small GET: the same bounds as the public port's defaults, a few connections.
    requestTimeout: 10_000,
    connectionTimeout: 60_000,
    forceCloseConnections: true,
  });
  app.server.maxConnections = 64;
  app.get('/metrics', async (_request, reply) => reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()));
  app.setNotFoundHandler((request, reply) =>
    sendProblem(reply, problemBody('ROUTE_NOT_FOUND', `${request.method} ${request.url.split('?')[0]} does not exist`)),
  );
  await app.ready();
  return app;
}
