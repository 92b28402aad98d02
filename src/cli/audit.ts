import type * as S from '../types/generated/schemas';
import { CliError, defineCommand, integer, required, UsageError } from './args';
import { baseUrl, getOk, TOKEN_OPTIONS, tokenOf } from './replay';
import { tileProver } from './log';
import { canonicalize } from '../domain/jcs';
import { checkRecord, leafHash } from '../domain/tlog/merkle';
import { openNote, parseCheckpoint, parseVerifierKey } from '../domain/tlog/note';

type AuditPageBody = S.AuditPage;

function instant(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const ms = Date.parse(value);
  if (!Number.isFinite(ms)) throw new UsageError(`--${flag} must be an RFC 3339 time`);
  return ms;
}

/**
 * `cordon audit`: prints the audit trail (GET /v1/audit), one JSON record per line, oldest first.
 * --since/--until filter on `at` here: the endpoint pages by n only.
 */
export const audit = defineCommand({
  name: 'audit',
  summary: 'Print the audit trail, one JSON record per line, oldest first (ops token)',
  usage: `--url URL (--token TOKEN | --token-file FILE) --purpose TEXT [--after N] [--since ISO] [--until ISO]
  --url      a Cordon node, e.g. http://127.0.0.1:8080
  --token    ops token (default: CORDON_TOKEN); or --token-file FILE (default: CORDON_TOKEN_FILE)
  --purpose  why (recorded in the audit trail, like every ops read)
  --after    start after record n (default 0: from the first record)
  --since    skip records before this RFC 3339 time
  --until    stop at the first record after this RFC 3339 time
  --verify   check every record printed against the signed audit tree (contract §12): the
             checkpoint's log signature (key from GET /v1/trust) and each record's inclusion proof`,
  options: {
    url: { type: 'string' },
    ...TOKEN_OPTIONS,
    purpose: { type: 'string' },
    after: { type: 'string' },
    since: { type: 'string' },
    until: { type: 'string' },
    verify: { type: 'boolean' },
  },
  async run(values, io) {
    const base = baseUrl(values.url);
    const token = tokenOf(values, io);
    const purpose = required(values.purpose, 'purpose');
    let after = integer(values.after, 'after') ?? 0;
    const since = instant(values.since, 'since');
    const until = instant(values.until, 'until');
    if (since !== undefined && until !== undefined && until < since) throw new UsageError('--until is before --since');
    const check = values.verify ? await auditTreeChecker(base, token) : undefined;
    let verified = 0;

    for (;;) {
      const url = new URL('v1/audit', base);
      url.searchParams.set('after', String(after));
      url.searchParams.set('limit', '1000');
      url.searchParams.set('purpose', purpose);
      const res = await getOk(url, token);
      let page: AuditPageBody;
      try {
        page = (await res.json()) as AuditPageBody;
      } catch (err) {
        throw new CliError('GET /v1/audit did not answer JSON', { cause: err });
      }
      let text = '';
      for (const rec of page.items) {
        const at = Date.parse(rec.at);
        // Records are appended in time order: the first one past --until ends the listing.
        if (until !== undefined && at > until) {
          if (text) io.stdout.write(text);
          return 0;
        }
        if (since === undefined || at >= since) {
          if (check && (await check(rec))) verified++;
          text += JSON.stringify(rec) + '\n';
        }
      }
      if (text) io.stdout.write(text);
      // A page of records this token may not read is empty and still moves on (next > after).
      if (page.next === null || page.next <= after) {
        if (check) io.stderr.write(`${verified} record(s) proved in the signed audit tree; later ones are not in its latest checkpoint yet\n`);
        return 0;
      }
      after = page.next;
    }
  },
});

/**
 * The audit tree's checkpoint, verified with the log key of GET /v1/trust, and a check of one
 * record against it: false when the record is newer than the checkpoint, a CliError when its
 * inclusion proof fails (the record differs from what the log signed).
 */
async function auditTreeChecker(base: URL, token: string): Promise<(rec: { n: number }) => Promise<boolean>> {
  const trust = (await (await getOk(new URL('v1/trust', base), undefined)).json()) as { log?: { vkey: string } };
  if (!trust.log) throw new CliError('the node publishes no transparency-log key (GET /v1/trust has no log)');
  const note = await (await getOk(new URL('v1/audit/log/checkpoint', base), token)).text();
  let cp;
  try {
    cp = parseCheckpoint(openNote(note, [parseVerifierKey(trust.log.vkey)]).text);
  } catch (err) {
    throw new CliError(`audit checkpoint does not verify: ${(err as Error).message}`, { cause: err });
  }
  const { size, root } = cp;
  // Proofs are made here from the audit tree's hash tiles (about one request per 256 records) and
  // checked against the signed root: a tile the node altered fails the check.
  const prove = tileProver(base, token, { path: 'v1/audit/log/', key: cp.origin });
  return async (rec) => {
    if (rec.n > size) return false;
    const proof = await prove(size, rec.n - 1);
    // Re-parsed here: canonicalize accepts only plain objects of this realm (fetch's json() may not give them).
    const leaf = leafHash(canonicalize(JSON.parse(JSON.stringify(rec))));
    if (!checkRecord(proof, size, root, rec.n - 1, leaf)) {
      throw new CliError(`audit record ${rec.n} is NOT the record the log signed (edited or replaced)`);
    }
    return true;
  };
}
