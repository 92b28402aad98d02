import type { Region } from './types';
import { fieldErrors, validator } from './schemas';

/**
 * The region registry (contract §5): the border regions alerts are filed under. Read once at
 * start-up from CORDON_REGIONS, or the built-in EXAMPLE_REGIONS when that is unset.
 */
export class RegionRegistry {
  private readonly byCode: ReadonlyMap<string, Region>;
  private readonly all: readonly Region[];
  /** Every state named by some region. */
  readonly states: ReadonlySet<string>;

  private constructor(regions: readonly Region[]) {
    this.all = Object.freeze(regions.map((r) => Object.freeze({ code: r.code, name: r.name, states: Object.freeze([...r.states]) as string[] })));
    this.byCode = new Map(this.all.map((r) => [r.code, r]));
    this.states = new Set(this.all.flatMap((r) => r.states));
  }

  /** Validates a parsed registry file; throws a plain Error naming every problem (it is config). */
  static fromJson(value: unknown): RegionRegistry {
    const validate = validator('region-registry');
    if (!validate(value)) {
      const problems = fieldErrors(validate.errors).map((e) => `${e.path} ${e.message}`);
      throw new Error(`invalid region registry: ${problems.join('; ')}`);
    }
    const regions = (value as { regions: Region[] }).regions;
    const seen = new Set<string>();
    const dups = new Set<string>();
    for (const r of regions) {
      if (seen.has(r.code)) dups.add(r.code);
      seen.add(r.code);
    }
    if (dups.size > 0) throw new Error(`invalid region registry: duplicate region code ${[...dups].join(', ')}`);
    return new RegionRegistry(regions);
  }

  /** The built-in example registry, used when CORDON_REGIONS is unset. */
  static example(): RegionRegistry {
    return RegionRegistry.fromJson({ regions: EXAMPLE_REGIONS });
  }

  has(code: string): boolean {
    return this.byCode.has(code);
  }

  get(code: string): Region | undefined {
    return this.byCode.get(code);
  }

  list(): Region[] {
    return [...this.all];
  }
}

/** Central Asian border crossings; codes are `<state>-<state>-<nn>`. */
export const EXAMPLE_REGIONS: readonly Region[] = Object.freeze([
  { code: 'KG-CN-01', name: 'Torugart pass', states: ['KG', 'CN'] },
  { code: 'KG-CN-02', name: 'Irkeshtam pass', states: ['KG', 'CN'] },
  { code: 'KZ-KG-01', name: 'Korday', states: ['KZ', 'KG'] },
  { code: 'KZ-CN-01', name: 'Khorgos', states: ['KZ', 'CN'] },
  { code: 'TJ-AF-01', name: 'Nizhny Panj', states: ['TJ', 'AF'] },
  { code: 'UZ-TJ-01', name: 'Oybek', states: ['UZ', 'TJ'] },
  { code: 'TM-AF-01', name: 'Imam Nazar', states: ['TM', 'AF'] },
  { code: 'UZ-AF-01', name: 'Termez - Hairatan bridge', states: ['UZ', 'AF'] },
]);

/** The member states of the example registry: every state that borders one of its regions. */
export const MEMBER_STATES: ReadonlySet<string> = new Set(EXAMPLE_REGIONS.flatMap((r) => r.states));
