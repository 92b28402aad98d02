import { compactVerify, decodeProtectedHeader as joseDecodeHeader, FlattenedSign, flattenedVerify, jwtVerify, SignJWT } from 'jose';
import { b64uEncode } from '../../src/domain/base64url';
import { canonicalize } from '../../src/domain/jcs';
import { signContent, verifySubmission } from '../../src/domain/signature';
import { verifyToken } from '../../src/domain/tokens';
import type { AlertContent } from '../../src/domain/types';
import { makeTestTrust } from '../helpers/keys';

/**
 * jose (panva) as the independent implementation: what it signs, Cordon verifies, and what
 * Cordon signs, jose verifies. jose 5.10 knows the fully specified alg "Ed25519", so no
 * "EdDSA" translation is needed in either direction.
 */

const trust = makeTestTrust(['KG', 'KZ']);
const NOW_MS = Date.now();
const NOW_S = Math.floor(NOW_MS / 1000);
const OPTS = { nowMs: NOW_MS, maxAgeS: 86_400, maxSkewS: 300 };

const content: AlertContent = {
  spec: 'cordon.alert/1',
  id: 'alert--5d1c2b1a-8f7e-4c3d-9b2a-1e0f9d8c7b6a',
  created: '2026-03-01T10:00:00.000Z',
  modified: '2026-03-01T10:00:00.000Z',
  issuer: { state: 'KZ', agency: 'kz-border-service', gateway: 'kz-gw-1' },
  region: 'KZ-KG-01',
  category: 'vehicle-of-interest',
  urgency: 'urgent',
  title: 'Белый КамАЗ 01KZ123 — Korday, northbound',
  audience: { states: ['KZ', 'KG'], min_clearance: 'restricted' },
  location: { lat: 43.0366, lon: 74.7094, name: 'Korday' },
  valid_from: '2026-03-01T10:00:00.000Z',
  grading: { scheme: 'admiralty', source: 'C', information: '3' },
  handling: { tlp: 'TLP:GREEN', codes: ['H0'], evidential_use: true, onward_sharing: 'within-audience' },
  retention: { expires: '2026-04-01' },
};

describe('alert signatures interoperate with jose', () => {
  test('an alert signed with jose FlattenedSign over the JCS bytes, payload detached, verifies with verifySubmission', async () => {
    const key = trust.alertKey('KZ');
    const jws = await new FlattenedSign(new TextEncoder().encode(canonicalize(content)))
      .setProtectedHeader({ alg: 'Ed25519', kid: key.kid, typ: 'cordon-alert+jws', iat: NOW_S })
      .sign(key.privateKey);
    const { payload: _detached, ...sig } = jws;
    const verified = await verifySubmission({ content, sig: { protected: sig.protected!, signature: sig.signature } }, trust.store, OPTS);
    expect(verified.kid).toBe(key.kid);
    expect(verified.state).toBe('KZ');
  });

  test('signContent output verifies with jose flattenedVerify given payload = b64u(JCS(content))', async () => {
    const key = trust.alertKey('KZ');
    const sub = signContent(content, key, NOW_S);
    const result = await flattenedVerify(
      { protected: sub.sig.protected, signature: sub.sig.signature, payload: b64uEncode(canonicalize(content)) },
      key.publicKey,
      { algorithms: ['Ed25519'] },
    );
    expect(result.protectedHeader).toEqual({ alg: 'Ed25519', kid: key.kid, typ: 'cordon-alert+jws', iat: NOW_S });
    expect(JSON.parse(new TextDecoder().decode(result.payload))).toEqual(content);
  });

  test('jose refuses a Cordon signature when told to accept only EdDSA: the alg really is pinned', async () => {
    const key = trust.alertKey('KZ');
    const sub = signContent(content, key, NOW_S);
    await expect(flattenedVerify({ ...sub.sig, payload: b64uEncode(canonicalize(content)) }, key.publicKey, { algorithms: ['EdDSA'] })).rejects.toThrow();
  });
});

describe('tokens interoperate with jose', () => {
  test('a token made with jose SignJWT (alg Ed25519) verifies with verifyToken', async () => {
    const key = trust.tokenKey('KG');
    const compact = await new SignJWT({ role: 'ops', clearance: 'secret', regions: ['KG-CN-01'] })
      .setProtectedHeader({ alg: 'Ed25519', kid: key.kid, typ: 'JWT' })
      .setIssuer('KG')
      .setSubject('ops-bishkek')
      .setAudience('cordon')
      .setIssuedAt(NOW_S)
      .setExpirationTime(NOW_S + 600)
      .sign(key.privateKey);
    expect(verifyToken(compact, trust.store, NOW_MS)).toMatchObject({ iss: 'KG', sub: 'ops-bishkek', role: 'ops', regions: ['KG-CN-01'] });
  });

  test('a jose token with alg EdDSA is refused by verifyToken', async () => {
    const key = trust.tokenKey('KG');
    const compact = await new SignJWT({ role: 'desk', clearance: 'secret' })
      .setProtectedHeader({ alg: 'EdDSA', kid: key.kid })
      .setIssuer('KG')
      .setSubject('desk')
      .setAudience('cordon')
      .setIssuedAt(NOW_S)
      .setExpirationTime(NOW_S + 600)
      .sign(key.privateKey);
    expect(() => verifyToken(compact, trust.store, NOW_MS)).toThrow(/token header is not accepted/);
  });

  test('issueToken output verifies with jose jwtVerify and compactVerify (alg Ed25519)', async () => {
    const key = trust.tokenKey('KZ');
    const compact = trust.token({ iss: 'KZ', sub: 'desk-almaty', clearance: 'confidential', regions: ['KZ-KG-01'] });
    expect(joseDecodeHeader(compact)).toEqual({ alg: 'Ed25519', kid: key.kid, typ: 'JWT' });
    const { payload } = await jwtVerify(compact, key.publicKey, { algorithms: ['Ed25519'], issuer: 'KZ', audience: 'cordon' });
    expect(payload).toMatchObject({ sub: 'desk-almaty', role: 'desk', clearance: 'confidential', regions: ['KZ-KG-01'] });
    await expect(compactVerify(compact, key.publicKey, { algorithms: ['Ed25519'] })).resolves.toBeDefined();
  });
});
