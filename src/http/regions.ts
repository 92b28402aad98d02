import type { FastifyPluginAsync } from 'fastify';
import type { RegionRegistry } from '../domain/regions';
import type { RegionLog } from '../ports/region-log';
import { mayWatch } from '../domain/entitlement';
import { authHook, tokenOf, type Authenticator } from './auth';
import { bearer, ref } from './schema';

export interface RegionRoutesOptions {
  auth: Authenticator;
  /** The region registry in force. */
  regions: () => RegionRegistry;
  regionLog: Pick<RegionLog, 'state'>;
}

/** GET /v1/regions: the regions the caller may watch, each with its epoch and newest seq. */
export const regionRoutes: FastifyPluginAsync<RegionRoutesOptions> = async (app, opts) => {
  app.addHook('onRequest', authHook(app, opts.auth));

  app.get('/v1/regions', { schema: { summary: 'The regions the caller may watch', ...bearer, response: { 200: ref('region-list') } } }, async (request) => {
    const token = tokenOf(request);
    const visible = opts
      .regions()
      .list()
      .filter((r) => mayWatch(token, r));
    const states = await Promise.all(visible.map((r) => opts.regionLog.state(r.code)));
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
};
