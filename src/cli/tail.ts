import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import WebSocket from 'ws';
import { decodeProtectedHeader } from '../domain/signature';
import { TrustStore } from '../domain/trust-store';
import type { DeliveredAlert } from '../domain/types';
import type * as S from '../types/generated/schemas';
import type { FromPosition, SubscribedFrame } from '../ws/frames';
import { CliError, defineCommand, integer, list, UsageError } from './args';
import { inclusionWords, LogInclusion, logVkeyOf, withoutLog, type InclusionResult } from './inclusion';
import { baseUrl, getOk, plural, TOKEN_OPTIONS, tokenOf, verifyDelivered } from './replay';

/**
 * `cordon tail`: watch regions live as a desk (contract §9), resuming from a state file, and
 * verify every alert end to end. DeskStream is the reusable part: a desk connection that
 * subscribes, follows its position per region, and reconnects with backoff on the close codes
 * that mean "resume" (4000-4499) and on network errors, across one or several nodes.
 */

// ---- the desk connection --------------------------------------------------------------------

/** A desk's position in one region; `epoch` unknown while the region is empty. */
export type DeskPosition = FromPosition;
export type { SubscribedFrame };
export type GapFrameIn = S.WsServerFrameGap;
export type ErrorFrameIn = S.WsServerFrameError;

/** The position after a gap: delivery continues after `to`; no epoch while the region's log is empty. */
export function positionAfterGap(gap: GapFrameIn): DeskPosition {
  return gap.epoch === null ? { seq: gap.to } : { seq: gap.to, epoch: gap.epoch };
}

export type DeskEvent =
  | { type: 'connecting'; url: string; attempt: number }
  | { type: 'open'; url: string }
  | { type: 'subscribed'; frame: SubscribedFrame }
  | { type: 'alert'; alert: DeliveredAlert; raw: string }
  | { type: 'gap'; frame: GapFrameIn; raw: string }
  | { type: 'error'; frame: ErrorFrameIn }
  /** the connection ended; `retryInMs` is set when the desk will reconnect */
  | { type: 'closed'; url: string; code: number; reason: string; retryInMs?: number };

/** How a DeskStream ended. */
export type DeskEnd = { kind: 'stopped' } | { kind: 'final'; code: number; message: string };

export interface DeskStreamOptions {
  /** http(s) base URLs of Cordon nodes; a reconnect moves on to the next one */
  urls: string[];
  token: string;
  regions: string[];
  /** where to resume, per region (absent: live from now) */
  positions?: Record<string, DeskPosition>;
  filter?: { urgency?: string[]; category?: string[] };
  backoff?: { initialMs: number; maxMs: number };
  /** Called for every event, in order; the next frame waits for a returned promise. */
  onEvent(e: DeskEvent): void | Promise<void>;
}

/** Close codes (contract §9): 4000-4499 reconnect and resume, 4500-4999 are final. */
export function isFinalClose(code: number): boolean {
  return code >= 4500 && code <= 4999;
}

/** http://host:port/base/ → ws://host:port/base/v1/stream */
export function streamUrl(base: string): string {
  const u = new URL(base);
  u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
  if (!u.pathname.endsWith('/')) u.pathname += '/';
  return new URL('v1/stream', u).toString();
}

export class DeskStream {
  /** The newest position per region: updated as frames arrive, before they are handed on. */
  readonly positions: Record<string, DeskPosition>;
  /** Resolves when the stream stops for good (stop(), or a final close). */
  readonly done: Promise<DeskEnd>;
  private resolveDone!: (end: DeskEnd) => void;
  private ws: WebSocket | undefined;
  private stopped = false;
  private urlIndex = 0;
  private attempt = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private chain: Promise<void> = Promise.resolve();
  private readonly backoff: { initialMs: number; maxMs: number };

