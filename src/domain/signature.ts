import { createHash, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { CordonError } from '../errors';
import { b64uDecode, b64uEncode } from './base64url';
import { verifyEd25519, type Ed25519PublicKey } from './ed25519';
import { canonicalBytes, canonicalize } from './jcs';
import { fieldErrors, validator } from './schemas';
import type { TrustStore } from './trust-store';
import type { AlertContent, ProtectedHeader, Submission } from './types';

/**
 * Submission signatures (contract §3): a flattened JWS with a detached payload, the payload being
 * the RFC 8785 form of `content`. Pure apart from the clock the caller passes in.
 */

export interface VerifiedSubmission {
  kid: string;
  iat: number;
  state: string;
  /** base64url SHA-256 of payload: the identity of this exact content. */
  contentHash: string;
  /** the payload: the RFC 8785 form of content (the transparency log's leaf is built from it). */
  canonical: Buffer;
}

export interface VerifyOptions {
  nowMs: number;
  /** iat may be at most this old (contract default 24 h). */
  maxAgeS: number;
  /** iat may be at most this far in the future (contract default 5 min). */
  maxSkewS: number;
  /**
   * The signature check done elsewhere (worker threads, src/ingest/verify-pool.ts) from the
   * submission's bytes as received; without it, it runs here on the event loop.
   */
  offload?: { raw: Buffer; check: SubmissionCheck };
}

export type SubmissionCheckResult = { outcome: 'valid'; contentHash: string; canonical: Buffer } | { outcome: 'invalid' | 'uncanonical' };

/**
 * From a submission's bytes: the RFC 8785 form of content, its hash, and the Ed25519 check over
 * the signing input with `key`, as verifySubmission does them.
 */
export type SubmissionCheck = (raw: Buffer, key: Ed25519PublicKey) => Promise<SubmissionCheckResult>;

const FORBIDDEN_HEADER_PARAMS = ['jwk', 'jku', 'x5u', 'x5c', 'x5t', 'x5t#S256', 'crit', 'b64'];
// alg, kid, typ, iat and the three string values: any more strings means a repeated member.
const HEADER_STRING_TOKENS = 7;
const STRING_TOKEN = /"(?:[^"\\]|\\.)*"/g;

function headerInvalid(detail: string, errors?: ReturnType<typeof fieldErrors>): CordonError {
  return new CordonError('SIGNATURE_HEADER_INVALID', detail, { errors });
}

/** Decodes and checks the protected header: exactly alg, kid, typ, iat, with alg pinned. */
export function decodeProtectedHeader(protectedB64: string): ProtectedHeader {
  if (typeof protectedB64 !== 'string' || protectedB64.length > 2048) throw headerInvalid('protected header is missing or too long');
  let text: string;
  let header: unknown;
  try {
    text = b64uDecode(protectedB64).toString('utf8');
    header = JSON.parse(text);
  } catch {
    throw headerInvalid('protected header is not base64url-encoded JSON');
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) {
    throw headerInvalid('protected header is not a JSON object');
  }
  const h = header as Record<string, unknown>;
  const forbidden = FORBIDDEN_HEADER_PARAMS.filter((p) => Object.prototype.hasOwnProperty.call(h, p));
  if (forbidden.length > 0) throw headerInvalid(`protected header carries forbidden parameter ${forbidden.join(', ')}`);
  if (h.alg !== 'Ed25519') throw headerInvalid('alg must be "Ed25519"');
  const validate = validator('protected-header');
  if (!validate(header)) {
    throw headerInvalid('protected header must be exactly {alg, kid, typ: "cordon-alert+jws", iat}', fieldErrors(validate.errors, '/sig/protected'));
  }
  // JSON.parse keeps the last of repeated members; another verifier might keep the first.
  if ((text.match(STRING_TOKEN)?.length ?? 0) !== HEADER_STRING_TOKENS) throw headerInvalid('protected header repeats a member');
  return header as ProtectedHeader;
}

/**
 * Verifies a submission against the trust store. Check order (and so the code a caller sees)
 * follows the contract: header, key, signature, key authorisation, iat window, key validity.
 */
