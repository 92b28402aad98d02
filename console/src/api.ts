/** Same-origin HTTP calls to the node (contract §8), with the bearer token and problem+json errors. */

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly body?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export interface ApiOptions {
  token?: string;
  method?: string;
  accept?: string;
  signal?: AbortSignal;
}

export async function request(path: string, opts: ApiOptions = {}): Promise<Response> {
  const headers: Record<string, string> = { Accept: opts.accept ?? 'application/json' };
  if (opts.token) headers.Authorization = `Bearer ${opts.token}`;
  const res = await fetch(path, {
    method: opts.method ?? 'GET',
    headers,
    signal: opts.signal,
    credentials: 'omit',
    cache: 'no-store',
    referrerPolicy: 'no-referrer',
  });
  if (!res.ok) {
    let body: Record<string, unknown> | undefined;
    try {
      body = (await res.json()) as Record<string, unknown>;
    } catch {
      body = undefined;
    }
    const detail = typeof body?.detail === 'string' ? body.detail : typeof body?.title === 'string' ? body.title : res.statusText;
    throw new ApiError(res.status, typeof body?.code === 'string' ? body.code : `HTTP_${res.status}`, detail || `HTTP ${res.status}`, body);
  }
  return res;
}

export async function getJson<T>(path: string, opts: ApiOptions = {}): Promise<T> {
  return (await (await request(path, opts)).json()) as T;
}

export function query(params: Record<string, string | number | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}
