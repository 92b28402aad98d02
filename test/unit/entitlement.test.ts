import { isVisible, isVisibleKey, mayWatch, parseVisibilityKey, visibilityKey } from '../../src/domain/entitlement';
import { CLEARANCE_ORDER, type AlertContent, type Token } from '../../src/domain/types';

const token = (o: Partial<Token> = {}): Token => ({
  iss: 'KZ',
  sub: 'desk-almaty',
  aud: 'cordon',
  iat: 0,
  exp: 1,
  role: 'desk',
  clearance: 'restricted',
  ...o,
});

const alert = (o: { state?: string; audience?: string[]; min?: AlertContent['audience']['min_clearance']; region?: string } = {}): AlertContent =>
  ({
    spec: 'cordon.alert/1',
    id: 'alert--0b7e6f1e-3c44-4b8e-9a51-2f0c1d9e8a77',
    created: '2026-01-01T00:00:00.000Z',
    modified: '2026-01-01T00:00:00.000Z',
    issuer: { state: o.state ?? 'KG', agency: 'kg-customs', gateway: 'gw' },
    region: o.region ?? 'KZ-KG-01',
    category: 'seizure',
    urgency: 'flash',
    title: 't',
    audience: { states: o.audience ?? ['KG', 'KZ'], min_clearance: o.min ?? 'restricted' },
  }) as AlertContent;

describe('isVisible (contract §7)', () => {
  test('visible to a state named in the audience with enough clearance', () => {
    expect(isVisible(token(), alert())).toBe(true);
  });

  test('visible to the issuing state even when it is not in the audience', () => {
    expect(isVisible(token({ iss: 'KG' }), alert({ audience: ['KZ'] }))).toBe(true);
  });

  test('hidden from a state neither issuer nor in the audience', () => {
    expect(isVisible(token({ iss: 'CN' }), alert())).toBe(false);
  });

  test.each([
    ['unclassified', 'restricted', false],
    ['restricted', 'restricted', true],
    ['confidential', 'restricted', true],
    ['secret', 'confidential', true],
    ['confidential', 'secret', false],
    ['secret', 'secret', true],
  ] as const)('clearance %s against min_clearance %s → %s', (clearance, min, expected) => {
    expect(isVisible(token({ clearance }), alert({ min }))).toBe(expected);
  });

  test('a regions claim narrows visibility to those regions', () => {
    expect(isVisible(token({ regions: ['KZ-KG-01'] }), alert())).toBe(true);
    expect(isVisible(token({ regions: ['KZ-CN-01'] }), alert())).toBe(false);
  });
});

describe('mayWatch', () => {
  const region = { code: 'TJ-AF-01', name: 'Nizhny Panj', states: ['TJ', 'AF'] };

  test('without a regions claim a desk may watch any registered region, even one its state does not border', () => {
    expect(mayWatch(token(), region)).toBe(true);
  });

  test('with a regions claim only the listed regions', () => {
    expect(mayWatch(token({ regions: ['KZ-KG-01'] }), region)).toBe(false);
    expect(mayWatch(token({ regions: ['TJ-AF-01'] }), region)).toBe(true);
  });
});

describe('visibility keys', () => {
  // A small deterministic generator (no seed flakiness): states and regions drawn from few values so
  // that matches and misses both occur often.
  let x = 0x2545f491;
  const rnd = (n: number) => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) % n;
  };
  const STATES = ['KG', 'KZ', 'CN', 'TJ', 'UZ'];
  const REGIONS = ['KZ-KG-01', 'KG-CN-01', 'TJ-AF-01'];
  const pick = <T>(a: readonly T[]) => a[rnd(a.length)];
  const someStates = () => [...new Set(Array.from({ length: 1 + rnd(4) }, () => pick(STATES)))];

  test('round-trips what entitlement reads of a content', () => {
    const c = alert({ state: 'KG', audience: ['KG', 'CN', 'KZ'], min: 'confidential', region: 'KG-CN-01' });
    expect(visibilityKey(c)).toBe('KG|KG,CN,KZ|confidential|KG-CN-01');
    expect(parseVisibilityKey(visibilityKey(c))).toEqual({
      issuerState: 'KG',
      audienceStates: ['KG', 'CN', 'KZ'],
      minClearance: 'confidential',
      region: 'KG-CN-01',
    });
  });

  test('decides exactly as isVisible on 20,000 random tokens and contents', () => {
    let visible = 0;
    for (let i = 0; i < 20_000; i++) {
      const c = alert({ state: pick(STATES), audience: someStates(), min: pick(CLEARANCE_ORDER), region: pick(REGIONS) });
      const t = token({
        iss: pick(STATES),
        clearance: pick(CLEARANCE_ORDER),
        ...(rnd(3) === 0 ? { regions: [pick(REGIONS), pick(REGIONS)] } : {}),
      });
      const expected = isVisible(t, c);
      if (expected) visible++;
      expect(isVisibleKey(t, visibilityKey(c))).toBe(expected);
    }
    // both outcomes were exercised
    expect(visible).toBeGreaterThan(2000);
    expect(visible).toBeLessThan(18_000);
  });

  test.each([
    '',
    'KG|KG|restricted',
    'KG|KG|restricted|KG-CN-01|x',
    'KG||restricted|KG-CN-01',
    'KG|KG,|restricted|KG-CN-01',
    'Kg|KG|restricted|KG-CN-01',
    'KG|KG|topsecret|KG-CN-01',
    'KG|KG|constructor|KG-CN-01',
    'KG|KG|restricted|KG-CN-1',
  ])('does not decide from a key it did not write (%j): the body decides', (key) => {
    expect(parseVisibilityKey(key)).toBeUndefined();
    expect(isVisibleKey(token({ clearance: 'secret', iss: 'KG' }), key)).toBeUndefined();
  });
});
