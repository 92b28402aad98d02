import type { FastifyBaseLogger } from 'fastify';
import { Counter, type Registry } from 'prom-client';
import { METRICS } from '../metric-names';
import type { LiveTrust } from '../domain/live-trust';
import { tokenKeyProblem } from '../domain/tokens';
import type { DeskSession } from './desk-session';
import { CLOSE } from './frames';

/**
 * Live desk sessions end with 4501 when the key that signed their token stops being active
 * (contract §4 and §7 v1.1): retired, revoked or removed by a trust reload, or past its exp while
 * the session runs. The token's own expiry is DeskSession's timer. Checked on every reload and at
 * the next key exp; one pass over the sessions, which only happens on those rare events.
 */

const MAX_TIMER_MS = 2 ** 31 - 1;
export const KEY_CLOSE_REASON = 'token key no longer active';

interface SessionKey {
  kid: string;
  iss: string;
}

export class TokenKeyWatch {
  private readonly keyOf = new WeakMap<DeskSession, SessionKey>();
  private timer: NodeJS.Timeout | undefined;
  private stopListening: (() => void) | undefined;
  private readonly closes: Counter;

  constructor(
    private readonly sessions: ReadonlySet<DeskSession>,
    private readonly opts: { live: LiveTrust; now: () => number; log: FastifyBaseLogger; registry: Registry },
  ) {
    this.closes = new Counter({
      name: METRICS.STREAM_TOKEN_KEY_CLOSES,
      help: 'Desk sessions closed with 4501 because their token key stopped being active (reload or key exp)',
      registers: [opts.registry],
    });
  }

  start(): void {
    this.stopListening ??= this.opts.live.onChange(() => this.check());
    this.schedule();
  }

  stop(): void {
    this.stopListening?.();
    this.stopListening = undefined;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /**
   * Remembers which key vouches for a new session; closes it at once when that key is no longer
   * active (a reload between the upgrade's token check and now). false when it was closed.
   */
  track(session: DeskSession, kid: string): boolean {
    if (session.isClosed) return false;
    const key = { kid, iss: session.token.iss };
    this.keyOf.set(session, key);
    const problem = this.problem(key);
    if (problem === undefined) return true;
    this.end(session, key, problem);
    return false;
  }

  /** Closes every session whose token key is no longer usable; returns how many. */
  check(): number {
    const problems = new Map<string, string | undefined>();
    let closed = 0;
    for (const session of [...this.sessions]) {
      const key = this.keyOf.get(session);
      if (!key || session.isClosed) continue;
      const id = `${key.iss} ${key.kid}`;
      if (!problems.has(id)) problems.set(id, this.problem(key));
      const problem = problems.get(id);
      if (problem === undefined) continue;
      this.end(session, key, problem);
      closed++;
    }
    this.schedule();
    return closed;
  }

  private problem(key: SessionKey): string | undefined {
    const trusted = this.opts.live.store.tokenKey(key.kid);
    if (trusted && trusted.state !== key.iss) return 'the token key now belongs to another state';
    return tokenKeyProblem(trusted, this.opts.now());
  }

  private end(session: DeskSession, key: SessionKey, problem: string): void {
    this.closes.inc();
    this.opts.log.info({ actor: session.actor, kid: key.kid, problem }, 'desk closed with 4501: its token key is no longer active');
    session.close(CLOSE.UNAUTHORISED, KEY_CLOSE_REASON);
  }

  /** A timer at the next exp of a token key in force, so a key that runs out closes its desks. */
  private schedule(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (!this.stopListening) return;
    const now = this.opts.now();
    let next = Number.POSITIVE_INFINITY;
    for (const state of Object.values(this.opts.live.store.publicView().states)) {
      for (const k of state.keys) {
        if (k.use !== 'token' || k.exp === undefined) continue;
        const exp = Date.parse(k.exp);
        if (exp > now && exp < next) next = exp;
      }
    }
    if (next === Number.POSITIVE_INFINITY) return;
    this.timer = setTimeout(() => this.check(), Math.min(next - now + 1, MAX_TIMER_MS));
    this.timer.unref();
  }
}
