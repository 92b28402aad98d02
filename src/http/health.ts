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

/**
 * Liveness and readiness (/metrics is on the operator listener, src/http/operator.ts). Readiness is what the node can still do: without the
 * region log or the audit trail, or while shutting down, it can do nothing useful (503); without
 * the bus it still takes HTTP submissions and delivers to desks through its position check, so it
 * stays ready (200) and says it is degraded.
 */
export async function healthRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async (_request, reply) => {
    const [log, bus, audit] = await Promise.all([
      withTimeout(ctx.regionLog.ping()),
      withTimeout(ctx.bus.ping()),
      withTimeout(ctx.audit.ping()),
    ]);
    const ready = log && audit && !ctx.shuttingDown.value;
    return reply.code(ready ? 200 : 503).send({
      status: !ready ? 'not-ready' : bus ? 'ready' : 'degraded',
      bus: bus ? 'ok' : 'unreachable',
      checks: { log, bus, audit, shutting_down: ctx.shuttingDown.value },
    });
  });
}
