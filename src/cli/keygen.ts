import { mkdirSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import { generateTrustedKey, jwkThumbprint, signingKeyFromJwk, type SigningKey } from '../domain/trust-store';
import { SIG_COSIGNATURE_V1, formatVerifierKey, noteSigner } from '../domain/tlog/note';
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
  usage: `--state KZ --use alert|token|witness [--regions KZ-KG-01,KZ-CN-01] [--name NAME --url URL] [--out DIR] [--days 365]
  --state    the member state that owns the key (ISO 3166-1 alpha-2)
  --use      alert (gateways sign alerts) or token (the state issues desk and ops tokens)
  --regions  for alert keys: the regions the key may sign for (required)
  --name     for witness keys: the note key name of its cosignatures (required), e.g. witness.kz.example/w1
  --url      for witness keys: where it serves add-checkpoint (nodes submit checkpoints there)
  --out      directory for the private key file (default: the current directory)
  --days     validity from now (default 365)
The private key is written as <STATE>-<use>-<kid prefix>.jwk.json with mode 0600; the entry
printed on stdout goes into the trust store under states.<STATE>.keys.`,
  options: {
    state: { type: 'string' },
    use: { type: 'string' },
    regions: { type: 'string' },
    name: { type: 'string' },
    url: { type: 'string' },
    out: { type: 'string' },
    days: { type: 'string' },
  },
  async run(values, io) {
    const state = required(values.state, 'state');
    if (!STATE.test(state)) throw new UsageError('--state must be two capital letters, e.g. KZ');
    const use = required(values.use, 'use');
    if (use === 'witness') return witnessKey(state, values, io);
    if (use !== 'alert' && use !== 'token') throw new UsageError('--use must be alert, token or witness');
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

/** A witness key (contract §4, §12): private JWK naming its note name and url; the entry and its vkey. */
function witnessKey(state: string, values: { name?: string; url?: string; out?: string }, io: CliIo): number {
  const name = required(values.name, 'name');
  if (!/^[^\s+]+$/.test(name)) throw new UsageError('--name may not contain spaces or +');
  if (values.url !== undefined && !/^https?:\/\/\S+$/.test(values.url)) throw new UsageError('--url must be an http(s) URL');
  const { privateKey } = generateKeyPairSync('ed25519');
  const { x, d } = privateKey.export({ format: 'jwk' }) as { x: string; d: string };
  const kid = jwkThumbprint({ kty: 'OKP', crv: 'Ed25519', x });
  const jwk = { kty: 'OKP', crv: 'Ed25519', x, d, kid, cordon: { state, use: 'witness', name, ...(values.url ? { url: values.url } : {}) } };
  const dir = resolve(io.cwd, values.out ?? '.');
  const file = join(dir, `${state}-witness-${kid.slice(0, 8)}.jwk.json`);
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    writeFileSync(file, JSON.stringify(jwk, null, 2) + '\n', { mode: 0o600, flag: 'wx' });
  } catch (err) {
    throw new CliError(`cannot write ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  }
  const vkey = formatVerifierKey(noteSigner(name, SIG_COSIGNATURE_V1, privateKey));
  io.stderr.write(
    `private key written to ${relative(io.cwd, file) || file} (keep it secret); cosignature vkey ${vkey}; trust-store entry for states.${state}.keys:\n`,
  );
  print(io, { kid, use: 'witness', jwk: { kty: 'OKP', crv: 'Ed25519', x }, name, ...(values.url ? { url: values.url } : {}), status: 'active' });
  return 0;
}
