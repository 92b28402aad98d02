import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../app';

/**
 * GET /v1/trust: the public trust store in force, so any recipient can verify an alert end to end.
 * Serialised once per store (a reload brings a new one).
 */
export async function trustRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  // Contract §12: the transparency log's verifier key (note vkey and JWK) under `log`.
  const log = ctx.tlog?.publicKey();
  const viewOf = (): string => JSON.stringify(log ? { ...served.publicView(), log } : served.publicView());
  let served = ctx.trust;
  let view = viewOf();
  app.get('/v1/trust', async (_request, reply) => {
    if (ctx.trust !== served) {
      served = ctx.trust;
      view = viewOf();
    }
    return reply.type('application/json').send(view);
  });
}
