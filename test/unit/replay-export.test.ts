import { validContent } from '../fixtures/alerts';
import { deliveredJson, rawEntryView, type LogEntry } from '../../src/ports/region-log';
import { RawVisibility, entitlementView } from '../../src/domain/entitlement-view';
import { DeliveredLines } from '../../src/http/replay-export';
import { isVisible, visibilityKey } from '../../src/domain/entitlement';
import type { AlertContent } from '../../src/domain/types';

/** History's pure parts (moved from test/integration/replay.test.ts): no server, no backend. */
describe('building export lines from stored bodies (no I/O)', () => {
  const stored = (content: unknown) => `{"content":${JSON.stringify(content)},"sig":{"protected":"eyJhbGciOiJFZDI1NTE5In0","signature":"c2ln"}}`;
  const viewOf = (body: string) => {
    const c = (JSON.parse(body) as { content: AlertContent }).content;
    return { issuer: c.issuer, audience: c.audience, region: c.region };
  };
  /** Strings made to look like JSON structure and keys, with escapes and non-ASCII text. */
  const tricky = [
    '"issuer":{"state":"KZ"}',
    '\\"audience\\":{"states":["CN"],"min_clearance":"unclassified"}',
    'ends with a backslash \\',
    '\\',
    '"',
    'region":"ZZ-ZZ-99',
    '{"region":"ZZ-ZZ-99","issuer":',
    'Тюргарт 🚚 ‘quoted’ \u2028',
    'issuer',
  ];

  test('export lines written from stored bytes are exactly deliveredJson(entry) and a newline', () => {
    const lines = new DeliveredLines('KG-CN-01', 'e-1');
    for (const [i, title] of tricky.entries()) {
      const e: LogEntry = {
        region: 'KG-CN-01',
        seq: 42 + i * 1000,
        epoch: 'e-1',
        receivedAt: '2026-03-01T10:00:00.123Z',
        body: stored(validContent({ title })),
      };
      const raw = rawEntryView(e.seq, e.receivedAt, undefined, e.body);
      const buf = Buffer.alloc(7 + lines.bound(raw));
      const n = lines.write(buf, 7, raw);
      expect(buf.subarray(7, 7 + n).equals(Buffer.from(deliveredJson(e) + '\n', 'utf8'))).toBe(true);
    }
    // Any region, epoch and received_at text, escaped as JSON.stringify escapes it.
    const odd = new DeliveredLines('KG-"CN"-01', 'é\\poch');
    for (const receivedAt of ['2026-03-01T10:00:00.123Z', 'a"b\\c', 'Тюр 🚚\n', '']) {
      const e: LogEntry = { region: 'KG-"CN"-01', seq: 7, epoch: 'é\\poch', receivedAt, body: stored(validContent({ title: 'Тюргарт 🚚' })) };
      const raw = rawEntryView(e.seq, receivedAt, undefined, e.body);
      const buf = Buffer.alloc(odd.bound(raw));
      const n = odd.write(buf, 0, raw);
      expect(buf.subarray(0, n).toString('utf8')).toBe(deliveredJson(e) + '\n');
    }
  });

  test('raw visibility decides from the stored key as from the body, and from the body without a usable key', () => {
    const tokenOf = (iss: string, clearance: 'restricted' | 'secret', regions?: string[]) =>
      ({ iss, sub: 'd', aud: 'cordon', iat: 0, exp: 1, role: 'desk', clearance, ...(regions ? { regions } : {}) }) as const;
    const contents = [
      validContent(),
      validContent({ audience: { states: ['KZ'], min_clearance: 'secret' } }),
      validContent({ audience: { states: ['CN', 'KZ'], min_clearance: 'restricted' } }),
    ];
    for (const token of [tokenOf('KG', 'restricted'), tokenOf('KZ', 'secret'), tokenOf('CN', 'restricted'), tokenOf('KZ', 'secret', ['ZZ-ZZ-01'])]) {
      const v = new RawVisibility(token);
      for (const c of contents) {
        const expected = isVisible(token, c);
        for (const visibility of [visibilityKey(c), undefined, 'not a key']) {
          expect(v.visible(rawEntryView(1, '', visibility, stored(c)))).toBe(expected);
        }
      }
    }
  });

  test('the entitlement view of a body equals what parsing the whole body gives, whatever its strings hold', () => {
    const bodies: string[] = [];
    for (const text of tricky) {
      bodies.push(stored(validContent({ title: text })));
      bodies.push(stored(validContent({ description: text, external_refs: [{ system: 'national', ref: text }] })));
      bodies.push(stored(validContent({ subjects: [{ kind: 'other', value: text, subject_category: 'other', basis: 'fact' }] })));
    }
    // Keys in another order, whitespace, and (outside the schema) a nested key of the same name.
    const c = validContent({ audience: { states: ['KG'], min_clearance: 'secret' } });
    const { issuer, audience, region, ...rest } = c;
    bodies.push(stored({ ...rest, region, audience, issuer }));
    const pretty = JSON.stringify({ content: c, sig: { protected: 'p', signature: 's' } }, null, 2);
    bodies.push(pretty);
    bodies.push(stored({ location: { issuer: { state: 'KZ' }, audience: { states: ['KZ'], min_clearance: 'unclassified' } }, ...c }));
    bodies.push(stored({ ...c, location: { region: 'ZZ-ZZ-99', audience: { states: ['KZ'], min_clearance: 'unclassified' } } }));
    // Random strings over an alphabet of JSON punctuation.
    const alphabet = ['"', '\\', '{', '}', '[', ']', ':', ',', 'issuer', 'audience', 'region', 'a', ' ', '\n'];
    for (let i = 0; i < 300; i++) {
      const s = Array.from({ length: 1 + Math.floor(Math.random() * 12) }, () => alphabet[Math.floor(Math.random() * alphabet.length)]).join('');
      bodies.push(stored(validContent({ title: s.replace(/\n/g, ' ') || 'x', description: s })));
    }
    // The usual body takes the short path (only the three members come back).
    expect(Object.keys(entitlementView(stored(validContent())))).toEqual(['issuer', 'audience', 'region']);
    expect(Object.keys(entitlementView(pretty))).toEqual(['issuer', 'audience', 'region']);
    for (const body of bodies) {
      const { issuer, audience, region } = entitlementView(body);
      expect({ issuer, audience, region }).toEqual(viewOf(body));
    }
  });
});
