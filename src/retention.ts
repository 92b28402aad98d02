import type { FastifyInstance } from 'fastify';
import { Counter } from 'prom-client';
import type { AppContext } from './context';
import { METRICS } from './metric-names';

const DAY_MS = 86_400_000;
/** The first pass runs this soon after start (or after one interval, if that is shorter). */
const FIRST_RUN_MS = 1000;

/**
 * Retention (contract §11): every CORDON_RETENTION_INTERVAL_MS, trims each region's log to
 * CORDON_RETENTION_MAX_ALERTS and CORDON_RETENTION_MAX_AGE_DAYS. Every node runs it; trim is
 * idempotent, so nodes trimming the same region at once drop each alert once. A failure is logged
 * and the next pass tries again; passes never overlap.
 */
export async function retentionPlugin(app: FastifyInstance, ctx: AppContext): Promise<void> {
  const log = app.log.child({ component: 'retention' });
  const trimmed = new Counter({
    name: METRICS.RETENTION_TRIMMED,
    help: "Alerts dropped from region logs by this node's periodic retention pass (the bound on the count is also kept by every append)",
    labelNames: ['region'],
    registers: [ctx.metrics.registry],
  });
  const policy = () => ({
    maxAlerts: ctx.config.retentionMaxAlerts,
    maxAgeMs: ctx.config.retentionMaxAgeDays * DAY_MS,
    nowMs: ctx.now(),
  });

  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let closed = false;

  async function pass(): Promise<void> {
    for (const region of ctx.regions.list()) {
      if (closed) return;
      try {
        const dropped = await ctx.regionLog.trim(region.code, policy());
        if (dropped > 0) {
          trimmed.inc({ region: region.code }, dropped);
          log.info({ region: region.code, dropped }, 'region log trimmed');
        }
      } catch (err) {
        log.warn({ err, region: region.code }, 'retention pass failed for a region; retrying next pass');
      }
    }
  }

  function schedule(delayMs: number): void {
    if (closed) return;
    timer = setTimeout(() => {
      running = pass().finally(() => {
        running = undefined;
        schedule(ctx.config.retentionIntervalMs);
      });
    }, delayMs);
    // Retention alone never keeps the process alive.
    timer.unref();
  }

  app.addHook('onReady', async () => {
    schedule(Math.min(FIRST_RUN_MS, ctx.config.retentionIntervalMs));
  });
  app.addHook('onClose', async () => {
    closed = true;
    if (timer) clearTimeout(timer);
    // Let a pass in flight finish before the stores close under it.
    await running;
  });
}
