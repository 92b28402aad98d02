import { sign as cryptoSign } from 'node:crypto';
import { CordonError } from '../../src/errors';
import { b64uEncode } from '../../src/domain/base64url';
import { DEFAULT_TOKEN_POLICY, issueToken, tokenKeyProblem, verifyToken, verifyTokenKey } from '../../src/domain/tokens';
import { TrustStore } from '../../src/domain/trust-store';
import { keyEntry, makeKeyPair, makeTestTrust, type TestKey } from '../helpers/keys';

const NOW_MS = Date.now();
const NOW_S = Math.floor(NOW_MS / 1000);
const trust = makeTestTrust(['KG', 'KZ']);

function handMade(header: object, claims: object, key: TestKey): string {
  const h = b64uEncode(JSON.stringify(header));
  const p = b64uEncode(JSON.stringify(claims));
  return `${h}.${p}.${b64uEncode(cryptoSign(null, Buffer.from(`${h}.${p}`), key.privateKey))}`;
}

const baseClaims = { iss: 'KG', sub: 'desk-bishkek', aud: 'cordon', iat: NOW_S, exp: NOW_S + 3600, role: 'desk', clearance: 'restricted' };

function rejection(compact: string, store = trust.store, nowMs = NOW_MS): CordonError | undefined {
  try {
    verifyToken(compact, store, nowMs);
    return undefined;
  } catch (err) {
    if (err instanceof CordonError) return err;
    throw err;
  }
}

