/**
 * JSON Canonicalization Scheme (RFC 8785): the exact bytes a gateway signs.
 *
 * ES2015+ `JSON.stringify` already serialises strings and numbers as RFC 8785 requires
 * (§3.2.2.2, §3.2.2.3), and `Array.prototype.sort` without a comparator orders keys by UTF-16
 * code units (§3.2.3). What is left is refusing what I-JSON forbids.
 */
export class JcsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'JcsError';
  }
}

// A lone surrogate: a high one not followed by a low one, or a low one not preceded by a high one.
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
// Node 20 has the native check (ES2024); the regex is the fallback where it is missing.
const isWellFormed: (s: string) => boolean =
  typeof (String.prototype as { isWellFormed?: unknown }).isWellFormed === 'function'
    ? (s) => (s as unknown as { isWellFormed(): boolean }).isWellFormed()
    : (s) => !LONE_SURROGATE.test(s);

export function canonicalize(value: unknown): string {
  const out = fast(value);
  // Something not I-JSON: the careful walk names where (and throws).
  return out ?? serialize(value, []);
}

/**
 * The same serialisation without tracking the path (several times a second per alert, on the
 * event loop): null instead of the error, which the careful walk then explains.
 */
function fast(value: unknown): string | null {
  switch (typeof value) {
    case 'string':
      return isWellFormed(value) ? JSON.stringify(value) : null;
    case 'number':
      return Number.isFinite(value) ? JSON.stringify(value) : null;
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object': {
      if (value === null) return 'null';
      if (Array.isArray(value)) {
        let out = '[';
        for (let i = 0; i < value.length; i++) {
          const v = fast(value[i]);
          if (v === null) return null;
          out += i > 0 ? ',' + v : v;
        }
        return out + ']';
      }
      const proto: unknown = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) return null;
      const obj = value as Record<string, unknown>;
      const keys = Object.keys(obj).sort();
      let out = '{';
      for (const k of keys) {
        const v = obj[k];
        if (v === undefined) continue;
        if (!isWellFormed(k)) return null;
        const sv = fast(v);
        if (sv === null) return null;
        out += (out.length > 1 ? ',' : '') + JSON.stringify(k) + ':' + sv;
      }
      return out + '}';
    }
    default:
      return null;
  }
}

/** The JSON Pointer of the value being serialised, built only for an error message. */
function pointer(path: readonly (string | number)[]): string {
  return path.length === 0 ? '/' : path.map((p) => `/${p}`).join('');
}

/** `path` is the stack of segments down to `value`: pushed and popped, never joined on the way. */
function serialize(value: unknown, path: (string | number)[]): string {
  switch (typeof value) {
    case 'string':
      return str(value, path);
    case 'number':
      if (!Number.isFinite(value)) throw new JcsError(`non-finite number at ${pointer(path)}`);
      return JSON.stringify(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object': {
      if (value === null) return 'null';
      if (Array.isArray(value)) {
        let out = '[';
        for (let i = 0; i < value.length; i++) {
          if (i > 0) out += ',';
          path.push(i);
          out += serialize(value[i], path);
          path.pop();
        }
        return out + ']';
      }
      const proto: unknown = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) throw new JcsError(`not a plain object at ${pointer(path)}`);
      const obj = value as Record<string, unknown>;
      const keys = Object.keys(obj).sort();
      let out = '{';
      let first = true;
      for (const k of keys) {
        const v = obj[k];
        // As JSON.stringify does: an absent optional field built in code is simply not there.
        if (v === undefined) continue;
        if (!first) out += ',';
        first = false;
        out += str(k, path) + ':';
        path.push(k);
        out += serialize(v, path);
        path.pop();
      }
      return out + '}';
    }
    default:
      throw new JcsError(`${typeof value} is not JSON at ${pointer(path)}`);
  }
}

function str(s: string, path: readonly (string | number)[]): string {
  if (!isWellFormed(s)) throw new JcsError(`lone surrogate at ${pointer(path)}`);
  return JSON.stringify(s);
}
