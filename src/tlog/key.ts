import { generateKeyPairSync } from 'node:crypto';
import { linkSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyBaseLogger } from 'fastify';
import { jwkThumbprint, signingKeyFromJwk } from '../domain/trust-store';
import { SIG_ED25519, noteSigner, type NoteSigner } from '../domain/tlog/note';

/**
 * The log's signing key (contract §12): CORDON_LOG_KEY, a private JWK file; unset, a key generated
 * once into the data directory. Its note name is CORDON_LOG_ORIGIN.
 */
export function loadLogSigner(opts: { keyPath?: string; dataDir: string; origin: string; production: boolean }, log: FastifyBaseLogger): NoteSigner {
  if (opts.keyPath) {
    const key = signingKeyFromJwk(JSON.parse(readFileSync(opts.keyPath, 'utf8')));
    return noteSigner(opts.origin, SIG_ED25519, key.privateKey);
  }
  const file = join(opts.dataDir, 'log-key.jwk.json');
  let jwk: unknown;
  try {
    jwk = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    const { privateKey } = generateKeyPairSync('ed25519');
    const { x, d } = privateKey.export({ format: 'jwk' }) as { x: string; d: string };
    jwk = { kty: 'OKP', crv: 'Ed25519', x, d, kid: jwkThumbprint({ kty: 'OKP', crv: 'Ed25519', x }) };
    mkdirSync(opts.dataDir, { recursive: true, mode: 0o700 });
    // Written whole under a name of its own, then linked into place: a node starting at the same
    // moment on the same directory either links first or finds the complete file and uses it.
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(jwk, null, 2) + '\n', { mode: 0o600 });
    try {
      linkSync(tmp, file);
      log.warn({ file }, 'transparency log key generated; set CORDON_LOG_KEY to one key shared by every node');
    } catch (linkErr) {
      if ((linkErr as NodeJS.ErrnoException).code !== 'EEXIST') throw linkErr;
      jwk = JSON.parse(readFileSync(file, 'utf8'));
    } finally {
      rmSync(tmp, { force: true });
    }
  }
  if (opts.production) {
    log.warn({ file }, 'CORDON_LOG_KEY is unset: this node signs checkpoints with a key of its own data directory');
  }
  return noteSigner(opts.origin, SIG_ED25519, signingKeyFromJwk(jwk).privateKey);
}
