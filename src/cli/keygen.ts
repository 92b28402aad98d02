import { mkdirSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { generateTrustedKey, signingKeyFromJwk, type SigningKey } from '../domain/trust-store';
import { CliError, defineCommand, integer, list, print, readJson, required, UsageError } from './args';
import type { CliIo } from './command';

const STATE = /^[A-Z]{2}$/;
const REGION = /^[A-Z]{2}-[A-Z]{2}-[0-9]{2}$/;
const DAY_MS = 86_400_000;

/** Reads a private key file written by keygen (or the development trust store). */
export function loadSigningKey(path: string, io: CliIo): SigningKey {
  const value = readJson(path, io, 'key file');
  try {
    return signingKeyFromJwk(value);
  } catch (err) {
    throw new CliError(`key file ${path}: ${(err as Error).message}`, { cause: err });
  }
}

export const keygen = defineCommand({
  name: 'keygen',
  summary: 'Generate an Ed25519 key: writes the private JWK, prints its trust-store entry',
  usage: `--state KZ --use alert|token [--regions KZ-KG-01,KZ-CN-01] [--out DIR] [--days 365]
  --state    the member state that owns the key (ISO 3166-1 alpha-2)
  --use      alert (gateways sign alerts) or token (the state issues desk and ops tokens)
  --regions  for alert keys: the regions the key may sign for (required)
  --out      directory for the private key file (default: the current directory)
  --days     validity from now (default 365)
The private key is written as <STATE>-<use>-<kid prefix>.jwk.json with mode 0600; the entry
printed on stdout goes into the trust store under states.<STATE>.keys.`,
  options: {
    state: { type: 'string' },
    use: { type: 'string' },
    regions: { type: 'string' },
    out: { type: 'string' },
    days: { type: 'string' },
  },
  async run(values, io) {
    const state = required(values.state, 'state');
    if (!STATE.test(state)) throw new UsageError('--state must be two capital letters, e.g. KZ');
    const use = required(values.use, 'use');
    if (use !== 'alert' && use !== 'token') throw new UsageError('--use must be alert or token');
    const regions = list(values.regions);
    if (use === 'alert' && (!regions || regions.length === 0)) throw new UsageError('--regions is required for an alert key');
    if (use === 'token' && regions) throw new UsageError('--regions applies to alert keys only');
    for (const r of regions ?? []) if (!REGION.test(r)) throw new UsageError(`--regions: ${r} is not a region code like KZ-KG-01`);
    const days = integer(values.days, 'days', 1) ?? 365;

    const nbfMs = Math.floor(Date.now() / 1000) * 1000;
    const { privateJwk, entry } = generateTrustedKey({
      state,
      use,
      regions,
      nbf: new Date(nbfMs),
      exp: new Date(nbfMs + days * DAY_MS),
    });
    const dir = resolve(io.cwd, values.out ?? '.');
    const file = join(dir, `${state}-${use}-${privateJwk.kid.slice(0, 8)}.jwk.json`);
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      writeFileSync(file, JSON.stringify(privateJwk, null, 2) + '\n', { mode: 0o600, flag: 'wx' });
    } catch (err) {
      throw new CliError(`cannot write ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
    }
    io.stderr.write(`private key written to ${relative(io.cwd, file) || file} (keep it secret); trust-store entry for states.${state}.keys:\n`);
    print(io, entry);
    return 0;
  },
});
