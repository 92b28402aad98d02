import type { ValidateFunction } from 'ajv';
import { CordonError, type FieldError } from '../errors';
import { checkContentRules, type RuleContext } from './rules';
import { fieldErrors, validator } from './schemas';
import type { Submission } from './types';

/** Registry and member states the rules check against; a RegionRegistry satisfies `regions`. */
export type ValidationContext = RuleContext;

/** Enough to correct any honest submission; a hostile one cannot make the problem body huge. */
const MAX_LISTED = 100;
/** Additional-property paths name the key, which may be arbitrarily long. */
const MAX_PATH = 256;

let submissionSchema: ValidateFunction | undefined;
let contentSchema: ValidateFunction | undefined;

/**
 * Checks a parsed submission against the submission schema (which includes the content schema)
 * and the content rules, and returns it typed. Throws one SUBMISSION_INVALID listing every
 * violation, schema and rules together, with paths like `/content/handling/codes`.
 */
export function validateSubmission(value: unknown, ctx: ValidationContext): Submission {
  const schema = (submissionSchema ??= validator('submission'));
  const schemaErrors = schema(value) ? [] : fieldErrors(schema.errors);
  const content = typeof value === 'object' && value !== null ? (value as { content?: unknown }).content : undefined;
  const ruleErrors = checkContentRules(content, ctx);
  if (schemaErrors.length === 0 && ruleErrors.length === 0) return value as Submission;
  throw invalid(merge(schemaErrors, ruleErrors, '/content'));
}

/**
 * Every violation of bare alert content (paths relative to the content, e.g. `/title`); empty
 * when valid. For tools that check content before signing it (the CLI `sign` command).
 */
export function validateContent(value: unknown, ctx: ValidationContext): FieldError[] {
  const schema = (contentSchema ??= validator('alert-content'));
  const schemaErrors = schema(value) ? [] : fieldErrors(schema.errors);
  const ruleErrors = checkContentRules(value, ctx);
  if (schemaErrors.length === 0 && ruleErrors.length === 0) return [];
  return merge(schemaErrors, ruleErrors, '');
}

/** Schema errors first; a rule error on a path the schema already rejected is only noise. */
function merge(schemaErrors: FieldError[], ruleErrors: FieldError[], rulePrefix: string): FieldError[] {
  const seen = new Set(schemaErrors.map((e) => e.path));
  const out = schemaErrors.map(clip);
  for (const e of ruleErrors) {
    const path = rulePrefix + e.path;
    if (!seen.has(path)) out.push({ path, message: e.message });
  }
  return out;
}

function clip(e: FieldError): FieldError {
  return e.path.length > MAX_PATH ? { path: e.path.slice(0, MAX_PATH) + '…', message: e.message } : e;
}

function invalid(errors: FieldError[]): CordonError {
  const n = errors.length;
  const listed = n > MAX_LISTED ? errors.slice(0, MAX_LISTED) : errors;
  const detail = `${n} violation${n === 1 ? '' : 's'}` + (n > MAX_LISTED ? ` (first ${MAX_LISTED} listed)` : '');
  return new CordonError('SUBMISSION_INVALID', detail, { errors: listed });
}
