import { CordonError } from '../errors';
import { verifySubmission } from '../domain/signature';
import { TrustStore } from '../domain/trust-store';
import type { Submission } from '../domain/types';
import type { DeliveredAlert } from '../domain/types';
import { CliError, defineCommand, readText, UsageError } from './args';
import type { CliIo } from './command';
import { inclusionWords, LogInclusion, logVkeyOf, withoutLog, type InclusionResult } from './inclusion';
import { baseUrl, plural, TOKEN_OPTIONS, tokenOf } from './replay';

const MAX_AGE_S = 86_400;
const MAX_SKEW_S = 300;

async function loadTrust(values: { trust?: string; url?: string }, io: CliIo): Promise<{ store: TrustStore; vkey?: string }> {
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
    // GET /v1/trust also carries the transparency log's key under `log`.
    return { store: TrustStore.fromJson(withoutLog(doc)), vkey: logVkeyOf(doc) };
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
  /** a delivered alert whose signature verified: its inclusion in the log can be checked */
  delivered?: DeliveredAlert;
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
    const line = `OK   ${label}${where} signed by ${v.state} key ${v.kid} at ${new Date(v.iat * 1000).toISOString()}`;
    const isDelivered = delivered && typeof o.region === 'string' && typeof o.epoch === 'string' && Number.isSafeInteger(o.seq) && (o.seq as number) >= 1;
    return { ok: true, line, delivered: isDelivered ? (o as unknown as DeliveredAlert) : undefined };
  } catch (err) {
    if (err instanceof CordonError) return { ok: false, line: `FAIL ${label}: ${err.code}: ${err.message}` };
    throw err;
  }
}

export const verify = defineCommand({
  name: 'verify',
  summary: 'Verify the signature of a submission or delivered alerts against a trust store',
  usage: `(--trust trust-store.json | --url http://127.0.0.1:8080 [--token TOKEN]) --in FILE
  --trust   a trust store file
  --url     a Cordon node: its public trust store (GET /v1/trust)
  --token   with --url: a desk or ops token (or --token-file, CORDON_TOKEN, CORDON_TOKEN_FILE) to
            prove each delivered alert's inclusion in the region's transparency log
  --no-log  do not check inclusion
  --in      a submission, a delivered alert, an array or page of them, or NDJSON (an export)
A submission is also checked against the ingest iat window (24 h, 5 min); a delivered alert is
judged at its received_at. With --url and a token, each delivered alert whose signature verifies is
also proved against the latest signed checkpoint of its region's log: "in log", "not yet in log
(pending)" (tried again for a few seconds), "NOT IN LOG" (the proof fails: a failure) or
"log unavailable". Exit 0 when every item verifies, 1 otherwise.`,
  options: {
    trust: { type: 'string' },
    url: { type: 'string' },
    in: { type: 'string' },
    ...TOKEN_OPTIONS,
    'no-log': { type: 'boolean' },
  },
  async run(values, io) {
    if ((values.trust === undefined) === (values.url === undefined)) throw new UsageError('give exactly one of --trust and --url');
    if (values.in === undefined) throw new UsageError('--in is required');
    const text = readText(values.in, io, 'input');
    const { store, vkey } = await loadTrust(values, io);
    const list = items(text, values.in);
    if (list.length === 0) throw new CliError(`${values.in} holds nothing to verify`);
    const results: Checked[] = [];
    for (const item of list) results.push(await check(item, store));

    const delivered = results.filter((r) => r.delivered);
    const hasToken = values.token !== undefined || values['token-file'] !== undefined || Boolean(io.env.CORDON_TOKEN || io.env.CORDON_TOKEN_FILE);
    const inLog = new Map<Checked, InclusionResult>();
    if (delivered.length > 0 && !values['no-log']) {
      if (values.url === undefined || !hasToken) {
        io.stderr.write('note: inclusion in the transparency log not checked (give --url and a desk or ops token)\n');
      } else if (!vkey) {
        io.stderr.write('note: the node publishes no transparency-log key (GET /v1/trust has no log): inclusion not checked\n');
      } else {
        let log: LogInclusion;
        try {
          log = new LogInclusion({ base: baseUrl(values.url), token: tokenOf(values, io), vkey });
        } catch (err) {
          throw new CliError(`the log key of GET /v1/trust is not usable: ${(err as Error).message}`, { cause: err });
        }
        await proveAll(log, delivered, inLog);
      }
    }

    let failures = 0;
    let notInLog = 0;
    for (const r of results) {
      const inc = inLog.get(r);
      const bad = !r.ok || inc?.state === 'not-included';
      if (bad) failures++;
      if (inc?.state === 'not-included') notInLog++;
      const tail = inc
        ? `; ${inclusionWords(inc)}${inc.state === 'included' ? ` (signed tree of size ${inc.size})` : inc.detail ? `: ${inc.detail}` : ''}`
        : '';
      const line = r.ok && inc?.state === 'not-included' ? `FAIL${r.line.slice(4)}` : r.line;
      (bad ? io.stderr : io.stdout).write(line + tail + '\n');
    }
    if (inLog.size > 0) {
      const count = (s: InclusionResult['state']) => [...inLog.values()].filter((x) => x.state === s).length;
      const parts = [`${count('included')} in log`];
      if (count('pending') > 0) parts.push(`${count('pending')} not yet in log (pending)`);
      if (count('unavailable') > 0) parts.push(`${count('unavailable')} log unavailable`);
      if (notInLog > 0) parts.push(`${notInLog} NOT IN LOG`);
      io.stderr.write(`transparency log: ${parts.join(', ')} of ${plural(inLog.size, 'delivered alert')}\n`);
      if (notInLog > 0)
        io.stderr.write(`ERROR: ${plural(notInLog, 'alert')} NOT IN LOG: the node's signed log does not hold ${notInLog === 1 ? 'it' : 'them'} as given\n`);
    }
    return failures === 0 ? 0 : 1;
  },
});

/**
 * Proves each delivered alert; those beyond the latest checkpoint (pending) are tried again about
 * once a second, for up to five seconds (a checkpoint follows growth within about a second).
 */
async function proveAll(log: LogInclusion, delivered: Checked[], into: Map<Checked, InclusionResult>): Promise<void> {
  let todo = delivered;
  const deadline = Date.now() + 5000;
  for (;;) {
    const again: Checked[] = [];
    for (const r of todo) {
      const inc = await log.check(r.delivered!);
      into.set(r, inc);
      if (inc.state === 'pending') again.push(r);
    }
    if (again.length === 0 || Date.now() >= deadline) return;
    todo = again;
    await new Promise((res) => setTimeout(res, 1000));
  }
}
