import { AckDedup } from '../../src/ws/ack-dedup';

describe('AckDedup', () => {
  const p = (seq: number, epoch = 'e1', region = 'KG-CN-01') => ({ region, seq, epoch });

  test('claims a position once per desk; another desk, seq, region or epoch is new', () => {
    const d = new AckDedup();
    expect(d.claim('KG/a', p(1))).toBe(true);
    expect(d.claim('KG/a', p(1))).toBe(false);
    expect(d.claim('KG/b', p(1))).toBe(true);
    expect(d.claim('KG/a', p(2))).toBe(true);
    expect(d.claim('KG/a', p(1, 'e2'))).toBe(true);
    expect(d.claim('KG/a', p(1, 'e1', 'KZ-KG-01'))).toBe(true);
  });

  test('a released claim (its record failed) can be claimed again', () => {
    const d = new AckDedup();
    expect(d.claim('KG/a', p(1))).toBe(true);
    d.release('KG/a', p(1));
    expect(d.claim('KG/a', p(1))).toBe(true);
  });

  test('is bounded per desk and in desks, forgetting the oldest', () => {
    const d = new AckDedup({ perDesk: 3, desks: 2 });
    for (let s = 1; s <= 4; s++) expect(d.claim('KG/a', p(s))).toBe(true);
    expect(d.claim('KG/a', p(1))).toBe(true); // fell out: recorded again, never unbounded
    expect(d.claim('KG/a', p(4))).toBe(false);
    d.claim('KG/b', p(1));
    d.claim('KG/c', p(1)); // KG/a was least recently active: forgotten
    expect(d.claim('KG/a', p(4))).toBe(true);
    expect(d.claim('KG/c', p(1))).toBe(false);
  });
});
