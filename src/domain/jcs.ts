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

/**
 * Member names in their serialised form. Alerts, audit records and signatures use a few dozen names
 * over and over: quoting and checking each once saves a third of the walk. Bounded in count and
 * length, so names from hostile input cannot grow it (past the bound they are quoted every time).
 */
const quotedNames = new Map<string, string>();
const MAX_QUOTED_NAMES = 4096;
const MAX_QUOTED_NAME_LENGTH = 64;

function quoteName(k: string): string {
  const known = quotedNames.get(k);
  if (known !== undefined) return known;
  if (!isWellFormed(k)) throw new Refusal('lone surrogate');
  const q = JSON.stringify(k);
  if (k.length <= MAX_QUOTED_NAME_LENGTH && quotedNames.size < MAX_QUOTED_NAMES) quotedNames.set(k, q);
  return q;
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
        for (let i = 0; i < value.length; i++) {
          if (i > 0) out += ',';
          // The refusal's path is filled in while it unwinds (inline: a call per member costs).
          try {
            out += serialize(value[i]);
          } catch (err) {
            if (err instanceof Refusal) err.path.unshift(i);
            throw err;
          }
        }
        return out + ']';
      }
      const proto: unknown = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) throw new Refusal('not a plain object');
      const obj = value as Record<string, unknown>;
      const keys = Object.keys(obj).sort();
      let out = '{';
      let first = true;
      for (let i = 0; i < keys.length; i++) {
        const k = keys[i];
        const v = obj[k];
        // As JSON.stringify does: an absent optional field built in code is simply not there.
        if (v === undefined) continue;
        if (!first) out += ',';
        first = false;
        out += quoteName(k) + ':';
        try {
          out += serialize(v);
        } catch (err) {
          if (err instanceof Refusal) err.path.unshift(k);
          throw err;
        }
      }
      return out + '}';
    }
    default:
      throw new Refusal(`${typeof value} is not JSON`);
  }
}
