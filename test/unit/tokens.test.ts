import { sign as cryptoSign } from 'node:crypto';
import { CordonError } from '../../src/errors';
import { b64uEncode } from '../../src/domain/base64url';
import { issueToken, verifyToken } from '../../src/domain/tokens';
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
    expect(rejection(handMade({ alg: 'Ed25519', kid: makeKeyPair().kid }, baseClaims, kgTok()))?.message).toBe(
      'token is not signed by a trusted token key',
    );
  });

  describe('token key status', () => {
    const key = makeKeyPair();
    const iso = (s: number): string => new Date(s * 1000).toISOString();
    const store = (o: object): TrustStore => TrustStore.fromJson({ states: { KG: { name: 'Kyrgyzstan', keys: [keyEntry(key, 'token', undefined, o)] } } });
    const tok = (iat: number): string => issueToken({ iss: 'KG', sub: 'd', role: 'ops', clearance: 'secret', exp: NOW_S + 3600, iat }, key);

    test('a retired key accepts tokens issued before retired_at only', () => {
      const s = store({ status: 'retired', retired_at: iso(NOW_S - 100) });
      expect(rejection(tok(NOW_S - 101), s)).toBeUndefined();
      expect(rejection(tok(NOW_S - 100), s)?.code).toBe('TOKEN_INVALID');
    });

    test('a revoked key accepts nothing from revoked_at on', () => {
      const s = store({ status: 'revoked', revoked_at: iso(NOW_S - 100) });
      expect(rejection(tok(NOW_S - 200), s)?.code).toBe('TOKEN_INVALID');
    });
  });
});
