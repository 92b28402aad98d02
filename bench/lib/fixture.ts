import { generateKeyPairSync, randomUUID, type KeyObject } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jwkThumbprint } from '../../src/domain/trust-store';
import { signContent } from '../../src/domain/signature';
import { issueToken } from '../../src/domain/tokens';
import type { AlertContent, Submission, Token } from '../../src/domain/types';

/** A trust store, a region registry and keys for benchmarks, written to a temporary directory. */
export interface BenchFixture {
  dir: string;
  trustPath: string;
  regionsPath: string;
  region: string;
  alertKey: { privateKey: KeyObject; kid: string };
  tokenKey: { privateKey: KeyObject; kid: string };
  publicKey: KeyObject;
  sign(content: AlertContent): Submission;
  token(claims?: Partial<Token>): string;
}

function keyPair(): { privateKey: KeyObject; publicKey: KeyObject; kid: string; jwk: { kty: string; crv: string; x: string } } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const jwk = publicKey.export({ format: 'jwk' }) as { kty: string; crv: string; x: string };
  return { privateKey, publicKey, kid: jwkThumbprint(jwk), jwk: { kty: jwk.kty, crv: jwk.crv, x: jwk.x } };
}

export function makeFixture(region = `KG-CN-${String(Math.floor(Math.random() * 100)).padStart(2, '0')}`): BenchFixture {
  const dir = mkdtempSync(join(tmpdir(), 'cordon-bench-'));
  const alert = keyPair();
  const token = keyPair();
  const now = Date.now();
  const trust = {
    states: {
      KG: {
        name: 'Kyrgyzstan',
        keys: [
          {
            kid: alert.kid,
            use: 'alert',
            jwk: alert.jwk,
            regions: [region],
            nbf: new Date(now - 86_400_000).toISOString(),
            exp: new Date(now + 365 * 86_400_000).toISOString(),
            status: 'active',
          },
          { kid: token.kid, use: 'token', jwk: token.jwk, status: 'active' },
        ],
      },
      CN: { name: 'China', keys: [] },
      KZ: { name: 'Kazakhstan', keys: [] },
    },
  };
  const trustPath = join(dir, 'trust-store.json');
  const regionsPath = join(dir, 'regions.json');
  writeFileSync(trustPath, JSON.stringify(trust, null, 2));
  writeFileSync(regionsPath, JSON.stringify({ regions: [{ code: region, name: 'Torugart pass (bench)', states: ['KG', 'CN'] }] }));
  const alertKey = { privateKey: alert.privateKey, kid: alert.kid };
  const tokenKey = { privateKey: token.privateKey, kid: token.kid };
  return {
    dir,
    trustPath,
    regionsPath,
    region,
    alertKey,
    tokenKey,
    publicKey: alert.publicKey,
    sign: (content) => signContent(content, alertKey),
    token: (claims = {}) =>
      issueToken(
        {
          iss: 'KG',
          sub: 'bench-desk',
          role: 'desk',
          clearance: 'secret',
          exp: Math.floor(Date.now() / 1000) + 3600,
          ...claims,
        },
        tokenKey,
      ),
  };
}

/** A realistic alert of about `bytes` of JSON (the description pads it). */
export function benchContent(region: string, bytes = 1500): AlertContent {
  const now = new Date().toISOString();
  const content: AlertContent = {
    spec: 'cordon.alert/1',
    id: `alert--${randomUUID()}`,
    created: now,
    modified: now,
    issuer: { state: 'KG', agency: 'kg-border-service', gateway: 'kg-gw-bishkek-1' },
    region,
    category: 'suspected-consignment',
    urgency: 'urgent',
    title: 'Truck with concealed compartment heading for Torugart',
    description: '',
    valid_from: now,
    location: { lat: 40.5253, lon: 75.3872, name: 'At-Bashy checkpoint' },
    subjects: [
      { kind: 'vehicle', value: 'KG 01 123 ABC, white MAN TGX', subject_category: 'suspect', basis: 'fact' },
      { kind: 'substance', value: 'suspected heroin, approx. 40 kg', subject_category: 'other', basis: 'assessment' },
    ],
    grading: { scheme: 'europol-4x4', source: 'B', information: '2' },
    handling: { tlp: 'TLP:AMBER', codes: ['H1', 'H2'], evidential_use: false, onward_sharing: 'with-permission' },
    audience: { states: ['KG', 'CN'], min_clearance: 'restricted' },
    retention: { expires: new Date(Date.now() + 365 * 86_400_000).toISOString().slice(0, 10) },
  };
  const base = JSON.stringify(content).length + 200; // + signature envelope
  content.description = 'Semi-trailer stopped at At-Bashy post; scanner shows a false floor. '.repeat(Math.max(0, Math.ceil((bytes - base) / 68)));
  return content;
}
