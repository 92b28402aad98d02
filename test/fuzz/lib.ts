import fc from 'fast-check';
import { ERRORS, type ErrorCode } from '../../src/errors';

/**
 * Shared pieces of the property-based fuzzing of Cordon's doors (test/fuzz/*.test.ts).
 *
 * Each door is fed two kinds of input: fully random bytes, text and JSON, and mutations of a
 * VALID input (a signed submission, a token, a frame, a query string), so most cases pass the
 * first checks and reach deep code. The invariant is the same everywhere: no crash, no
 * unhandled rejection, every rejection carries a documented error code, nothing is stored.
 * (Unhandled rejections and uncaught exceptions need no check of their own: jest fails the test
 * that is running when one happens, and listeners on `process` inside a test never see them.)
 *
 * `npm test` runs a few thousand cases per door; `npm run fuzz` (CORDON_FUZZ_RUNS=100000) runs
 * more and prints what each door answered.
 */

/** Cases per door: CORDON_FUZZ_RUNS when set, else the door's default. */
export function fuzzRuns(defaultRuns: number): number {
  const env = process.env.CORDON_FUZZ_RUNS;
  const n = env ? Number(env) : NaN;
  return Number.isInteger(n) && n > 0 ? n : defaultRuns;
}

/** Whether this is a long run (`npm run fuzz`): then counts are printed and the seed reported. */
export const LONG_RUN = Boolean(process.env.CORDON_FUZZ_RUNS);

/** A jest timeout big enough for `runs` cases at `msPerCase` on a loaded machine. */
export function timeoutFor(runs: number, msPerCase: number): number {
  return Math.max(60_000, Math.ceil(runs * msPerCase * 4));
}

export const DOCUMENTED: ReadonlySet<string> = new Set(Object.keys(ERRORS));

export function isDocumented(code: unknown): code is ErrorCode {
  return typeof code === 'string' && DOCUMENTED.has(code);
}

/** What a door answered over a run: cases, rejections by code, acceptances. */
export class DoorStats {
  cases = 0;
  accepted = 0;
  readonly rejected = new Map<string, number>();
  readonly other = new Map<string, number>();

  constructor(readonly door: string) {}

  accept(): void {
    this.cases++;
    this.accepted++;
  }

  reject(code: string): void {
    this.cases++;
    this.rejected.set(code, (this.rejected.get(code) ?? 0) + 1);
  }

  /** Something neither accepted nor rejected (e.g. a frame answered only with `subscribed`). */
  note(what: string): void {
    this.cases++;
    this.other.set(what, (this.other.get(what) ?? 0) + 1);
  }

  summary(): string {
    const by = (m: Map<string, number>) =>
      [...m.entries()]
        .sort((a, b) => b[1] - a[1])
        .map(([k, v]) => `${k}=${v}`)
        .join(' ');
    const rejected = [...this.rejected.values()].reduce((a, b) => a + b, 0);
    let s = `fuzz ${this.door}: ${this.cases} cases, ${this.accepted} accepted, ${rejected} rejected`;
    if (rejected > 0) s += ` [${by(this.rejected)}]`;
    if (this.other.size > 0) s += `; other: ${by(this.other)}`;
    return s;
  }

  /** Printed on long runs (and whenever CORDON_FUZZ_REPORT is set); quiet in `npm test`. */
  print(): void {
    if (LONG_RUN || process.env.CORDON_FUZZ_REPORT) process.stdout.write(this.summary() + '\n');
  }
}

/** fast-check parameters: the run count, and on long runs the seed printed for replay. */
export function fcParams(runs: number): fc.Parameters<unknown> {
  const seed = process.env.CORDON_FUZZ_SEED ? Number(process.env.CORDON_FUZZ_SEED) : undefined;
  return { numRuns: runs, ...(seed !== undefined ? { seed } : {}), endOnFailure: true };
}

// ---- generators --------------------------------------------------------------------------------

