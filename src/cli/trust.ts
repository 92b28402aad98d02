import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { RegionRegistry } from '../domain/regions';
import { TrustStore, type TrustStoreKeyJson } from '../domain/trust-store';
import { trustVersion, versionNumber } from '../trust-reload';
import { CliError, defineCommand, UsageError } from './args';
import type { CliIo } from './command';

/**
 * `cordon trust check FILE [--regions REGISTRY]`: what a node would do with a trust store before
 * it is rolled out (contract §4): the same validation a node runs at start and on reload (schema,
 * kid = thumbprint, unique kids, key windows), the regions of alert keys against a registry, and a
 * listing of what the store holds. Exit 0 valid, 1 invalid, 2 bad arguments.
 */

function readBytes(path: string, io: CliIo, what: string): Buffer {
  try {
    return readFileSync(resolve(io.cwd, path));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'is a directory' : String(code ?? err);
    throw new CliError(`cannot read ${what} ${path}: ${why}`, { cause: err });
  }
}

function parse(bytes: Buffer, what: string, path: string): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new CliError(`${what} ${path} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
}

/** What the key is now: its status, or for an active key outside its window, why it signs nothing. */
export function keyStanding(k: TrustStoreKeyJson, nowMs: number): string {
  if (k.status === 'retired') return `retired${k.retired_at ? ` since ${k.retired_at}` : ''}`;
  if (k.status === 'revoked') return `revoked${k.revoked_at ? ` since ${k.revoked_at}` : ''}`;
  if (k.nbf !== undefined && nowMs < Date.parse(k.nbf)) return 'active, not yet valid';
  if (k.exp !== undefined && nowMs >= Date.parse(k.exp)) return 'active, expired';
  return 'active';
}

function describeKey(k: TrustStoreKeyJson, nowMs: number): string {
  const window = `${k.nbf ?? '-'} .. ${k.exp ?? '-'}`;
  const parts = [`  ${k.use.padEnd(7)} ${k.kid}`, `      status  ${keyStanding(k, nowMs)}`, `      window  ${window}`];
  if (k.regions) parts.push(`      regions ${k.regions.length > 0 ? k.regions.join(', ') : '(none)'}`);
  return parts.join('\n');
}

async function check(file: string, regionsPath: string | undefined, nowMs: number, io: CliIo): Promise<number> {
  const trustBytes = readBytes(file, io, 'trust store');
  const regionBytes = regionsPath !== undefined ? readBytes(regionsPath, io, 'region registry') : undefined;
  let registry: RegionRegistry | undefined;
  if (regionsPath !== undefined && regionBytes !== undefined) {
    try {
      registry = RegionRegistry.fromJson(parse(regionBytes, 'region registry', regionsPath));
    } catch (err) {
      if (err instanceof CliError) throw err;
      io.stderr.write(`INVALID region registry ${regionsPath}: ${(err as Error).message}\n`);
      return 1;
    }
  }
  let store: TrustStore;
  try {
    store = TrustStore.fromJson(parse(trustBytes, 'trust store', file));
  } catch (err) {
    if (err instanceof CliError) throw err;
    io.stderr.write(`INVALID ${file}: ${(err as Error).message}\n`);
    io.stderr.write('A node refuses this store: at start it does not start, on reload the store in force stays.\n');
    return 1;
  }

  const view = store.publicView();
  const out: string[] = [];
  out.push(`trust store ${file}${regionsPath !== undefined ? ` with region registry ${regionsPath}` : ''}`);
  const version = trustVersion(trustBytes, regionBytes);
  out.push(`version ${version} (cordon_trust_store_version ${versionNumber(version)})`);
  out.push(`checked at ${new Date(nowMs).toISOString()}`);
  const warnings: string[] = [];
  for (const [state, entry] of Object.entries(view.states)) {
    out.push('', `${state} ${entry.name}`);
    for (const k of entry.keys) out.push(describeKey(k, nowMs));
    for (const use of ['alert', 'token'] as const) {
      if (!entry.keys.some((k) => k.use === use && keyStanding(k, nowMs) === 'active')) {
        warnings.push(`${state} has no ${use} key in force now`);
      }
    }
  }
  const problems = registry ? store.mismatches((code) => registry.get(code)) : [];
  if (registry) {
    const missing = [...registry.states].filter((s) => !(s in view.states)).sort();
    if (missing.length > 0) warnings.push(`states of the region registry without keys: ${missing.join(', ')}`);
  } else {
    warnings.push('regions of alert keys not checked against a registry (give --regions)');
  }
  out.push('');
  for (const w of warnings) out.push(`warning: ${w}`);
  for (const p of problems) out.push(`problem: ${p}`);
  io.stdout.write(out.join('\n') + '\n');
  if (problems.length > 0) {
    io.stderr.write(`INVALID ${file}: ${problems.length} key region(s) disagree with the region registry\n`);
    return 1;
  }
  io.stderr.write(`OK ${file}\n`);
  return 0;
}

export const trust = defineCommand({
  name: 'trust',
  summary: 'Check a trust store before rolling it out, and list what it holds',
  usage: `check FILE [--regions REGISTRY] [--at ISO]
  FILE       a trust store file (as CORDON_TRUST_STORE names it)
  --regions  the region registry the nodes use (CORDON_REGIONS): alert key regions are checked against it
  --at       judge key windows at this RFC 3339 time (default: now)
Runs what a node runs when it loads or reloads the store (schema, kid = RFC 7638 thumbprint, unique
kids, nbf < exp), then lists every state's keys with use, status, window and regions. The version
printed is what cordon_trust_store_version shows on a node holding these files.
Exit 0 valid, 1 invalid (a node would refuse it, or a key names a region it cannot sign for).`,
  options: {
    regions: { type: 'string' },
    at: { type: 'string' },
  },
  positionals: true,
  async run(values, io, positionals) {
    const [sub, file, ...extra] = positionals;
    if (sub !== 'check') throw new UsageError(sub === undefined ? 'a subcommand is required: check' : `unknown subcommand '${sub}'`);
    if (file === undefined) throw new UsageError('the trust store file is required');
    if (extra.length > 0) throw new UsageError(`unexpected argument '${extra[0]}'`);
    let nowMs = Date.now();
    if (values.at !== undefined) {
      nowMs = Date.parse(values.at);
      if (!Number.isFinite(nowMs)) throw new UsageError('--at must be an RFC 3339 time');
    }
    return check(file, values.regions, nowMs, io);
  },
});
