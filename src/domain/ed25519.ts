import { verify as cryptoVerify, type KeyObject } from 'node:crypto';

/**
 * Ed25519 verification, the largest CPU cost of ingest. libsodium (sodium-native, prebuilt
 * binaries in the npm package) verifies in about 55 µs on this machine kind; node:crypto
 * (OpenSSL) takes about 145 µs. Without libsodium, OpenSSL's callback form runs on the libuv
 * threadpool instead. Both reject what RFC 8032 rejects; libsodium is stricter on small-order
 * points and non-canonical encodings, which only ever refuses more.
 */
export interface Sodium {
  crypto_sign_verify_detached(signature: Buffer, message: Buffer, publicKey: Buffer): boolean;
}

export function loadSodium(): Sodium | undefined {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- optional native module: absent, Node's crypto is used
    return require('sodium-native') as Sodium;
  } catch {
    return undefined;
  }
}

const sodium = loadSodium();

export const ED25519_BACKEND: 'libsodium' | 'node:crypto' = sodium ? 'libsodium' : 'node:crypto';

export interface Ed25519PublicKey {
  /** the 32 raw bytes (the JWK `x`). */
  raw: Buffer;
  key: KeyObject;
}

export function verifyEd25519(data: Buffer, publicKey: Ed25519PublicKey, signature: Buffer): Promise<boolean> {
  if (sodium) {
    return Promise.resolve(signature.length === 64 && sodium.crypto_sign_verify_detached(signature, data, publicKey.raw));
  }
  return new Promise((resolve) => {
    cryptoVerify(null, data, publicKey.key, signature, (err, ok) => resolve(!err && ok));
  });
}
