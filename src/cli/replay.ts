import { closeSync, createWriteStream, existsSync, openSync, readSync, statSync, truncateSync, type WriteStream } from 'node:fs';
import { resolve } from 'node:path';
import type { Writable } from 'node:stream';
import { CordonError } from '../errors';
import { verifySubmission } from '../domain/signature';
import { TrustStore } from '../domain/trust-store';
import type { DeliveredAlert } from '../domain/types';
import { CliError, defineCommand, integer, readText, required, UsageError } from './args';
import type { CliIo } from './command';
import { withoutLog } from './inclusion';

/**
 * `cordon replay`: exports a region's history as NDJSON through
 * GET /v1/regions/{region}/alerts (Accept: application/x-ndjson), verifying every alert end to end
 * against GET /v1/trust, and resumes an interrupted export from the last complete line of its file.
 */

// ---- HTTP (shared with `cordon audit`) ------------------------------------------------------

export function baseUrl(value: string | undefined): URL {
  const text = required(value, 'url');
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(`--url ${text} is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError('--url must be http:// or https://');
  if (!url.pathname.endsWith('/')) url.pathname += '/';
  return url;
}

/**
 * The bearer token: --token, else the first line of --token-file, else CORDON_TOKEN, else the file
 * CORDON_TOKEN_FILE names. A file keeps the token out of the shell history and `ps`.
 */
export function tokenOf(values: { token?: string; 'token-file'?: string }, io: CliIo): string {
  if (values.token !== undefined && values['token-file'] !== undefined) throw new UsageError('give --token or --token-file, not both');
  if (values.token !== undefined) return required(values.token, 'token');
  const file = values['token-file'] ?? (io.env.CORDON_TOKEN ? undefined : io.env.CORDON_TOKEN_FILE);
  if (file === undefined) {
    if (io.env.CORDON_TOKEN) return io.env.CORDON_TOKEN;
    throw new UsageError('--token or --token-file is required (or set CORDON_TOKEN or CORDON_TOKEN_FILE)');
  }
  const t = readText(file, io, 'token file').trim();
  if (t === '') throw new CliError(`token file ${file} is empty`);
  return t;
}

/** The options every command that takes a token declares. */
export const TOKEN_OPTIONS = { token: { type: 'string' }, 'token-file': { type: 'string' } } as const;

/** `1 alert`, `2 alerts`. */
export function plural(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

/** GET with a bearer token; a problem answer becomes a CliError naming its code and detail. */
export async function getOk(url: URL, token: string | undefined, accept = 'application/json'): Promise<Response> {
  let res: Response;
  try {
    res = await fetch(url, { headers: { accept, ...(token ? { authorization: `Bearer ${token}` } : {}) } });
  } catch (err) {
    throw new CliError(`cannot reach ${url.origin}: ${causeOf(err)}`, { cause: err });
  }
  if (res.ok) return res;
  const text = await res.text().catch(() => '');
  let problem: { code?: string; detail?: string; earliest?: number; errors?: { path: string; message: string }[] } = {};
  try {
    problem = JSON.parse(text) as typeof problem;
  } catch {
    /* not a problem body */
  }
  let message = `${url.pathname} answered ${res.status}${problem.code ? ` ${problem.code}` : ''}: ${problem.detail ?? text.slice(0, 200)}`;
  for (const e of problem.errors ?? []) message += `\n  ${e.path}: ${e.message}`;
  if (problem.code === 'HISTORY_TRIMMED' && problem.earliest !== undefined) {
    message += `\nthe oldest alert held is seq ${problem.earliest}; to export what is held, use --after ${problem.earliest - 1} and a new --out file`;
  }
  throw new CliError(message);
}

function causeOf(err: unknown): string {
  const e = err as { message?: string; cause?: { code?: string; message?: string } };
  return e.cause?.code ?? e.cause?.message ?? e.message ?? String(err);
}

// ---- verification ---------------------------------------------------------------------------

/**
 * Verifies a delivered alert end to end: the signature over the JCS form of content, and the key
 * as it stood then (state, region, nbf/exp at iat, retired before iat, revoked after receipt).
 * The ingest iat window does not apply to history, so it is opened fully. Returns the reason it
 * fails, or undefined.
 */
export async function verifyDelivered(alert: DeliveredAlert, store: TrustStore): Promise<string | undefined> {
  if (alert.content?.region !== alert.region) return 'content.region differs from the region it was delivered in';
  const receivedMs = Date.parse(alert.received_at);
  if (!Number.isFinite(receivedMs)) return 'received_at is not a timestamp';
  try {
    await verifySubmission({ content: alert.content, sig: alert.sig }, store, {
      nowMs: receivedMs,
      maxAgeS: Number.POSITIVE_INFINITY,
      maxSkewS: Number.POSITIVE_INFINITY,
    });
    return undefined;
  } catch (err) {
    if (err instanceof CordonError) return `${err.code}: ${err.message}`;
    throw err;
  }
}

// ---- the out file ---------------------------------------------------------------------------

export interface ResumePoint {
  seq: number;
  epoch: string;
  /** bytes of a partial last line cut off. */
  truncated: number;
}

/**
 * Where an interrupted export stops: the last complete line's seq and epoch. A partial last line
 * (the process was killed mid-write) is cut off. Undefined when the file holds no complete line.
 */
export function resumePoint(path: string, region: string): ResumePoint | undefined {
  if (!existsSync(path)) return undefined;
  const size = statSync(path).size;
  if (size === 0) return undefined;
  const fd = openSync(path, 'r');
  let lastLine: string;
  let keep: number;
  try {
    // Read backwards until the newline that ends the last complete line and the one before it.
    const chunk = 65536;
    let tail = Buffer.alloc(0);
    let pos = size;
    let end = -1;
    let start = -1;
    while (pos > 0 && start < 0) {
      const n = Math.min(chunk, pos);
      pos -= n;
      const buf = Buffer.alloc(n);
      readSync(fd, buf, 0, n, pos);
      tail = Buffer.concat([buf, tail]);
      if (end < 0) {
        const i = tail.lastIndexOf(0x0a);
        if (i >= 0) end = pos + i;
      }
      if (end >= 0) {
        // (a negative offset would count from the end of the buffer)
        const j = end - pos - 1 >= 0 ? tail.lastIndexOf(0x0a, end - pos - 1) : -1;
        if (j >= 0) start = pos + j + 1;
        else if (pos === 0) start = 0;
      }
    }
    keep = end + 1;
    if (end < 0) {
      lastLine = '';
    } else {
      lastLine = tail.subarray(start - pos, end - pos).toString('utf8');
    }
  } finally {
    closeSync(fd);
  }
  const truncated = size - keep;
  if (truncated > 0) truncateSync(path, keep);
  if (keep === 0) return undefined;
  let last: Partial<DeliveredAlert>;
  try {
    last = JSON.parse(lastLine) as Partial<DeliveredAlert>;
  } catch {
    throw new CliError(`${path}: the last line is not JSON; is this an export file?`);
  }
  if (typeof last.seq !== 'number' || typeof last.epoch !== 'string') {
    throw new CliError(`${path}: the last line is not a delivered alert; is this an export file?`);
  }
  if (last.region !== region) throw new CliError(`${path} is an export of region ${String(last.region)}, not ${region}`);
  return { seq: last.seq, epoch: last.epoch, truncated };
}

// ---- progress -------------------------------------------------------------------------------

/**
 * A bar redrawn in place on a terminal. Elsewhere (a log file, CI) nothing until the one summary
 * line the command prints at the end: repeated progress lines only clutter a log.
 */
class Progress {
  private readonly tty: boolean;
  private readonly started = Date.now();
  private lastDraw = 0;
  written = 0;
  seq: number;

  constructor(
    private readonly out: Writable,
    private readonly from: number,
    private readonly top: number,
  ) {
    this.tty = Boolean((out as { isTTY?: boolean }).isTTY);
    this.seq = from;
  }

  update(seq: number, written: number): void {
    this.seq = seq;
    this.written = written;
    if (!this.tty) return;
    const now = Date.now();
    if (now - this.lastDraw < 100) return;
    this.lastDraw = now;
    this.draw(false);
  }

  done(): void {
    if (this.tty) this.draw(true);
  }

  private draw(final: boolean): void {
    const span = Math.max(1, this.top - this.from);
    const ratio = final ? 1 : Math.min(1, Math.max(0, (this.seq - this.from) / span));
    const secs = Math.max(0.001, (Date.now() - this.started) / 1000);
    const rate = Math.round(this.written / secs);
    const fig = `${(ratio * 100).toFixed(0).padStart(3)}%  seq ${this.seq}/${this.top}  ${plural(this.written, 'alert')}  ${rate}/s`;
    const width = 30;
    const filled = Math.round(ratio * width);
    this.out.write(`\r[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${fig}\x1b[K${final ? '\n' : ''}`);
  }
}

// ---- the command ----------------------------------------------------------------------------

function writeAll(out: Writable, text: string): Promise<void> {
  if (out.write(text)) return Promise.resolve();
  return new Promise((res, rej) => {
    const onDrain = () => {
      out.off('error', onError);
      res();
    };
    const onError = (err: Error) => {
      out.off('drain', onDrain);
      rej(err);
    };
    out.once('drain', onDrain);
    out.once('error', onError);
  });
}

/** Alerts verified at once on the threadpool (crypto.verify with a callback). */
const VERIFY_BATCH = 256;

export const replay = defineCommand({
  name: 'replay',
  summary: "Export a region's alert history as NDJSON, verifying every signature (resumes an interrupted export)",
  usage: `--url URL (--token TOKEN | --token-file FILE) --region CODE [--purpose TEXT] [--after N | --since ISO] [--out FILE] [--no-verify]
  --url        a Cordon node, e.g. http://127.0.0.1:8080
  --token      desk or ops token (default: CORDON_TOKEN); or --token-file FILE (default: CORDON_TOKEN_FILE)
  --region     region code, e.g. KG-CN-01
  --purpose    why (required for ops tokens; recorded in the audit trail)
  --after      start after this seq (default: the oldest alert held)
  --since      start at the first alert received at or after this RFC 3339 time
  --out        append to this file; if it already holds alerts, continue after its last one
  --no-verify  skip the end-to-end signature check against GET /v1/trust
One delivered alert per line, oldest first, up to the newest alert when the export started.`,
  options: {
    url: { type: 'string' },
    ...TOKEN_OPTIONS,
    region: { type: 'string' },
    purpose: { type: 'string' },
    after: { type: 'string' },
    since: { type: 'string' },
    out: { type: 'string' },
    'no-verify': { type: 'boolean' },
  },
  async run(values, io) {
    const base = baseUrl(values.url);
    const token = tokenOf(values, io);
    const region = required(values.region, 'region');
    if (!/^[A-Z]{2}-[A-Z]{2}-[0-9]{2}$/.test(region)) throw new UsageError('--region must look like KG-CN-01');
    const after = integer(values.after, 'after');
    if (after !== undefined && values.since !== undefined) throw new UsageError('give --after or --since, not both');
    if (values.since !== undefined && !Number.isFinite(Date.parse(values.since))) throw new UsageError('--since must be an RFC 3339 time');
    const verify = !values['no-verify'];
    const outPath = values.out === undefined ? undefined : resolve(io.cwd, values.out);

    const resume = outPath === undefined ? undefined : resumePoint(outPath, region);
    if (resume && (after !== undefined || values.since !== undefined)) {
      throw new UsageError(
        `${values.out} already holds alerts up to seq ${resume.seq} and the export continues from there; omit --after/--since or use another --out file`,
      );
    }
    if (resume) {
      io.stderr.write(
        `replay: resuming after seq ${resume.seq} (epoch ${resume.epoch})${resume.truncated > 0 ? `, cut a partial last line of ${plural(resume.truncated, 'byte')}` : ''}\n`,
      );
    }

    let store: TrustStore | undefined;
    if (verify) {
      const res = await getOk(new URL('v1/trust', base), undefined);
      try {
        store = TrustStore.fromJson(withoutLog(await res.json())); // GET /v1/trust also carries the log key
      } catch (err) {
        throw new CliError(`GET /v1/trust did not return a usable trust store: ${(err as Error).message}`, { cause: err });
      }
    }

    const url = new URL(`v1/regions/${region}/alerts`, base);
    if (resume) {
      url.searchParams.set('after', String(resume.seq));
      url.searchParams.set('epoch', resume.epoch);
    } else if (after !== undefined) {
      url.searchParams.set('after', String(after));
    } else if (values.since !== undefined) {
      url.searchParams.set('since', values.since);
    }
    if (values.purpose !== undefined) url.searchParams.set('purpose', values.purpose);
    const res = await getOk(url, token, 'application/x-ndjson');
    const from = Number(res.headers.get('cordon-after') ?? resume?.seq ?? 0);
    const top = Number(res.headers.get('cordon-latest') ?? 0);
    const progress = new Progress(io.stderr, from, top);

    const file: WriteStream | undefined = outPath === undefined ? undefined : createWriteStream(outPath, { flags: 'a' });
    const out: Writable = file ?? io.stdout;
    let written = 0;
    let lastSeq = from;
    let pending: string[] = [];
    let rest = '';

    const flush = async (): Promise<void> => {
      if (pending.length === 0) return;
      const lines = pending;
      pending = [];
      const alerts = lines.map((l) => JSON.parse(l) as DeliveredAlert);
      for (const a of alerts) {
        if (a.region !== region || a.seq <= lastSeq) throw new CliError(`the server sent seq ${a.seq} of ${a.region} after seq ${lastSeq}; export stopped`);
        lastSeq = a.seq;
      }
      if (store) {
        const failures = await Promise.all(alerts.map((a) => verifyDelivered(a, store)));
        const bad = failures.findIndex((f) => f !== undefined);
        if (bad >= 0) {
          // Keep what verified, so the file is a verified prefix and a rerun stops at the same alert.
          if (bad > 0) await writeAll(out, lines.slice(0, bad).join('\n') + '\n');
          written += bad;
          throw new CliError(`seq ${alerts[bad].seq} (${alerts[bad].content?.id}) does not verify: ${failures[bad]}; export stopped`);
        }
      }
      await writeAll(out, lines.join('\n') + '\n');
      written += lines.length;
      progress.update(lastSeq, written);
    };

    try {
      if (!res.body) throw new CliError('the server sent no body');
      const decoder = new TextDecoder('utf-8', { fatal: true });
      try {
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          const text = rest + decoder.decode(chunk, { stream: true });
          const lines = text.split('\n');
          rest = lines.pop() ?? '';
          for (const line of lines) {
            if (line.length > 0) pending.push(line);
          }
          if (pending.length >= VERIFY_BATCH) await flush();
        }
      } catch (err) {
        if (err instanceof CliError) throw err;
        await flush();
        throw new CliError(`the export was interrupted after seq ${lastSeq} (${causeOf(err)})${outPath ? '; run the same command again to resume' : ''}`, {
          cause: err,
        });
      }
      if (rest.length > 0) throw new CliError('the stream ended in the middle of a line; run the same command again to resume');
      await flush();
    } finally {
      if (file) await new Promise<void>((res2) => file.end(res2));
    }
    progress.done();
    io.stderr.write(
      `replay: ${plural(written, 'alert')} ${verify ? 'verified and ' : ''}written` + `${outPath ? ` to ${values.out}` : ''}, up to seq ${top}\n`,
    );
    return 0;
  },
});
