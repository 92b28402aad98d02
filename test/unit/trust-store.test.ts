import { generateKeyPairSync } from 'node:crypto';
import { calculateJwkThumbprint } from 'jose';
import { jwkThumbprint, TrustStore } from '../../src/domain/trust-store';
import { keyEntry, makeKeyPair, makeTestTrust } from '../helpers/keys';

describe('jwkThumbprint', () => {
  test('equals jose calculateJwkThumbprint (RFC 7638, SHA-256) for Ed25519 keys', async () => {
    for (let i = 0; i < 5; i++) {
      const k = makeKeyPair();
      expect(jwkThumbprint(k.jwk)).toBe(await calculateJwkThumbprint(k.jwk, 'sha256'));
    }
  });

  test('matches the RFC 8037 Appendix A.3 example thumbprint', () => {
    const jwk = { kty: 'OKP', crv: 'Ed25519', x: '11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo' };
    expect(jwkThumbprint(jwk)).toBe('kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k');
  });
});

describe('TrustStore.fromJson', () => {
  const a = makeKeyPair();
  const t = makeKeyPair();
  const valid = (): { states: Record<string, { name: string; keys: unknown[] }> } => ({
    states: { KZ: { name: 'Kazakhstan', keys: [keyEntry(a, 'alert', ['KZ-KG-01', 'KZ-CN-01']), keyEntry(t, 'token')] } },
  });

  test('indexes alert and token keys by kid with parsed KeyObjects, state and times', () => {
    const store = TrustStore.fromJson(valid());
    const k = store.alertKey(a.kid);
    expect(k?.state).toBe('KZ');
    expect(k?.use).toBe('alert');
    expect(k?.key.asymmetricKeyType).toBe('ed25519');
    expect([...(k?.regions ?? [])]).toEqual(['KZ-KG-01', 'KZ-CN-01']);
    expect(typeof k?.nbfMs).toBe('number');
    expect(store.tokenKey(t.kid)?.use).toBe('token');
    expect(store.states()).toEqual(['KZ']);
  });

  test("names alert keys for regions the registry does not list or whose members exclude the key's state", () => {
    const store = TrustStore.fromJson(valid());
    const registry: Record<string, { states: string[] }> = { 'KZ-KG-01': { states: ['KZ', 'KG'] }, 'KZ-CN-01': { states: ['KZ', 'CN'] } };
    expect(store.mismatches((c) => registry[c])).toEqual([]);
    delete registry['KZ-CN-01'];
    registry['KZ-KG-01'] = { states: ['KG', 'CN'] };
    expect(store.mismatches((c) => registry[c])).toEqual([
      `alert key ${a.kid} of KZ names region KZ-KG-01, whose member states are KG, CN`,
      `alert key ${a.kid} of KZ names region KZ-CN-01, which the region registry does not list`,
    ]);
  });

  test('alertKey and tokenKey do not hand out a key of the other use', () => {
    const store = TrustStore.fromJson(valid());
    expect(store.alertKey(t.kid)).toBeUndefined();
    expect(store.tokenKey(a.kid)).toBeUndefined();
    expect(store.alertKey('nope')).toBeUndefined();
  });

  test('rejects a kid that is not the thumbprint of its jwk, naming it', () => {
    const doc = valid();
    (doc.states.KZ.keys[0] as { kid: string }).kid = t.kid === a.kid ? 'x' : makeKeyPair().kid;
    expect(() => TrustStore.fromJson(doc)).toThrow(/\/states\/KZ\/keys\/0 kid .* is not the RFC 7638 thumbprint/);
  });

  test('rejects a duplicate kid, even across states', () => {
    const doc = valid();
    doc.states.KG = { name: 'Kyrgyzstan', keys: [keyEntry(t, 'token')] };
    expect(() => TrustStore.fromJson(doc)).toThrow(/duplicate kid/);
  });

  test('rejects a non-Ed25519 key', () => {
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' });
    const doc = valid();
    doc.states.KZ.keys.push({ kid: a.kid, use: 'token', jwk: ec, status: 'active' });
    expect(() => TrustStore.fromJson(doc)).toThrow(/invalid trust store: .*jwk/);
    const ed448 = { kty: 'OKP', crv: 'Ed448', x: 'X'.repeat(57) };
    doc.states.KZ.keys[2] = { kid: a.kid, use: 'token', jwk: ed448, status: 'active' };
    expect(() => TrustStore.fromJson(doc)).toThrow(/crv/);
  });

  test('rejects a private key member in the store', () => {
    const doc = valid();
    const d = (a.privateKey.export({ format: 'jwk' }) as { d: string }).d;
    (doc.states.KZ.keys[0] as { jwk: object }).jwk = { ...a.jwk, d };
    expect(() => TrustStore.fromJson(doc)).toThrow(/jwk\/d is not allowed/);
  });

  test.each([
    ['an alert key without regions', { regions: undefined }, /regions is required/],
    ['a retired key without retired_at', { status: 'retired' }, /retired_at is required/],
    ['a revoked key without revoked_at', { status: 'revoked' }, /revoked_at is required/],
    ['an unknown status', { status: 'paused' }, /status must be equal to one of the allowed values/],
    ['a bad date', { nbf: 'yesterday' }, /nbf must match format/],
    ['exp before nbf', { nbf: '2026-02-01T00:00:00Z', exp: '2026-01-01T00:00:00Z' }, /exp is not after nbf/],
  ])('rejects %s', (_name, overrides, message) => {
    const doc = valid();
    doc.states.KZ.keys[0] = JSON.parse(JSON.stringify(keyEntry(a, 'alert', ['KZ-KG-01'], overrides as object)));
    expect(() => TrustStore.fromJson(doc)).toThrow(message);
  });

  test('rejects unknown top-level and key members and lowercase state codes', () => {
    expect(() => TrustStore.fromJson({ ...valid(), extra: 1 })).toThrow(/extra is not allowed/);
    expect(() => TrustStore.fromJson({ states: { kz: valid().states.KZ } })).toThrow(/invalid trust store/);
  });

  test('publicView is the contract shape with only the contract members', () => {
    const doc = valid();
    const store = TrustStore.fromJson(doc);
    expect(store.publicView()).toEqual(JSON.parse(JSON.stringify(doc)));
    const entry = store.publicView().states.KZ.keys[0];
    expect(Object.keys(entry)).toEqual(['kid', 'use', 'jwk', 'regions', 'nbf', 'exp', 'status']);
    expect(Object.isFrozen(entry)).toBe(true);
    // publicView re-validates as a trust store, so a recipient can load it as one
    expect(TrustStore.fromJson(JSON.parse(JSON.stringify(store.publicView()))).alertKey(a.kid)).toBeDefined();
  });

  test('the test helper builds a store with one alert and one token key per state', () => {
    const trust = makeTestTrust(['KG', 'CN']);
    expect(trust.store.states()).toEqual(['KG', 'CN']);
    expect([...trust.store.alertKey(trust.alertKey('CN').kid)!.regions!]).toEqual(['KG-CN-01', 'KZ-CN-01']);
    expect(trust.store.tokenKey(trust.tokenKey('KG').kid)?.state).toBe('KG');
  });
});
