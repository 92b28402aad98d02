import WebSocket from 'ws';
import type { FastifyInstance } from 'fastify';
import type { AppDeps } from '../../src/app';
import { deliveredJson, type LogEntry } from '../../src/ports/region-log';
import type { AlertContent, Submission } from '../../src/domain/types';
import { appendInputOf } from '../../src/ingest/pipeline';
import { contentHashOf } from '../../src/domain/signature';
import { canonicalize } from '../../src/domain/jcs';

/**
 * A desk client for stream tests: collects every frame a server sends and waits for conditions.
 * Works with injectWS sockets and with real sockets on a listening port.
 */
export type Frame = Record<string, any>;

export class Desk {
  readonly frames: Frame[] = [];
  readonly raw: string[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  closeCode: number | undefined;
  private waiters: Array<() => void> = [];

  constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      // binaryType 'nodebuffer' (ws's default): one Buffer per message, fragments joined.
      const text = (data as Buffer).toString();
      this.raw.push(text);
      this.frames.push(JSON.parse(text) as Frame);
      this.notify();
    });
    this.closed = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        this.closeCode = code;
        this.notify();
        resolve({ code, reason: reason.toString() });
      });
    });
    ws.on('error', () => undefined);
  }

  private notify(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  send(frame: unknown): void {
    this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  subscribe(regions: string[], from?: Record<string, { seq: number; epoch?: string }>, filter?: Record<string, string[]>): void {
    this.send({ type: 'subscribe', regions, ...(from ? { from } : {}), ...(filter ? { filter } : {}) });
  }

  ofType(type: string, region?: string): Frame[] {
    return this.frames.filter((f) => f.type === type && (region === undefined || f.region === region));
  }

  alerts(region?: string): Frame[] {
    return this.ofType('alert', region);
  }

  /** Resolves when `cond` holds; rejects after `ms` with what was received. */
  async until(cond: (d: Desk) => boolean, ms = 5000, what = 'condition'): Promise<void> {
    const deadline = Date.now() + ms;
    while (!cond(this)) {
      const left = deadline - Date.now();
      if (left <= 0) {
        const seen = this.frames.map((f) => `${f.type}${f.seq !== undefined ? ':' + f.seq : ''}${f.code ? ':' + f.code : ''}`);
        throw new Error(`timed out waiting for ${what}; received ${seen.slice(-20).join(' ')} (${this.frames.length}), close ${this.closeCode}`);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 100));
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  untilFrames(type: string, n: number, ms = 5000): Promise<void> {
    return this.until((d) => d.ofType(type).length >= n, ms, `${n} ${type} frames`);
  }

  /** Quiet for `ms`: used to assert that nothing more arrives. */
  async settle(ms = 150): Promise<void> {
    await new Promise((r) => setTimeout(r, ms));
  }

  close(): void {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.close();
  }
}

/** Opens a desk with injectWS (no port) and a bearer token. */
export async function injectDesk(app: FastifyInstance, token: string): Promise<Desk> {
  let desk: Desk | undefined;
  await app.injectWS('/v1/stream', { headers: { authorization: `Bearer ${token}` } }, { onInit: (ws) => (desk = new Desk(ws)) });
  return desk!;
}

/** Opens a desk on a real socket; `protocols` selects the subprotocol way of sending the token. */
export function socketDesk(url: string, token: string, how: 'bearer' | 'protocol' = 'bearer'): Promise<Desk> {
  const ws =
    how === 'bearer' ? new WebSocket(url, { headers: { authorization: `Bearer ${token}` } }) : new WebSocket(url, ['cordon.v1', `cordon.token.${token}`]);
  const desk = new Desk(ws);
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(desk));
    ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
    ws.once('error', reject);
  });
}

/** The HTTP answer to an upgrade the server refuses: status and problem body. */
export function refusedUpgrade(url: string, headers: Record<string, string>, protocols?: string[]): Promise<{ status: number; body: any }> {
  const ws = new WebSocket(url, protocols ?? [], { headers });
  return new Promise((resolve, reject) => {
    ws.once('open', () => {
      ws.close();
      reject(new Error('upgrade unexpectedly accepted'));
    });
    ws.once('unexpected-response', (_req, res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : undefined }));
    });
    ws.once('error', () => undefined);
  });
}

/**
 * Appends signed alerts straight to the region log (no ingest, no bus): volume for backlog and
 * slow-desk tests, and "a lost bus message" for repair tests. Returns the log entries.
 */
export async function appendDirect(deps: Pick<AppDeps, 'regionLog'>, sign: (c: AlertContent) => Submission, contents: AlertContent[]): Promise<LogEntry[]> {
  const out: LogEntry[] = [];
  for (const content of contents) {
    const sub = sign(content);
    const res = await deps.regionLog.append(appendInputOf(sub, contentHashOf(canonicalize(sub.content))));
    if (res.outcome !== 'appended') throw new Error(`append failed: ${res.outcome}`);
    out.push(res.entry);
  }
  return out;
}

/** The exact alert frame text a desk must receive for a log entry. */
export function expectedAlertFrame(e: LogEntry): string {
  return '{"type":"alert",' + deliveredJson(e).slice(1);
}
