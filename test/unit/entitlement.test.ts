import { isVisible, mayWatch } from '../../src/domain/entitlement';
import type { AlertContent, Token } from '../../src/domain/types';

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
