import { isVisible, isVisibleKey } from './entitlement';
import type { AlertContent, Token } from './types';
import type { LogEntry, RawEntryView } from '../ports/region-log';

/**
 * Entitlement over stored alerts without building them: the members entitlement reads, scanned
 * out of a stored body (`entitlementView`), and the visibility of raw log entries for one token,
 * decided once per visibility key (`RawVisibility`). History (src/http/replay.ts) and its export
 * use them on every entry they read.
 */

/** Whether `token` may see a stored entry (its body's issuer, audience and region). */
export function visibleEntry(token: Token, e: LogEntry): boolean {
  return isVisible(token, entitlementView(e.body) as AlertContent);
}

/** Distinct keys seen per request before the cache starts over (a region has few audiences). */
const MAX_CACHED_KEYS = 1024;

/**
 * Visibility of raw entries for one token. An export meets the same few keys over and over, so
 * each key is decided once, and a run of entries with the key of the entry before costs one byte
 * comparison; an entry without a usable key decodes its body and takes the view.
 */
export class RawVisibility {
  private readonly byKey = new Map<string, boolean>();
  /** the key of the last entry decided by key, and its answer */
  private lastKey = Buffer.alloc(0);
  private lastVisible: boolean | undefined;

  constructor(private readonly token: Token) {}

  visible(e: RawEntryView): boolean {
    if (e.visStart >= 0) {
      const len = e.visEnd - e.visStart;
      if (this.lastVisible !== undefined && len === this.lastKey.length && e.buf.compare(this.lastKey, 0, len, e.visStart, e.visEnd) === 0) {
        return this.lastVisible;
      }
      const key = e.buf.toString('utf8', e.visStart, e.visEnd);
      let v = this.byKey.get(key);
      if (v === undefined) {
        v = isVisibleKey(this.token, key);
        if (v !== undefined) {
          if (this.byKey.size >= MAX_CACHED_KEYS) this.byKey.clear();
          this.byKey.set(key, v);
        }
      }
      if (v !== undefined) {
        this.lastKey = Buffer.from(key, 'utf8');
        this.lastVisible = v;
        return v;
      }
    }
    return isVisible(this.token, entitlementView(e.buf.toString('utf8', e.bodyStart, e.bodyEnd)) as AlertContent);
  }
}

/**
 * The members entitlement reads (issuer, audience, region) of a stored body, without building the
 * whole alert: on an export, parsing every body (and collecting what that leaves behind) costs
 * more than everything else the node does (measured: 25 -> 17 µs of node CPU per alert).
 * One pass walks the body string by string; outside strings the next quote always opens one, so
 * text inside strings can never pass for a key. A name counts when it occurs as a key exactly
 * once: content has all three and its schema is closed, so that one is content's own. Anything
 * else (a repeated or escaped name, an unexpected shape) takes the full parse.
 */
export function entitlementView(body: string): Pick<AlertContent, 'issuer' | 'audience' | 'region'> {
  let issuerAt = -1;
  let audienceAt = -1;
  let regionAt = -1;
  let repeated = false;
  for (let i = body.indexOf('"'); i !== -1;) {
    const end = stringEnd(body, i);
    if (end === -1) break;
    // Only a key is followed by ':'.
    let k = skipSpace(body, end + 1);
    if (body.charCodeAt(k) === 0x3a) {
      const len = end - i - 1;
      k = skipSpace(body, k + 1);
      if (len === 6 && body.startsWith('issuer', i + 1)) {
        repeated ||= issuerAt !== -1;
        issuerAt = k;
      } else if (len === 8 && body.startsWith('audience', i + 1)) {
        repeated ||= audienceAt !== -1;
        audienceAt = k;
      } else if (len === 6 && body.startsWith('region', i + 1)) {
        repeated ||= regionAt !== -1;
        regionAt = k;
      }
    }
    i = body.indexOf('"', end + 1);
  }
  if (!repeated && issuerAt !== -1 && audienceAt !== -1 && regionAt !== -1) {
    const issuer = objectJson(body, issuerAt);
    const audience = objectJson(body, audienceAt);
    const regionEnd = body.charCodeAt(regionAt) === 0x22 ? stringEnd(body, regionAt) : -1;
    if (issuer !== undefined && audience !== undefined && regionEnd !== -1) {
      try {
        const view = {
          issuer: JSON.parse(issuer) as AlertContent['issuer'],
          audience: JSON.parse(audience) as AlertContent['audience'],
          region: JSON.parse(body.slice(regionAt, regionEnd + 1)) as string,
        };
        if (typeof view.issuer.state === 'string' && Array.isArray(view.audience.states) && typeof view.audience.min_clearance === 'string') {
          return view;
        }
      } catch {
        /* take the full parse */
      }
    }
  }
  return (JSON.parse(body) as { content: AlertContent }).content;
}

function skipSpace(text: string, i: number): number {
  let c = text.charCodeAt(i);
  while (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) c = text.charCodeAt(++i);
  return i;
}

/** Index of the quote closing the string that opens at `i` (-1 if none). */
function stringEnd(text: string, i: number): number {
  let j = text.indexOf('"', i + 1);
  for (;;) {
    if (j === -1) return -1;
    let b = j - 1;
    while (text.charCodeAt(b) === 0x5c) b--;
    // An even run of backslashes before the quote escapes only themselves.
    if ((j - 1 - b) % 2 === 0) return j;
    j = text.indexOf('"', j + 1);
  }
}

/** The JSON text of the object starting at `start`, or undefined when none starts there. */
function objectJson(text: string, start: number): string | undefined {
  if (text.charCodeAt(start) !== 0x7b) return undefined;
  let depth = 0;
  for (let k = start; k < text.length; k++) {
    const c = text.charCodeAt(k);
    if (c === 0x22) {
      k = stringEnd(text, k);
      if (k === -1) return undefined;
    } else if (c === 0x7b || c === 0x5b) {
      depth++;
    } else if ((c === 0x7d || c === 0x5d) && --depth === 0) {
      return text.slice(start, k + 1);
    }
  }
  return undefined;
}
