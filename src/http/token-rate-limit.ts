import type { FastifyInstance, FastifyReply, FastifyRequest, onRequestAsyncHookHandler } from 'fastify';
import rateLimit from '@fastify/rate-limit';
import { CordonError } from '../errors';
import type { Token } from '../domain/types';

/**
 * Per-token rate limits for the history endpoints (issue 8): counted by @fastify/rate-limit's
 * store, keyed by the verified token's `iss/sub`, so a caller cannot spend another desk's budget
 * (an unverified token never reaches the count) nor escape its own by changing address. Counted
 * per node, like the ingest limit. Checked in the handler, after authentication.
 */
export type TokenLimiter = (request: FastifyRequest, reply: FastifyReply, token: Token) => Promise<void>;

const TOKEN_KEY = Symbol('cordon.rateLimitToken');

interface LimiterResult {
  isAllowed: boolean;
  max?: number;
  ttlInSeconds?: number;
  isExceeded?: boolean;
}

type CreateRateLimit = (opts: object) => (req: FastifyRequest) => Promise<LimiterResult>;

/** A limiter of `max` calls per `windowMs` per token; a no-op when `max` is 0. `what` names the calls in the 429 detail. */
export async function tokenRateLimit(app: FastifyInstance, what: string, max: number, windowMs: number): Promise<TokenLimiter> {
  if (max <= 0) return async () => undefined;
  // One registration per app (the ingest door may have made it already): its onRoute hook only
  // acts on routes that name a rateLimit config, which these routes do not.
  if (!app.hasDecorator('createRateLimit')) await app.register(rateLimit, { global: false });
  const create = (app as unknown as { createRateLimit: CreateRateLimit }).createRateLimit;
  const check = create({
    max,
    timeWindow: windowMs,
    keyGenerator: (req: FastifyRequest) => `${what}|${(req as unknown as Record<symbol, string>)[TOKEN_KEY]}`,
  });
  return async (request, reply, token) => {
    (request as unknown as Record<symbol, string>)[TOKEN_KEY] = `${token.iss}/${token.sub}`;
    const r = await check(request);
    if (r.isAllowed || !r.isExceeded) return;
    const after = r.ttlInSeconds ?? Math.ceil(windowMs / 1000);
    void reply.header('retry-after', String(after));
    throw new CordonError('RATE_LIMITED', `More than ${r.max ?? max} ${what} calls by this token in ${Math.ceil(windowMs / 1000)} s; retry in ${after} s`);
  };
}

/** A limiter as an onRequest hook, after the authentication hook (it counts the verified token). */
export function tokenRateLimitHook(limit: TokenLimiter): onRequestAsyncHookHandler {
  return async (request, reply) => {
    if (!request.token) throw new Error('the per-token rate limit runs after the authentication hook');
    await limit(request, reply, request.token);
  };
}
