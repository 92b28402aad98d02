import { isUtf8 } from 'node:buffer';
import { CordonError } from '../errors';

/**
 * Safe JSON parsing for hostile input (contract §2: well-formed Unicode, safe integers, no
 * prototype keys, bounded size and nesting, and no duplicate keys, which JSON.parse silently
 * merges). It runs on every alert, so it is three cheap passes rather than a hand-written parser:
 *
 *   1. a lexical scan that skips string bodies, bounds the nesting, the members and the values,
 *      and counts the `:` separators, which in valid JSON is exactly the number of members;
 *   2. V8's JSON.parse;
 *   3. one walk of the tree checking keys, strings and numbers and counting own keys: fewer keys
 *      in the tree than members in the text means a key was repeated. Only then does a slow
 *      pass find where, for the error detail.
 */
export interface JsonLimits {
  maxBytes: number;
  maxDepth: number;
  /** Object members in the whole document; default DEFAULT_MAX_MEMBERS. */
  maxMembers?: number;
  /** Values in the whole document (members and array elements); default DEFAULT_MAX_VALUES. */
  maxValues?: number;
}

/**
 * V8's JSON.parse slows down more than linearly with the number of values and of distinct keys:
 * 64 KiB of them cost it 1.5-10 ms, against ~5 µs for an alert. So both are bounded before
 * parsing. The largest alert the schema allows has about 400 members and 600 values.
 */
export const DEFAULT_MAX_MEMBERS = 512;
export const DEFAULT_MAX_VALUES = 2048;

/** Longest path segment echoed in an error: hostile keys can be 60 KB long. */
const MAX_SEGMENT = 64;

/** String.prototype.isWellFormed is in Node 20 but not in this project's TypeScript lib (ES2023). */
interface WellFormed {
  isWellFormed(): boolean;
}

export function parseJson(raw: Buffer | string, limits: JsonLimits): unknown {
  let text: string;
  if (typeof raw === 'string') {
    // UTF-8 needs at least one byte per UTF-16 unit and at most three.
    if (raw.length > limits.maxBytes || (raw.length * 3 > limits.maxBytes && Buffer.byteLength(raw, 'utf8') > limits.maxBytes)) {
      throw tooLarge(limits.maxBytes);
    }
    text = raw;
  } else {
    if (raw.length > limits.maxBytes) throw tooLarge(limits.maxBytes);
    // toString would replace bad sequences with U+FFFD and hide them.
    if (!isUtf8(raw)) throw new CordonError('REQUEST_MALFORMED_JSON', 'body is not valid UTF-8');
    text = raw.toString('utf8');
  }

  const members = scan(text, limits.maxDepth, limits.maxMembers ?? DEFAULT_MAX_MEMBERS, limits.maxValues ?? DEFAULT_MAX_VALUES);

  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    // V8's message quotes a slice of the input at most; keep only its position hint.
    const where = /position \d+/.exec((err as Error).message);
    throw new CordonError('REQUEST_MALFORMED_JSON', where ? `malformed JSON at ${where[0]}` : 'malformed JSON', { cause: err });
  }

  const path: Array<string | number> = [];
  const keys = walk(value, path);
  if (keys !== members) {
    const dup = findDuplicateKey(text);
    throw new CordonError('REQUEST_DUPLICATE_KEY', dup ? `duplicate key at ${dup}` : 'duplicate key', {
      errors: dup ? [{ path: dup, message: 'duplicate key' }] : undefined,
    });
  }
  return value;
}

function tooLarge(max: number): CordonError {
  return new CordonError('REQUEST_TOO_LARGE', `body exceeds ${max} bytes`);
}

/** Pass 1: bounds nesting (before JSON.parse and the recursive walk), members and values. */
function scan(text: string, maxDepth: number, maxMembers: number, maxValues: number): number {
  let depth = 0;
  let members = 0;
  let commas = 0;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      // Jump to the next quote; only if it is preceded by a backslash (so may be escaped) walk
      // this string char by char. Hostile runs of \" stay linear and cheap that way.
      let j = text.indexOf('"', i + 1);
      if (j === -1) return members; // unterminated string: JSON.parse reports it
      if (text.charCodeAt(j - 1) === 0x5c) {
        j = i + 1;
        for (;;) {
          if (j >= n) return members;
          const d = text.charCodeAt(j);
          if (d === 0x5c) j += 2;
          else if (d === 0x22) break;
          else j++;
        }
      }
      i = j;
    } else if (c === 0x7b || c === 0x5b) {
      if (++depth > maxDepth) {
        throw new CordonError('REQUEST_TOO_DEEP', `nesting deeper than ${maxDepth}`);
      }
    } else if (c === 0x7d || c === 0x5d) {
      depth--;
    } else if (c === 0x3a) {
      if (++members > maxMembers) {
        throw new CordonError('REQUEST_TOO_LARGE', `more than ${maxMembers} object members`);
      }
    } else if (c === 0x2c) {
      // Every value but the first in each container follows a comma: close enough to bound cost.
      if (++commas >= maxValues) {
        throw new CordonError('REQUEST_TOO_LARGE', `more than ${maxValues} values`);
      }
    }
  }
  return members;
}

