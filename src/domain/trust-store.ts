import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { fieldErrors, validator } from './schemas';

/**
 * The trust store (contract §4): the only source of keys. Loaded once at start-up; every key is
 * parsed into a KeyObject here so that verification never re-parses key material.
 */

export interface PublicJwk {
  kty: 'OKP';
  crv: 'Ed25519';
  x: string;
}

export type KeyUse = 'alert' | 'token' | 'witness';
export type KeyStatus = 'active' | 'retired' | 'revoked';

export interface TrustedKey {
  readonly kid: string;
  readonly state: string;
  readonly use: KeyUse;
  readonly key: KeyObject;
  /** the 32 raw public-key bytes, for libsodium. */
  readonly raw: Buffer;
  readonly regions?: ReadonlySet<string>;
  readonly nbfMs?: number;
  readonly expMs?: number;
  readonly status: KeyStatus;
  readonly retiredAtMs?: number;
  readonly revokedAtMs?: number;
  /** witness keys: note key name and tlog-witness URL (contract §4, §12). */
  readonly name?: string;
  readonly url?: string;
}

/** One key entry as the file (and GET /v1/trust) writes it. */
export interface TrustStoreKeyJson {
  kid: string;
  use: KeyUse;
  jwk: PublicJwk;
  regions?: string[];
  nbf?: string;
  exp?: string;
  status: KeyStatus;
  retired_at?: string;
  revoked_at?: string;
  name?: string;
  url?: string;
}

export interface TrustStoreJson {
  states: Record<string, { name: string; keys: TrustStoreKeyJson[] }>;
}

/** RFC 7638 thumbprint (SHA-256, base64url) of an OKP public key: members crv, kty, x in that order. */
export function jwkThumbprint(jwk: { kty: string; crv: string; x: string }): string {
  const canonical = JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x });
  return createHash('sha256').update(canonical, 'utf8').digest('base64url');
}

export class TrustStore {
  private constructor(
    private readonly byKid: ReadonlyMap<string, TrustedKey>,
    private readonly publicJson: TrustStoreJson,
  ) {}

  /** Validates a parsed trust store; throws a plain Error naming the problem (it is config). */
  static fromJson(value: unknown): TrustStore {
    const validate = validator('trust-store');
    if (!validate(value)) {
      const problems = fieldErrors(validate.errors).map((e) => `${e.path} ${e.message}`);
      throw new Error(`invalid trust store: ${problems.join('; ')}`);
    }
    const doc = value as TrustStoreJson;
    const byKid = new Map<string, TrustedKey>();
    const publicJson: TrustStoreJson = { states: {} };
    for (const [state, entry] of Object.entries(doc.states)) {
      const keys: TrustStoreKeyJson[] = [];
      entry.keys.forEach((k, i) => {
        const where = `/states/${state}/keys/${i}`;
        const thumb = jwkThumbprint(k.jwk);
        if (thumb !== k.kid) throw new Error(`invalid trust store: ${where} kid ${k.kid} is not the RFC 7638 thumbprint of its jwk (${thumb})`);
        if (byKid.has(k.kid)) throw new Error(`invalid trust store: ${where} duplicate kid ${k.kid}`);
        let key: KeyObject;
        try {
          key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: k.jwk.x }, format: 'jwk' });
        } catch (err) {
          throw new Error(`invalid trust store: ${where} jwk is not a usable Ed25519 public key`, { cause: err });
        }
        if (key.asymmetricKeyType !== 'ed25519') throw new Error(`invalid trust store: ${where} key is not Ed25519`);
        const nbfMs = instant(k.nbf, `${where}/nbf`);
        const expMs = instant(k.exp, `${where}/exp`);
        if (nbfMs !== undefined && expMs !== undefined && expMs <= nbfMs) {
          throw new Error(`invalid trust store: ${where} exp is not after nbf`);
        }
        byKid.set(
          k.kid,
          Object.freeze({
            kid: k.kid,
            state,
            use: k.use,
            key,
            raw: Buffer.from(k.jwk.x, 'base64url'),
            regions: k.regions ? new Set(k.regions) : undefined,
            nbfMs,
            expMs,
            status: k.status,
            retiredAtMs: instant(k.retired_at, `${where}/retired_at`),
            revokedAtMs: instant(k.revoked_at, `${where}/revoked_at`),
            ...(k.name !== undefined ? { name: k.name } : {}),
            ...(k.url !== undefined ? { url: k.url } : {}),
          }),
        );
        keys.push(publicEntry(k));
      });
      publicJson.states[state] = { name: entry.name, keys };
    }
    return new TrustStore(byKid, deepFreeze(publicJson));
  }

  /** A key that may sign alerts, or undefined (unknown kid, or a token key). */
  alertKey(kid: string): TrustedKey | undefined {
    const k = this.byKid.get(kid);
    return k?.use === 'alert' ? k : undefined;
  }

  /** A key that may sign desk and ops tokens, or undefined. */
  tokenKey(kid: string): TrustedKey | undefined {
    const k = this.byKid.get(kid);
    return k?.use === 'token' ? k : undefined;
  }

  /** Active witness keys (contract §12): their cosignatures count, and those with a url get checkpoints. */
  witnesses(): TrustedKey[] {
    return [...this.byKid.values()].filter((k) => k.use === 'witness' && k.status === 'active');
  }

  states(): string[] {
    return Object.keys(this.publicJson.states);
  }

  /**
   * What an operator most likely got wrong between this store and the region registry: alert keys
   * naming a region the registry does not know (such a key signs nothing that is accepted), and
   * alert keys of a state that is not a member of a region they name. One line per finding.
   */
  mismatches(region: (code: string) => { states: readonly string[] } | undefined): string[] {
    const out: string[] = [];
    for (const k of this.byKid.values()) {
      if (k.use !== 'alert') continue;
      for (const code of k.regions ?? []) {
        const r = region(code);
        if (!r) out.push(`alert key ${k.kid} of ${k.state} names region ${code}, which the region registry does not list`);
        else if (!r.states.includes(k.state)) out.push(`alert key ${k.kid} of ${k.state} names region ${code}, whose member states are ${r.states.join(', ')}`);
      }
    }
    return out;
  }

  /** What GET /v1/trust returns: the whole store, rebuilt member by member from validated fields. */
  publicView(): TrustStoreJson {
    return this.publicJson;
  }
}