describe('verifyToken', () => {
  test('returns the claims of a token issued by the state token key', () => {
    const compact = trust.token({ iss: 'KZ', sub: 'desk-almaty', clearance: 'confidential', regions: ['KZ-KG-01'], iat: NOW_S, exp: NOW_S + 60 });
    expect(verifyToken(compact, trust.store, NOW_MS)).toEqual({
      iss: 'KZ',
      sub: 'desk-almaty',
      aud: 'cordon',
      iat: NOW_S,
      exp: NOW_S + 60,
      role: 'desk',
      clearance: 'confidential',
      regions: ['KZ-KG-01'],
    });
  });

  test('accepts aud as an array containing "cordon"', () => {
    const compact = handMade({ alg: 'Ed25519', kid: trust.tokenKey('KG').kid }, { ...baseClaims, aud: ['other', 'cordon'] }, trust.tokenKey('KG'));
    expect(verifyToken(compact, trust.store, NOW_MS).aud).toBe('cordon');
  });

  const kgTok = (): TestKey => trust.tokenKey('KG');
  const cases: [string, () => string][] = [
    ['alg EdDSA', () => handMade({ alg: 'EdDSA', kid: kgTok().kid }, baseClaims, kgTok())],
    ['alg none with no signature', () => `${b64uEncode('{"alg":"none"}')}.${b64uEncode(JSON.stringify(baseClaims))}.`],
    ['a jwk header member', () => handMade({ alg: 'Ed25519', kid: kgTok().kid, jwk: kgTok().jwk }, baseClaims, kgTok())],
    ['an unknown kid', () => handMade({ alg: 'Ed25519', kid: makeKeyPair().kid }, baseClaims, kgTok())],
    ['an alert key', () => handMade({ alg: 'Ed25519', kid: trust.alertKey('KG').kid }, baseClaims, trust.alertKey('KG'))],
    ['a key of another state than iss', () => handMade({ alg: 'Ed25519', kid: trust.tokenKey('KZ').kid }, baseClaims, trust.tokenKey('KZ'))],
    ['a bad signature', () => handMade({ alg: 'Ed25519', kid: kgTok().kid }, baseClaims, makeKeyPair())],
    ['a wrong aud', () => handMade({ alg: 'Ed25519', kid: kgTok().kid }, { ...baseClaims, aud: 'other' }, kgTok())],
    ['an expired token', () => handMade({ alg: 'Ed25519', kid: kgTok().kid }, { ...baseClaims, exp: NOW_S - 1 }, kgTok())],
    ['an iat beyond the 5 min skew', () => handMade({ alg: 'Ed25519', kid: kgTok().kid }, { ...baseClaims, iat: NOW_S + 301, exp: NOW_S + 4000 }, kgTok())],
    ['an unknown role', () => handMade({ alg: 'Ed25519', kid: kgTok().kid }, { ...baseClaims, role: 'admin' }, kgTok())],
    ['an unknown clearance', () => handMade({ alg: 'Ed25519', kid: kgTok().kid }, { ...baseClaims, clearance: 'top' }, kgTok())],
    ['a missing sub', () => handMade({ alg: 'Ed25519', kid: kgTok().kid }, { ...baseClaims, sub: undefined }, kgTok())],
    ['an unknown claim', () => handMade({ alg: 'Ed25519', kid: kgTok().kid }, { ...baseClaims, admin: true }, kgTok())],
    ['two parts', () => trust.token().split('.').slice(0, 2).join('.')],
    ['padding in the signature', () => trust.token() + '=='],
    ['garbage', () => 'not-a-token'],
  ];
  test.each(cases)('rejects %s with TOKEN_INVALID (401)', (_name, make) => {
    const err = rejection(make());
    expect(err?.code).toBe('TOKEN_INVALID');
    expect(err?.status).toBe(401);
  });

  test('accepts iat within the 5 min skew', () => {
    expect(rejection(trust.token({ iat: NOW_S + 299, exp: NOW_S + 4000 }))).toBeUndefined();
  });

  test('the detail is short and generic', () => {
    expect(rejection(handMade({ alg: 'Ed25519', kid: makeKeyPair().kid }, baseClaims, kgTok()))?.message).toBe('token is not signed by a trusted token key');
  });

  describe("time of use (contract §7 v1.1): the key now, not at the token's iat", () => {
    const DAY_S = 86_400;
    const HUNDRED_YEARS_S = 100 * 365 * DAY_S;
    const key = makeKeyPair();
    const iso = (s: number): string => new Date(s * 1000).toISOString();
    const store = (o: object): TrustStore => TrustStore.fromJson({ states: { KG: { name: 'Kyrgyzstan', keys: [keyEntry(key, 'token', undefined, o)] } } });
    const tok = (iat: number, exp: number): string => issueToken({ iss: 'KG', sub: 'd', role: 'ops', clearance: 'secret', exp, iat }, key);
    const lax = { maxTtlS: 2 * HUNDRED_YEARS_S };

    test('attack: a key that expired yesterday, iat backdated into its window, a 100-year exp: rejected', () => {
      const s = store({ nbf: iso(NOW_S - 365 * DAY_S), exp: iso(NOW_S - DAY_S) });
      const forged = tok(NOW_S - 2 * DAY_S, NOW_S + HUNDRED_YEARS_S);
      expect(rejection(forged, s)?.code).toBe('TOKEN_INVALID');
      // Not only for its lifetime: with no lifetime bound at all the expired key still vouches for nothing.
      expect(() => verifyToken(forged, s, NOW_MS, lax)).toThrow('token is not signed by a trusted token key');
      // The same token from a key still in its window would pass that lax policy: the key decides.
      const fresh = store({ nbf: iso(NOW_S - 365 * DAY_S), exp: iso(NOW_S + DAY_S) });
      expect(verifyToken(forged, fresh, NOW_MS, lax).sub).toBe('d');
    });

    test('attack: a key retired an hour ago, iat backdated before retired_at, a 100-year exp: rejected', () => {
      const s = store({ status: 'retired', retired_at: iso(NOW_S - 3600) });
      const forged = tok(NOW_S - 7200, NOW_S + HUNDRED_YEARS_S);
      expect(rejection(forged, s)?.code).toBe('TOKEN_INVALID');
      expect(() => verifyToken(forged, s, NOW_MS, lax)).toThrow('token is not signed by a trusted token key');
    });

    test('a token of a retired key is refused even with an ordinary lifetime', () => {
      const s = store({ status: 'retired', retired_at: iso(NOW_S - 100) });
      expect(rejection(tok(NOW_S - 101, NOW_S + 3600), s)?.code).toBe('TOKEN_INVALID');
    });

    test('a revoked key accepts nothing, whatever its revoked_at says', () => {
      expect(rejection(tok(NOW_S - 200, NOW_S + 3600), store({ status: 'revoked', revoked_at: iso(NOW_S - 100) }))?.code).toBe('TOKEN_INVALID');
      expect(rejection(tok(NOW_S - 200, NOW_S + 3600), store({ status: 'revoked', revoked_at: iso(NOW_S + 100) }))?.code).toBe('TOKEN_INVALID');
    });

    test('a key not yet valid now is refused even for a token issued later than its nbf claims', () => {
      const s = store({ nbf: iso(NOW_S + DAY_S), exp: iso(NOW_S + 2 * DAY_S) });
      expect(rejection(tok(NOW_S, NOW_S + 3600), s)?.code).toBe('TOKEN_INVALID');
    });

    test('exp - iat may not exceed CORDON_TOKEN_MAX_TTL_S (default 12 h)', () => {
      const s = store({});
      expect(DEFAULT_TOKEN_POLICY.maxTtlS).toBe(43_200);
      expect(rejection(tok(NOW_S, NOW_S + 43_200), s)).toBeUndefined();
      expect(rejection(tok(NOW_S, NOW_S + 43_201), s)?.message).toBe('token lifetime exceeds the maximum');
      // A backdated iat does not help: the lifetime is exp - iat.
      expect(rejection(tok(NOW_S - 43_000, NOW_S + 1000), s)?.code).toBe('TOKEN_INVALID');
      // The configured bound applies.
      expect(() => verifyToken(tok(NOW_S, NOW_S + 7200), s, NOW_MS, { maxTtlS: 3600 })).toThrow('token lifetime exceeds the maximum');
      expect(verifyToken(tok(NOW_S, NOW_S + 3600), s, NOW_MS, { maxTtlS: 3600 }).exp).toBe(NOW_S + 3600);
    });

    test('verifyTokenKey names the key that signed the token', () => {
      expect(verifyTokenKey(tok(NOW_S, NOW_S + 60), store({}), NOW_MS).kid).toBe(key.kid);
    });
  });

  describe('tokenKeyProblem', () => {
    const key = makeKeyPair();
    const at = (o: object) => TrustStore.fromJson({ states: { KG: { name: 'Kyrgyzstan', keys: [keyEntry(key, 'token', undefined, o)] } } }).tokenKey(key.kid);
    test.each<[string, object, string | undefined]>([
      ['active, in its window', {}, undefined],
      ['retired', { status: 'retired', retired_at: new Date(NOW_MS - 1).toISOString() }, 'the token key is retired'],
      ['revoked', { status: 'revoked', revoked_at: new Date(NOW_MS - 1).toISOString() }, 'the token key is revoked'],
      ['past its exp', { exp: new Date(NOW_MS).toISOString() }, 'the token key has expired'],
      ['before its nbf', { nbf: new Date(NOW_MS + 1).toISOString() }, 'the token key is not yet valid'],
    ])('%s', (_name, over, problem) => {
      expect(tokenKeyProblem(at(over), NOW_MS)).toBe(problem);
    });
    test('a key missing from the store', () => {
      expect(tokenKeyProblem(undefined, NOW_MS)).toBe('the token key is not in the trust store');
    });
  });
});
