import { MEMBER_STATES, RegionRegistry } from '../../src/domain/regions';
import { validateContent, validateSubmission } from '../../src/domain/validate';
import { CordonError, type FieldError } from '../../src/errors';
import type { AlertContent } from '../../src/domain/types';
import { minimalContent, validContent } from '../fixtures/alerts';

const ctx = { regions: RegionRegistry.example(), memberStates: MEMBER_STATES };
const sig = { protected: 'eyJhbGciOiJFZDI1NTE5In0', signature: 'c2lnbmF0dXJlLWJ5dGVz_-' };

/** The violations of a submission built from `content` (and `sig`), or [] when it is valid. */
function violations(content: unknown, s: unknown = sig): FieldError[] {
  try {
    validateSubmission({ content, sig: s }, ctx);
    return [];
  } catch (err) {
    expect(err).toBeInstanceOf(CordonError);
    expect((err as CordonError).code).toBe('SUBMISSION_INVALID');
    return (err as CordonError).errors ?? [];
  }
}

const paths = (errs: FieldError[]): string[] => errs.map((e) => e.path);

/** validContent with one nested object patched. */
function withHandling(h: Partial<Record<string, unknown>>): AlertContent {
  const c = validContent();
  return { ...c, handling: { ...c.handling, ...h } };
}

