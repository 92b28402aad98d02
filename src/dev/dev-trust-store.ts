import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { generateTrustedKey, TrustStore, type TrustStoreJson } from '../domain/trust-store';
import type { Region } from '../domain/types';

/**
 * The development trust store: generated on the first embedded start so that `npm start` works
 * with no configuration, with the private keys written beside it so the CLI can sign and issue
 * tokens. It is loudly not for production: anyone who can read the directory can sign.
 */

const STATE_NAMES: Readonly<Record<string, string>> = {
  AF: 'Afghanistan',
  CN: 'China',
  KG: 'Kyrgyzstan',
  KZ: 'Kazakhstan',
  TJ: 'Tajikistan',
  TM: 'Turkmenistan',
  UZ: 'Uzbekistan',
};
const DAY_MS = 86_400_000;
const LOCK_STALE_MS = 30_000;
const LOCK_WAIT_MS = 10_000;

type DevLog = Pick<Logger, 'warn'>;

export function ensureDevTrustStore(dir: string, regions: { list(): Region[] }, log: DevLog): { path: string; store: TrustStore } {
  const path = join(dir, 'trust-store.json');
  const keysDir = join(dir, 'keys');
  if (!existsSync(path)) generateUnderLock(dir, path, keysDir, regions.list());
  const store = TrustStore.fromJson(JSON.parse(readFileSync(path, 'utf8')));
  const missing = [...new Set(regions.list().flatMap((r) => r.states))].filter((s) => !store.states().includes(s));
  if (missing.length > 0) {
    log.warn({ path, missing }, 'the development trust store has no keys for some states of the region registry; delete it to regenerate');
  }
  log.warn({ path, keysDir }, 'DEVELOPMENT TRUST STORE in use: its private keys sit beside it; never use it in production (set CORDON_TRUST_STORE)');
  return { path, store };
}

/** Several embedded nodes may start at once on one data dir: one generates, the others wait. */
function generateUnderLock(dir: string, path: string, keysDir: string, regions: Region[]): void {
  mkdirSync(keysDir, { recursive: true, mode: 0o700 });
  const lock = join(dir, 'trust-store.lock');
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      closeSync(openSync(lock, 'wx'));
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      if (existsSync(path)) return;
      if (Date.now() - lockAge(lock) > LOCK_STALE_MS) {
        unlinkSync(lock);
        continue;
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${lock}; remove it if no other Cordon is starting`);
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
    }
  }
  try {
    if (!existsSync(path)) generate(dir, path, keysDir, regions);
  } finally {
    unlinkSync(lock);
  }
}

function lockAge(lock: string): number {
  try {
    return statSync(lock).mtimeMs;
  } catch {
    return Date.now();
  }
}

function generate(dir: string, path: string, keysDir: string, regions: Region[]): void {
  const now = Date.now();
  const nbf = new Date(now - DAY_MS);
  const exp = new Date(now + 365 * DAY_MS);
  const states = [...new Set(regions.flatMap((r) => r.states))].sort();
  const doc: TrustStoreJson = { states: {} };
  for (const state of states) {
    const codes = regions.filter((r) => r.states.includes(state)).map((r) => r.code);
    const alert = generateTrustedKey({ state, use: 'alert', regions: codes, nbf, exp });
    const token = generateTrustedKey({ state, use: 'token', nbf, exp });
    writePrivate(join(keysDir, `${state}-alert.jwk.json`), alert.privateJwk);
    writePrivate(join(keysDir, `${state}-token.jwk.json`), token.privateJwk);
    doc.states[state] = { name: STATE_NAMES[state] ?? state, keys: [alert.entry, token.entry] };
  }
  // Keep private keys out of version control even where the data dir is not ignored.
  if (!existsSync(join(dir, '.gitignore'))) writeFileSync(join(dir, '.gitignore'), '*\n');
  // Written last and renamed into place: a store on disk always has its key files beside it.
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(doc, null, 2) + '\n');
  renameSync(tmp, path);
}

function writePrivate(file: string, value: unknown): void {
  writeFileSync(file, JSON.stringify(value, null, 2) + '\n', { mode: 0o600 });
  // mode only applies on creation; an older file keeps its mode otherwise.
  chmodSync(file, 0o600);
}
