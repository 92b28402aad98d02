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
  try {
    return serialize(value);
  } catch (err) {
    if (err instanceof Refusal) throw new JcsError(`${err.reason} at ${pointer(err.path)}`);
    throw err;
  }
}

/**
 * Why a value has no RFC 8785 form, and where: the path is filled in while the refusal unwinds,
 * so serialising what is I-JSON (every time, several times per alert) tracks nothing.
 */
class Refusal extends Error {
  readonly path: (string | number)[] = [];
  constructor(readonly reason: string) {
    super(reason);
  }
}

/** The JSON Pointer of the refused value, for the error message. */
function pointer(path: readonly (string | number)[]): string {
  return path.length === 0 ? '/' : path.map((p) => `/${p}`).join('');
}

/** Serialises `child` of a container, adding its key to the path of a refusal inside it. */
function member(child: unknown, key: string | number): string {
  try {
    return serialize(child);
  } catch (err) {
    if (err instanceof Refusal) err.path.unshift(key);
    throw err;
  }
}

function serialize(value: unknown): string {
  switch (typeof value) {
    case 'string':
      if (!isWellFormed(value)) throw new Refusal('lone surrogate');
      return JSON.stringify(value);
    case 'number':
      if (!Number.isFinite(value)) throw new Refusal('non-finite number');
      return JSON.stringify(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object': {
      if (value === null) return 'null';
      if (Array.isArray(value)) {
        let out = '[';
        for (let i = 0; i < value.length; i++) out += (i > 0 ? ',' : '') + member(value[i], i);
        return out + ']';
      }
      const proto: unknown = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) throw new Refusal('not a plain object');
      const obj = value as Record<string, unknown>;
      let out = '{';
      for (const k of Object.keys(obj).sort()) {
        const v = obj[k];
        // As JSON.stringify does: an absent optional field built in code is simply not there.
        if (v === undefined) continue;
        if (!isWellFormed(k)) throw new Refusal('lone surrogate');
        out += (out.length > 1 ? ',' : '') + JSON.stringify(k) + ':' + member(v, k);
      }
      return out + '}';
    }
    default:
      throw new Refusal(`${typeof value} is not JSON`);
  }
}
