/**
 * JSON Canonicalization Scheme (RFC 8785): the exact bytes a gateway signs.
 *
 * ES2015+ `JSON.stringify` already serialises strings and numbers as RFC 8785 requires
 * (§3.2.2.2, §3.2.2.3), and `Array.prototype.sort` without a comparator orders keys by UTF-16
 * code units (§3.2.3). What is left is refusing what I-JSON forbids.
 *
 * The form is written as UTF-8 bytes into a reusable buffer (`CanonicalBuffer`): the transparency
 * log hashes an alert's and an audit record's canonical form on every append, and building it as
 * strings (a quoted copy of every value, a rope node per member, the flattened whole) was most of
 * what the log left for the garbage collector. `canonicalize` is the same bytes as a string.
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

/** A character RFC 8785 escapes (`"`, `\`, controls), or one outside ASCII: such strings take the slow path. */
const NOT_PLAIN = /[^\x20\x21\x23-\x5b\x5d-\x7e]/;
/** Strings up to this length are checked and copied in one JavaScript loop; longer ones by a regex and a native copy. */
const LOOP_MAX = 128;
const INITIAL_SIZE = 4096;
/** A buffer grown past this for one large value is let go after `canonicalize`, not kept. */
const KEEP_MAX = 256 * 1024;
// Web APIs, not Buffer: the console's bundle runs this module in the browser too.
const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

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
 * Bytes built in place: raw bytes a caller frames (a hash's domain-separation byte, bytes already
 * in canonical form) and values in their RFC 8785 form. One buffer, reused; `view()` is valid until
 * the next write or `reset()`, so hash or copy it at once.
 */
export class CanonicalBuffer {
  private buf: Uint8Array;
  length = 0;

  constructor(size = INITIAL_SIZE) {
    this.buf = new Uint8Array(size);
  }

  reset(): this {
    this.length = 0;
    return this;
  }

  /** Everything written since the last reset (a view of the shared buffer). */
  view(): Uint8Array {
    return this.buf.subarray(0, this.length);
  }

  toString(): string {
    return fromUtf8.decode(this.view());
  }

  byte(b: number): this {
    this.room(1);
    this.buf[this.length++] = b;
    return this;
  }

