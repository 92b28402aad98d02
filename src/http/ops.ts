import { CordonError, type FieldError } from '../errors';
import { fieldErrors, schemaRegistry, SCHEMA_BASE, validator } from '../domain/schemas';
import { toPointer } from '../domain/json';
import type { Token } from '../domain/types';
import type { AuditLog, AuditRecord } from '../ports/audit-log';

/**
 * Shared by the history endpoints (replay, single alert, audit): strict query strings, the ops
 * purpose rule and the `replayed` audit record.
 */

const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);
const DECIMAL = /^-?[0-9]{1,16}$/;
const integerKeys = new Map<string, ReadonlySet<string>>();

/** The names of a query schema's integer parameters (read once from the schema itself). */
function integersOf(schema: string): ReadonlySet<string> {
  let keys = integerKeys.get(schema);
  if (!keys) {
    const def = schemaRegistry().getSchema(SCHEMA_BASE + schema + '.json')?.schema as { properties?: Record<string, { type?: string }> } | undefined;
    keys = new Set(
      Object.entries(def?.properties ?? {})
        .filter(([, p]) => p.type === 'integer')
        .map(([k]) => k),
    );
    integerKeys.set(schema, keys);
  }
  return keys;
}

/**
 * Validates a parsed query string against schemas/<schema>.json with the shared ajv instance:
 * every parameter at most once, no unknown parameter, integers as plain decimal text. Defaults
 * from the schema are filled in. Throws QUERY_INVALID listing every problem.
 */
export function parseQuery<T>(schema: string, query: unknown): T {
  const ints = integersOf(schema);
  const errors: FieldError[] = [];
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries((query ?? {}) as Record<string, unknown>)) {
    const path = toPointer(['querystring', key]);
    if (FORBIDDEN_KEYS.has(key)) {
      errors.push({ path, message: 'is not allowed' });
    } else if (Array.isArray(value)) {
      errors.push({ path, message: 'must be given at most once' });
    } else {
      out[key] = ints.has(key) && typeof value === 'string' && DECIMAL.test(value) ? Number(value) : value;
    }
  }
  const validate = validator(schema);
  if (!validate(out)) errors.push(...fieldErrors(validate.errors, '/querystring'));
  if (errors.length > 0) {
    throw new CordonError('QUERY_INVALID', errors.map((e) => `${e.path} ${e.message}`).join('; '), { errors });
  }
  return out as T;
}

/**
 * Ops callers must say why they read history; desks may, and it is ignored. Returns the purpose
 * to record (undefined for desks). Blank counts as missing.
 */
export function purposeOf(token: Token, purpose: string | undefined): string | undefined {
  if (token.role !== 'ops') return undefined;
  const text = purpose?.trim();
  if (!text) throw new CordonError('PURPOSE_REQUIRED', 'Ops tokens must give purpose=<text> (it is recorded in the audit trail)');
  return text;
}

export function actorOf(token: Token): string {
  return `${token.iss}/${token.sub}`;
}

export type ReplayedRecord =
  | { target: 'region'; mode: 'page' | 'stream'; region: string; epoch: string | null; from: number; to: number; count?: number }
  | { target: 'alert'; id: string; versions: 'latest' | 'all'; count: number; region?: string }
  | { target: 'audit'; from: number; to: number; count: number };

/**
 * Records an ops read before any of its data leaves: when the trail cannot be written the caller
 * gets a 503 and nothing else, so no ops read goes unrecorded.
 */
export async function recordReplay(audit: Pick<AuditLog, 'append'>, token: Token, purpose: string, fields: ReplayedRecord): Promise<AuditRecord> {
  try {
    return await audit.append({ kind: 'replayed', actor: actorOf(token), purpose, ...fields });
  } catch (err) {
    throw new CordonError('LOG_UNAVAILABLE', 'The audit trail is unreachable; nothing was served, retry', { cause: err });
  }
}

const NDJSON = 'application/x-ndjson';

/**
 * `Accept` negotiation for the history endpoints: 'ndjson' when the caller names
 * application/x-ndjson, 'json' when it accepts JSON (or anything), else 406.
 */
export function negotiate(accept: string | undefined): 'json' | 'ndjson' {
  if (!accept) return 'json';
  let json = false;
  for (const part of accept.split(',')) {
    const [type, ...params] = part.trim().toLowerCase().split(';');
    const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    if (q !== undefined && Number(q.slice(2)) === 0) continue;
    const t = type.trim();
    if (t === NDJSON) return 'ndjson';
    if (t === 'application/json' || t === 'application/*' || t === '*/*') json = true;
  }
  if (json) return 'json';
  throw new CordonError('NOT_ACCEPTABLE', 'This endpoint produces application/json or application/x-ndjson');
}
