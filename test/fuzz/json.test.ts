import fc from 'fast-check';
import { CordonError } from '../../src/errors';
import { parseJson, DEFAULT_MAX_MEMBERS, DEFAULT_MAX_VALUES, type JsonLimits } from '../../src/domain/json';
import { makeTestTrust } from '../helpers/keys';
import { validContent, minimalContent } from '../fixtures/alerts';
import { anyBytes, DoorStats, fcParams, fuzzRuns, isDocumented, mutate, mutateText, structuralMutation, textBytes, textMutation, timeoutFor } from './lib';

/**
 * Door: the hostile-input JSON parser (src/domain/json.ts), which every body and frame goes
 * through. Besides "never anything but a REQUEST_* CordonError", it is checked against an
 * independent reference: it accepts exactly the texts that are valid UTF-8 JSON within the limits
 * with no duplicate or forbidden key, no lone surrogate and no unsafe number, and then returns
 * what JSON.parse returns.
 */

const RUNS = fuzzRuns(3000);
const LIMITS: JsonLimits[] = [
  { maxBytes: 65536, maxDepth: 32 },
  { maxBytes: 2048, maxDepth: 4, maxMembers: 24, maxValues: 40 },
];
const REQUEST_CODES = new Set([
  'REQUEST_TOO_LARGE',
  'REQUEST_MALFORMED_JSON',
  'REQUEST_TOO_DEEP',
  'REQUEST_DUPLICATE_KEY',
  'REQUEST_FORBIDDEN_KEY',
  'REQUEST_INVALID_UNICODE',
  'REQUEST_UNSAFE_NUMBER',
]);

interface Verdict {
  ok: boolean;
  why?: string;
}

/** An independent judgement of `raw` under `limits`, by a plain recursive descent over JSON.parse's text. */
function reference(raw: Buffer, limits: JsonLimits): Verdict {
  if (raw.length > limits.maxBytes) return { ok: false, why: 'size' };
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(raw);
  } catch {
    return { ok: false, why: 'utf8' };
  }
  // Mirrors the parser's documented bounds: nesting, ':' (members) and ',' (values) outside strings.
  let depth = 0;
  let maxDepth = 0;
  let colons = 0;
  let commas = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      i++;
      while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
    } else if (c === '{' || c === '[') maxDepth = Math.max(maxDepth, ++depth);
    else if (c === '}' || c === ']') depth--;
    else if (c === ':') colons++;
    else if (c === ',') commas++;
  }
  if (maxDepth > limits.maxDepth) return { ok: false, why: 'depth' };
  if (colons > (limits.maxMembers ?? DEFAULT_MAX_MEMBERS)) return { ok: false, why: 'members' };
  if (commas >= (limits.maxValues ?? DEFAULT_MAX_VALUES)) return { ok: false, why: 'values' };
  try {
    JSON.parse(text);
  } catch {
    return { ok: false, why: 'syntax' };
  }
  let bad: string | undefined;
  let i = 0;
  const ws = () => {
    while (/[ \t\n\r]/.test(text[i] ?? '')) i++;
  };
  const str = (): string => {
    const start = i++;
    while (text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
    i++;
    return JSON.parse(text.slice(start, i)) as string;
  };
  const wellFormed = (s: string) => !/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(s);
  const value = (): void => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      const seen = new Set<string>();
      ws();
      if (text[i] === '}') {
        i++;
        return;
      }
      for (;;) {
        ws();
        const k = str();
        if (seen.has(k)) bad ??= 'duplicate';
        seen.add(k);
        if (k === '__proto__' || k === 'constructor' || k === 'prototype') bad ??= 'forbidden';
        if (!wellFormed(k)) bad ??= 'unicode';
        ws();
        i++; // ':'
        value();
        ws();
        if (text[i++] === '}') return;
      }
    } else if (c === '[') {
      i++;
      ws();
      if (text[i] === ']') {
        i++;
        return;
      }
      for (;;) {
        value();
        ws();
        if (text[i++] === ']') return;
      }
    } else if (c === '"') {
      if (!wellFormed(str())) bad ??= 'unicode';
    } else {
      const m = /^-?\d+(\.\d+)?([eE][+-]?\d+)?|^true|^false|^null/.exec(text.slice(i, i + 400))!;
      i += m[0].length;
      if (/\d/.test(m[0][0]) || m[0][0] === '-') {
        const n = Number(m[0]);
        if (!Number.isFinite(n) || (Number.isInteger(n) && !Number.isSafeInteger(n))) bad ??= 'number';
      }
    }
  };
  value();
  return bad ? { ok: false, why: bad } : { ok: true };
}

function bases(): unknown[] {
  const trust = makeTestTrust();
  return [
    trust.sign(validContent()),
    trust.sign(minimalContent()),
    { type: 'subscribe', regions: ['KG-CN-01'], from: { 'KG-CN-01': { seq: 3, epoch: 'e1' } }, filter: { urgency: ['flash'] } },
    { a: [1, 2, { b: 'c' }], d: null },
  ];
}

describe('fuzz: the hostile-input JSON parser', () => {
  const stats = new DoorStats('json-parser');
  afterAll(() => {
    stats.print();
  });

  const input = fc.oneof(
    { weight: 1, arbitrary: anyBytes },
    {
      weight: 3,
      arbitrary: fc
        .tuple(fc.constantFrom(...bases()), fc.array(structuralMutation, { maxLength: 2 }), fc.array(textMutation, { maxLength: 3 }))
        .map(([base, sm, tm]) => {
          let v = base;
          for (const m of sm) v = mutate(v, m);
          let text = JSON.stringify(v) ?? 'null';
          for (const m of tm) text = mutateText(text, m);
          return textBytes(text, tm);
        }),
    },
  );

  test(
    `${RUNS} inputs: accepted exactly when the reference accepts; rejections are REQUEST_* codes`,
    () => {
      fc.assert(
        fc.property(input, fc.constantFrom(...LIMITS), fc.boolean(), (raw, limits, asString) => {
          let value: unknown;
          let code: string | undefined;
          try {
            // The WebSocket door passes strings, the HTTP and NATS doors buffers.
            value = parseJson(asString ? raw.toString('utf8') : raw, limits);
          } catch (err) {
            if (!(err instanceof CordonError)) throw new Error(`parser threw a non-CordonError: ${String(err)}`);
            code = err.code;
          }
          if (code !== undefined) {
            stats.reject(code);
            expect(isDocumented(code) && REQUEST_CODES.has(code)).toBe(true);
          } else {
            stats.accept();
          }
          // The reference judges the bytes that were parsed (a string is UTF-8 encoded first).
          const parsed = asString ? Buffer.from(raw.toString('utf8'), 'utf8') : raw;
          const verdict = reference(parsed, limits);
          if (code === undefined) {
            if (!verdict.ok) throw new Error(`accepted what the reference rejects (${verdict.why}): ${parsed.toString('utf8').slice(0, 200)}`);
            expect(value).toEqual(JSON.parse(parsed.toString('utf8')));
          } else if (verdict.ok) {
            // A string's UTF-16 length can pass the reference's byte count where the parser's cheap
            // string bound does not: only REQUEST_TOO_LARGE may differ that way.
            if (!(asString && code === 'REQUEST_TOO_LARGE')) {
              throw new Error(`rejected (${code}) what the reference accepts: ${parsed.toString('utf8').slice(0, 200)}`);
            }
          }
        }),
        fcParams(RUNS),
      );
      expect(stats.accepted).toBeGreaterThan(0);
      expect(stats.rejected.size).toBeGreaterThan(3);
    },
    timeoutFor(RUNS, 2),
  );
});
