import type { AlertContent, Clearance, Region, Token } from './types';

/**
 * Entitlement (contract §7). Runs once per alert per desk on the fan-out path, so it is plain
 * comparisons over small arrays and a rank lookup, no allocation.
 */

const RANK: Readonly<Record<Clearance, number>> = { unclassified: 0, restricted: 1, confidential: 2, secret: 3 };

/**
 * An alert is visible when the token's state issued it or is in its audience, the token's
 * clearance reaches the alert's min_clearance, and the region is in the token's `regions` if given.
 */
export function isVisible(token: Token, content: AlertContent): boolean {
  if (token.iss !== content.issuer.state && !content.audience.states.includes(token.iss)) return false;
  if (!(RANK[token.clearance] >= RANK[content.audience.min_clearance])) return false;
  return token.regions === undefined || token.regions.includes(content.region);
}

/**
 * Whether a token may subscribe to (or page through) a region at all: any region in its
 * `regions` claim or, without one, any region in the registry. A desk is not limited to regions
 * bordering its own state, because an alert's audience may name any member state; what it then
 * receives is decided per alert by isVisible.
 */
export function mayWatch(token: Token, region: Region): boolean {
  return token.regions === undefined || token.regions.includes(region.code);
}
