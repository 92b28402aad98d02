import { sign as cryptoSign } from 'node:crypto';
import { CordonError } from '../../src/errors';
import { b64uEncode } from '../../src/domain/base64url';
import { canonicalize } from '../../src/domain/jcs';
import { contentHashOf, decodeProtectedHeader, signContent, verifySubmission } from '../../src/domain/signature';
import { TrustStore } from '../../src/domain/trust-store';
import type { AlertContent, Submission } from '../../src/domain/types';
import { keyEntry, makeKeyPair, makeTestTrust, type TestKey } from '../helpers/keys';

const NOW_MS = Date.now();
const NOW_S = Math.floor(NOW_MS / 1000);
const OPTS = { nowMs: NOW_MS, maxAgeS: 86_400, maxSkewS: 300 };

function content(overrides: Partial<AlertContent> = {}): AlertContent {
  const t = new Date(NOW_MS).toISOString();
  return {
    spec: 'cordon.alert/1',
    id: 'alert--0b7e6f1e-3c44-4b8e-9a51-2f0c1d9e8a77',
    created: t,
    modified: t,
    issuer: { state: 'KG', agency: 'kg-customs', gateway: 'kg-gw-1' },
    region: 'KG-CN-01',
    category: 'seizure',
    urgency: 'flash',
    title: 'Heroin seizure at Torugart, 40 kg — «Ӱ» 🚚',
    valid_from: t,
    grading: { scheme: 'europol-4x4', source: 'B', information: '2' },
    handling: { tlp: 'TLP:AMBER', codes: ['H2'], evidential_use: false, onward_sharing: 'with-permission' },
    audience: { states: ['KG', 'CN'], min_clearance: 'restricted' },
    retention: { expires: '2030-01-01' },
    location: { lat: 40.5167, lon: 75.3833 },
    ...overrides,
  };
}

/** A submission with an arbitrary protected header, signed correctly by `key`. */
function signWithHeader(c: AlertContent, key: TestKey, header: unknown): Submission {
  const protectedB64 = b64uEncode(typeof header === 'string' ? header : JSON.stringify(header));
  const input = protectedB64 + '.' + b64uEncode(canonicalize(c));
  return { content: c, sig: { protected: protectedB64, signature: b64uEncode(cryptoSign(null, Buffer.from(input), key.privateKey)) } };
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    if (err instanceof CordonError) return err.code;
    throw err;
  }
  return 'OK';
}

const trust = makeTestTrust();

