import type { FieldError } from '../errors';

/**
 * The rules of contract §2 that JSON Schema cannot say. Each rule takes the content as parsed
 * (it may also have failed the schema, so every rule checks the types it relies on and stays
 * silent where the schema already speaks) and returns violations with JSON Pointers relative to
 * the content, e.g. `/handling/codes`.
 */
export interface RuleContext {
  regions: { has(code: string): boolean };
  memberStates: ReadonlySet<string>;
}

export type ContentRule = (content: Record<string, unknown>, ctx: RuleContext) => FieldError[];

type Obj = Record<string, unknown>;

const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const DATE = /^\d{4}-\d{2}-\d{2}$/;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function str(o: Obj, key: string): string | undefined {
  const v = o[key];
  return typeof v === 'string' ? v : undefined;
}

/** An RFC 3339 UTC timestamp with milliseconds that names a real instant (no 30 February, no :60). */
export function isRealTimestamp(s: string): boolean {
  return TIMESTAMP.test(s) && isRealDay(s) && num(s, 11) <= 23 && num(s, 14) <= 59 && num(s, 17) <= 59;
}

/** An RFC 3339 full-date that names a real day. */
export function isRealDate(s: string): boolean {
  return DATE.test(s) && isRealDay(s);
}

/** Two digits at `i`; the caller has matched the pattern. Arithmetic, not Date: this runs per alert. */
function num(s: string, i: number): number {
  return (s.charCodeAt(i) - 48) * 10 + (s.charCodeAt(i + 1) - 48);
}

function isRealDay(s: string): boolean {
  const year = num(s, 0) * 100 + num(s, 2);
  const month = num(s, 5);
  const day = num(s, 8);
  if (month < 1 || month > 12 || day < 1) return false;
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  const days = month === 2 ? (leap ? 29 : 28) : month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
  return day <= days;
}

/** The timestamp at `key` if it is well formed and real, else undefined (reported elsewhere). */
function instant(o: Obj, key: string): string | undefined {
  const s = str(o, key);
  return s !== undefined && isRealTimestamp(s) ? s : undefined;
}

const TIMESTAMP_FIELDS = ['created', 'modified', 'valid_from', 'valid_until'] as const;

/** created, modified, valid_from and valid_until are real calendar instants. */
export const timestampsAreReal: ContentRule = (c) => {
  const out: FieldError[] = [];
  for (const key of TIMESTAMP_FIELDS) {
    const s = str(c, key);
    if (s !== undefined && TIMESTAMP.test(s) && !isRealTimestamp(s)) {
      out.push({ path: `/${key}`, message: 'is not a real calendar instant' });
    }
  }
  return out;
};

/** modified >= created. Same fixed-width UTC format, so string order is time order. */
export const modifiedNotBeforeCreated: ContentRule = (c) => {
  const created = instant(c, 'created');
  const modified = instant(c, 'modified');
  if (created && modified && modified < created) return [{ path: '/modified', message: 'must not be earlier than created' }];
  return [];
};

/** A later version (modified > created) that is not a revocation says what changed. */
export const correctionNoteOnLaterVersions: ContentRule = (c) => {
  const created = instant(c, 'created');
  const modified = instant(c, 'modified');
  if (created && modified && modified > created && c.revoked !== true && c.correction_note === undefined) {
    return [{ path: '/correction_note', message: 'is required when modified is after created (unless revoked)' }];
  }
  return [];
};

export const validUntilAfterValidFrom: ContentRule = (c) => {
  const from = instant(c, 'valid_from');
  const until = instant(c, 'valid_until');
  if (from && until && until <= from) return [{ path: '/valid_until', message: 'must be after valid_from' }];
  return [];
};

export const GRADING_SCHEMES: Readonly<Record<string, { source: readonly string[]; information: readonly string[] }>> = {
  'europol-4x4': { source: ['A', 'B', 'C', 'X'], information: ['1', '2', '3', '4'] },
  'uk-3x5x2': { source: ['1', '2', '3'], information: ['A', 'B', 'C', 'D', 'E'] },
  admiralty: { source: ['A', 'B', 'C', 'D', 'E', 'F'], information: ['1', '2', '3', '4', '5', '6'] },
};

/** grading.source and grading.information are codes of grading.scheme. */
export const gradingCodesMatchScheme: ContentRule = (c) => {
  const g = c.grading;
  if (!isObj(g)) return [];
  const scheme = str(g, 'scheme');
  if (scheme === undefined || !Object.hasOwn(GRADING_SCHEMES, scheme)) return [];
  const def = GRADING_SCHEMES[scheme];
  const out: FieldError[] = [];
  for (const key of ['source', 'information'] as const) {
    const v = str(g, key);
    if (v !== undefined && !def[key].includes(v)) {
      out.push({ path: `/grading/${key}`, message: `must be one of ${def[key].join(', ')} in scheme ${scheme}` });
    }
  }
  return out;
};

const H_CODES = new Set(['H0', 'H1', 'H2', 'H3']);
const PC_CODES = new Set(['P', 'C']);

