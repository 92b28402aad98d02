import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../app';

/** GET /v1/trust: the public trust store, so any recipient can verify an alert end to end. */
export async function trustRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  // Contract §12: the transparency log's verifier key (note vkey and JWK) under `log`.
  const log = ctx.tlog?.publicKey();
  const view = JSON.stringify(log ? { ...ctx.trust.publicView(), log } : ctx.trust.publicView());
  app.get('/v1/trust', async (_request, reply) => reply.type('application/json').send(view));
}