  bytes(b: Uint8Array): this {
    this.room(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
    return this;
  }

  /** Characters written as they are, one byte each: only for ASCII the caller built (punctuation, member names). */
  ascii(s: string): this {
    this.room(s.length);
    const buf = this.buf;
    let at = this.length;
    for (let i = 0; i < s.length; i++) buf[at++] = s.charCodeAt(i);
    this.length = at;
    return this;
  }

  /** The RFC 8785 form of `value`; a JcsError names where it is not I-JSON. */
  value(value: unknown): this {
    try {
      this.write(value);
    } catch (err) {
      if (err instanceof Refusal) throw new JcsError(`${err.reason} at ${pointer(err.path)}`);
      throw err;
    }
    return this;
  }

  private room(n: number): void {
    if (this.length + n <= this.buf.length) return;
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.length + n));
    next.set(this.view());
    this.buf = next;
  }

  /** Lets a buffer grown for one large value go. */
  shrink(): void {
    if (this.buf.length > KEEP_MAX) this.buf = new Uint8Array(INITIAL_SIZE);
  }

  private write(value: unknown): void {
    switch (typeof value) {
      case 'string':
        this.string(value);
        return;
      case 'number':
        if (!Number.isFinite(value)) throw new Refusal('non-finite number');
        this.ascii(JSON.stringify(value));
        return;
      case 'boolean':
        this.ascii(value ? 'true' : 'false');
        return;
      case 'object': {
        if (value === null) {
          this.ascii('null');
          return;
        }
        if (Array.isArray(value)) {
          this.byte(0x5b); // [
          for (let i = 0; i < value.length; i++) {
            if (i > 0) this.byte(0x2c); // ,
            // The refusal's path is filled in while it unwinds (inline: a call per member costs).
            try {
              this.write(value[i]);
            } catch (err) {
              if (err instanceof Refusal) err.path.unshift(i);
              throw err;
            }
          }
          this.byte(0x5d); // ]
          return;
        }
        const proto: unknown = Object.getPrototypeOf(value);
        if (proto !== Object.prototype && proto !== null) throw new Refusal('not a plain object');
        const obj = value as Record<string, unknown>;
        const keys = sortedKeys(obj);
        this.byte(0x7b); // {
        let first = true;
        for (let i = 0; i < keys.length; i++) {
          const k = keys[i];
          const v = obj[k];
          // As JSON.stringify does: an absent optional field built in code is simply not there.
          if (v === undefined) continue;
          if (!first) this.byte(0x2c); // ,
          first = false;
          this.string(k);
          this.byte(0x3a); // :
          try {
            this.write(v);
          } catch (err) {
            if (err instanceof Refusal) err.path.unshift(k);
            throw err;
          }
        }
        this.byte(0x7d); // }
        return;
      }
      default:
        throw new Refusal(`${typeof value} is not JSON`);
    }
  }

  /** A string in quotes: printable ASCII as it is, anything else as JSON.stringify escapes it (RFC 8785 §3.2.2.2). */
  private string(s: string): void {
    const n = s.length;
    this.room(n + 2);
    const buf = this.buf;
    let at = this.length;
    buf[at++] = 0x22;
    if (n <= LOOP_MAX) {
      for (let i = 0; i < n; i++) {
        const c = s.charCodeAt(i);
        if (c < 0x20 || c > 0x7e || c === 0x22 || c === 0x5c) {
          this.escaped(s);
          return;
        }
        buf[at++] = c;
      }
    } else {
      if (NOT_PLAIN.test(s)) {
        this.escaped(s);
        return;
      }
      at += utf8.encodeInto(s, buf.subarray(at)).written;
    }
    buf[at++] = 0x22;
    this.length = at;
  }

  private escaped(s: string): void {
    if (!isWellFormed(s)) throw new Refusal('lone surrogate');
    const q = JSON.stringify(s);
    this.room(q.length * 3);
    this.length += utf8.encodeInto(q, this.buf.subarray(this.length)).written;
  }
}

/**
 * Member names in RFC 8785 order, remembered for the last few shapes of each size: the objects
 * hashed on every append (audit records, signatures, alerts' parts) come in a handful of shapes, and
 * comparing their names with the remembered ones (property names are interned: a pointer compare
 * each) costs less than sorting them again. Hostile input only replaces entries, and names longer
 * than 64 characters are never kept.
 */
const SHAPES_PER_SIZE = 4;
const SHAPE_MAX_KEYS = 32;
const SHAPE_MAX_NAME_LENGTH = 64;
const shapes: { names: string[]; sorted: string[] }[][] = [];
const nextShape: number[] = [];

function sortedKeys(obj: object): string[] {
  const names = Object.keys(obj);
  const n = names.length;
  if (n < 2) return names;
  if (n > SHAPE_MAX_KEYS) return names.sort();
  const known = (shapes[n] ??= []);
  for (const shape of known) {
    let same = true;
    for (let i = 0; i < n; i++) {
      if (shape.names[i] !== names[i]) {
        same = false;
        break;
      }
    }
    if (same) return shape.sorted;
  }
  const sorted = [...names].sort();
  // Only short names are kept: hostile input must not pin large strings here.
  for (const name of names) if (name.length > SHAPE_MAX_NAME_LENGTH) return sorted;
  const slot = (nextShape[n] ?? 0) % SHAPES_PER_SIZE;
  known[slot] = { names, sorted };
  nextShape[n] = slot + 1;
  return sorted;
}

const shared = new CanonicalBuffer();

export function canonicalize(value: unknown): string {
  shared.reset();
  try {
    return shared.value(value).toString();
  } finally {
    shared.shrink();
  }
}

/** The RFC 8785 form as UTF-8 bytes of their own (what a signature covers). */
export function canonicalBytes(value: unknown): Buffer {
  shared.reset();
  try {
    return Buffer.from(shared.value(value).view());
  } finally {
    shared.shrink();
  }
}
