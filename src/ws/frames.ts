import { CordonError, type ErrorCode } from '../errors';
import { parseJson } from '../domain/json';
import { fieldErrors, validator } from '../domain/schemas';
import type * as S from '../types/generated/schemas';

/**
 * WebSocket frames (contract §9). Client frames are parsed with the hostile-input JSON rules and
 * validated against schemas/ws-client-frame.json; server frames are built as text here, and the
 * alert frame is built once per alert around the delivered-alert JSON, never re-serialised.
 */

/** Client and server frames as schemas/ws-client-frame.json and ws-server-frame.json define them. */
export type FromPosition = S.WsClientFramePosition;
export type AlertFilter = NonNullable<S.WsClientFrameSubscribe['filter']>;
export type SubscribeFrame = S.WsClientFrameSubscribe;
export type UnsubscribeFrame = S.WsClientFrameUnsubscribe;
export type AckFrame = S.WsClientFrameAck;
export type ClientFrame = S.WsClientFrame;

export type ServerFrame = S.WsServerFrame;
export type SubscribedFrame = S.WsServerFrameSubscribed;
export type AlertFrame = S.WsServerFrameAlert;
export type ErrorFrame = S.WsServerFrameError;
export type GapReason = S.WsServerFrameGap['reason'];

/** A gap as the hub reports it; `epoch` is the region's current one, null when its log is empty (lost and not yet written again). */
export type GapFrame = Omit<S.WsServerFrameGap, 'type'>;

/** Client frames nest shallowly; anything deeper is hostile. */
const CLIENT_JSON_DEPTH = 8;

/**
 * Parses one client frame. Throws CordonError STREAM_FRAME_MALFORMED (not a JSON object) or
 * STREAM_FRAME_INVALID (schema violation: unknown type, missing or extra fields, bad values).
 * Size is bounded before this (ws maxPayload).
 */
export function parseClientFrame(data: Buffer | string, maxBytes: number): ClientFrame {
  let value: unknown;
  try {
    value = parseJson(data, { maxBytes, maxDepth: CLIENT_JSON_DEPTH });
  } catch (err) {
    const detail = err instanceof CordonError ? err.message : 'frame is not JSON';
    throw new CordonError('STREAM_FRAME_MALFORMED', `frame is not acceptable JSON: ${detail}`, { cause: err });
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new CordonError('STREAM_FRAME_MALFORMED', 'frame must be a JSON object');
  }
  const validate = validator('ws-client-frame');
  if (!validate(value)) {
    // `if` errors only repeat that a `then` branch failed; the branch's own errors say why.
    const errors = fieldErrors((validate.errors ?? []).filter((e) => e.keyword !== 'if'));
    const detail = errors.map((e) => `${e.path} ${e.message}`).join('; ');
    throw new CordonError('STREAM_FRAME_INVALID', `invalid frame: ${detail}`, { errors });
  }
  const frame = value as ClientFrame;
  if (frame.type === 'subscribe' && frame.from) {
    for (const region of Object.keys(frame.from)) {
      if (!frame.regions.includes(region)) {
        throw new CordonError('STREAM_FRAME_INVALID', `invalid frame: /from/${region} names a region not in /regions`);
      }
    }
  }
  return frame;
}

/**
 * A complete server-to-client WebSocket text frame (RFC 6455 §5.2: FIN + opcode 1, unmasked, then
 * the 7-, 16- or 64-bit payload length): the same bytes `ws` would write for `send(payload)`.
 * Built once per alert and written as is to every desk's socket, so fan-out neither frames nor
 * converts the payload per desk.
 */
export function wsTextFrame(payload: string | Buffer): Buffer {
  const len = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length;
  const head = len < 126 ? 2 : len < 65536 ? 4 : 10;
  // Not from the shared pool: alert frames live on in the hub's ring and must not pin its slabs.
  const out = Buffer.allocUnsafeSlow(head + len);
  out[0] = 0x81;
  if (len < 126) {
    out[1] = len;
  } else if (len < 65536) {
    out[1] = 126;
    out.writeUInt16BE(len, 2);
  } else {
    out[1] = 127;
    out.writeUInt32BE(Math.floor(len / 2 ** 32), 2);
    out.writeUInt32BE(len >>> 0, 6);
  }
  if (typeof payload === 'string') out.write(payload, head, 'utf8');
  else payload.copy(out, head);
  return out;
}

/** The alert frame: `{"type":"alert",` + the delivered alert's members, built once per alert. */
export function alertFrame(deliveredJson: string): string {
  return '{"type":"alert",' + deliveredJson.slice(1);
}

export function subscribedFrame(region: string, epoch: string | null, seq: number, recovered: boolean): string {
  return JSON.stringify({ type: 'subscribed', region, epoch, seq, recovered });
}

export function gapFrame(gap: GapFrame): string {
  return JSON.stringify({ type: 'gap', region: gap.region, from: gap.from, to: gap.to, reason: gap.reason, epoch: gap.epoch });
}

export function errorFrame(code: ErrorCode, message: string): string {
  return JSON.stringify({ type: 'error', code, message });
}

/**
 * WebSocket close codes (contract §9): 4000-4499 mean reconnect and resume, 4500-4999 are final.
 * docs/protocol.md documents each.
 */
export const CLOSE = {
  /** This node is shutting down: resume on another. */
  SHUTTING_DOWN: 4001,
  /** The desk did not read fast enough; its queue was full. Resume from the last seq held. */
  TOO_SLOW: 4002,
  /** This node cannot reach the region log: resume on another node. */
  LOG_UNREACHABLE: 4003,
  /** A frame over the size bound, or frames faster than the rate bound. */
  PROTOCOL_VIOLATION: 4500,
  /** The token expired during the session. */
  UNAUTHORISED: 4501,
  /** Reserved: forbidden (this version rejects forbidden callers before the upgrade, with HTTP 403). */
  FORBIDDEN: 4503,
} as const;
