import { canonicalize } from '../../src/domain/jcs';
import type { DeliveredAlert } from '../../src/domain/types';
import type { TrustStoreJson } from '../../src/domain/trust-store';

/**
 * End-to-end verification in the browser (contract §3), independent of the node: the Ed25519
 * signature (WebCrypto) over `protected + "." + BASE64URL(JCS(content))`, with the key taken only
 * from the trust store (`GET /v1/trust`), which must belong to the issuing state and region.
 */

export type VerifyOutcome = 'verified' | 'invalid';
export type InvalidReason = 'unknownKey' | 'wrongKey' | 'badSignature' | 'malformed';

export interface VerifyResult {
  outcome: VerifyOutcome;
  reason?: InvalidReason;
  kid?: string;
  keyState?: string;
  keyStateName?: string;
}

interface KeyView {
  kid: string;
  use: string;
  state: string;
  jwk: { kty: string; crv: string; x: string };
  regions?: string[];
  status: string;
}

const enc = new TextEncoder();

function b64uBytes(s: string): Uint8Array {
  if (!/^[A-Za-z0-9_-]*$/.test(s)) throw new TypeError('not base64url');
  const b64 = s.replace(/-/g, '+').replace(/_/g, '/');
  const bin = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

function b64uEncode(bytes: Uint8Array): string {
  let bin = '';
  for (let i = 0; i < bytes.length; i += 0x8000) bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

export class Verifier {
  private readonly keys = new Map<string, KeyView>();
  private readonly imported = new Map<string, Promise<CryptoKey>>();
  readonly stateNames = new Map<string, string>();

  constructor(trust: TrustStoreJson) {
    for (const [state, entry] of Object.entries(trust.states ?? {})) {
      this.stateNames.set(state, entry.name);
      for (const k of entry.keys ?? []) {
        this.keys.set(k.kid, { kid: k.kid, use: k.use, state, jwk: k.jwk, regions: k.regions, status: k.status });
      }
    }
  }

  private cryptoKey(k: KeyView): Promise<CryptoKey> {
    let p = this.imported.get(k.kid);
    if (!p) {
      p = crypto.subtle.importKey('jwk', { kty: 'OKP', crv: 'Ed25519', x: k.jwk.x }, { name: 'Ed25519' }, false, ['verify']);
      this.imported.set(k.kid, p);
    }
    return p;
  }

  async verify(alert: DeliveredAlert): Promise<VerifyResult> {
    let kid: string;
    let signingInput: Uint8Array;
    let signature: Uint8Array;
    try {
      const header = JSON.parse(new TextDecoder().decode(b64uBytes(alert.sig.protected))) as { alg?: string; kid?: string };
      if (header.alg !== 'Ed25519' || typeof header.kid !== 'string') return { outcome: 'invalid', reason: 'malformed' };
      kid = header.kid;
      const payload = b64uEncode(enc.encode(canonicalize(alert.content)));
      signingInput = enc.encode(`${alert.sig.protected}.${payload}`);
      signature = b64uBytes(alert.sig.signature);
    } catch {
      return { outcome: 'invalid', reason: 'malformed' };
    }
    const key = this.keys.get(kid);
    if (!key || key.use !== 'alert') return { outcome: 'invalid', reason: 'unknownKey', kid };
    const about = { kid, keyState: key.status, keyStateName: key.state };
    if (key.state !== alert.content.issuer.state || !(key.regions ?? []).includes(alert.content.region)) {
      return { outcome: 'invalid', reason: 'wrongKey', ...about };
    }
    try {
      const ok = await crypto.subtle.verify({ name: 'Ed25519' }, await this.cryptoKey(key), signature as BufferSource, signingInput as BufferSource);
      return ok ? { outcome: 'verified', ...about } : { outcome: 'invalid', reason: 'badSignature', ...about };
    } catch {
      return { outcome: 'invalid', reason: 'badSignature', ...about };
    }
  }
}
