import { sign as cryptoSign, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { CordonError } from '../errors';
import { b64uDecode, b64uEncode } from './base64url';
import { validator } from './schemas';
import type { TrustedKey, TrustStore } from './trust-store';
import type { Token } from './types';

/**
 * Desk and ops tokens (contract §7): compact JWS, alg pinned to "Ed25519", signed by a
 * `use: "token"` key of the state named in `iss`. Failures all map to TOKEN_INVALID with a short
 * generic detail: a caller learns nothing about which keys exist. Everything is judged at the time of
 * use (contract §7 v1.1): the key's status and window now, the token's lifetime against the policy.
 */

/** Tolerated clock difference between the token issuer and this node. */
export const TOKEN_SKEW_S = 300;
const MAX_TOKEN_CHARS = 8192;
const HEADER_MEMBERS = new Set(['alg', 'kid', 'typ']);

/** What the node's configuration decides about tokens (contract §7 v1.1). */
export interface TokenPolicy {
  /** Longest accepted lifetime, `exp - iat` (CORDON_TOKEN_MAX_TTL_S). */
  readonly maxTtlS: number;
}

export const DEFAULT_TOKEN_POLICY: TokenPolicy = Object.freeze({ maxTtlS: 43_200 });

function invalid(detail: string): CordonError {
  return new CordonError('TOKEN_INVALID', detail);
}

function decodeJson(part: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(b64uDecode(part).toString('utf8'));
  } catch {
    throw invalid('token is malformed');
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw invalid('token is malformed');
  return value as Record<string, unknown>;
}

/**
 * Why a token key may not vouch for anything at `nowMs`, or undefined when it may. Judged at the
 * time of use (contract §7 v1.1): the key must be active and inside its nbf/exp window now. A
 * token's own iat is the issuer's claim and cannot bring a retired or expired key back to life.
 */
export function tokenKeyProblem(key: TrustedKey | undefined, nowMs: number): string | undefined {
  if (!key || key.use !== 'token') return 'the token key is not in the trust store';
  if (key.status !== 'active') return `the token key is ${key.status}`;
  if (key.nbfMs !== undefined && nowMs < key.nbfMs) return 'the token key is not yet valid';
  if (key.expMs !== undefined && nowMs >= key.expMs) return 'the token key has expired';
  return undefined;
}

/** Verifies a desk or ops token now; returns its claims. */
export function verifyToken(compact: string, store: TrustStore, nowMs: number, policy: TokenPolicy = DEFAULT_TOKEN_POLICY): Token {
  return verifyTokenKey(compact, store, nowMs, policy).token;
}

/** As verifyToken, and names the key that signed it (live sessions end when that key stops being active). */
export function verifyTokenKey(compact: string, store: TrustStore, nowMs: number, policy: TokenPolicy = DEFAULT_TOKEN_POLICY): { token: Token; kid: string } {
  if (typeof compact !== 'string' || compact.length > MAX_TOKEN_CHARS) throw invalid('token is malformed');
  const parts = compact.split('.');
  if (parts.length !== 3) throw invalid('token is malformed');
  const [h, p, s] = parts as [string, string, string];

  const header = decodeJson(h);
  if (header.alg !== 'Ed25519' || typeof header.kid !== 'string') throw invalid('token header is not accepted');
  if (header.typ !== undefined && header.typ !== 'JWT') throw invalid('token header is not accepted');
  for (const name of Object.keys(header)) if (!HEADER_MEMBERS.has(name)) throw invalid('token header is not accepted');

  const claims = decodeJson(p);
  if (!validator('token-claims')(claims)) throw invalid('token claims are invalid');
  const c = claims as unknown as Token & { aud: string | string[]; nbf?: number };

  const key = store.tokenKey(header.kid);
  if (!key || key.state !== c.iss) throw invalid('token is not signed by a trusted token key');
  let sig: Buffer;
  try {
    sig = b64uDecode(s);
  } catch {
    throw invalid('token is malformed');
  }
  // Sync is fine here: a token is verified once per request or connection, not per alert.
  if (sig.length !== 64 || !cryptoVerify(null, Buffer.from(h + '.' + p, 'ascii'), key.key, sig)) {
    throw invalid('token signature does not verify');
  }

  const nowS = nowMs / 1000;
  if (c.exp <= nowS) throw invalid('token has expired');
  if (c.iat > nowS + TOKEN_SKEW_S || (c.nbf !== undefined && c.nbf > nowS + TOKEN_SKEW_S)) throw invalid('token is not yet valid');
  if (c.exp <= c.iat) throw invalid('token claims are invalid');
  if (c.exp - c.iat > policy.maxTtlS) throw invalid('token lifetime exceeds the maximum');
  // The same generic detail for every key problem: a caller learns nothing about the store.
  if (tokenKeyProblem(key, nowMs) !== undefined) throw invalid('token is not signed by a trusted token key');

  const token: Token = { iss: c.iss, sub: c.sub, aud: 'cordon', iat: c.iat, exp: c.exp, role: c.role, clearance: c.clearance };
  if (c.regions) token.regions = [...c.regions];
  return { token, kid: key.kid };
}

/** Issues a token as a state's token service would (the CLI and tests use it). */
export function issueToken(claims: Omit<Token, 'aud' | 'iat'> & { iat?: number }, key: { privateKey: KeyObject; kid: string }): string {
  const header = b64uEncode(JSON.stringify({ alg: 'Ed25519', kid: key.kid, typ: 'JWT' }));
  const body: Record<string, unknown> = {
    iss: claims.iss,
    sub: claims.sub,
    aud: 'cordon',
    iat: claims.iat ?? Math.floor(Date.now() / 1000),
    exp: claims.exp,
    role: claims.role,
    clearance: claims.clearance,
  };
  if (claims.regions) body.regions = claims.regions;
  const payload = b64uEncode(JSON.stringify(body));
  const sig = cryptoSign(null, Buffer.from(header + '.' + payload, 'ascii'), key.privateKey);
  return `${header}.${payload}.${b64uEncode(sig)}`;
}