describe('fixtures', () => {
  it('validContent and minimalContent are valid submissions and valid content', () => {
    for (const content of [validContent(), minimalContent()]) {
      const submission = { content, sig };
      expect(validateSubmission(submission, ctx)).toBe(submission);
      expect(validateContent(content, ctx)).toEqual([]);
    }
  });

  it('gives every alert a fresh lowercase UUIDv4 id and created = modified with milliseconds', () => {
    const a = validContent();
    expect(a.id).toMatch(/^alert--[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(validContent().id).not.toBe(a.id);
    expect(a.modified).toBe(a.created);
    expect(a.created).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
  });
});

describe('schema', () => {
  it('rejects unknown properties at every level of the closed schema', () => {
    const c = validContent() as AlertContent & Record<string, unknown>;
    c.colour = 'red';
    (c.issuer as Record<string, unknown>).rank = 'major';
    expect(paths(violations(c, { ...sig, jwk: {} }))).toEqual(expect.arrayContaining(['/content/colour', '/content/issuer/rank', '/sig/jwk']));
  });

  it('rejects a submission without content or sig, and one that is not an object', () => {
    try {
      validateSubmission({}, ctx);
      throw new Error('expected a rejection');
    } catch (err) {
      expect(paths((err as CordonError).errors ?? [])).toEqual(['/content', '/sig']);
    }
    expect(() => validateSubmission([], ctx)).toThrow(CordonError);
    expect(() => validateSubmission('x', ctx)).toThrow(CordonError);
    expect(() => validateSubmission(null, ctx)).toThrow(CordonError);
  });

  it('reports a missing required field at its own path', () => {
    const { title: _omit, ...c } = validContent();
    expect(violations(c)).toEqual([{ path: '/content/title', message: 'is required' }]);
  });

  it.each([
    ['an uppercase UUID', 'alert--' + '0F8FAD5B-D9CB-469F-A165-70867728950E'],
    ['a UUID v1', 'alert--0f8fad5b-d9cb-169f-a165-70867728950e'],
    ['no alert-- prefix', '0f8fad5b-d9cb-469f-a165-70867728950e'],
    ['a wrong variant', 'alert--0f8fad5b-d9cb-469f-c165-70867728950e'],
  ])('rejects an id with %s', (_name, id) => {
    expect(paths(violations(validContent({ id })))).toEqual(['/content/id']);
  });

  it('accepts a UUID v7 id', () => {
    expect(violations(validContent({ id: 'alert--01890a5d-ac96-774b-bcce-b302099a8057' }))).toEqual([]);
  });

  it.each([
    ['without milliseconds', '2026-03-01T10:00:00Z'],
    ['with an offset', '2026-03-01T10:00:00.000+06:00'],
    ['with microseconds', '2026-03-01T10:00:00.000000Z'],
    ['with a lowercase z', '2026-03-01T10:00:00.000z'],
  ])('rejects a timestamp %s', (_name, ts) => {
    expect(paths(violations(validContent({ created: ts, modified: ts, valid_from: ts })))).toEqual(
      expect.arrayContaining(['/content/created', '/content/modified', '/content/valid_from']),
    );
  });

  it('rejects a sig whose parts are not base64url', () => {
    expect(paths(violations(validContent(), { protected: 'eyJ+/=', signature: '' }))).toEqual(['/sig/protected', '/sig/signature']);
  });

  it('rejects numbers outside lat/lon bounds and strings over their length', () => {
    const c = validContent({ location: { lat: 91, lon: -181 }, title: 'x'.repeat(257) });
    expect(paths(violations(c)).sort()).toEqual(['/content/location/lat', '/content/location/lon', '/content/title']);
  });

  it('rejects repeated handling codes and audience states', () => {
    const c = withHandling({ codes: ['H1', 'H1'] });
    c.audience = { states: ['KG', 'KG'], min_clearance: 'secret' };
    expect(paths(violations(c))).toEqual(expect.arrayContaining(['/content/handling/codes', '/content/audience/states']));
  });
});

describe('rules', () => {
  const later = (iso: string, ms: number): string => new Date(Date.parse(iso) + ms).toISOString();

  it('rejects timestamps that are not real calendar instants', () => {
    for (const ts of ['2026-02-29T10:00:00.000Z', '2026-04-31T10:00:00.000Z', '2026-01-01T24:00:00.000Z', '2026-12-31T23:59:60.000Z']) {
      expect(violations(validContent({ valid_from: ts, valid_until: undefined }))).toEqual([
        { path: '/content/valid_from', message: 'is not a real calendar instant' },
      ]);
    }
    expect(violations(validContent({ valid_from: '2028-02-29T10:00:00.000Z', valid_until: undefined }))).toEqual([]);
  });

  it('rejects modified earlier than created', () => {
    const c = validContent();
    expect(paths(violations({ ...c, modified: later(c.created, -1) }))).toEqual(['/content/modified']);
  });

  it('requires correction_note on a later version, unless it revokes', () => {
    const c = validContent();
    const v2 = { ...c, modified: later(c.created, 1) };
    expect(violations(v2)).toEqual([{ path: '/content/correction_note', message: expect.stringContaining('required') }]);
    expect(violations({ ...v2, correction_note: 'truck plate corrected' })).toEqual([]);
    expect(violations({ ...v2, revoked: true })).toEqual([]);
  });

  it('requires valid_until after valid_from', () => {
    const c = validContent();
    expect(paths(violations({ ...c, valid_until: c.valid_from }))).toEqual(['/content/valid_until']);
    expect(paths(violations({ ...c, valid_until: later(c.valid_from, -1000) }))).toEqual(['/content/valid_until']);
  });

  it.each([
    ['europol-4x4', 'D', '2', ['/content/grading/source']],
    ['europol-4x4', 'A', '5', ['/content/grading/information']],
    ['uk-3x5x2', 'A', '1', ['/content/grading/source', '/content/grading/information']],
    ['uk-3x5x2', '3', 'E', []],
    ['admiralty', 'F', '6', []],
    ['admiralty', 'X', 'A', ['/content/grading/source', '/content/grading/information']],
  ])('checks grading codes belong to scheme %s (source %s, information %s)', (scheme, source, information, expected) => {
    expect(paths(violations(validContent({ grading: { scheme, source, information } as AlertContent['grading'] })))).toEqual(expected);
  });

  it('rejects handling codes mixed from both families', () => {
    expect(violations(withHandling({ codes: ['H0', 'P'] }))).toEqual([{ path: '/content/handling/codes', message: expect.stringContaining('one family') }]);
  });

  it.each(['H3', 'C'])('requires conditions with %s', (code) => {
    expect(paths(violations(withHandling({ codes: [code] })))).toEqual(['/content/handling/conditions']);
    expect(violations(withHandling({ codes: [code], conditions: 'only for the Torugart joint team' }))).toEqual([]);
  });

  it('requires evidential_use false with H1', () => {
    expect(paths(violations(withHandling({ codes: ['H1'], evidential_use: true })))).toEqual(['/content/handling/evidential_use']);
    expect(violations(withHandling({ codes: ['H0'], evidential_use: true }))).toEqual([]);
  });

  it.each([
    ['H2', { codes: ['H2'] }],
    ['TLP:RED', { codes: ['H0'], tlp: 'TLP:RED' }],
    ['TLP:AMBER+STRICT', { codes: ['H0'], tlp: 'TLP:AMBER+STRICT' }],
  ])('restricts onward_sharing to none or with-permission with %s', (_why, h) => {
    expect(paths(violations(withHandling({ ...h, onward_sharing: 'within-audience' })))).toEqual(['/content/handling/onward_sharing']);
    expect(violations(withHandling({ ...h, onward_sharing: 'none' }))).toEqual([]);
    expect(violations(withHandling({ ...h, onward_sharing: 'with-permission' }))).toEqual([]);
  });

  it('allows sharing within the audience under TLP:AMBER with P', () => {
    expect(violations(withHandling({ codes: ['P'], tlp: 'TLP:AMBER', onward_sharing: 'within-audience' }))).toEqual([]);
  });

  it('requires retention.expires after the date of created, and real retention dates', () => {
    const c = validContent();
    const day = c.created.slice(0, 10);
    expect(paths(violations({ ...c, retention: { expires: day } }))).toEqual(['/content/retention/expires']);
    expect(paths(violations({ ...c, retention: { expires: '2020-01-01' } }))).toEqual(['/content/retention/expires']);
    expect(paths(violations({ ...c, retention: { expires: '2999-02-30', review_by: '2999-13-01' } })).sort()).toEqual([
      '/content/retention/expires',
      '/content/retention/review_by',
    ]);
    const nextDay = new Date(Date.parse(day) + 86_400_000).toISOString().slice(0, 10);
    expect(violations({ ...c, retention: { expires: nextDay } })).toEqual([]);
  });

  it.each([
    ['a newline', 'Truck\nheading north'],
    ['a carriage return', 'Truck\r'],
    ['a bell', 'Truck\u0007'],
    ['a tab', 'Truck\theading'],
    ['DEL', 'Truck\u007f'],
    ['a C1 control', 'Truck\u0085'],
    ['a line separator', 'Truck\u2028heading'],
  ])('rejects a title containing %s', (_name, title) => {
    expect(paths(violations(validContent({ title })))).toEqual(['/content/title']);
  });

  it.each([
    ['a right-to-left override (U+202E)', 'Truck \u202Eeton\u202C heading north'],
    ['a left-to-right embedding (U+202A)', 'Truck \u202Aheading'],
    ['a first-strong isolate (U+2068)', 'Truck \u2068heading\u2069'],
    ['a right-to-left isolate (U+2067)', 'Truck\u2067'],
    ['a zero-width space (U+200B)', 'Tru\u200Bck'],
    ['a zero-width joiner (U+200D)', 'Tru\u200Dck'],
    ['a word joiner (U+2060)', 'Tru\u2060ck'],
    ['a byte order mark (U+FEFF)', '\uFEFFTruck'],
    ['only spaces', '   '],
    ['only Unicode white space', '\u00A0\u3000\u2003'],
  ])('rejects a title with %s, naming /content/title', (_name, title) => {
    const errs = violations(validContent({ title }));
    expect(errs.length).toBeGreaterThan(0);
    expect(new Set(paths(errs))).toEqual(new Set(['/content/title']));
  });

  it('still accepts titles in any script, with inner spaces and punctuation', () => {
    for (const title of ['Грузовик с тайником, Торугарт', 'شاحنة في طريقها إلى الحدود', '吐尔尕特口岸 货车', ' Truck ', 'Ø 40 kg – “heroin”']) {
      expect(violations(validContent({ title }))).toEqual([]);
    }
  });

  it('allows only \\n and \\t among control characters in the description', () => {
    expect(violations(validContent({ description: 'line 1\nline 2\tcol' }))).toEqual([]);
    for (const bad of ['a\r\nb', 'a\u0000b', 'a\u001bb', 'a\u009bb']) {
      expect(paths(violations(validContent({ description: bad })))).toEqual(['/content/description']);
    }
  });

  it('requires issuer.state and every audience state to be member states', () => {
    const c = validContent({ issuer: { state: 'FR', agency: 'gendarmerie', gateway: 'fr-gw-1' } });
    c.audience = { states: ['KG', 'DE', 'CN', 'US'], min_clearance: 'restricted' };
    expect(violations(c)).toEqual([
      { path: '/content/issuer/state', message: 'is not a member state' },
      { path: '/content/audience/states/1', message: 'is not a member state' },
      { path: '/content/audience/states/3', message: 'is not a member state' },
    ]);
  });

  it('requires the region to be in the registry', () => {
    expect(violations(validContent({ region: 'KG-CN-99' }))).toEqual([{ path: '/content/region', message: 'is not a region in the registry' }]);
    const custom = RegionRegistry.fromJson({ regions: [{ code: 'KG-CN-99', name: 'Bedel pass', states: ['KG', 'CN'] }] });
    expect(() => validateSubmission({ content: validContent({ region: 'KG-CN-99' }), sig }, { ...ctx, regions: custom })).not.toThrow();
  });
});

describe('reporting', () => {
  it('lists all violations, schema and rules together, not only the first', () => {
    const c = validContent({
      title: 'two\nlines',
      region: 'KG-CN-77',
      urgency: 'whenever' as never,
      grading: { scheme: 'europol-4x4', source: 'F', information: '1' },
      retention: { expires: '2020-01-01' },
    }) as AlertContent & Record<string, unknown>;
    c.unknown_field = 1;
    c.handling = { tlp: 'TLP:RED', codes: ['H1', 'H3', 'C'], evidential_use: true, onward_sharing: 'within-audience' };
    try {
      validateSubmission({ content: c, sig: { protected: 'ok', signature: '!!' } }, ctx);
      throw new Error('expected a rejection');
    } catch (err) {
      const e = err as CordonError;
      expect(e.code).toBe('SUBMISSION_INVALID');
      expect(e.status).toBe(400);
      expect(paths(e.errors ?? []).sort()).toEqual(
        [
          '/content/unknown_field',
          '/content/urgency',
          '/sig/signature',
          '/content/title',
          '/content/region',
          '/content/grading/source',
          '/content/handling/codes',
          '/content/handling/conditions',
          '/content/handling/evidential_use',
          '/content/handling/onward_sharing',
          '/content/retention/expires',
        ].sort(),
      );
      expect(e.message).toBe('11 violations');
      expect(e.toProblem().errors).toHaveLength(11);
    }
  });

  it('bounds the list and the paths for hostile input', () => {
    const c = validContent() as AlertContent & Record<string, unknown>;
    for (let i = 0; i < 500; i++) c[`junk_${i}`] = i;
    c['k'.repeat(5000)] = 1;
    try {
      validateSubmission({ content: c, sig }, ctx);
      throw new Error('expected a rejection');
    } catch (err) {
      const e = err as CordonError;
      expect(e.message).toBe('501 violations (first 100 listed)');
      expect(e.errors).toHaveLength(100);
      expect(Math.max(...(e.errors ?? []).map((x) => x.path.length))).toBeLessThan(300);
    }
  });

  it('validateContent reports paths relative to the content', () => {
    expect(validateContent({ ...validContent(), title: '' }, ctx)).toEqual([{ path: '/title', message: expect.any(String) }]);
    expect(paths(validateContent(validContent({ region: 'KG-CN-77' }), ctx))).toEqual(['/region']);
    expect(validateContent('not an object', ctx)).toEqual([{ path: '/', message: 'must be object' }]);
  });
});