/** Strings full of what breaks parsers and renderers. */
const EDGE_STRINGS = [
  '',
  ' ',
  '\u0000',
  '\u001f',
  '\u007f',
  '\ufeff', // BOM
  '\u2028\u2029',
  '\u202e', // right-to-left override
  '\u2066\u2069',
  '\u200b\u200d',
  '\ud800', // lone high surrogate
  '\udfff', // lone low surrogate
  'a\ud83dz',
  '\ud83d\ude00', // a valid pair
  'e\u0301\u0301\u0301', // combining marks
  '\uffff',
  '\\',
  '"',
  '\\u0000',
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  'null',
  '%00',
  '%ZZ',
  '../../etc/passwd',
  '${jndi:x}',
  'KG-CN-01',
  'TLP:RED',
  '9007199254740993',
  '1e400',
  '-0',
  'NaN',
  'Infinity',
];

export const edgeString: fc.Arbitrary<string> = fc.oneof(
  { weight: 5, arbitrary: fc.constantFrom(...EDGE_STRINGS) },
  fc.string({ maxLength: 40 }),
  fc.fullUnicodeString({ maxLength: 40 }),
  { weight: 2, arbitrary: fc.string16bits({ maxLength: 20 }) }, // lone surrogates
  fc.nat({ max: 70_000 }).map((n) => 'x'.repeat(n)), // huge
);

const EDGE_NUMBERS = [0, -0, 1, -1, 0.5, 1e-7, 2 ** 31, 2 ** 53 - 1, -(2 ** 53 - 1), 2 ** 53, 2 ** 53 + 2, 1e21, 1e308, -1e308, Number.MIN_VALUE];

export const edgeNumber: fc.Arbitrary<number> = fc.oneof(fc.constantFrom(...EDGE_NUMBERS), fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }));

/** Any JSON value, small. */
export const anyJson: fc.Arbitrary<unknown> = fc.oneof(
  { depthSize: 'small' },
  fc.jsonValue({ maxDepth: 4 }),
  edgeString,
  edgeNumber,
  fc.constantFrom(null, true, false, [], {}),
);

/** Raw bytes / text a door might be sent. */
export const anyBytes: fc.Arbitrary<Buffer> = fc.oneof(
  fc.uint8Array({ maxLength: 512 }).map((a) => Buffer.from(a)),
  fc.fullUnicodeString({ maxLength: 256 }).map((s) => Buffer.from(s, 'utf8')),
  fc.jsonValue({ maxDepth: 5 }).map((v) => Buffer.from(JSON.stringify(v) ?? 'null', 'utf8')),
);

// ---- structural mutations of a valid JSON value --------------------------------------------------

type Json = unknown;

/** Paths to every node of a JSON value, root first. */
function paths(v: Json, at: Array<string | number> = [], out: Array<Array<string | number>> = []): Array<Array<string | number>> {
  out.push(at);
  if (Array.isArray(v)) v.forEach((x, i) => paths(x, [...at, i], out));
  else if (v !== null && typeof v === 'object') for (const k of Object.keys(v)) paths((v as Record<string, Json>)[k], [...at, k], out);
  return out;
}

function getAt(v: Json, path: Array<string | number>): Json {
  let cur = v;
  for (const seg of path) cur = (cur as Record<string | number, Json>)[seg];
  return cur;
}

/** `value` may be DELETE (already a Json: Json is `unknown`). */
function setAt(v: Json, path: Array<string | number>, value: Json): Json {
  if (path.length === 0) return value === DELETE ? null : value;
  const parent = getAt(v, path.slice(0, -1)) as Record<string | number, Json> | Json[];
  const last = path[path.length - 1];
  if (value === DELETE) {
    if (Array.isArray(parent)) parent.splice(last as number, 1);
    else delete (parent as Record<string, Json>)[last as string];
  } else {
    (parent as Record<string | number, Json>)[last] = value;
  }
  return v;
}

