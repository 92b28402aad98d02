import { b64uDecode, b64uEncode } from '../../src/domain/base64url';
import { CanonicalBuffer, canonicalize, JcsError } from '../../src/domain/jcs';

function fromBits(hex: string): number {
  return Buffer.from(hex, 'hex').readDoubleBE(0);
}

describe('canonicalize (RFC 8785)', () => {
  // RFC 8785 Appendix B: IEEE 754 bit patterns and their required serialisation.
  test.each([
    ['0000000000000000', '0'],
    ['8000000000000000', '0'],
    ['0000000000000001', '5e-324'],
    ['8000000000000001', '-5e-324'],
    ['7fefffffffffffff', '1.7976931348623157e+308'],
    ['ffefffffffffffff', '-1.7976931348623157e+308'],
    ['4340000000000000', '9007199254740992'],
    ['c340000000000000', '-9007199254740992'],
    ['4430000000000000', '295147905179352830000'],
    ['44b52d02c7e14af5', '9.999999999999997e+22'],
    ['44b52d02c7e14af6', '1e+23'],
    ['44b52d02c7e14af7', '1.0000000000000001e+23'],
    ['444b1ae4d6e2ef4e', '999999999999999700000'],
    ['444b1ae4d6e2ef4f', '999999999999999900000'],
    ['444b1ae4d6e2ef50', '1e+21'],
    ['3eb0c6f7a0b5ed8c', '9.999999999999997e-7'],
    ['3eb0c6f7a0b5ed8d', '0.000001'],
    ['41b3de4355555553', '333333333.3333332'],
    ['41b3de4355555554', '333333333.33333325'],
    ['41b3de4355555555', '333333333.3333333'],
    ['41b3de4355555556', '333333333.3333334'],
    ['41b3de4355555557', '333333333.33333343'],
    ['becbf647612f3696', '-0.0000033333333333333333'],
    ['43143ff3c1cb0959', '1424953923781206.2'],
  ])('serialises the double %s as %s', (bits, expected) => {
    expect(canonicalize(fromBits(bits))).toBe(expected);
  });

  test.each([
    ['NaN', '7fffffffffffffff'],
    ['Infinity', '7ff0000000000000'],
  ])('rejects %s', (_name, bits) => {
    expect(() => canonicalize({ n: fromBits(bits) })).toThrow(JcsError);
  });

  test('matches the RFC 8785 §3.2.2 example', () => {
    const input = JSON.parse(
      '{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],' +
        '"string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/",' +
        '"literals": [null, true, false]}',
    );
    expect(canonicalize(input)).toBe(
      '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}',
    );
  });

  test('sorts keys by UTF-16 code units as in the RFC 8785 §3.2.3 example', () => {
    const input = {
      '\u20ac': 'Euro Sign',
      '\r': 'Carriage Return',
      '\ufb33': 'Hebrew Letter Dalet With Dagesh',
      '1': 'One',
      '\ud83d\ude00': 'Emoji: Grinning Face',
      '\u0080': 'Control',
      '\u00f6': 'Latin Small Letter O With Diaeresis',
    };
    // (Object.keys cannot show the order: it lists integer-like keys such as "1" first.)
    expect(canonicalize(input)).toBe(
      '{"\\r":"Carriage Return","1":"One","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis",' +
        '"\u20ac":"Euro Sign","\ud83d\ude00":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}',
    );
  });

  test('emits no whitespace and recurses into nested arrays and objects', () => {
    expect(canonicalize({ b: [1, { d: 2, c: [] }], a: {} })).toBe('{"a":{},"b":[1,{"c":[],"d":2}]}');
  });

  test('rejects lone surrogates in values and keys', () => {
    expect(() => canonicalize({ t: 'a\ud800b' })).toThrow(/lone surrogate at \/t/);
    expect(() => canonicalize({ ['\udc00']: 1 })).toThrow(JcsError);
    expect(canonicalize({ t: '\ud83d\ude00' })).toBe('{"t":"😀"}');
  });

  test('rejects values JSON cannot carry, and skips undefined object members as JSON.stringify does', () => {
    expect(() => canonicalize([undefined])).toThrow(JcsError);
    expect(() => canonicalize(10n)).toThrow(JcsError);
    expect(() => canonicalize(new Date(0))).toThrow(/not a plain object/);
    expect(canonicalize({ a: 1, b: undefined })).toBe('{"a":1}');
  });
});

