import { EXAMPLE_REGIONS, MEMBER_STATES, RegionRegistry } from '../../src/domain/regions';

describe('RegionRegistry', () => {
  it('the example registry holds 6 to 8 Central Asian regions with valid codes', () => {
    const reg = RegionRegistry.example();
    expect(reg.list().length).toBeGreaterThanOrEqual(6);
    expect(reg.list().length).toBeLessThanOrEqual(8);
    for (const r of reg.list()) {
      expect(r.code).toMatch(/^[A-Z]{2}-[A-Z]{2}-[0-9]{2}$/);
      expect(r.states).toEqual([r.code.slice(0, 2), r.code.slice(3, 5)]);
    }
    expect(reg.get('KG-CN-01')).toEqual({ code: 'KG-CN-01', name: 'Torugart pass', states: ['KG', 'CN'] });
    expect(reg.has('KZ-CN-01')).toBe(true);
    expect(reg.has('KG-CN-99')).toBe(false);
    expect(reg.get('KG-CN-99')).toBeUndefined();
  });

  it('derives the member states from the example regions', () => {
    expect([...MEMBER_STATES].sort()).toEqual(['AF', 'CN', 'KG', 'KZ', 'TJ', 'TM', 'UZ']);
    expect([...RegionRegistry.example().states].sort()).toEqual([...MEMBER_STATES].sort());
  });

  it('loads a registry file and keeps its order', () => {
    const reg = RegionRegistry.fromJson({
      regions: [
        { code: 'KG-TJ-01', name: 'Karamyk', states: ['KG', 'TJ'] },
        { code: 'KG-CN-02', name: 'Irkeshtam pass', states: ['KG', 'CN'] },
      ],
    });
    expect(reg.list().map((r) => r.code)).toEqual(['KG-TJ-01', 'KG-CN-02']);
    expect([...reg.states].sort()).toEqual(['CN', 'KG', 'TJ']);
  });

  it('does not let callers change the registry through what it returns', () => {
    const reg = RegionRegistry.example();
    reg.list().pop();
    expect(reg.list()).toHaveLength(EXAMPLE_REGIONS.length);
    expect(() => reg.get('KG-CN-01')!.states.push('RU')).toThrow(TypeError);
  });

  it.each([
    ['not an object', 'regions', /must be object/],
    ['no regions', {}, /\/regions is required/],
    ['an empty list', { regions: [] }, /\/regions/],
    ['a lowercase code', { regions: [{ code: 'kg-cn-01', name: 'x', states: ['KG'] }] }, /\/regions\/0\/code/],
    ['a missing name', { regions: [{ code: 'KG-CN-01', states: ['KG'] }] }, /\/regions\/0\/name is required/],
    ['a three-letter state', { regions: [{ code: 'KG-CN-01', name: 'x', states: ['KGZ'] }] }, /\/regions\/0\/states\/0/],
    ['an unknown property', { regions: [{ code: 'KG-CN-01', name: 'x', states: ['KG'], epoch: 1 }] }, /\/regions\/0\/epoch is not allowed/],
    [
      'a duplicate code',
      {
        regions: [
          { code: 'KG-CN-01', name: 'a', states: ['KG'] },
          { code: 'KG-CN-01', name: 'b', states: ['CN'] },
        ],
      },
      /duplicate region code KG-CN-01/,
    ],
  ])('rejects a registry with %s, naming the problem', (_name, value, message) => {
    expect(() => RegionRegistry.fromJson(value)).toThrow(message);
    expect(() => RegionRegistry.fromJson(value)).toThrow(/^invalid region registry/);
  });
});
