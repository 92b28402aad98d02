import { parseJson } from '../../src/domain/json';
import { CordonError } from '../../src/errors';

const limits = { maxBytes: 65536, maxDepth: 32 };

/** The CordonError thrown by parsing `raw`, or a failure if it parses. */
function rejection(raw: Buffer | string, l = limits): CordonError {
  try {
    parseJson(raw, l);
  } catch (err) {
    expect(err).toBeInstanceOf(CordonError);
    return err as CordonError;
  }
  throw new Error('expected parseJson to throw');
}

describe('parseJson', () => {
  it('returns what JSON.parse returns for well-formed input, from a Buffer or a string', () => {
    const text = '{"a":[1,2.5,-3,{"b":"ü 😀 \\u00e9"}],"c":null,"d":true,"e":"x:y\\"z"}';
    expect(parseJson(Buffer.from(text), limits)).toEqual(JSON.parse(text));
    expect(parseJson(text, limits)).toEqual(JSON.parse(text));
    expect(parseJson('42', limits)).toBe(42);
  });

  describe('size', () => {
    it('accepts a body of exactly maxBytes and rejects one byte more', () => {
      const exact = '"' + 'a'.repeat(98) + '"';
      expect(parseJson(Buffer.from(exact), { maxBytes: 100, maxDepth: 4 })).toHaveLength(98);
      expect(rejection(Buffer.from(exact + ' '), { maxBytes: 100, maxDepth: 4 }).code).toBe('REQUEST_TOO_LARGE');
    });

    it('counts UTF-8 bytes, not characters, for string input', () => {
      const text = '"' + 'é'.repeat(60) + '"'; // 62 characters, 122 bytes
      expect(rejection(text, { maxBytes: 100, maxDepth: 4 }).code).toBe('REQUEST_TOO_LARGE');
      expect(parseJson(text, { maxBytes: 122, maxDepth: 4 })).toBe('é'.repeat(60));
    });

    it('reports the limit as a 413 without echoing the body', () => {
      const err = rejection(Buffer.alloc(70000, 0x20));
      expect(err.status).toBe(413);
      expect(err.message.length).toBeLessThan(100);
    });
  });

  describe('value counts', () => {
    it('rejects more object members than maxMembers before parsing', () => {
      const obj = (n: number): string => '{' + Array.from({ length: n }, (_, i) => `"k${i}":${i}`).join(',') + '}';
      const l = { maxBytes: 65536, maxDepth: 4, maxMembers: 10 };
      expect(Object.keys(parseJson(obj(10), l) as object)).toHaveLength(10);
      const err = rejection(obj(11), l);
      expect(err.code).toBe('REQUEST_TOO_LARGE');
      expect(err.message).toBe('more than 10 object members');
    });

    it('rejects more values than maxValues before parsing', () => {
      const arr = (n: number): string => '[' + Array(n).fill('0').join(',') + ']';
      const l = { maxBytes: 65536, maxDepth: 4, maxValues: 10 };
      expect(parseJson(arr(10), l)).toHaveLength(10);
      expect(rejection(arr(11), l).code).toBe('REQUEST_TOO_LARGE');
    });

    it('bounds members and values by default, well above the largest valid alert', () => {
      expect(rejection('[' + '0,'.repeat(30000) + '0]').message).toMatch(/^more than \d+ values$/);
      expect(rejection('[' + '{"a":1},'.repeat(6000) + '{}]').message).toMatch(/^more than \d+ object members$/);
    });

    it('does not count separators inside strings, including after escaped quotes and backslashes', () => {
      const text = '{"a":"x\\":,,,:","b":"C:\\\\dir\\\\","c":"\\\\\\":{[","d":"\\"\\"\\""}';
      const l = { maxBytes: 1000, maxDepth: 1, maxMembers: 4, maxValues: 4 };
      expect(parseJson(text, l)).toEqual(JSON.parse(text));
      expect(rejection(text.replace('{"a"', '{"e":1,"a"'), l).code).toBe('REQUEST_TOO_LARGE');
    });
  });

  describe('malformed input', () => {
    it.each([
      ['an empty body', ''],
      ['an unterminated object', '{"a":1'],
      ['an unquoted key', '{a:1}'],
      ['a trailing comma', '{"a":1,}'],
      ['two documents', '{} {}'],
      ['a raw control character in a string', '"a\u0001b"'],
      ['a byte-order mark', '\ufeff{}'],
      ['NaN', '{"a":NaN}'],
      ['an unterminated string', '{"a":"b}'],
    ])('rejects %s as REQUEST_MALFORMED_JSON', (_name, text) => {
      const err = rejection(Buffer.from(text));
      expect(err.code).toBe('REQUEST_MALFORMED_JSON');
      expect(err.status).toBe(400);
    });

    it.each([
      ['an invalid byte', [0x22, 0xff, 0x22]],
      ['an overlong encoding of "/"', [0x22, 0xc0, 0xaf, 0x22]],
      ['a UTF-8-encoded surrogate', [0x22, 0xed, 0xa0, 0x80, 0x22]],
      ['a truncated sequence', [0x22, 0xe2, 0x82, 0x22]],
    ])('rejects invalid UTF-8 (%s) instead of replacing it with U+FFFD', (_name, bytes) => {
      expect(rejection(Buffer.from(bytes)).code).toBe('REQUEST_MALFORMED_JSON');
    });

    it('does not echo the input in the error detail', () => {
      const err = rejection('{"a":' + '"x'.repeat(30000));
      expect(err.message.length).toBeLessThan(100);
    });
  });

  describe('nesting', () => {
    it('rejects 10,000 opening brackets as REQUEST_TOO_DEEP', () => {
      expect(rejection('['.repeat(10000)).code).toBe('REQUEST_TOO_DEEP');
      expect(rejection('{"a":'.repeat(10000)).code).toBe('REQUEST_TOO_DEEP');
    });

    it('accepts nesting of exactly maxDepth and rejects maxDepth + 1', () => {
      const l = { maxBytes: 1000, maxDepth: 5 };
      expect(parseJson('[[[[{"a":1}]]]]', l)).toEqual([[[[{ a: 1 }]]]]);
      expect(rejection('[[[[[{"a":1}]]]]]', l).code).toBe('REQUEST_TOO_DEEP');
    });

    it('does not count brackets inside strings', () => {
      const l = { maxBytes: 1000, maxDepth: 2 };
      expect(parseJson('{"a":"[[[[{{{{\\"[[["}', l)).toEqual({ a: '[[[[{{{{"[[[' });
    });
  });

  describe('duplicate keys', () => {
    it('rejects a repeated key with its JSON Pointer', () => {
      const err = rejection('{"a":1,"a":2}');
      expect(err.code).toBe('REQUEST_DUPLICATE_KEY');
      expect(err.errors).toEqual([{ path: '/a', message: 'duplicate key' }]);
    });

    it('finds a repeated key deep inside the content', () => {
      const err = rejection('{"content":{"handling":{"tlp":"TLP:RED","codes":["H0"],"tlp":"TLP:CLEAR"}},"sig":{}}');
      expect(err.code).toBe('REQUEST_DUPLICATE_KEY');
      expect(err.errors?.[0].path).toBe('/content/handling/tlp');
    });

    it('finds a repeated key inside an array of objects', () => {
      expect(rejection('{"items":[{"k":1},{"k":1,"j":2,"k":3}]}').errors?.[0].path).toBe('/items/1/k');
    });

    it('treats keys that differ only by escaping as the same key', () => {
      expect(rejection('{"a":1,"\\u0061":2}').code).toBe('REQUEST_DUPLICATE_KEY');
    });

    it('allows the same key in different objects and colons inside strings', () => {
      expect(parseJson('{"a":{"a":"x:y"},"b":[{"a":":"},{"a":"\\\\:"}]}', limits)).toEqual({
        a: { a: 'x:y' },
        b: [{ a: ':' }, { a: '\\:' }],
      });
    });

    it('escapes "/" and "~" in the pointer and cuts a huge key short', () => {
      expect(rejection('{"a/b~c":1,"a/b~c":2}').errors?.[0].path).toBe('/a~1b~0c');
      const huge = 'k'.repeat(30000);
      const err = rejection(`{"${huge}":1,"${huge}":2}`);
      expect(err.message.length).toBeLessThan(200);
      expect(err.errors?.[0].path.length).toBeLessThan(100);
    });
  });

  describe('forbidden keys', () => {
    it.each(['__proto__', 'constructor', 'prototype'])('rejects %s as a key, at any depth', (key) => {
      const top = rejection(`{"${key}":{"polluted":true}}`);
      expect(top.code).toBe('REQUEST_FORBIDDEN_KEY');
      expect(top.errors?.[0].path).toBe(`/${key}`);
      const deep = rejection(`{"content":{"subjects":[{"${key}":1}]}}`);
      expect(deep.code).toBe('REQUEST_FORBIDDEN_KEY');
      expect(deep.errors?.[0].path).toBe(`/content/subjects/0/${key}`);
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    });

    it('allows those words as string values', () => {
      expect(parseJson('{"a":["__proto__","constructor","prototype"]}', limits)).toEqual({
        a: ['__proto__', 'constructor', 'prototype'],
      });
    });
  });

  describe('Unicode', () => {
    it.each([
      ['a lone high surrogate in a value', '{"title":"a\\ud800b"}', '/title'],
      ['a lone low surrogate in a value', '{"title":"\\udc00"}', '/title'],
      ['a high surrogate at the end of a value', '{"t":["ok","x\\ud83d"]}', '/t/1'],
      ['a lone surrogate in a key', '{"a\\ud800":1}', '/a\ufffd'],
    ])('rejects %s as REQUEST_INVALID_UNICODE', (_name, text, path) => {
      const err = rejection(text);
      expect(err.code).toBe('REQUEST_INVALID_UNICODE');
      expect(err.errors?.[0].path).toBe(path);
    });

    it('rejects a lone surrogate that arrives in string input', () => {
      expect(rejection('{"a":"\ud800"}').code).toBe('REQUEST_INVALID_UNICODE');
    });

    it('accepts a surrogate pair, escaped or literal', () => {
      expect(parseJson('["\\ud83d\\ude00","😀"]', limits)).toEqual(['😀', '😀']);
    });
  });

  describe('numbers', () => {
    it.each([
      ['9007199254740993', '9007199254740993'],
      ['-9007199254740993', '-9007199254740993'],
      ['2^53', '9007199254740992'],
      ['1e300', '1e300'],
      ['1e400 (Infinity)', '1e400'],
      ['-1e400 (-Infinity)', '-1e400'],
    ])('rejects %s as REQUEST_UNSAFE_NUMBER', (_name, num) => {
      const err = rejection(`{"a":[0,${num}]}`);
      expect(err.code).toBe('REQUEST_UNSAFE_NUMBER');
      expect(err.errors?.[0].path).toBe('/a/1');
    });

    it('accepts safe integers at the bounds and fractional numbers such as coordinates', () => {
      expect(parseJson('[9007199254740991,-9007199254740991,40.5253,-75.3872,1.5e-10,0,-0]', limits)).toEqual([
        9007199254740991, -9007199254740991, 40.5253, -75.3872, 1.5e-10, 0, -0,
      ]);
    });
  });
});
