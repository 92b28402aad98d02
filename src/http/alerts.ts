import type { FastifyInstance } from 'fastify';
import rateLimit from '@fastify/rate-limit';
import { CordonError } from '../errors';
import type { AppContext } from '../app';
import { PROBLEM_CONTENT_TYPE } from './problem';

/**
 * POST /v1/alerts: the HTTP door of the ingest pipeline. The body is taken as raw bytes so the
 * pipeline's hostile-input parser (duplicate keys, depth, surrogates...) sees exactly what was sent.
 */
export async function alertRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

  const limited = ctx.config.rateLimitMax > 0;
  if (limited) {
    await app.register(rateLimit, {
      global: false,
      errorResponseBuilder: (_req, context) =>
        new CordonError('RATE_LIMITED', `More than ${context.max} submissions in ${context.after}; retry later`),
    });
  }

  app.post(
    '/v1/alerts',
    {
      config: limited
        ? { rateLimit: { max: ctx.config.rateLimitMax, timeWindow: ctx.config.rateLimitWindowMs } }
        : {},
    },
    async (request, reply) => {
      const raw = request.body;
      if (!Buffer.isBuffer(raw)) throw new CordonError('REQUEST_UNSUPPORTED_MEDIA_TYPE');
      const result = await ctx.ingest(raw, 'http');
      return reply
        .code(result.status)
        .type(result.status >= 400 ? PROBLEM_CONTENT_TYPE : 'application/json')
        .send(result.body);
    },
  );
}
