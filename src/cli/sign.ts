import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { FieldError } from '../errors';
import { RegionRegistry } from '../domain/regions';
import { signContent } from '../domain/signature';
import type { SigningKey } from '../domain/trust-store';
import type { AlertContent } from '../domain/types';
import { validateContent } from '../domain/validate';
import { CliError, defineCommand, integer, print, readJson, required, UsageError } from './args';
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
  if (errors.length > 0)
    throw new CliError(`content is invalid, nothing signed (${errors.length} problem${errors.length > 1 ? 's' : ''}):\n${listProblems(errors)}`);
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
  usage: `--key KEY.jwk.json --in content.json [--out submission.json] [--iat N] [--new-id] [--now] [--correct NOTE | --revoke NOTE] [--regions FILE]
  --key      private alert key file (from keygen or .cordon/keys/)
  --in       alert content, or a submission whose content is re-signed
  --out      write the submission here instead of stdout
  --iat      signature time in unix seconds (default: now)
  --new-id   give the content a fresh alert id (a new alert)
  --now      stamp a first version now: created = modified = now
  --correct  make the next version of a published alert: modified = now, correction_note = NOTE;
             --in is the published content (or submission) with your edits, created unchanged
  --revoke   make the revocation of a published alert: revoked, modified = now, correction_note = NOTE
  --regions  region registry file (default: CORDON_REGIONS, else the built-in example)`,
  options: {
    key: { type: 'string' },
    in: { type: 'string' },
    out: { type: 'string' },
    iat: { type: 'string' },
    'new-id': { type: 'boolean' },
    now: { type: 'boolean' },
    correct: { type: 'string' },
    revoke: { type: 'string' },
    regions: { type: 'string' },
  },
  async run(values, io) {
    const keyPath = required(values.key, 'key');
    const inPath = required(values.in, 'in');
    const iat = integer(values.iat, 'iat');
    const key = loadSigningKey(keyPath, io);
    const regions = loadRegions(values.regions, io);
    const version = versionOptions(values);
    let content = readJson(inPath, io, 'content file');
    if (isObject(content) && 'sig' in content && isObject(content.content)) content = content.content;
    if (isObject(content)) content = adjust(content, version);

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

/** How `sign` and `publish` turn the content given into the version to sign. */
export interface VersionOptions {
  newId: boolean;
  now: boolean;
  /** the next version: modified later, correction_note = this */
  correct?: string;
  /** the revocation: revoked, modified later, correction_note = this */
  revoke?: string;
}

export function versionOptions(values: { 'new-id'?: boolean; now?: boolean; correct?: string; revoke?: string }): VersionOptions {
  const { correct, revoke } = values;
  if (correct !== undefined && revoke !== undefined) throw new UsageError('give at most one of --correct and --revoke');
  const note = correct ?? revoke;
  if (note !== undefined) {
    const flag = correct !== undefined ? '--correct' : '--revoke';
    if (note.trim() === '') throw new UsageError(`${flag} needs a note saying what changed, e.g. ${flag} "plate number corrected"`);
    if (values['new-id']) throw new UsageError(`${flag} makes a new version of the same alert; it cannot be combined with --new-id`);
    if (values.now) throw new UsageError(`${flag} sets modified itself; leave out --now`);
  }
  return { newId: values['new-id'] === true, now: values.now === true, correct, revoke };
}

/**
 * A first version has created = modified; every later one keeps created and the other version
 * fields, sets a strictly later modified and says why in correction_note (contract §2 versions).
 */
export function adjust(content: Record<string, unknown>, opts: VersionOptions, nowMs = Date.now()): Record<string, unknown> {
  const c = { ...content };
  if (opts.newId) c.id = `alert--${randomUUID()}`;
  const note = opts.correct ?? opts.revoke;
  if (note !== undefined) {
    if (c.revoked === true) throw new CliError(`${String(c.id)} is already revoked; no version may follow (publish a new alert with --new-id)`);
    // Strictly later than the version being replaced, even if this clock is behind the last signer's.
    const previous = typeof c.modified === 'string' ? Date.parse(c.modified) : NaN;
    c.modified = nowTimestamp(Number.isFinite(previous) && previous >= nowMs ? previous + 1 : nowMs);
    c.correction_note = note;
    if (opts.revoke !== undefined) c.revoked = true;
    return c;
  }
  if (opts.now) {
    const ts = nowTimestamp(nowMs);
    // A later version (it says why it changed) keeps its created; a first version is stamped whole.
    if (opts.newId || (c.correction_note === undefined && c.revoked !== true)) c.created = ts;
    c.modified = ts;
  }
  return c;
}