export async function verifySubmission(sub: Submission, store: TrustStore, opts: VerifyOptions): Promise<VerifiedSubmission> {
  const header = decodeProtectedHeader(sub.sig?.protected);
  const key = store.alertKey(header.kid);
  if (!key) throw new CordonError('SIGNATURE_KEY_UNKNOWN', 'kid is not an alert key in the trust store');

  let sig: Buffer;
  try {
    sig = b64uDecode(sub.sig.signature);
  } catch {
    throw new CordonError('SIGNATURE_INVALID', 'signature is not base64url');
  }
  if (sig.length !== 64) throw new CordonError('SIGNATURE_INVALID', 'an Ed25519 signature is 64 bytes');
  const checked = opts.offload ? await opts.offload.check(opts.offload.raw, key) : await checkHere(sub, key, sig);
  if (checked.outcome === 'uncanonical') throw new CordonError('SUBMISSION_INVALID', 'content cannot be canonicalised (RFC 8785)');
  if (checked.outcome !== 'valid') {
    throw new CordonError('SIGNATURE_INVALID', 'signature does not verify over the JCS form of content');
  }

  const content = sub.content;
  if (key.state !== content.issuer?.state) {
    throw new CordonError('KEY_NOT_AUTHORISED', `key belongs to ${key.state}, content.issuer.state is ${String(content.issuer?.state)}`);
  }
  if (!key.regions?.has(content.region)) {
    throw new CordonError('KEY_NOT_AUTHORISED', `key may not sign for region ${String(content.region)}`);
  }

  const nowS = opts.nowMs / 1000;
  const iat = header.iat;
  if (iat < nowS - opts.maxAgeS || iat > nowS + opts.maxSkewS) {
    throw new CordonError('SIGNATURE_IAT_OUT_OF_WINDOW', `iat must be within ${opts.maxAgeS} s before and ${opts.maxSkewS} s after now`, {
      extra: { now: Math.floor(nowS) },
    });
  }

  const iatMs = iat * 1000;
  if (key.nbfMs !== undefined && iatMs < key.nbfMs) throw new CordonError('KEY_NOT_VALID', 'key is not yet valid at iat');
  if (key.expMs !== undefined && iatMs >= key.expMs) throw new CordonError('KEY_NOT_VALID', 'key has expired at iat');
  if (key.status === 'retired' && !(key.retiredAtMs !== undefined && iatMs < key.retiredAtMs)) {
    throw new CordonError('KEY_NOT_VALID', 'key is retired and signs no new alerts');
  }
  if (key.status === 'revoked' && !(key.revokedAtMs !== undefined && opts.nowMs < key.revokedAtMs)) {
    throw new CordonError('KEY_NOT_VALID', 'key is revoked');
  }

  return { kid: key.kid, iat, state: key.state, contentHash: checked.contentHash, canonical: checked.canonical };
}

/** The check on the event loop: RFC 8785 form, Ed25519 (verifyEd25519), content hash. */
async function checkHere(sub: Submission, key: Ed25519PublicKey, sig: Buffer): Promise<SubmissionCheckResult> {
  let payload: Buffer;
  try {
    payload = canonicalBytes(sub.content);
  } catch {
    return { outcome: 'uncanonical' };
  }
  const signingInput = Buffer.from(sub.sig.protected + '.' + payload.toString('base64url'), 'ascii');
  if (!(await verifyEd25519(signingInput, key, sig))) return { outcome: 'invalid' };
  return { outcome: 'valid', contentHash: contentHashOf(payload), canonical: payload };
}

/** The identity of a version's content: base64url SHA-256 of its JCS bytes (equal hash = identical version). */
export function contentHashOf(jcsPayload: Buffer | string): string {
  return createHash('sha256').update(jcsPayload).digest('base64url');
}

/** Signs content as a gateway does (the CLI and tests use it). */
export function signContent(content: AlertContent, key: { privateKey: KeyObject; kid: string }, iat: number = Math.floor(Date.now() / 1000)): Submission {
  const header: ProtectedHeader = { alg: 'Ed25519', kid: key.kid, typ: 'cordon-alert+jws', iat };
  const protectedB64 = b64uEncode(JSON.stringify(header));
  const payload = b64uEncode(canonicalize(content));
  const signature = cryptoSign(null, Buffer.from(protectedB64 + '.' + payload, 'ascii'), key.privateKey);
  return { content, sig: { protected: protectedB64, signature: b64uEncode(signature) } };
}
