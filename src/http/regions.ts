import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../app';
import { authenticate } from './auth';
import { mayWatch } from '../domain/entitlement';

/** GET /v1/regions: the regions the caller may watch, each with its epoch and newest seq. */
export async function regionRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  app.get('/v1/regions', async (request) => {
    const token = authenticate(request, ctx.trust, ctx.now());
    const visible = ctx.regions.list().filter((r) => mayWatch(token, r));
    const states = await Promise.all(visible.map((r) => ctx.regionLog.state(r.code)));
    return {
      regions: visible.map((r, i) => ({
        code: r.code,
        name: r.name,
        states: r.states,
        epoch: states[i].epoch,
        seq: states[i].latest,
      })),
    };
  });
}
