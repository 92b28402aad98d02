import type { FastifyPluginAsync } from 'fastify';
import type { TrustStore } from '../domain/trust-store';
import type { TransparencyLog } from '../tlog/service';
import { ref } from './schema';

export interface TrustRoutesOptions {
  /** The trust store in force (read at each request: a reload brings a new one). */
  trust: () => TrustStore;
  tlog?: Pick<TransparencyLog, 'publicKey'>;
}

/**
 * GET /v1/trust: the public trust store in force, so any recipient can verify an alert end to end.
 * Serialised once per store (a reload brings a new one).
 */
export const trustRoutes: FastifyPluginAsync<TrustRoutesOptions> = async (app, opts) => {
  // Contract §12: the transparency log's verifier key (note vkey and JWK) under `log`.
  const log = opts.tlog?.publicKey();
  const viewOf = (): string => JSON.stringify(log ? { ...served.publicView(), log } : served.publicView());
  let served = opts.trust();
  let view = viewOf();
  app.get('/v1/trust', { schema: { summary: 'The public trust store in force', response: { 200: ref('trust-view') } } }, async (_request, reply) => {
    const current = opts.trust();
    if (current !== served) {
      served = current;
      view = viewOf();
    }
    return reply.type('application/json').send(view);
  });
};