/** The handling-code rules of §2: one family, conditions, evidential use and onward sharing. */
export const handlingCodesConsistent: ContentRule = (c) => {
  const h = c.handling;
  if (!isObj(h)) return [];
  const codes = Array.isArray(h.codes) ? h.codes.filter((x): x is string => typeof x === 'string') : [];
  const has = (code: string): boolean => codes.includes(code);
  const out: FieldError[] = [];

  if (codes.some((x) => H_CODES.has(x)) && codes.some((x) => PC_CODES.has(x))) {
    out.push({ path: '/handling/codes', message: 'must come from one family: H0 H1 H2 H3, or P C' });
  }
  const needsConditions = has('H3') ? 'H3' : has('C') ? 'C' : undefined;
  if (needsConditions && h.conditions === undefined) {
    out.push({ path: '/handling/conditions', message: `is required with ${needsConditions}` });
  }
  if (has('H1') && h.evidential_use === true) {
    out.push({ path: '/handling/evidential_use', message: 'must be false with H1' });
  }
  const sharing = str(h, 'onward_sharing');
  if (sharing === 'within-audience') {
    const tlp = str(h, 'tlp');
    const why = has('H2') ? 'H2' : tlp === 'TLP:RED' || tlp === 'TLP:AMBER+STRICT' ? tlp : undefined;
    if (why) out.push({ path: '/handling/onward_sharing', message: `must be none or with-permission with ${why}` });
  }
  return out;
};

/** retention.expires is a day after the day of created; retention dates are real days. */
export const retentionAfterCreated: ContentRule = (c) => {
  const r = c.retention;
  if (!isObj(r)) return [];
  const out: FieldError[] = [];
  for (const key of ['review_by', 'expires'] as const) {
    const d = str(r, key);
    if (d !== undefined && DATE.test(d) && !isRealDate(d)) out.push({ path: `/retention/${key}`, message: 'is not a real calendar date' });
  }
  const expires = str(r, 'expires');
  const created = instant(c, 'created');
  if (expires !== undefined && isRealDate(expires) && created && expires <= created.slice(0, 10)) {
    out.push({ path: '/retention/expires', message: 'must be after the date of created' });
  }
  return out;
};

// C0, DEL and C1 controls; the title also may not break a line (U+2028, U+2029).
/* eslint-disable no-control-regex -- these match the control characters an alert may not carry */
const TITLE_FORBIDDEN = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;
const DESCRIPTION_FORBIDDEN = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/;
/* eslint-enable no-control-regex */
/**
 * Characters that make a title read otherwise than it is (Trojan Source): bidirectional embeddings
 * and overrides (U+202A–U+202E), isolates (U+2066–U+2069), zero-width space, non-joiner and
 * joiner (U+200B–U+200D), word joiner (U+2060) and the byte order mark (U+FEFF). The same set is
 * in the `purpose` pattern of schemas/replay-query.json.
 */
const INVISIBLE_FORMAT = /[\u200b-\u200d\u2060\u202a-\u202e\u2066-\u2069\ufeff]/;
/** Only white space (JavaScript's \s: Unicode White_Space and the BOM). */
const BLANK = /^\s*$/;

export const noControlCharacters: ContentRule = (c) => {
  const out: FieldError[] = [];
  const title = str(c, 'title');
  if (title !== undefined && TITLE_FORBIDDEN.test(title)) {
    out.push({ path: '/title', message: 'must be one line without control characters' });
  }
  if (title !== undefined && INVISIBLE_FORMAT.test(title)) {
    out.push({ path: '/title', message: 'must not contain bidirectional overrides, zero-width characters or a byte order mark' });
  }
  if (title !== undefined && title.length > 0 && BLANK.test(title)) {
    out.push({ path: '/title', message: 'must not be blank' });
  }
  const description = str(c, 'description');
  if (description !== undefined && DESCRIPTION_FORBIDDEN.test(description)) {
    out.push({ path: '/description', message: 'must not contain control characters other than \\n and \\t' });
  }
  return out;
};

const STATE = /^[A-Z]{2}$/;
/** audience.states maxItems in schemas/alert-content.json. */
const MAX_AUDIENCE = 64;

/** issuer.state and every audience state are member states. */
export const statesAreMembers: ContentRule = (c, ctx) => {
  const out: FieldError[] = [];
  if (isObj(c.issuer)) {
    const state = str(c.issuer, 'state');
    if (state !== undefined && STATE.test(state) && !ctx.memberStates.has(state)) {
      out.push({ path: '/issuer/state', message: 'is not a member state' });
    }
  }
  // An over-long list is the schema's to reject; walking it would only amplify hostile input.
  if (isObj(c.audience) && Array.isArray(c.audience.states) && c.audience.states.length <= MAX_AUDIENCE) {
    c.audience.states.forEach((s: unknown, i: number) => {
      if (typeof s === 'string' && STATE.test(s) && !ctx.memberStates.has(s)) {
        out.push({ path: `/audience/states/${i}`, message: 'is not a member state' });
      }
    });
  }
  return out;
};

const REGION = /^[A-Z]{2}-[A-Z]{2}-[0-9]{2}$/;

export const regionInRegistry: ContentRule = (c, ctx) => {
  const region = str(c, 'region');
  if (region !== undefined && REGION.test(region) && !ctx.regions.has(region)) {
    return [{ path: '/region', message: 'is not a region in the registry' }];
  }
  return [];
};

export const CONTENT_RULES: readonly ContentRule[] = [
  timestampsAreReal,
  modifiedNotBeforeCreated,
  correctionNoteOnLaterVersions,
  validUntilAfterValidFrom,
  regionInRegistry,
  noControlCharacters,
  gradingCodesMatchScheme,
  handlingCodesConsistent,
  statesAreMembers,
  retentionAfterCreated,
];

/** Every rule violation of `content` (paths relative to the content). */
export function checkContentRules(content: unknown, ctx: RuleContext): FieldError[] {
  if (!isObj(content)) return [];
  const out: FieldError[] = [];
  for (const rule of CONTENT_RULES) {
    const errs = rule(content, ctx);
    for (let i = 0; i < errs.length; i++) out.push(errs[i]);
  }
  return out;
}
