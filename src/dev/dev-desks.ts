import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { issueToken } from '../domain/tokens';
import { signingKeyFromJwk, type SigningKey, type TrustStore } from '../domain/trust-store';
import type { Clearance, Token } from '../domain/types';

/**
 * One-click development desks for the console's sign-in page. Only the composition root creates
 * this, and only with the generated development trust store (whose private token keys sit beside
 * it, so anyone who can read the data directory can mint tokens anyway). With a real trust store
 * it does not exist and its routes are never registered.
 */

export interface DevDesk {
  id: string;
  state: string;
  stateName: string;
  role: 'desk' | 'ops';
  clearance: Clearance;
}

/** Development tokens live a working day; the node's maximum lifetime may be shorter. */
const DEV_TOKEN_TTL_S = 8 * 3600;

export class DevDesks {
  private constructor(
    private readonly trust: TrustStore,
    private readonly keys: ReadonlyMap<string, SigningKey>,
    private readonly names: ReadonlyMap<string, string>,
  ) {}

  /** Reads `<state>-token.jwk.json` files of the development store's key directory. */
  static fromKeysDir(keysDir: string, trust: TrustStore): DevDesks {
    const keys = new Map<string, SigningKey>();
    const names = new Map<string, string>();
    const view = trust.publicView();
    for (const state of trust.states()) {
      const file = join(keysDir, `${state}-token.jwk.json`);
      if (!existsSync(file)) continue;
      const key = signingKeyFromJwk(JSON.parse(readFileSync(file, 'utf8')));
      keys.set(state, key);
      names.set(state, view.states[state]?.name ?? state);
    }
    return new DevDesks(trust, keys, names);
  }

  /** Keys given directly (tests). */
  static fromKeys(trust: TrustStore, keys: ReadonlyMap<string, SigningKey>): DevDesks {
    const view = trust.publicView();
    return new DevDesks(trust, keys, new Map([...keys.keys()].map((s) => [s, view.states[s]?.name ?? s])));
  }

  list(): DevDesk[] {
    const desks: DevDesk[] = [];
    for (const state of [...this.keys.keys()].sort()) {
      const stateName = this.names.get(state) ?? state;
      desks.push({ id: `desk-${state.toLowerCase()}`, state, stateName, role: 'desk', clearance: 'secret' });
      desks.push({ id: `ops-${state.toLowerCase()}`, state, stateName, role: 'ops', clearance: 'secret' });
    }
    return desks;
  }

  /**
   * A token for one of the listed desks, or undefined for an unknown id. The key must still be an
   * active token key of the trust store in force (it may have been reloaded since).
   */
  mint(id: string, nowMs: number, maxTtlS = DEV_TOKEN_TTL_S): string | undefined {
    const desk = this.list().find((d) => d.id === id);
    const key = desk && this.keys.get(desk.state);
    if (!desk || !key) return undefined;
    const trusted = this.trust.tokenKey(key.kid);
    if (!trusted || trusted.state !== desk.state || trusted.status !== 'active') return undefined;
    const iat = Math.floor(nowMs / 1000);
    const claims: Omit<Token, 'aud'> = {
      iss: desk.state,
      sub: desk.id,
      iat,
      exp: iat + Math.min(DEV_TOKEN_TTL_S, maxTtlS),
      role: desk.role,
      clearance: desk.clearance,
    };
    return issueToken(claims, key);
  }
}
