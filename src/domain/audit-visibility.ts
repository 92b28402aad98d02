import type { AuditRecord } from '../ports/audit-log';
import { isVisible } from './entitlement';
import type { AlertContent, Clearance, Token } from './types';

/**
 * Audit visibility (contract §7 v1.1): which records of the audit trail an ops token reads.
 *
 * - any record whose actor belongs to the token's own state (`<state>/<kid>` or `<iss>/<sub>`);
 * - `published`: an alert the token may see (§7 entitlement: issuer or audience, clearance, regions);
 * - `ack`: an alert the token's own state issued (`issuer_state`);
 * - `rejected` and `security`: a submission signed with a key of the token's own state (`state`);
 * - `replayed`: only the actor rule, so the `purpose` of another state's read never shows.
 *
 * Fails closed: a record without the members a rule reads (written before they existed) is shown
 * only by the actor rule. Pure, no I/O.
 */
export function auditVisible(token: Token, rec: AuditRecord): boolean {
  if (actorState(rec.actor) === token.iss) return true;
  switch (rec.kind) {
    case 'published': {
      const content = publishedView(rec);
      return content !== undefined && isVisible(token, content as AlertContent);
    }
    case 'ack':
      return rec.issuer_state === token.iss;
    case 'rejected':
    case 'security':
      return rec.state === token.iss;
    default:
      return false;
  }
}

/** `KG` of `KG/desk-1` or `KG/<kid>`; undefined for anything else. */
export function actorState(actor: unknown): string | undefined {
  if (typeof actor !== 'string') return undefined;
  const i = actor.indexOf('/');
  return i > 0 ? actor.slice(0, i) : undefined;
}

/** What entitlement reads of a published alert, from the record's members; undefined when incomplete. */
function publishedView(rec: AuditRecord): Pick<AlertContent, 'issuer' | 'audience' | 'region'> | undefined {
  const audience = rec.audience as { states?: unknown; min_clearance?: unknown } | undefined;
  if (typeof rec.state !== 'string' || typeof rec.region !== 'string' || typeof audience !== 'object' || audience === null) return undefined;
  const { states, min_clearance } = audience;
  if (!Array.isArray(states) || !states.every((s) => typeof s === 'string') || typeof min_clearance !== 'string') return undefined;
  return {
    issuer: { state: rec.state } as AlertContent['issuer'],
    audience: { states, min_clearance: min_clearance as Clearance },
    region: rec.region,
  };
}
