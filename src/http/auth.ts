import type { FastifyInstance, FastifyRequest, onRequestAsyncHookHandler } from 'fastify';
import { CordonError } from '../errors';
import type { TrustStore } from '../domain/trust-store';
import { DEFAULT_TOKEN_POLICY, verifyToken, type TokenPolicy } from '../domain/tokens';
import type { Token } from '../domain/types';

/**
 * `Authorization: Bearer <token>` → the credential as sent, or undefined when there is none. Any
 * credential counts as given, well-formed or not (`=` padding, stray characters): verifyToken then
 * refuses it as TOKEN_INVALID, so TOKEN_MISSING means only that no bearer token was sent.
 */
export function bearerToken(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const m = /^Bearer[ \t]+(.*?)[ \t]*$/is.exec(header);
  return m && m[1].length > 0 ? m[1] : undefined;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The node's token rules (CORDON_TOKEN_MAX_TTL_S), set by buildApp. */
    tokenPolicy: TokenPolicy;
  }
  interface FastifyRequest {
    /**
     * The caller's verified token, set by the authentication hook (authHook) of the routes that
     * take one; null on the others.
     */
    token: Token | null;
  }
}

/** What verifying a token needs: the trust store in force (read at each request), the clock, the policy. */
export interface Authenticator {
  trust: () => TrustStore;
  now: () => number;
  policy: TokenPolicy;
}

/**
 * Verifies the caller's desk or ops token at the time of use; throws TOKEN_MISSING / TOKEN_INVALID
 * (401). `trust` is the store in force; the policy is the app's.
 */
export function authenticate(
  request: FastifyRequest,
  trust: TrustStore,
  nowMs = Date.now(),
  policy: TokenPolicy = request.server.tokenPolicy ?? DEFAULT_TOKEN_POLICY,
): Token {
  const compact = bearerToken(request.headers.authorization);
  if (!compact) throw new CordonError('TOKEN_MISSING');
  return verifyToken(compact, trust, nowMs, policy);
}

/**
 * The `onRequest` hook of the routes that need a token: verifies it before anything else of the
 * request is looked at (body, query, rate limits) and decorates the request with it
 * (`request.token`). With `role`, a token of another role is 403 ROLE_FORBIDDEN. Decorates the
 * instance's requests with `token` if nothing has yet.
 */
export function authHook(app: FastifyInstance, auth: Authenticator, role?: Token['role']): onRequestAsyncHookHandler {
  if (!app.hasRequestDecorator('token')) app.decorateRequest('token', null);
  return async (request) => {
    const token = authenticate(request, auth.trust(), auth.now(), auth.policy);
    if (role === 'ops') requireOps(token);
    request.token = token;
  };
}

/** The token the route's authHook verified (a route without one is a programming error). */
export function tokenOf(request: FastifyRequest): Token {
  if (!request.token) throw new Error(`${request.routeOptions.url ?? request.url} has no authentication hook`);
  return request.token;
}

/** Ops-only endpoints. */
export function requireOps(token: Token): void {
  if (token.role !== 'ops') throw new CordonError('ROLE_FORBIDDEN', 'This endpoint requires an ops token');
}
