import type { AckFrame, FromPosition, GapFrame, SubscribeFrame, UnsubscribeFrame } from '../../src/ws/frames';
import type { DeliveredAlert } from '../../src/domain/types';

/**
 * The desk's WebSocket (contract §9): `cordon.v1` plus the token as a second subprotocol.
 * Reconnects with backoff after anything but a final close (4500–4999), resubscribing from the
 * positions the caller holds, so that nothing is lost and nothing arrives twice.
 */

export type StreamStatus = 'connecting' | 'live' | 'reconnecting' | 'offline';

export interface SubscribedFrame {
  type: 'subscribed';
  region: string;
  epoch: string | null;
  seq: number;
  recovered: boolean;
}

export interface StreamHandlers {
  /** The positions to resume from, read at every (re)subscription. */
  positions(): Record<string, FromPosition | undefined>;
  onAlert(alert: DeliveredAlert): void;
  onGap(gap: GapFrame): void;
  onSubscribed(frame: SubscribedFrame): void;
  onStatus(status: StreamStatus): void;
  onServerError(code: string, message: string): void;
  /** A final close (4500–4999): the session is over. */
  onFinal(code: number, reason: string): void;
  /** Several attempts in a row failed: the caller may check whether the token still works. */
  onRepeatedFailure?(): void;
}

const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 30_000;

export function isFinalClose(code: number): boolean {
  return code >= 4500 && code <= 4999;
}

export class DeskStream {
  private ws: WebSocket | undefined;
  private regions: string[] = [];
  private attempt = 0;
  private timer: number | undefined;
  private stopped = false;
  private status: StreamStatus = 'connecting';

  constructor(
    private readonly token: string,
    private readonly h: StreamHandlers,
  ) {
    addEventListener('online', this.onOnline);
    addEventListener('offline', this.onOffline);
  }

  start(regions: string[]): void {
    this.regions = [...regions];
    this.connect();
  }

  private setStatus(s: StreamStatus): void {
    this.status = s;
    this.h.onStatus(s);
  }

  private readonly onOnline = (): void => {
    if (this.stopped) return;
    if (this.ws?.readyState === WebSocket.OPEN) {
      this.setStatus('live');
    } else {
      clearTimeout(this.timer);
      this.attempt = 0;
      this.connect();
    }
  };

  private readonly onOffline = (): void => {
    if (!this.stopped) this.setStatus('offline');
  };

  private connect(): void {
    if (this.stopped) return;
    if (!navigator.onLine) {
      this.setStatus('offline');
      return;
    }
    this.setStatus(this.attempt === 0 && this.status === 'connecting' ? 'connecting' : 'reconnecting');
    const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/v1/stream`;
    let ws: WebSocket;
    try {
      ws = new WebSocket(url, ['cordon.v1', `cordon.token.${this.token}`]);
    } catch {
      this.retry();
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      this.attempt = 0;
      this.setStatus('live');
      if (this.regions.length > 0) this.subscribe(this.regions);
    };
    ws.onmessage = (ev: MessageEvent) => this.onMessage(ev.data);
    ws.onclose = (ev: CloseEvent) => {
      if (this.ws !== ws) return;
      this.ws = undefined;
      if (this.stopped) return;
      if (isFinalClose(ev.code)) {
        this.stopped = true;
        this.h.onFinal(ev.code, ev.reason);
        return;
      }
      this.retry();
    };
  }

  private retry(): void {
    if (this.stopped) return;
    this.attempt++;
    if (this.attempt >= 3) this.h.onRepeatedFailure?.();
    if (this.stopped) return;
    this.setStatus(navigator.onLine ? 'reconnecting' : 'offline');
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** Math.min(this.attempt - 1, 10));
    const delay = base / 2 + Math.random() * (base / 2);
    this.timer = window.setTimeout(() => this.connect(), delay);
  }

  private onMessage(data: unknown): void {
    if (typeof data !== 'string') return;
    let f: { type?: string } & Record<string, unknown>;
    try {
      f = JSON.parse(data) as typeof f;
    } catch {
      return;
    }
    switch (f.type) {
      case 'alert': {
        const { type: _t, ...alert } = f;
        this.h.onAlert(alert as unknown as DeliveredAlert);
        break;
      }
      case 'gap':
        this.h.onGap(f as unknown as GapFrame);
        break;
      case 'subscribed':
        this.h.onSubscribed(f as unknown as SubscribedFrame);
        break;
      case 'error':
        this.h.onServerError(String(f.code), String(f.message));
        break;
      default:
        // A frame type this console does not know (a newer server): ignored.
        break;
    }
  }

  private send(frame: SubscribeFrame | UnsubscribeFrame | AckFrame): boolean {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  /** Subscribes (or resubscribes) regions from the caller's positions. */
  subscribe(regions: string[]): void {
    for (const r of regions) if (!this.regions.includes(r)) this.regions.push(r);
    const positions = this.h.positions();
    const from: Record<string, FromPosition> = {};
    for (const r of regions) {
      const p = positions[r];
      if (p) from[r] = p;
    }
    this.send({ type: 'subscribe', regions, ...(Object.keys(from).length > 0 ? { from } : {}) });
  }

  unsubscribe(regions: string[]): void {
    this.regions = this.regions.filter((r) => !regions.includes(r));
    this.send({ type: 'unsubscribe', regions });
  }

  ack(region: string, seq: number): boolean {
    return this.send({ type: 'ack', region, seq });
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    removeEventListener('online', this.onOnline);
    removeEventListener('offline', this.onOffline);
    const ws = this.ws;
    this.ws = undefined;
    ws?.close(1000, 'signed out');
  }
}
