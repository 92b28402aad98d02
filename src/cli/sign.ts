import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { FieldError } from '../errors';
import { RegionRegistry } from '../domain/regions';
import { signContent } from '../domain/signature';
import type { SigningKey } from '../domain/trust-store';
import type { AlertContent } from '../domain/types';
import { validateContent } from '../domain/validate';
import { CliError, defineCommand, integer, print, readJson, required } from './args';
import type { CliIo } from './command';
import { loadSigningKey } from './keygen';

/** The region registry the CLI checks content against: --regions, else CORDON_REGIONS, else the example. */
export function loadRegions(path: string | undefined, io: CliIo): RegionRegistry {
  const file = path ?? io.env.CORDON_REGIONS;
  if (file === undefined) return RegionRegistry.example();
  try {
    return RegionRegistry.fromJson(readJson(file, io, 'region registry'));
  } catch (err) {
    if (err instanceof CliError) throw err;
    throw new CliError((err as Error).message, { cause: err });
  }
}

function listProblems(errors: FieldError[]): string {
  return errors.map((e) => `  ${e.path}: ${e.message}`).join('\n');
}

/**
 * Refuses what the server would refuse, with the reasons, before anything is signed: schema and
 * rules (contract §2), and a key that may not sign for this state or region (when the key file
 * says what it is for).
 */
export function checkBeforeSigning(content: unknown, key: SigningKey, regions: RegionRegistry): AlertContent {
  if (key.use === 'token') throw new CliError('this is a token key; alerts are signed with an alert key');
  const errors = validateContent(content, { regions, memberStates: regions.states });
  if (errors.length > 0) throw new CliError(`content is invalid, nothing signed (${errors.length} problem${errors.length > 1 ? 's' : ''}):\n${listProblems(errors)}`);
  const c = content as AlertContent;
  if (key.state !== undefined && key.state !== c.issuer.state) {
    throw new CliError(`the key belongs to ${key.state} but content.issuer.state is ${c.issuer.state}`);
  }
  if (key.regions !== undefined && !key.regions.includes(c.region)) {
    throw new CliError(`the key may sign for ${key.regions.join(', ')}, not for region ${c.region}`);
  }
  return c;
}

export function nowTimestamp(ms = Date.now()): string {
  return new Date(ms).toISOString();
}

export const sign = defineCommand({
  name: 'sign',
  summary: 'Validate alert content and sign it into a submission (detached JWS over its JCS form)',
  usage: `--key KEY.jwk.json --in content.json [--out submission.json] [--iat N] [--new-id] [--now] [--regions FILE]
  --key      private alert key file (from keygen or .cordon/keys/)
  --in       alert content, or a submission whose content is re-signed
  --out      write the submission here instead of stdout
  --iat      signature time in unix seconds (default: now)
  --new-id   give the content a fresh alert id
  --now      set modified to now (and created too on a first version or with --new-id)
  --regions  region registry file (default: CORDON_REGIONS, else the built-in example)`,
  options: {
    key: { type: 'string' },
    in: { type: 'string' },
    out: { type: 'string' },
    iat: { type: 'string' },
    'new-id': { type: 'boolean' },
    now: { type: 'boolean' },
    regions: { type: 'string' },
  },
  async run(values, io) {
    const keyPath = required(values.key, 'key');
    const inPath = required(values.in, 'in');
    const iat = integer(values.iat, 'iat');
    const key = loadSigningKey(keyPath, io);
    const regions = loadRegions(values.regions, io);
    let content = readJson(inPath, io, 'content file');
    if (isObject(content) && 'sig' in content && isObject(content.content)) content = content.content;
    if (isObject(content)) content = adjust(content, { newId: values['new-id'] === true, now: values.now === true });

    const submission = signContent(checkBeforeSigning(content, key, regions), key, iat);
    if (values.out !== undefined) {
      const out = resolve(io.cwd, values.out);
      try {
        writeFileSync(out, JSON.stringify(submission, null, 2) + '\n');
      } catch (err) {
        throw new CliError(`cannot write ${values.out}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
      }
      io.stderr.write(`signed ${submission.content.id} with ${key.kid}, written to ${values.out}\n`);
    } else {
      print(io, submission);
    }
    return 0;
  },
});

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function adjust(content: Record<string, unknown>, opts: { newId: boolean; now: boolean }): Record<string, unknown> {
  const c = { ...content };
  if (opts.newId) c.id = `alert--${randomUUID()}`;
  if (opts.now) {
    const ts = nowTimestamp();
    if (opts.newId || c.created === c.modified) c.created = ts;
    c.modified = ts;
  }
  return c;
}
