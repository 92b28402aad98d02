import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../app';

const READY_TIMEOUT_MS = 1000;

function withTimeout(p: Promise<void>): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), READY_TIMEOUT_MS);
    p.then(
      () => resolve(true),
      () => resolve(false),
    ).finally(() => clearTimeout(timer));
  });
}

/** Liveness and readiness (stores reachable and not shutting down); /metrics is on the operator listener (src/http/operator.ts). */
export async function healthRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async (_request, reply) => {
    const [log, bus, audit] = await Promise.all([
      withTimeout(ctx.regionLog.ping()),
      withTimeout(ctx.bus.ping()),
      withTimeout(ctx.audit.ping()),
    ]);
    const ready = log && bus && audit && !ctx.shuttingDown.value;
    return reply.code(ready ? 200 : 503).send({
      status: ready ? 'ready' : 'not-ready',
      checks: { log, bus, audit, shutting_down: ctx.shuttingDown.value },
    });
  });
}