  constructor(private readonly opts: DeskStreamOptions) {
    this.positions = { ...(opts.positions ?? {}) };
    this.backoff = opts.backoff ?? { initialMs: 250, maxMs: 10_000 };
    this.done = new Promise((res) => (this.resolveDone = res));
  }

  /** The node in use (or about to be). */
  get url(): string {
    return this.opts.urls[this.urlIndex % this.opts.urls.length];
  }

  start(): this {
    this.connect();
    return this;
  }

  /** Stops for good: closes the socket normally and resolves `done` once queued events are handled. */
  async stop(): Promise<void> {
    this.finish({ kind: 'stopped' });
    await this.done;
  }

  private finish(end: DeskEnd): void {
    if (this.stopped) return;
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    const ws = this.ws;
    this.ws = undefined;
    if (ws && ws.readyState === WebSocket.OPEN) ws.close(1000, 'desk leaves');
    else ws?.terminate();
    void this.chain.then(() => this.resolveDone(end));
  }

  private emit(e: DeskEvent): void {
    // Frames already received when the desk stops (e.g. after --count) are not handed on.
    this.chain = this.chain.then(() => (this.stopped ? undefined : this.opts.onEvent(e))).catch(() => undefined);
  }

  private subscribeFrame(): string {
    const from: Record<string, DeskPosition> = {};
    for (const r of this.opts.regions) {
      const p = this.positions[r];
      if (p) from[r] = p.epoch === undefined ? { seq: p.seq } : { seq: p.seq, epoch: p.epoch };
    }
    const frame: Record<string, unknown> = { type: 'subscribe', regions: this.opts.regions };
    if (Object.keys(from).length > 0) frame.from = from;
    if (this.opts.filter && (this.opts.filter.urgency || this.opts.filter.category)) frame.filter = this.opts.filter;
    return JSON.stringify(frame);
  }

  private connect(): void {
    if (this.stopped) return;
    const url = this.url;
    this.attempt++;
    this.emit({ type: 'connecting', url, attempt: this.attempt });
    const ws = new WebSocket(streamUrl(url), {
      headers: { authorization: `Bearer ${this.opts.token}` },
      perMessageDeflate: false,
      handshakeTimeout: 10_000,
    });
    this.ws = ws;
    let opened = false;
    let refused: { status: number; body: string } | undefined;

    ws.on('open', () => {
      opened = true;
      this.emit({ type: 'open', url });
      ws.send(this.subscribeFrame());
    });
    ws.on('message', (data: Buffer) => this.onFrame(data.toString('utf8')));
    ws.on('unexpected-response', (_req, res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        refused = { status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') };
        ws.terminate();
      });
    });
    ws.on('error', () => {
      /* 'close' follows and decides */
    });
    ws.on('close', (code: number, reasonBuf: Buffer) => {
      if (this.ws !== ws) return;
      this.ws = undefined;
      if (this.stopped) return;
      const reason = refused ? problemSummary(refused) : reasonBuf.toString('utf8');
      // A refused upgrade for auth reasons will not heal by retrying; 503 (shutting down) will.
      const finalRefusal = refused !== undefined && refused.status >= 400 && refused.status < 500 && refused.status !== 429;
      const closeCode = refused ? refused.status : code;
      if (isFinalClose(code) || finalRefusal) {
        this.emit({ type: 'closed', url, code: closeCode, reason });
        this.finish({ kind: 'final', code: closeCode, message: reason || `closed with ${code}` });
        return;
      }
      // Move on to the next node; back off only when a node could not be reached at all.
      this.urlIndex++;
      if (opened) this.attempt = 0;
      const delay = opened ? this.backoff.initialMs : this.delayFor(this.attempt);
      this.emit({ type: 'closed', url, code: closeCode, reason, retryInMs: delay });
      this.retryTimer = setTimeout(() => this.connect(), delay);
    });
  }

  private delayFor(attempt: number): number {
    const exp = Math.min(this.backoff.maxMs, this.backoff.initialMs * 2 ** Math.min(attempt - 1, 16));
    return Math.round(exp / 2 + Math.random() * (exp / 2));
  }

  private onFrame(text: string): void {
    let frame: { type?: string; region?: string; seq?: number; epoch?: string | null; to?: number };
    try {
      frame = JSON.parse(text) as typeof frame;
    } catch {
      return;
    }
    switch (frame.type) {
      case 'alert': {
        const alert = frame as unknown as DeliveredAlert;
        this.positions[alert.region] = { seq: alert.seq, epoch: alert.epoch };
        this.emit({ type: 'alert', alert, raw: text });
        break;
      }
      case 'gap': {
        const gap = frame as unknown as GapFrameIn;
        // Delivery continues after `to`: resuming from there does not announce the same gap again.
        this.positions[gap.region] = positionAfterGap(gap);
        this.emit({ type: 'gap', frame: gap, raw: text });
        break;
      }
      case 'subscribed': {
        const s = frame as unknown as SubscribedFrame;
        this.attempt = 0;
        // Live-only so far: from now on the desk holds a position and resumes without loss.
        if (!this.positions[s.region]) this.positions[s.region] = s.epoch === null ? { seq: 0 } : { seq: s.seq, epoch: s.epoch };
        this.emit({ type: 'subscribed', frame: s });
        break;
      }
      case 'error':
        this.emit({ type: 'error', frame: frame as unknown as ErrorFrameIn });
        break;
      default:
        // A frame type this client does not know (a newer server): ignored.
        break;
    }
  }
}

