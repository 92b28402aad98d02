import type { Token } from '../../src/domain/types';

/**
 * The signed-in token. It lives in sessionStorage only (never in a URL or localStorage), so it is
 * gone when the tab closes. The claims are decoded for display; the node is what checks them.
 */

const KEY = 'cordon.token';

export interface Session {
  token: string;
  claims: Token;
}

function b64uJson(part: string): unknown {
  const b64 = part.replace(/-/g, '+').replace(/_/g, '/');
  const bin = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
  const bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
  return JSON.parse(new TextDecoder().decode(bytes));
}

/** The claims of a compact token, or undefined when it is not one. */
export function decodeToken(text: string): Token | undefined {
  const token = text.trim();
  if (!/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(token)) return undefined;
  try {
    const c = b64uJson(token.split('.')[1]) as Partial<Token>;
    if (typeof c.iss !== 'string' || typeof c.sub !== 'string' || typeof c.exp !== 'number') return undefined;
    if (c.role !== 'desk' && c.role !== 'ops') return undefined;
    return c as Token;
  } catch {
    return undefined;
  }
}

export function loadSession(): Session | undefined {
  const token = sessionStorage.getItem(KEY);
  if (!token) return undefined;
  const claims = decodeToken(token);
  if (!claims || claims.exp * 1000 <= Date.now()) {
    sessionStorage.removeItem(KEY);
    return undefined;
  }
  return { token, claims };
}

export function saveSession(s: Session): void {
  sessionStorage.setItem(KEY, s.token);
}

export function clearSession(): void {
  sessionStorage.removeItem(KEY);
}

/** Where per-desk state (positions, acks) is kept in localStorage: one namespace per desk. */
export function deskKey(claims: Token, what: string): string {
  return `cordon.${what}.${claims.iss}.${claims.sub}`;
}
