import type { FastifyPluginAsync } from 'fastify';
import rateLimit from '@fastify/rate-limit';
import type { Config } from '../config';
import { CordonError } from '../errors';
import type { Ingest } from '../ingest/pipeline';
import { PROBLEM_CONTENT_TYPE } from './problem';
import { documentedOnly, ref } from './schema';

export interface AlertRoutesOptions {
  ingest: Ingest;
  config: Pick<Config, 'rateLimitMax' | 'rateLimitWindowMs'>;
}

/**
 * POST /v1/alerts: the HTTP door of the ingest pipeline. The body is taken as raw bytes so the
 * pipeline's hostile-input parser (duplicate keys, depth, surrogates...) sees exactly what was sent.
 * That parser is this plugin's own (Fastify encapsulation): every other route keeps Fastify's JSON
 * parser. The body schema documents the submission; the pipeline validates it with that schema.
 */
export const alertRoutes: FastifyPluginAsync<AlertRoutesOptions> = async (app, { ingest, config }) => {
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

  const limited = config.rateLimitMax > 0;
  if (limited) {
    await app.register(rateLimit, {
      global: false,
      errorResponseBuilder: (_req, context) => new CordonError('RATE_LIMITED', `More than ${context.max} submissions in ${context.after}; retry later`),
    });
  }

  app.post(
    '/v1/alerts',
    {
      config: limited ? { rateLimit: { max: config.rateLimitMax, timeWindow: config.rateLimitWindowMs } } : {},
      schema: {
        summary: 'Submit a signed alert (gateways)',
        body: ref('submission'),
        response: { 201: ref('receipt'), 200: ref('receipt') },
      },
      validatorCompiler: documentedOnly,
    },
    async (request, reply) => {
      const raw = request.body;
      if (!Buffer.isBuffer(raw)) throw new CordonError('REQUEST_UNSUPPORTED_MEDIA_TYPE');
      const result = await ingest(raw, 'http');
      return reply
        .code(result.status as 200 | 201)
        .type(result.status >= 400 ? PROBLEM_CONTENT_TYPE : 'application/json')
        .send(result.body);
    },
  );
};