describe('verifySubmission', () => {
  test('accepts a correctly signed submission and returns kid, state and the hash of the JCS payload', async () => {
    const c = content();
    const v = await verifySubmission(trust.sign(c, 'KG', NOW_S), trust.store, OPTS);
    expect(v.kid).toBe(trust.alertKey('KG').kid);
    expect(v.state).toBe('KG');
    expect(v.iat).toBe(NOW_S);
    expect(v.contentHash).toBe(contentHashOf(canonicalize(c)));
    expect(v.contentHash).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  test('the same content in another key order verifies with the same hash (JCS)', async () => {
    const c = content();
    const reordered = JSON.parse(JSON.stringify(Object.fromEntries(Object.entries(c).reverse()))) as AlertContent;
    const sub = trust.sign(c, 'KG', NOW_S);
    const a = await verifySubmission(sub, trust.store, OPTS);
    const b = await verifySubmission({ content: reordered, sig: sub.sig }, trust.store, OPTS);
    expect(b.contentHash).toBe(a.contentHash);
  });

  describe('SIGNATURE_HEADER_INVALID (401)', () => {
    const k = trust.alertKey('KG');
    const good = { alg: 'Ed25519', kid: k.kid, typ: 'cordon-alert+jws', iat: NOW_S };
    test.each([
      ['alg EdDSA', { ...good, alg: 'EdDSA' }],
      ['alg none', { ...good, alg: 'none' }],
      ['alg HS256', { ...good, alg: 'HS256' }],
      ['a jwk member', { ...good, jwk: k.jwk }],
      ['a jku member', { ...good, jku: 'https://evil.invalid/keys' }],
      ['an x5u member', { ...good, x5u: 'https://evil.invalid/cert' }],
      ['an x5c member', { ...good, x5c: ['MIIB'] }],
      ['a crit member', { ...good, crit: ['b64'] }],
      ['a b64 member', { ...good, b64: false }],
      ['an unknown member', { ...good, cty: 'json' }],
      ['a wrong typ', { ...good, typ: 'JWT' }],
      ['no iat', { alg: 'Ed25519', kid: k.kid, typ: 'cordon-alert+jws' }],
      ['a fractional iat', { ...good, iat: NOW_S + 0.5 }],
      ['an iat as a string', { ...good, iat: String(NOW_S) }],
      ['an unsafe iat', { ...good, iat: 2 ** 60 }],
      ['an array', [good]],
      ['not JSON', 'not json'],
      ['a repeated alg member', `{"alg":"none","alg":"Ed25519","kid":"${k.kid}","typ":"cordon-alert+jws","iat":${NOW_S}}`],
      ['a member repeated through an escape', `{"alg":"Ed25519","\\u0061lg":"Ed25519","kid":"${k.kid}","typ":"cordon-alert+jws","iat":${NOW_S}}`],
    ])('rejects a header with %s', async (_name, header) => {
      expect(await codeOf(verifySubmission(signWithHeader(content(), k, header), trust.store, OPTS))).toBe('SIGNATURE_HEADER_INVALID');
    });

    test('rejects a protected header that is not strict base64url', async () => {
      const sub = trust.sign(content(), 'KG', NOW_S);
      for (const bad of [sub.sig.protected + '=', sub.sig.protected + '*', `${sub.sig.protected.slice(0, -1)}+`]) {
        expect(await codeOf(verifySubmission({ ...sub, sig: { ...sub.sig, protected: bad } }, trust.store, OPTS))).toBe('SIGNATURE_HEADER_INVALID');
      }
    });

    test('decodeProtectedHeader returns exactly the four members', () => {
      const sub = trust.sign(content(), 'KG', NOW_S);
      expect(decodeProtectedHeader(sub.sig.protected)).toEqual(good);
    });
  });

  test('SIGNATURE_KEY_UNKNOWN (401) for a kid not in the trust store', async () => {
    const stranger = makeKeyPair();
    const sub = signContent(content(), stranger, NOW_S);
    const err = await verifySubmission(sub, trust.store, OPTS).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CordonError);
    expect((err as CordonError).code).toBe('SIGNATURE_KEY_UNKNOWN');
    expect((err as CordonError).status).toBe(401);
  });

  test('SIGNATURE_KEY_UNKNOWN (401) for a token key used to sign an alert', async () => {
    const sub = signContent(content(), trust.tokenKey('KG'), NOW_S);
    expect(await codeOf(verifySubmission(sub, trust.store, OPTS))).toBe('SIGNATURE_KEY_UNKNOWN');
  });

  describe('SIGNATURE_INVALID (401)', () => {
    test('for content changed after signing', async () => {
      const sub = trust.sign(content(), 'KG', NOW_S);
      const tampered = { ...sub, content: { ...sub.content, title: 'Nothing to see' } };
      expect(await codeOf(verifySubmission(tampered, trust.store, OPTS))).toBe('SIGNATURE_INVALID');
    });

    test('for a signature made by another key under a trusted kid', async () => {
      const forged = signContent(content(), { privateKey: makeKeyPair().privateKey, kid: trust.alertKey('KG').kid }, NOW_S);
      expect(await codeOf(verifySubmission(forged, trust.store, OPTS))).toBe('SIGNATURE_INVALID');
    });

    test('for a signature over the non-canonical JSON form', async () => {
      const c = content();
      const k = trust.alertKey('KG');
      const protectedB64 = b64uEncode(JSON.stringify({ alg: 'Ed25519', kid: k.kid, typ: 'cordon-alert+jws', iat: NOW_S }));
      const sig = cryptoSign(null, Buffer.from(protectedB64 + '.' + b64uEncode(JSON.stringify(c))), k.privateKey);
      expect(await codeOf(verifySubmission({ content: c, sig: { protected: protectedB64, signature: b64uEncode(sig) } }, trust.store, OPTS))).toBe(
        'SIGNATURE_INVALID',
      );
    });

    test('for a truncated, padded or non-canonically encoded signature', async () => {
      const sub = trust.sign(content(), 'KG', NOW_S);
      const s = sub.sig.signature;
      // 64 bytes → 86 chars; the last char carries 2 bits, so flipping a low bit keeps the bytes
      const lastBitsFlipped = s.slice(0, -1) + String.fromCharCode(s.charCodeAt(s.length - 1) ^ 1);
      for (const bad of [s.slice(0, -2), s + '==', lastBitsFlipped]) {
        expect(await codeOf(verifySubmission({ ...sub, sig: { ...sub.sig, signature: bad } }, trust.store, OPTS))).toBe('SIGNATURE_INVALID');
      }
    });
  });

  describe('KEY_NOT_AUTHORISED (403)', () => {
    test('when the key belongs to another state than content.issuer.state', async () => {
      const c = content({ issuer: { state: 'CN', agency: 'cn-customs', gateway: 'cn-gw' } });
      expect(await codeOf(verifySubmission(trust.sign(c, 'KG', NOW_S), trust.store, OPTS))).toBe('KEY_NOT_AUTHORISED');
    });

    test('when the region is not among the key regions', async () => {
      const c = content({ region: 'KZ-CN-01' });
      const err = await verifySubmission(trust.sign(c, 'KG', NOW_S), trust.store, OPTS).catch((e: CordonError) => e);
      expect((err as CordonError).code).toBe('KEY_NOT_AUTHORISED');
      expect((err as CordonError).status).toBe(403);
    });
  });

  describe('SIGNATURE_IAT_OUT_OF_WINDOW (422)', () => {
    test('when iat is older than max age', async () => {
      const err = await verifySubmission(trust.sign(content(), 'KG', NOW_S - 86_401), trust.store, OPTS).catch((e: CordonError) => e);
      expect((err as CordonError).code).toBe('SIGNATURE_IAT_OUT_OF_WINDOW');
      expect((err as CordonError).status).toBe(422);
    });

    test('when iat is further ahead than max skew', async () => {
      expect(await codeOf(verifySubmission(trust.sign(content(), 'KG', NOW_S + 301), trust.store, OPTS))).toBe('SIGNATURE_IAT_OUT_OF_WINDOW');
    });

    test('accepts iat at both edges of the window', async () => {
      const opts = { ...OPTS, nowMs: NOW_S * 1000 };
      expect(await codeOf(verifySubmission(trust.sign(content(), 'KG', NOW_S - 86_400), trust.store, opts))).toBe('OK');
      expect(await codeOf(verifySubmission(trust.sign(content(), 'KG', NOW_S + 300), trust.store, opts))).toBe('OK');
    });
  });

  describe('KEY_NOT_VALID (403)', () => {
    const key = makeKeyPair();
    const iso = (s: number): string => new Date(s * 1000).toISOString();
    function storeWith(overrides: Parameters<typeof keyEntry>[3]): TrustStore {
      return TrustStore.fromJson({ states: { KG: { name: 'Kyrgyzstan', keys: [keyEntry(key, 'alert', ['KG-CN-01'], overrides)] } } });
    }
    const sign = (iat: number): Submission => signContent(content(), key, iat);

    test('when iat is before nbf', async () => {
      const store = storeWith({ nbf: iso(NOW_S - 10) });
      expect(await codeOf(verifySubmission(sign(NOW_S - 11), store, OPTS))).toBe('KEY_NOT_VALID');
      expect(await codeOf(verifySubmission(sign(NOW_S - 10), store, OPTS))).toBe('OK');
    });

    test('when iat is at or after exp', async () => {
      const store = storeWith({ exp: iso(NOW_S - 10) });
      expect(await codeOf(verifySubmission(sign(NOW_S - 10), store, OPTS))).toBe('KEY_NOT_VALID');
      expect(await codeOf(verifySubmission(sign(NOW_S - 11), store, OPTS))).toBe('OK');
    });

    test('a retired key verifies only alerts signed before retired_at', async () => {
      const store = storeWith({ status: 'retired', retired_at: iso(NOW_S - 60) });
      expect(await codeOf(verifySubmission(sign(NOW_S - 61), store, OPTS))).toBe('OK');
      expect(await codeOf(verifySubmission(sign(NOW_S - 60), store, OPTS))).toBe('KEY_NOT_VALID');
    });

    test('a revoked key is rejected from revoked_at on, whatever the iat', async () => {
      const store = storeWith({ status: 'revoked', revoked_at: iso(NOW_S - 60) });
      const err = await verifySubmission(sign(NOW_S - 120), store, OPTS).catch((e: CordonError) => e);
      expect((err as CordonError).code).toBe('KEY_NOT_VALID');
      expect((err as CordonError).status).toBe(403);
      // before the revocation instant the key still works
      expect(await codeOf(verifySubmission(sign(NOW_S - 120), store, { ...OPTS, nowMs: (NOW_S - 61) * 1000 }))).toBe('OK');
    });
  });

  test('checks run in contract order: a bad signature wins over a wrong region and a stale iat', async () => {
    const sub = trust.sign(content({ region: 'KZ-CN-01' }), 'KG', NOW_S - 999_999);
    const tampered = { ...sub, content: { ...sub.content, title: 'x' } };
    expect(await codeOf(verifySubmission(tampered, trust.store, OPTS))).toBe('SIGNATURE_INVALID');
    expect(await codeOf(verifySubmission(sub, trust.store, OPTS))).toBe('KEY_NOT_AUTHORISED');
  });

  test('verifies many submissions concurrently on the threadpool, rejecting exactly the bad ones', async () => {
    const subs = Array.from({ length: 200 }, (_, i) => {
      const s = trust.sign(content({ title: `alert ${i}` }), 'KG', NOW_S);
      return i % 7 === 0 ? { ...s, content: { ...s.content, title: 'forged' } } : s;
    });
    const codes = await Promise.all(subs.map((s) => codeOf(verifySubmission(s, trust.store, OPTS))));
    codes.forEach((code, i) => expect(code).toBe(i % 7 === 0 ? 'SIGNATURE_INVALID' : 'OK'));
  });
});
