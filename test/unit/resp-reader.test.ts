import type { RawEntryView } from '../../src/ports/region-log';
import { RespReader, type RespHandler } from '../../src/adapters/redis/resp-reader';

/** RESP encoders for the replies Redis sends the export scan. */
const bulk = (s: string | null) => (s === null ? '$-1\r\n' : `$${Buffer.byteLength(s)}\r\n${s}\r\n`);
const entry = (id: string, fields: string[]) => `*2\r\n${bulk(id)}*${fields.length}\r\n${fields.map(bulk).join('')}`;
const entries = (list: string[]) => `*${list.length}\r\n${list.join('')}`;

type Event = ['ok'] | ['bulk', string | null] | ['entriesStart', number] | ['entry', number, string, string | null, string] | ['entriesEnd'];

/** A handler that records what the reader reports, copying each entry out of its reused view. */
function recorder(stopAt?: (e: Event) => boolean): { handler: RespHandler; events: Event[] } {
  const events: Event[] = [];
  const push = (e: Event) => {
    events.push(e);
    return !stopAt?.(e);
  };
  const handler: RespHandler = {
    ok: () => void push(['ok']),
    bulk: (buf, start, end) => push(['bulk', start < 0 ? null : buf.toString('utf8', start, end)]),
    entriesStart: (n) => void push(['entriesStart', n]),
    entry: (v: RawEntryView) =>
      push([
        'entry',
        v.seq,
        v.buf.toString('utf8', v.atStart, v.atEnd),
        v.visStart < 0 ? null : v.buf.toString('utf8', v.visStart, v.visEnd),
        v.buf.toString('utf8', v.bodyStart, v.bodyEnd),
      ]),
    entriesEnd: () => push(['entriesEnd']),
  };
  return { handler, events };
}

// AUTH, SELECT, then two batches of HGET epoch + XRANGE, with a multi-byte body and an unknown field.
const REPLY = Buffer.from(
  '+OK\r\n' +
    '+OK\r\n' +
    bulk('ep-1') +
    entries([
      entry('1-0', ['at', '2026-01-01T00:00:00.000Z', 'k', 'KG-CN-01|public', 'b', '{"title":"Сель — mudflow"}']),
      entry('2-0', ['at', '2026-01-01T00:00:01.000Z', 'x', 'ignored', 'b', '{"n":2}']),
    ]) +
    bulk('ep-1') +
    entries([entry('3-0', ['b', '{}', 'at', '2026-01-01T00:00:02.000Z'])]) +
    bulk(null) +
    entries([]),
  'utf8',
);
const KINDS = ['ok', 'ok', 'bulk', 'entries', 'bulk', 'entries', 'bulk', 'entries'] as const;
const EXPECTED: Event[] = [
  ['ok'],
  ['ok'],
  ['bulk', 'ep-1'],
  ['entriesStart', 2],
  ['entry', 1, '2026-01-01T00:00:00.000Z', 'KG-CN-01|public', '{"title":"Сель — mudflow"}'],
  ['entry', 2, '2026-01-01T00:00:01.000Z', null, '{"n":2}'],
  ['entriesEnd'],
  ['bulk', 'ep-1'],
  ['entriesStart', 1],
  ['entry', 3, '2026-01-01T00:00:02.000Z', null, '{}'],
  ['entriesEnd'],
  ['bulk', null],
  ['entriesStart', 0],
  ['entriesEnd'],
];

function reader(stopAt?: (e: Event) => boolean, initialBuffer?: number) {
  const { handler, events } = recorder(stopAt);
  const r = new RespReader(handler, initialBuffer);
  for (const k of KINDS) r.expect(k);
  return { r, events };
}

describe('RespReader', () => {
  test('a whole reply at once', () => {
    const { r, events } = reader();
    r.feed(REPLY);
    expect(events).toEqual(EXPECTED);
    expect(r.pending).toBe(0);
  });

  test('the same reply fed one byte at a time gives the same events, each as soon as it is complete', () => {
    const { r, events } = reader();
    for (let i = 0; i < REPLY.length; i++) {
      r.feed(REPLY.subarray(i, i + 1));
      // nothing is reported before its last byte: the first ok needs all of "+OK\r\n"
      if (i < 4) expect(events).toEqual([]);
    }
    expect(events).toEqual(EXPECTED);
    expect(r.pending).toBe(0);
  });

  test('one byte at a time into a tiny buffer: it moves the unparsed tail and grows, and the view follows', () => {
    const { r, events } = reader(undefined, 8);
    for (let i = 0; i < REPLY.length; i++) {
      const into = r.readInto(1);
      into[0] = REPLY[i];
      r.written(1);
    }
    expect(events).toEqual(EXPECTED);
  });

  test('every split point in two pieces gives the same events', () => {
    for (let cut = 1; cut < REPLY.length; cut++) {
      const { r, events } = reader();
      r.feed(REPLY.subarray(0, cut));
      r.feed(REPLY.subarray(cut));
      expect(events).toEqual(EXPECTED);
    }
  });

  test('a handler returning false stops reading for good', () => {
    const { r, events } = reader((e) => e[0] === 'entry' && e[1] === 1);
    for (let i = 0; i < REPLY.length; i++) r.feed(REPLY.subarray(i, i + 1));
    expect(events).toEqual(EXPECTED.slice(0, 5));
  });

  test('a Redis error where a reply was expected throws with its text', () => {
    const { handler } = recorder();
    const r = new RespReader(handler);
    r.expect('ok');
    expect(() => r.feed(Buffer.from('-WRONGPASS invalid username-password pair\r\n'))).toThrow('redis replied -WRONGPASS invalid username-password pair');
  });

  test('malformed bytes throw, also when they arrive one at a time', () => {
    const bad = Buffer.from(`*1\r\n*2\r\n${bulk('1-0')}*2\r\n$1x\r\nb\r\n`);
    const { handler } = recorder();
    const r = new RespReader(handler);
    r.expect('entries');
    expect(() => {
      for (let i = 0; i < bad.length; i++) r.feed(bad.subarray(i, i + 1));
    }).toThrow('malformed RESP reply');
  });

  test('a null inside a stream entry is malformed', () => {
    const { handler } = recorder();
    const r = new RespReader(handler);
    r.expect('entries');
    expect(() => r.feed(Buffer.from(`*1\r\n*2\r\n${bulk('1-0')}*2\r\n${bulk('b')}$-1\r\n`))).toThrow('null in a stream entry');
  });
});