function problemSummary(r: { status: number; body: string }): string {
  try {
    const p = JSON.parse(r.body) as { code?: string; detail?: string };
    return `HTTP ${r.status} ${p.code ?? ''}: ${p.detail ?? ''}`.trim();
  } catch {
    return `HTTP ${r.status}`;
  }
}

// ---- the state file -------------------------------------------------------------------------

export interface TailState {
  regions: Record<string, DeskPosition>;
}

export function readState(path: string): TailState {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { regions: {} };
    throw new CliError(`cannot read state file ${path}: ${(err as Error).message}`, { cause: err });
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new CliError(`state file ${path} is not JSON; delete it to start live`, { cause: err });
  }
  const regions = (v as TailState | null)?.regions;
  if (!regions || typeof regions !== 'object') throw new CliError(`state file ${path} has no "regions"; delete it to start live`);
  const out: Record<string, DeskPosition> = {};
  for (const [code, p] of Object.entries(regions)) {
    // `epoch: null` was written by earlier versions after a gap into an empty (lost) log: it means no epoch.
    const epoch = (p as { epoch?: unknown } | null)?.epoch ?? undefined;
    if (!p || typeof p.seq !== 'number' || !Number.isSafeInteger(p.seq) || p.seq < 0 || (epoch !== undefined && (typeof epoch !== 'string' || epoch === ''))) {
      throw new CliError(`state file ${path}: the position of ${code} is invalid; delete it to start live`);
    }
    out[code] = epoch === undefined ? { seq: p.seq } : { seq: p.seq, epoch };
  }
  return { regions: out };
}

/** Writes the state atomically (temp file + rename): a crash leaves the old or the new, never half. */
export function writeState(path: string, state: TailState): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(state, null, 2) + '\n');
  renameSync(tmp, path);
}

// ---- output ---------------------------------------------------------------------------------

/**
 * One compact line per alert: time, region #seq, urgency, category, issuer, TLP and handling
 * codes, marks (REVOKED, CORRECTED, and the verification result), title, id.
 */