const DELETE = Symbol('delete');

function nest(value: Json, depth: number, asArray: boolean): Json {
  let v = value;
  for (let i = 0; i < depth; i++) v = asArray ? [v] : { n: v };
  return v;
}

/** Another value of another type than `v`. */
function retype(v: Json, pick: number): Json {
  const options: Json[] = [null, true, 0, -1, 1.5, '', 'x', [], {}, [v], { v }, JSON.stringify(v) ?? 'x', 2 ** 53];
  return options[pick % options.length];
}

export type StructuralMutation =
  | { kind: 'drop'; at: number }
  | { kind: 'replace'; at: number; value: Json }
  | { kind: 'retype'; at: number; pick: number }
  | { kind: 'add-key'; at: number; key: string; value: Json }
  | { kind: 'string'; at: number; value: string }
  | { kind: 'number'; at: number; value: number }
  | { kind: 'nest'; at: number; depth: number; asArray: boolean }
  | { kind: 'grow-array'; at: number; times: number };

export const structuralMutation: fc.Arbitrary<StructuralMutation> = fc.oneof(
  fc.record({ kind: fc.constant('drop' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('replace' as const), at: fc.nat(), value: anyJson }),
  fc.record({ kind: fc.constant('retype' as const), at: fc.nat(), pick: fc.nat() }),
  fc.record({ kind: fc.constant('add-key' as const), at: fc.nat(), key: edgeString.filter((s) => s.length < 200), value: anyJson }),
  fc.record({ kind: fc.constant('string' as const), at: fc.nat(), value: edgeString }),
  fc.record({ kind: fc.constant('number' as const), at: fc.nat(), value: edgeNumber }),
  fc.record({ kind: fc.constant('nest' as const), at: fc.nat(), depth: fc.integer({ min: 1, max: 12 }), asArray: fc.boolean() }),
  fc.record({ kind: fc.constant('grow-array' as const), at: fc.nat(), times: fc.oneof(fc.integer({ min: 2, max: 40 }), fc.integer({ min: 500, max: 3000 })) }),
);

/**
 * A deep copy made in this realm (structuredClone's objects would have another realm's prototype
 * under jest, which canonicalisation rightly refuses); own `__proto__` keys stay own keys.
 */
export function clone<T>(v: T): T {
  if (Array.isArray(v)) return v.map(clone) as T;
  if (v === null || typeof v !== 'object') return v;
  const o = {};
  for (const k of Object.keys(v)) {
    Object.defineProperty(o, k, { value: clone((v as Record<string, unknown>)[k]), enumerable: true, writable: true, configurable: true });
  }
  return o as T;
}

/** Applies a mutation to a deep copy of `base` (or of one of its nodes, chosen by `at`). */
export function mutate(base: Json, m: StructuralMutation): Json {
  let v = clone(base);
  const all = paths(v);
  // Leaves for value changes, containers for structure changes; any node otherwise.
  const pick = (filter: (x: Json) => boolean): Array<string | number> => {
    const cands = all.filter((p) => filter(getAt(v, p)));
    return cands.length > 0 ? cands[m.at % cands.length] : all[m.at % all.length];
  };
  const isObject = (x: Json) => x !== null && typeof x === 'object' && !Array.isArray(x);
  switch (m.kind) {
    case 'drop': {
      const p = all.length > 1 ? all[1 + (m.at % (all.length - 1))] : [];
      return setAt(v, p, DELETE);
    }
    case 'replace':
      return setAt(v, all[m.at % all.length], m.value);
    case 'retype': {
      const p = all[m.at % all.length];
      return setAt(v, p, retype(getAt(v, p), m.pick));
    }
    case 'add-key': {
      const p = pick(isObject);
      const target = getAt(v, p);
      if (isObject(target)) {
        // defineProperty: `__proto__` as a real own key, as JSON.parse would make it.
        Object.defineProperty(target, m.key, { value: m.value, enumerable: true, writable: true, configurable: true });
      }
      return v;
    }
    case 'string':
      return setAt(
        v,
        pick((x) => typeof x === 'string'),
        m.value,
      );
    case 'number':
      return setAt(
        v,
        pick((x) => typeof x === 'number'),
        m.value,
      );
    case 'nest': {
      const p = all[m.at % all.length];
      return setAt(v, p, nest(getAt(v, p), m.depth, m.asArray));
    }
    case 'grow-array': {
      const p = pick(Array.isArray);
      const target = getAt(v, p);
      // Many copies only of something small: a huge string or a subtree copied thousands of
      // times (and again by a second mutation) would cost the fuzzer gigabytes, not the door.
      const small = (x: Json) => (x === null || typeof x !== 'object' ? typeof x !== 'string' || x.length <= 100 : false);
      if (Array.isArray(target) && target.length > 0) {
        const first = target[0];
        const times = small(first) ? m.times : Math.min(m.times, 8);
        for (let i = 1; i < times; i++) target.push(clone(first));
      } else {
        const times = small(target) ? m.times : Math.min(m.times, 8);
        v = setAt(
          v,
          p,
          Array.from({ length: times }, () => clone(target)),
        );
      }
      return v;
    }
  }
}

// ---- text mutations (what no JSON.stringify can produce) ------------------------------------------

export type TextMutation =
  | { kind: 'duplicate-member'; at: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'insert'; at: number; text: string }
  | { kind: 'delete-char'; at: number }
  | { kind: 'flip-byte'; at: number; bit: number }
  | { kind: 'number-text'; at: number; text: string }
  | { kind: 'escape'; at: number; text: string }
  | { kind: 'wrap'; prefix: string; suffix: string }
  | { kind: 'deep'; depth: number; asArray: boolean };

const JSON_SNIPPETS = [
  '{',
  '}',
  '[',
  ']',
  ',',
  ':',
  '"',
  '\\',
  'null',
  '"__proto__":{}',
  '"constructor":1',
  '\\ud800',
  '\\udc00',
  '\\u0000',
  '1e400',
  '-',
  '.',
  'tru',
  '\u0000',
  '\ufeff',
  ' \t\r\n',
  '/*x*/',
  "'",
];
const NUMBER_TEXTS = [
  '9007199254740993',
  '-9007199254740993',
  '1e400',
  '-1e400',
  '1E+2',
  '0.0000000000000000000001',
  '01',
  '-0',
  '1.',
  '.5',
  '0x10',
  'NaN',
  '123456789012345678901234567890',
];
const ESCAPES = ['\\ud800', '\\udfff', '\\ud83d\\ude00', '\\u0000', '\\u202e', '\\ufeff', '\\"', '\\\\', '\\/', '\\x41', '\\u12', '\\U0041'];

export const textMutation: fc.Arbitrary<TextMutation> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('duplicate-member' as const), at: fc.nat() }) },
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), text: fc.oneof(fc.constantFrom(...JSON_SNIPPETS), fc.fullUnicodeString({ maxLength: 3 })) }),
  fc.record({ kind: fc.constant('delete-char' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('flip-byte' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('number-text' as const), at: fc.nat(), text: fc.constantFrom(...NUMBER_TEXTS) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('escape' as const), at: fc.nat(), text: fc.constantFrom(...ESCAPES) }) },
  fc.record({
    kind: fc.constant('deep' as const),
    depth: fc.oneof(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 100, max: 5000 })),
    asArray: fc.boolean(),
  }),
  fc.record({
    kind: fc.constant('wrap' as const),
    prefix: fc.constantFrom('', '[', ' ', '\ufeff', '{"x":', '\u0000'),
    suffix: fc.constantFrom('', ']', ' ', '}', ',', '\n', 'x'),
  }),
);