/**
 * A private key file as `cordon keygen` and the development trust store write it: the private
 * JWK with its kid and, under `cordon`, what the key is for (so tools need no trust store).
 */
export interface PrivateKeyJwk {
  kty: 'OKP';
  crv: 'Ed25519';
  x: string;
  d: string;
  kid: string;
  cordon?: { state: string; use: KeyUse; regions?: string[] };
}

/** A private key ready to sign, with what its file says about it. */
export interface SigningKey {
  privateKey: KeyObject;
  kid: string;
  state?: string;
  use?: KeyUse;
  regions?: string[];
}

/** A fresh Ed25519 key: its private file and its trust-store entry (kid = RFC 7638 thumbprint). */
export function generateTrustedKey(opts: { state: string; use: KeyUse; regions?: string[]; nbf?: Date; exp?: Date }): {
  privateJwk: PrivateKeyJwk;
  entry: TrustStoreKeyJson;
} {
  const { privateKey } = generateKeyPairSync('ed25519');
  const { x, d } = privateKey.export({ format: 'jwk' }) as { x: string; d: string };
  const jwk: PublicJwk = { kty: 'OKP', crv: 'Ed25519', x };
  const kid = jwkThumbprint(jwk);
  const entry = { kid, use: opts.use, jwk } as TrustStoreKeyJson;
  if (opts.use === 'alert') entry.regions = [...(opts.regions ?? [])];
  if (opts.nbf) entry.nbf = opts.nbf.toISOString();
  if (opts.exp) entry.exp = opts.exp.toISOString();
  entry.status = 'active';
  const cordon: PrivateKeyJwk['cordon'] = { state: opts.state, use: opts.use };
  if (opts.use === 'alert') cordon.regions = [...(opts.regions ?? [])];
  return { privateJwk: { kty: 'OKP', crv: 'Ed25519', x, d, kid, cordon }, entry };
}

/** Parses a private key file; the kid is recomputed from the key, never taken on trust. */
export function signingKeyFromJwk(value: unknown): SigningKey {
  const v = value as Partial<PrivateKeyJwk> | null;
  if (!v || typeof v !== 'object' || v.kty !== 'OKP' || v.crv !== 'Ed25519' || typeof v.x !== 'string' || typeof v.d !== 'string') {
    throw new Error('not an Ed25519 private JWK (need kty "OKP", crv "Ed25519", x and d)');
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey({ key: { kty: 'OKP', crv: 'Ed25519', x: v.x, d: v.d }, format: 'jwk' });
  } catch (err) {
    throw new Error('the private JWK is not a usable Ed25519 key', { cause: err });
  }
  // x must belong to d, or the kid would name someone else's key.
  const { x } = createPublicKey(privateKey).export({ format: 'jwk' }) as { x: string };
  if (x !== v.x) throw new Error('the private JWK x does not match its d');
  const kid = jwkThumbprint({ kty: 'OKP', crv: 'Ed25519', x });
  if (v.kid !== undefined && v.kid !== kid) throw new Error(`the private JWK kid ${String(v.kid)} is not its thumbprint ${kid}`);
  const key: SigningKey = { privateKey, kid };
  if (v.cordon && typeof v.cordon === 'object') {
    if (typeof v.cordon.state === 'string') key.state = v.cordon.state;
    if (v.cordon.use === 'alert' || v.cordon.use === 'token') key.use = v.cordon.use;
    if (Array.isArray(v.cordon.regions)) key.regions = v.cordon.regions.filter((r): r is string => typeof r === 'string');
  }
  return key;
}

function instant(value: string | undefined, where: string): number | undefined {
  if (value === undefined) return undefined;
  const ms = Date.parse(value);
  if (!Number.isFinite(ms)) throw new Error(`invalid trust store: ${where} is not a date-time`);
  return ms;
}

// Copy only the members the contract names, so nothing else in the file can ever be served.
function publicEntry(k: TrustStoreKeyJson): TrustStoreKeyJson {
  const out = { kid: k.kid, use: k.use, jwk: { kty: 'OKP', crv: 'Ed25519', x: k.jwk.x } } as TrustStoreKeyJson;
  if (k.regions) out.regions = [...k.regions];
  if (k.nbf !== undefined) out.nbf = k.nbf;
  if (k.exp !== undefined) out.exp = k.exp;
  out.status = k.status;
  if (k.retired_at !== undefined) out.retired_at = k.retired_at;
  if (k.revoked_at !== undefined) out.revoked_at = k.revoked_at;
  if (k.name !== undefined) out.name = k.name;
  if (k.url !== undefined) out.url = k.url;
  return out;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
