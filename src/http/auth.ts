import type { FastifyRequest } from 'fastify';
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
}

/**
 * Verifies the caller's desk or ops token at the time of use; throws TOKEN_MISSING / TOKEN_INVALID
 * (401). `trust` is the store in force (ctx.trust reads the live one); the policy is the app's.
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

/** Ops-only endpoints. */
export function requireOps(token: Token): void {
  if (token.role !== 'ops') throw new CordonError('ROLE_FORBIDDEN', 'This endpoint requires an ops token');
}