/** `"key":` openings in `text`, found by a plain scan (strings are skipped). */
function memberStarts(text: string): Array<{ start: number; end: number }> {
  const out: Array<{ start: number; end: number }> = [];
  const stack: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      const start = i;
      i++;
      while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
      let k = i + 1;
      while (text[k] === ' ') k++;
      if (text[k] === ':') {
        // the member runs to the next ',' or '}' at this depth
        let depth = 0;
        let j = k + 1;
        for (; j < text.length; j++) {
          const d = text[j];
          if (d === '"') {
            j++;
            while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
          } else if (d === '{' || d === '[') depth++;
          else if (d === '}' || d === ']') {
            if (depth === 0) break;
            depth--;
          } else if (d === ',' && depth === 0) break;
        }
        out.push({ start, end: j });
      }
    } else if (c === '{' || c === '[') stack.push(i);
  }
  return out;
}

/** The positions of string bodies and numbers, for escapes and number texts. */
function positions(text: string, re: RegExp): number[] {
  const out: number[] = [];
  for (const m of text.matchAll(re)) out.push(m.index ?? 0);
  return out;
}

export function mutateText(text: string, m: TextMutation): string {
  const n = text.length;
  switch (m.kind) {
    case 'duplicate-member': {
      const members = memberStarts(text);
      if (members.length === 0) return text;
      const { start, end } = members[m.at % members.length];
      return text.slice(0, end) + ',' + text.slice(start, end) + text.slice(end);
    }
    case 'truncate':
      return text.slice(0, n === 0 ? 0 : m.at % n);
    case 'insert': {
      const i = n === 0 ? 0 : m.at % (n + 1);
      return text.slice(0, i) + m.text + text.slice(i);
    }
    case 'delete-char': {
      if (n === 0) return text;
      const i = m.at % n;
      return text.slice(0, i) + text.slice(i + 1);
    }
    case 'flip-byte': {
      const buf = Buffer.from(text, 'utf8');
      if (buf.length === 0) return text;
      buf[m.at % buf.length] ^= 1 << m.bit;
      return buf.toString('latin1'); // keep the raw bytes; callers send latin1 as bytes
    }
    case 'number-text': {
      const at = positions(text, /(?<=[:[,])-?\d/g);
      if (at.length === 0) return text;
      const i = at[m.at % at.length];
      let j = i + 1;
      while (j < n && /[0-9eE.+-]/.test(text[j])) j++;
      return text.slice(0, i) + m.text + text.slice(j);
    }
    case 'escape': {
      const at = positions(text, /"/g);
      if (at.length === 0) return text;
      const i = at[m.at % at.length] + 1;
      return text.slice(0, i) + m.text + text.slice(i);
    }
    case 'wrap':
      return m.prefix + text + m.suffix;
    case 'deep':
      // Nesting built as text: a value this deep would overflow a recursive clone.
      return m.asArray ? '['.repeat(m.depth) + text + ']'.repeat(m.depth) : '{"n":'.repeat(m.depth) + text + '}'.repeat(m.depth);
  }
}

/**
 * Bytes for a text mutation's result: a flipped byte is carried as latin1 (one char per byte) so
 * invalid UTF-8 reaches the door as bytes.
 */
export function textBytes(text: string, mutations: readonly TextMutation[]): Buffer {
  return mutations.some((m) => m.kind === 'flip-byte') ? Buffer.from(text, 'latin1') : Buffer.from(text, 'utf8');
}

/** A pino destination that keeps the app's error-level lines: a door's unexpected failures. */
export class ErrorLog {
  readonly lines: Array<{ msg: string; err?: string }> = [];

  write(line: string): void {
    try {
      const o = JSON.parse(line) as { level: number; msg: string; err?: { type?: string; message?: string } };
      if (o.level >= 50) this.lines.push({ msg: o.msg, err: o.err ? `${o.err.type}: ${o.err.message}` : undefined });
    } catch {
      this.lines.push({ msg: line });
    }
  }
}
