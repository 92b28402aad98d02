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

/**
 * What entitlement reads of an alert, kept in the region log next to its body so that a replay
 * decides visibility without decoding the body (an export would otherwise spend most of its time
 * turning stored bodies into strings). The format is internal: `KG|KG,CN,KZ|restricted|KG-CN-01`
 * (issuer state, audience states, min_clearance, region).
 */
export interface Visibility {
  issuerState: string;
  audienceStates: string[];
  minClearance: Clearance;
  region: string;
}

export function visibilityKey(content: Pick<AlertContent, 'issuer' | 'audience' | 'region'>): string {
  return `${content.issuer.state}|${content.audience.states.join(',')}|${content.audience.min_clearance}|${content.region}`;
}

const STATE = /^[A-Z]{2}$/;
const REGION = /^[A-Z]{2}-[A-Z]{2}-[0-9]{2}$/;

/**
 * The parts of a visibility key, or undefined when `s` is not one this version writes. Every part
 * is checked against the schema's pattern, so a key that parses means exactly what the content said
 * (a separator inside a value can never pass); anything else makes the reader parse the body.
 */
export function parseVisibilityKey(s: string): Visibility | undefined {
  const parts = s.split('|');
  if (parts.length !== 4) return undefined;
  const [issuerState, states, minClearance, region] = parts;
  const audienceStates = states.split(',');
  if (!STATE.test(issuerState) || !REGION.test(region) || !Object.hasOwn(RANK, minClearance)) return undefined;
  for (const st of audienceStates) if (!STATE.test(st)) return undefined;
  return { issuerState, audienceStates, minClearance: minClearance as Clearance, region };
}

/** isVisible decided from a visibility key; undefined when the key does not parse (decide from the body). */
export function isVisibleKey(token: Token, key: string): boolean | undefined {
  const v = parseVisibilityKey(key);
  if (v === undefined) return undefined;
  if (token.iss !== v.issuerState && !v.audienceStates.includes(token.iss)) return false;
  if (!(RANK[token.clearance] >= RANK[v.minClearance])) return false;
  return token.regions === undefined || token.regions.includes(v.region);
}