export function alertLine(a: DeliveredAlert, verification = ''): string {
  const c = a.content;
  const urgency = String(c.urgency ?? '').toUpperCase();
  const marks = [c.revoked ? 'REVOKED' : '', c.modified !== c.created && !c.revoked ? 'CORRECTED' : '', verification].filter(Boolean).join(' ');
  // eslint-disable-next-line no-control-regex -- matching control characters is the point: they never reach the terminal
  const title = String(c.title ?? '').replace(/[\u0000-\u001f\u007f]/g, ' ');
  const handling = [c.handling?.tlp ?? 'TLP:?', ...(Array.isArray(c.handling?.codes) ? c.handling.codes : [])].join(' ');
  return (
    `${a.received_at}  ${a.region} #${a.seq}  ${urgency.padEnd(7)} ${String(c.category ?? '')}  ` +
    `${c.issuer?.state ?? '?'}/${c.issuer?.agency ?? '?'}  ${handling}  ${marks ? `[${marks}] ` : ''}${title}  (${c.id})`
  );
}

const URGENCIES = ['flash', 'urgent', 'routine'];
const REGION_CODE = /^[A-Z]{2}-[A-Z]{2}-[0-9]{2}$/;

// ---- the command ----------------------------------------------------------------------------

export const tail = defineCommand({
  name: 'tail',
  summary: 'Watch regions live as a desk, resuming from a state file and verifying every signature',
  usage: `--url URL[,URL2] (--token TOKEN | --token-file FILE) --region CODE[,CODE2] [options]
  --url         a Cordon node, e.g. http://127.0.0.1:8080; several (comma-separated) to fail over
  --token       desk token (default: CORDON_TOKEN); or --token-file FILE (default: CORDON_TOKEN_FILE)
  --region      region code(s) to watch, e.g. KG-CN-01,KZ-KG-01
  --state-file  where the position per region is kept (default .cordon/tail-state.json);
                the next run resumes from it with nothing missed
  --from-start  start at the oldest alert held (instead of the state file, or live)
  --from SEQ    start after this seq of the region's current log (--from 0 = --from-start)
  --urgency     only these urgencies, e.g. flash,urgent
  --json        print each frame as a JSON line (alerts and gaps) instead of a human line
  --count N     exit after N alerts
  --no-log      do not check inclusion in the transparency log
Every alert's signature is verified, and its inclusion in the region's transparency log is proved
against the latest signed checkpoint: "in log", "not yet in log (pending)" (checked again, in
batches, as checkpoints grow; reported on stderr), "NOT IN LOG" (the proof fails) or
"log unavailable" (the log endpoints could not be reached; tail goes on).
Reconnects with backoff when a node closes with 4000-4499 or cannot be reached; stops on 4500-4999.
Exit: 0 done, 1 stopped by the server or an error, 2 bad arguments, 3 an alert failed verification
or is NOT IN LOG.`,
  options: {
    url: { type: 'string' },
    ...TOKEN_OPTIONS,
    region: { type: 'string' },
    'state-file': { type: 'string' },
    'from-start': { type: 'boolean' },
    from: { type: 'string' },
    urgency: { type: 'string' },
    json: { type: 'boolean' },
    count: { type: 'string' },
    'no-log': { type: 'boolean' },
  },
  async run(values, io) {
    const urls = (list(values.url) ?? []).map((u) => baseUrl(u).toString());
    if (urls.length === 0) throw new UsageError('--url is required');
    const token = tokenOf(values, io);
    const regions = list(values.region) ?? [];
    if (regions.length === 0) throw new UsageError('--region is required');
    for (const r of regions) if (!REGION_CODE.test(r)) throw new UsageError(`--region ${r} must look like KG-CN-01`);
    const urgency = list(values.urgency);
    for (const u of urgency ?? []) if (!URGENCIES.includes(u)) throw new UsageError(`--urgency ${u} must be one of ${URGENCIES.join(', ')}`);
    const count = integer(values.count, 'count', 1);
    const statePath = resolve(io.cwd, values['state-file'] ?? '.cordon/tail-state.json');
    const json = Boolean(values.json);

    if (values['from-start'] && values.from !== undefined) throw new UsageError('give --from-start or --from, not both');
    const fromSeq = values['from-start'] ? 0 : integer(values.from, 'from');

    const state = readState(statePath);
    // --from/--from-start: a position without epoch in whatever log the region has now.
    if (fromSeq !== undefined) for (const r of regions) state.regions[r] = { seq: fromSeq };
    const positions: Record<string, DeskPosition> = {};
    for (const r of regions) if (state.regions[r]) positions[r] = state.regions[r];

    const first = await fetchTrust(urls[0]);
    let store = first.store;
    const vkey = first.vkey;
    const refetched = new Set<string>();
    const say = (line: string) => io.stderr.write(`tail: ${line}\n`);
    const logCheck = values['no-log'] ? undefined : new TailLogCheck(say, vkey, () => new URL(desk.url), token);
    if (!values['no-log'] && !vkey) say('the node publishes no transparency-log key (GET /v1/trust has no log): inclusion is not checked');
    const resumeNote = regions
      .map((r) => (!positions[r] ? `${r} live` : positions[r].seq === 0 ? `${r} from the oldest alert held` : `${r} after #${positions[r].seq}`))
      .join(', ');
    say(`watching ${resumeNote}; state in ${statePath}`);

    let seen = 0;
    let badSignatures = 0;
    let failure: string | undefined;
    const desk: DeskStream = new DeskStream({
      urls,
      token,
      regions,
      positions,
      filter: urgency ? { urgency } : undefined,
      async onEvent(e) {
        switch (e.type) {
          case 'connecting':
            if (e.attempt > 1) say(`connecting to ${e.url} (attempt ${e.attempt})`);
            break;
          case 'subscribed': {
            const f = e.frame;
            say(`subscribed to ${f.region} at #${f.seq}${state.regions[f.region] && f.recovered ? ', catching up without a gap' : ''}`);
            if (!state.regions[f.region]) {
              // Started live: from now on a later run resumes here, even if no alert came meanwhile.
              state.regions[f.region] = f.epoch === null ? { seq: 0 } : { seq: f.seq, epoch: f.epoch };
              writeState(statePath, state);
            }
            break;
          }
          case 'alert': {
            const a = e.alert;
            const held = state.regions[a.region];
            if (held && held.epoch === a.epoch && a.seq <= held.seq) {
              say(`WARNING: ${a.region} #${a.seq} delivered again; ignored`);
              return;
            }
            let why = await verifyDelivered(a, store);
            const kid = kidOf(a);
            if (why?.startsWith('SIGNATURE_KEY_UNKNOWN') && kid && !refetched.has(kid)) {
              // A key added since we started: fetch the trust store once more for it.
              refetched.add(kid);
              store = await fetchTrust(urls[0])
                .then((x) => x.store)
                .catch(() => store);
              why = await verifyDelivered(a, store);
            }
            if (why !== undefined) {
              badSignatures++;
              say(`WARNING: ${a.region} #${a.seq} (${a.content?.id}) FAILED VERIFICATION: ${why}`);
            }
            const inLog = logCheck?.enabled ? await logCheck.first(a) : undefined;
            const marks = [why === undefined ? 'verified' : 'UNVERIFIED', inLog ? inclusionWords(inLog) : ''].filter(Boolean).join(', ');
            io.stdout.write((json ? e.raw : alertLine(a, marks)) + '\n');
            state.regions[a.region] = { seq: a.seq, epoch: a.epoch };
            writeState(statePath, state);
            if (count !== undefined && ++seen >= count) void desk.stop();
            break;
          }
          case 'gap': {
            const g = e.frame;
            const missing =
              g.to > g.from
                ? `alerts #${g.from}..#${g.to} are no longer held`
                : g.to === g.from
                  ? `alert #${g.from} is no longer held`
                  : 'nothing of the new log was trimmed';
            const epochNote = g.reason !== 'epoch-changed' ? '' : g.epoch === null ? ', the log is empty' : `, new epoch ${g.epoch}`;
            const loud = `!!! GAP in ${g.region} (${g.reason}${epochNote}): ${missing}; continuing at #${g.to + 1}`;
            if (json) {
              io.stdout.write(e.raw + '\n');
              say(loud);
            } else io.stdout.write(loud + '\n');
            state.regions[g.region] = positionAfterGap(g);
            writeState(statePath, state);
            break;
          }
          case 'error':
            say(`server error frame ${e.frame.code}: ${e.frame.message}`);
            if (e.frame.code === 'STREAM_POSITION_AHEAD' || e.frame.code === 'STREAM_REGION_FORBIDDEN' || e.frame.code === 'REGION_NOT_FOUND') {
              failure = `${e.frame.code}: ${e.frame.message}${e.frame.code === 'STREAM_POSITION_AHEAD' ? ` (the state file ${statePath} does not belong to this server's log; delete it to start live)` : ''}`;
              void desk.stop();
            }
            break;
          case 'closed':
            if (e.retryInMs !== undefined) say(`disconnected from ${e.url} (${e.code}${e.reason ? ` ${e.reason}` : ''}); reconnecting in ${e.retryInMs} ms`);
            break;
          case 'open':
            break;
        }
      },
    });

    let signalled = false;
    const onSignal = () => {
      signalled = true;
      void desk.stop();
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    let end: DeskEnd;
    logCheck?.start();
    try {
      desk.start();
      end = await desk.done;
      // Alerts not in the latest checkpoint yet: a checkpoint follows growth within about a second.
      await logCheck?.finish(signalled ? 0 : 5000);
    } finally {
      logCheck?.stop();
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
    if (end.kind === 'final') failure = `the server ended the session for good (${end.code}): ${end.message}`;
    if (badSignatures > 0) say(`WARNING: ${badSignatures} alert${badSignatures === 1 ? '' : 's'} failed signature verification`);
    const notInLog = logCheck?.summary() ?? 0;
    if (failure) throw new CliError(failure);
    return badSignatures > 0 || notInLog > 0 ? 3 : 0;
  },
});

/**
 * Inclusion checks for tail: each alert is checked as it arrives against the cached checkpoint;
 * those beyond it are kept and checked again in one batch about once a second (one checkpoint
 * fetch per region and round, one proof per alert the new checkpoint covers).
 */
class TailLogCheck {
  private readonly log: LogInclusion | undefined;
  private readonly pending = new Map<string, DeliveredAlert>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private included = 0;
  private notIncluded = 0;
  private unavailableSaid = 0;

  constructor(
    private readonly say: (line: string) => void,
    vkey: string | undefined,
    base: () => URL,
    token: string,
    private readonly intervalMs = 1000,
  ) {
    try {
      this.log = vkey ? new LogInclusion({ base, token, vkey, refetchMs: intervalMs }) : undefined;
    } catch (err) {
      say(`the log key of GET /v1/trust is not usable (${(err as Error).message}): inclusion is not checked`);
    }
  }

  get enabled(): boolean {
    return this.log !== undefined;
  }

  /** The first check of an alert, as it arrives; a pending one is kept for the batches. */
  async first(a: DeliveredAlert): Promise<InclusionResult> {
    const r = await this.log!.check(a);
    this.record(a, r, true);
    return r;
  }

  private record(a: DeliveredAlert, r: InclusionResult, first: boolean): void {
    const key = `${a.region}:${a.epoch}:${a.seq}`;
    switch (r.state) {
      case 'included':
        this.included++;
        this.pending.delete(key);
        break;
      case 'not-included':
        this.notIncluded++;
        this.pending.delete(key);
        this.say(`!!! ${a.region} #${a.seq} (${a.content?.id}) is NOT IN LOG: ${r.detail}`);
        break;
      case 'unavailable':
        // Kept and tried again: the log endpoints may come back.
        this.pending.set(key, a);
        if (first && this.unavailableSaid++ % 100 === 0) this.say(`log unavailable (${r.detail}); inclusion will be checked again`);
        break;
      case 'pending':
        this.pending.set(key, a);
        break;
    }
  }

  start(): void {
    if (!this.log) return;
    this.timer = setInterval(() => void this.round(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One batch: every pending alert, oldest first; "in log" reported as ranges per region. */
  private round(): Promise<void> {
    if (this.running || this.pending.size === 0) return this.running ?? Promise.resolve();
    this.running = (async () => {
      const now = new Map<string, { seqs: number[]; size: number }>();
      const list = [...this.pending.values()].sort((x, y) => (x.region === y.region ? x.seq - y.seq : x.region < y.region ? -1 : 1));
      const stuck = new Set<string>();
      for (const a of list) {
        const tree = `${a.region}:${a.epoch}`;
        if (stuck.has(tree)) continue;
        const r = await this.log!.check(a);
        if (r.state === 'pending' || r.state === 'unavailable') {
          stuck.add(tree); // later seqs of the same tree are not covered either
          continue;
        }
        this.record(a, r, false);
        if (r.state === 'included') {
          const got = now.get(a.region) ?? { seqs: [], size: 0 };
          got.seqs.push(a.seq);
          got.size = Math.max(got.size, r.size ?? 0);
          now.set(a.region, got);
        }
      }
      for (const [region, got] of now) this.say(`in log: ${region} ${ranges(got.seqs)} (checkpoint size ${got.size})`);
    })().finally(() => (this.running = undefined));
    return this.running;
  }

  /** Before exit: batches until nothing is pending or `withinMs` has passed. */
  async finish(withinMs: number): Promise<void> {
    if (!this.log) return;
    this.stop();
    await this.running;
    const deadline = Date.now() + withinMs;
    for (;;) {
      await this.round();
      if (this.pending.size === 0 || Date.now() >= deadline) break;
      await new Promise((r) => setTimeout(r, this.intervalMs));
    }
  }

  /** Says how many were proved, pending and failed; returns the number NOT IN LOG. */
  summary(): number {
    if (!this.log) return 0;
    const total = this.included + this.notIncluded + this.pending.size;
    if (total === 0) return 0;
    const parts = [`${this.included} in log`];
    if (this.pending.size > 0) parts.push(`${this.pending.size} not yet in log (pending) when tail stopped`);
    if (this.notIncluded > 0) parts.push(`${this.notIncluded} NOT IN LOG`);
    this.say(`transparency log: ${parts.join(', ')} of ${plural(total, 'alert')}`);
    if (this.notIncluded > 0) this.say(`ERROR: ${plural(this.notIncluded, 'alert')} NOT IN LOG: the node delivered alerts its signed log does not hold`);
    return this.notIncluded;
  }
}

/** [1,2,3,5] → "#1-#3, #5" */
function ranges(seqs: number[]): string {
  const out: string[] = [];
  for (let i = 0; i < seqs.length;) {
    let j = i;
    while (j + 1 < seqs.length && seqs[j + 1] === seqs[j] + 1) j++;
    out.push(j === i ? `#${seqs[i]}` : `#${seqs[i]}-#${seqs[j]}`);
    i = j + 1;
  }
  return out.join(', ');
}

async function fetchTrust(base: string): Promise<{ store: TrustStore; vkey: string | undefined }> {
  const res = await getOk(new URL('v1/trust', base), undefined);
  try {
    const doc: unknown = await res.json();
    return { store: TrustStore.fromJson(withoutLog(doc)), vkey: logVkeyOf(doc) };
  } catch (err) {
    throw new CliError(`GET /v1/trust did not return a usable trust store: ${(err as Error).message}`, { cause: err });
  }
}

function kidOf(a: DeliveredAlert): string | undefined {
  try {
    return decodeProtectedHeader(a.sig?.protected).kid;
  } catch {
    return undefined;
  }
}