describe('CanonicalBuffer (the same form, written as bytes in place)', () => {
  // Strings on either side of the short-string loop's bound (128), with and without characters the
  // fast paths hand to JSON.stringify: escapes, controls, DEL, non-ASCII, astral pairs.
  const pieces = ['', 'a', '"', '\\', '\n', '\u001f', '\u007f', 'é', '€', '\ud83d\ude00', 'Торугарт', '吐尔尕特'];
  const strings = pieces.flatMap((p) => [p, 'x'.repeat(127) + p, 'x'.repeat(128) + p, p + 'y'.repeat(200), 'z'.repeat(5000) + p]);
  const values: unknown[] = [
    ...strings,
    { strings },
    Object.fromEntries(strings.map((s, i) => [s + String(i), i])),
    { '10': 'ten', '9': 'nine', b: [1.5, -0, 1e21, 1e-7, true, false, null], a: { y: {}, x: [] } },
    [[[]], {}, '', 0],
  ];

  /**
   * An independent reference for such values: JSON.stringify for strings and numbers (RFC 8785
   * §3.2.2.2-3 for well-formed strings and finite numbers), members sorted by UTF-16 code units.
   */
  const reference = (v: unknown): string => {
    if (Array.isArray(v)) return `[${v.map(reference).join(',')}]`;
    if (v !== null && typeof v === 'object') {
      const o = v as Record<string, unknown>;
      return `{${Object.keys(o)
        .sort()
        .map((k) => `${JSON.stringify(k)}:${reference(o[k])}`)
        .join(',')}}`;
    }
    return JSON.stringify(v);
  };

  test.each(values.map((v, i) => [i, v]))('value %i: the bytes are the UTF-8 of the RFC 8785 form', (_i, v) => {
    const out = new CanonicalBuffer(8).value(v);
    expect(Buffer.from(out.view()).equals(Buffer.from(reference(v), 'utf8'))).toBe(true);
    expect(out.toString()).toBe(reference(v));
    expect(canonicalize(v)).toBe(reference(v));
  });

  test('raw bytes and ASCII frame a value; reset starts over', () => {
    const out = new CanonicalBuffer(4);
    out.byte(0).ascii('{"content":').bytes(Buffer.from('{"a":1}')).ascii(',"seq":').value(7).byte(0x7d);
    expect(Buffer.from(out.view())).toEqual(Buffer.concat([Buffer.from([0]), Buffer.from('{"content":{"a":1},"seq":7}')]));
    expect(Buffer.from(out.reset().value('é').view())).toEqual(Buffer.from('"é"'));
  });

  test('objects of one set of names in other orders, and more shapes than are remembered, all come out sorted', () => {
    const names = ['kind', 'actor', 'n', 'at', 'seq', 'region'];
    const orders = [
      names,
      [...names].reverse(),
      [...names].sort(),
      ['n', 'at', 'kind', 'seq', 'actor', 'region'],
      ['region', 'seq', 'n', 'at', 'actor', 'kind'],
    ];
    for (let round = 0; round < 3; round++) {
      for (const order of orders) {
        const obj = Object.fromEntries(order.map((k) => [k, k]));
        expect(canonicalize(obj)).toBe('{"actor":"actor","at":"at","kind":"kind","n":"n","region":"region","seq":"seq"}');
      }
    }
  });

  test('refuses as canonicalize does, with the path, in long strings too', () => {
    expect(() => new CanonicalBuffer().value({ a: ['ok', 'x'.repeat(100) + '\ud800'] })).toThrow(/lone surrogate at \/a\/1/);
    expect(() => new CanonicalBuffer().value({ a: { b: NaN } })).toThrow(/non-finite number at \/a\/b/);
  });
});

describe('base64url', () => {
  test('round-trips bytes and strings without padding', () => {
    const bytes = Uint8Array.from([0xfb, 0xff, 0xfe, 0x00]);
    expect(b64uEncode(bytes)).toBe('-__-AA');
    expect(b64uDecode('-__-AA')).toEqual(Buffer.from(bytes));
    expect(b64uEncode('é')).toBe('w6k');
  });

  test('encodes a view into a larger buffer by its own bytes only', () => {
    const big = Buffer.from('xxhelloxx');
    expect(b64uEncode(big.subarray(2, 7))).toBe(b64uEncode('hello'));
  });

  test.each(['AA==', 'A+/=', 'AA AA', 'A', 'AB'])('rejects %p (padding, base64 alphabet, junk, bad length or non-canonical bits)', (s) => {
    expect(() => b64uDecode(s)).toThrow(TypeError);
  });
});
