import { CordonError } from '../errors';
import { verifySubmission } from '../domain/signature';
import { TrustStore } from '../domain/trust-store';
import type { Submission } from '../domain/types';
import { CliError, defineCommand, readText, UsageError } from './args';
import type { CliIo } from './command';

const MAX_AGE_S = 86_400;
const MAX_SKEW_S = 300;

async function loadTrust(values: { trust?: string; url?: string }, io: CliIo): Promise<TrustStore> {
  let doc: unknown;
  let source: string;
  if (values.trust !== undefined) {
    source = values.trust;
    const text = readText(values.trust, io, 'trust store');
    try {
      doc = JSON.parse(text);
    } catch (err) {
      throw new CliError(`trust store ${source} is not valid JSON: ${(err as Error).message}`, { cause: err });
    }
  } else {
    source = new URL('/v1/trust', values.url).toString();
    try {
      const res = await fetch(source);
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      doc = await res.json();
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause;
      throw new CliError(`cannot fetch ${source}: ${cause?.code ?? (err as Error).message}`, { cause: err });
    }
  }
  try {
    return TrustStore.fromJson(doc);
  } catch (err) {
    throw new CliError(`${source}: ${(err as Error).message}`, { cause: err });
  }
}

/** A file holds one object, an array, a page `{ items: [...] }` or NDJSON lines. */
function items(text: string, path: string): unknown[] {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    const lines = text.split('\n').filter((l) => l.trim() !== '');
    try {
      return lines.map((l) => JSON.parse(l) as unknown);
    } catch (err) {
      throw new CliError(`${path} is neither JSON nor NDJSON: ${(err as Error).message}`, { cause: err });
    }
  }
  if (Array.isArray(value)) return value;
  const page = value as { items?: unknown };
  if (page && typeof page === 'object' && Array.isArray(page.items)) return page.items;
  return [value];
}

interface Checked {
  ok: boolean;
  line: string;
}

async function check(item: unknown, store: TrustStore): Promise<Checked> {
  const o = item as Record<string, unknown> | null;
  if (!o || typeof o !== 'object' || typeof o.content !== 'object' || o.content === null || typeof o.sig !== 'object' || o.sig === null) {
    return { ok: false, line: 'FAIL not a submission or delivered alert (need content and sig)' };
  }
  const content = o.content as { id?: unknown; modified?: unknown };
  const label = `${String(content.id)} (modified ${String(content.modified)})`;
  // A delivered alert was accepted at received_at: judge revocation and skew at that moment,
  // and do not apply the ingest age window to an alert that is legitimately old by now.
  const delivered = typeof o.received_at === 'string' && Number.isFinite(Date.parse(o.received_at));
  const opts = delivered
    ? { nowMs: Date.parse(o.received_at as string), maxAgeS: Number.POSITIVE_INFINITY, maxSkewS: MAX_SKEW_S }
    : { nowMs: Date.now(), maxAgeS: MAX_AGE_S, maxSkewS: MAX_SKEW_S };
  try {
    const v = await verifySubmission({ content: o.content, sig: o.sig } as Submission, store, opts);
    const where = delivered ? ` ${String(o.region)}#${String(o.seq)}` : '';
    return { ok: true, line: `OK   ${label}${where} signed by ${v.state} key ${v.kid} at ${new Date(v.iat * 1000).toISOString()}` };
  } catch (err) {
    if (err instanceof CordonError) return { ok: false, line: `FAIL ${label}: ${err.code}: ${err.message}` };
    throw err;
  }
}

export const verify = defineCommand({
  name: 'verify',
  summary: 'Verify the signature of a submission or delivered alerts against a trust store',
  usage: `(--trust trust-store.json | --url http://127.0.0.1:8080) --in FILE
  --trust  a trust store file
  --url    a Cordon node: its public trust store (GET /v1/trust)
  --in     a submission, a delivered alert, an array or page of them, or NDJSON (an export)
A submission is also checked against the ingest iat window (24 h, 5 min); a delivered alert is
judged at its received_at. Exit 0 when every item verifies, 1 otherwise.`,
  options: {
    trust: { type: 'string' },
    url: { type: 'string' },
    in: { type: 'string' },
  },
  async run(values, io) {
    if ((values.trust === undefined) === (values.url === undefined)) throw new UsageError('give exactly one of --trust and --url');
    if (values.in === undefined) throw new UsageError('--in is required');
    const text = readText(values.in, io, 'input');
    const store = await loadTrust(values, io);
    const list = items(text, values.in);
    if (list.length === 0) throw new CliError(`${values.in} holds nothing to verify`);
    let failures = 0;
    for (const item of list) {
      const r = await check(item, store);
      if (!r.ok) failures++;
      (r.ok ? io.stdout : io.stderr).write(r.line + '\n');
    }
    return failures === 0 ? 0 : 1;
  },
});
