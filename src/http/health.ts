import type { FastifyPluginAsync } from 'fastify';
import type { AuditLog } from '../ports/audit-log';
import type { Bus } from '../ports/bus';
import type { RegionLog } from '../ports/region-log';
import { ref } from './schema';

export interface HealthRoutesOptions {
  regionLog: Pick<RegionLog, 'ping'>;
  bus: Pick<Bus, 'ping'>;
  audit: Pick<AuditLog, 'ping'>;
  shuttingDown: { readonly value: boolean };
}

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
export const healthRoutes: FastifyPluginAsync<HealthRoutesOptions> = async (app, ctx) => {
  app.get('/healthz', { schema: { summary: 'Liveness', response: { 200: { type: 'object', properties: { status: { const: 'ok' } } } } } }, async () => ({
    status: 'ok',
  }));

  app.get('/readyz', { schema: { summary: 'Readiness', response: { 200: ref('readiness'), 503: ref('readiness') } } }, async (_request, reply) => {
    const [log, bus, audit] = await Promise.all([withTimeout(ctx.regionLog.ping()), withTimeout(ctx.bus.ping()), withTimeout(ctx.audit.ping())]);
    const ready = log && audit && !ctx.shuttingDown.value;
    return reply.code(ready ? 200 : 503).send({
      status: !ready ? 'not-ready' : bus ? 'ready' : 'degraded',
      bus: bus ? 'ok' : 'unreachable',
      checks: { log, bus, audit, shutting_down: ctx.shuttingDown.value },
    });
  });
};