/** Pass 3: checks every key, string and number; returns the number of own keys in the tree. */
function walk(v: unknown, path: Array<string | number>): number {
  if (typeof v === 'string') {
    if (!(v as unknown as WellFormed).isWellFormed()) fail('REQUEST_INVALID_UNICODE', 'lone surrogate in a string', path);
    return 0;
  }
  if (typeof v === 'number') {
    if (!Number.isFinite(v) || (Number.isInteger(v) && !Number.isSafeInteger(v))) {
      fail('REQUEST_UNSAFE_NUMBER', 'number outside ±(2^53−1) or not finite', path);
    }
    return 0;
  }
  if (v === null || typeof v !== 'object') return 0;
  let count = 0;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      path.push(i);
      count += walk(v[i], path);
      path.pop();
    }
    return count;
  }
  const obj = v as Record<string, unknown>;
  const keys = Object.keys(obj);
  count = keys.length;
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i];
    path.push(k);
    if (k === '__proto__' || k === 'constructor' || k === 'prototype') fail('REQUEST_FORBIDDEN_KEY', 'forbidden key', path);
    if (!(k as unknown as WellFormed).isWellFormed()) fail('REQUEST_INVALID_UNICODE', 'lone surrogate in a key', path);
    count += walk(obj[k], path);
    path.pop();
  }
  return count;
}

function fail(
  code: 'REQUEST_INVALID_UNICODE' | 'REQUEST_UNSAFE_NUMBER' | 'REQUEST_FORBIDDEN_KEY',
  message: string,
  path: ReadonlyArray<string | number>,
): never {
  const pointer = toPointer(path);
  throw new CordonError(code, `${message} at ${pointer}`, { errors: [{ path: pointer, message }] });
}

/** A JSON Pointer (RFC 6901), with long segments cut and lone surrogates made printable. */
export function toPointer(path: ReadonlyArray<string | number>): string {
  if (path.length === 0) return '/';
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') {
      out += '/' + seg;
      continue;
    }
    let s = seg.length > MAX_SEGMENT ? seg.slice(0, MAX_SEGMENT) + '…' : seg;
    s = (s as unknown as { toWellFormed(): string }).toWellFormed();
    out += '/' + s.replace(/~/g, '~0').replace(/\//g, '~1');
  }
  return out;
}

/**
 * The error path only: finds the first repeated key in text that JSON.parse accepted, and
 * returns its JSON Pointer. A plain recursive descent; the nesting is already bounded.
 */
function findDuplicateKey(text: string): string | undefined {
  let i = 0;
  const path: string[] = [];
  const ws = (): void => {
    while (i < text.length) {
      const c = text.charCodeAt(i);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) i++;
      else break;
    }
  };
  const str = (): string => {
    const start = i;
    let escaped = false;
    i++;
    for (;;) {
      const c = text.charCodeAt(i);
      if (c === 0x5c) {
        escaped = true;
        i += 2;
      } else if (c === 0x22) break;
      else i++;
    }
    i++;
    return escaped ? (JSON.parse(text.slice(start, i)) as string) : text.slice(start + 1, i - 1);
  };
  const value = (): string | undefined => {
    ws();
    const c = text.charCodeAt(i);
    if (c === 0x7b) {
      i++;
      const seen = new Set<string>();
      ws();
      if (text.charCodeAt(i) === 0x7d) {
        i++;
        return undefined;
      }
      for (;;) {
        ws();
        const key = str();
        path.push(key);
        if (seen.has(key)) return toPointer(path);
        seen.add(key);
        ws();
        i++; // ':'
        const found = value();
        if (found) return found;
        path.pop();
        ws();
        if (text.charCodeAt(i++) === 0x7d) return undefined; // else ','
      }
    }
    if (c === 0x5b) {
      i++;
      ws();
      if (text.charCodeAt(i) === 0x5d) {
        i++;
        return undefined;
      }
      for (let idx = 0; ; idx++) {
        path.push(String(idx));
        const found = value();
        if (found) return found;
        path.pop();
        ws();
        if (text.charCodeAt(i++) === 0x5d) return undefined;
      }
    }
    if (c === 0x22) {
      str();
      return undefined;
    }
    // number, true, false, null
    while (i < text.length) {
      const d = text.charCodeAt(i);
      if (d === 0x2c || d === 0x7d || d === 0x5d || d === 0x20 || d === 0x0a || d === 0x0d || d === 0x09) break;
      i++;
    }
    return undefined;
  };
  try {
    return value();
  } catch {
    return undefined;
  }
}
