import { createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { issueToken } from '../../src/domain/tokens';
import { signContent } from '../../src/domain/signature';
import { jwkThumbprint, TrustStore, type TrustStoreJson, type TrustStoreKeyJson } from '../../src/domain/trust-store';
import type { AlertContent, Submission, Token } from '../../src/domain/types';

/** In-memory keys and trust stores for tests: no files, fresh keys per call. */

export interface TestKey {
  privateKey: KeyObject;
  publicKey: KeyObject;
  kid: string;
  jwk: { kty: 'OKP'; crv: 'Ed25519'; x: string };
}

export function makeKeyPair(): TestKey {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const { x } = publicKey.export({ format: 'jwk' }) as { x: string };
  const jwk = { kty: 'OKP' as const, crv: 'Ed25519' as const, x };
  return { privateKey, publicKey, kid: jwkThumbprint(jwk), jwk };
}

const DAY_MS = 86_400_000;

/** A trust-store key entry for `key`; `overrides` replace or add members (e.g. status, retired_at). */
export function keyEntry(key: TestKey, use: 'alert' | 'token', regions?: string[], overrides: Partial<TrustStoreKeyJson> = {}): TrustStoreKeyJson {
  const now = Date.now();
  const entry: TrustStoreKeyJson = {
    kid: key.kid,
    use,
    jwk: key.jwk,
    nbf: new Date(now - 7 * DAY_MS).toISOString(),
    exp: new Date(now + 365 * DAY_MS).toISOString(),
    status: 'active',
  };
  if (use === 'alert') entry.regions = regions ?? [];
  return { ...entry, ...overrides };
}

export const TEST_REGIONS: readonly { code: string; states: string[] }[] = [
  { code: 'KG-CN-01', states: ['KG', 'CN'] },
  { code: 'KZ-KG-01', states: ['KZ', 'KG'] },
  { code: 'KZ-CN-01', states: ['KZ', 'CN'] },
];

export interface TestTrust {
  store: TrustStore;
  storeJson: TrustStoreJson;
  alertKey(state: string): TestKey;
  tokenKey(state: string): TestKey;
  /** Signs content with the alert key of `state` (default: content.issuer.state). */
  sign: (content: AlertContent, state?: string, iat?: number) => Submission;
  /** A token with defaults iss KG, sub desk-test, role desk, clearance secret, valid for an hour. */
  token(claims?: Partial<Omit<Token, 'aud'>>): string;
}

/**
 * A trust store with one alert key (for the regions that name the state) and one token key per
 * state, all active and valid from a week ago for a year.
 */
export function makeTestTrust(states: string[] = ['KG', 'KZ', 'CN'], regions: readonly { code: string; states: string[] }[] = TEST_REGIONS): TestTrust {
  const alert = new Map<string, TestKey>();
  const tok = new Map<string, TestKey>();
  const storeJson: TrustStoreJson = { states: {} };
  for (const state of states) {
    const a = makeKeyPair();
    const t = makeKeyPair();
    alert.set(state, a);
    tok.set(state, t);
    const mine = regions.filter((r) => r.states.includes(state)).map((r) => r.code);
    // An alert key must name at least one region; a state without one gets a placeholder.
    const alertRegions = mine.length > 0 ? mine : [`${state}-${state}-99`];
    storeJson.states[state] = { name: `State ${state}`, keys: [keyEntry(a, 'alert', alertRegions), keyEntry(t, 'token')] };
  }
  const store = TrustStore.fromJson(storeJson);
  const get = (m: Map<string, TestKey>, state: string): TestKey => {
    const k = m.get(state);
    if (!k) throw new Error(`no test key for state ${state}`);
    return k;
  };
  return {
    store,
    storeJson,
    alertKey: (state) => get(alert, state),
    tokenKey: (state) => get(tok, state),
    sign: (content, state, iat) => signContent(content, get(alert, state ?? content.issuer.state), iat),
    token: (claims = {}) => {
      const iss = claims.iss ?? 'KG';
      const now = Math.floor(Date.now() / 1000);
      return issueToken(
        {
          iss,
          sub: claims.sub ?? 'desk-test',
          role: claims.role ?? 'desk',
          clearance: claims.clearance ?? 'secret',
          exp: claims.exp ?? now + 3600,
          iat: claims.iat ?? now,
          ...(claims.regions ? { regions: claims.regions } : {}),
        },
        get(tok, iss),
      );
    },
  };
}

/** The public key of a private KeyObject (handy for jose interop tests). */
export function publicOf(privateKey: KeyObject): KeyObject {
  return createPublicKey(privateKey);
}
