/**
 * The bus: fan-out of delivered alerts to every node and to NATS-native consumers, and
 * request/reply ingest for gateways that speak NATS. The region log is the truth, the bus only the
 * doorbell (contract §10): a node takes from a bus message nothing but the fact that a region grew,
 * and delivers to desks only what it reads from the log. A lost message is repaired by the hub's
 * position check, so publish is fire-and-forget after the append.
 */
export interface IngestReply {
  status: number;
  body: Record<string, unknown>;
}

export type IngestHandler = (region: string, payload: Uint8Array) => Promise<IngestReply>;

export interface BusSubscription {
  unsubscribe(): Promise<void>;
}

export interface Bus {
  /** Publishes a delivered alert (JSON text) on cordon.alerts.<region>.<urgency>. */
  publish(region: string, urgency: string, deliveredJson: string): Promise<void>;
  /**
   * Receives every delivered alert of every region as published (one subscription, no queue
   * group): what a NATS-native consumer sees. Untrusted content: nodes never deliver it to desks.
   */
  subscribeAlerts(onAlert: (deliveredJson: string) => void): Promise<BusSubscription>;
  /**
   * The nodes' side of fan-out: one doorbell per message on any region's alert subject. The region
   * comes from the subject and is checked against the region-code form; the payload is looked at
   * only for a bounded seq hint and never parsed whole. Messages that do not fit are dropped.
   */
  subscribeDoorbell(onRing: (ring: Doorbell) => void): Promise<BusSubscription>;
  /** Answers ingest requests on cordon.ingest.<region>; one node of the group answers each. */
  serveIngest(handler: IngestHandler): Promise<BusSubscription>;
  /** Sends an ingest request (used by the CLI and tests); the reply is `{...body, status}`. */
  requestIngest(region: string, payload: Uint8Array, timeoutMs: number): Promise<Record<string, unknown>>;
  ping(): Promise<void>;
  /** Drains pending work, then closes. */
  close(): Promise<void>;
}

/** All a node takes from a bus message: a region grew, perhaps up to `seq` (a hint, never trusted). */
export interface Doorbell {
  region: string;
  seq: number | undefined;
}

const REGION_CODE = /^[A-Z]{2}-[A-Z]{2}-[0-9]{2}$/;
/** Only the first bytes of a payload are looked at: `{"region":"KG-CN-01","seq":123456789012345,` fits. */
const HINT_BYTES = 64;
const HINT = /^\{"region":"([A-Z]{2}-[A-Z]{2}-[0-9]{2})","seq":([1-9][0-9]{0,14}),/;

/**
 * The doorbell of one bus message on `region`'s subject, or undefined when the subject's region
 * token is not a region code. The seq hint is taken only from a payload that starts as a delivered
 * alert of the same region; anything else rings without a hint. A hint can at most make a node
 * read the log early or skip a read of what it already delivered: it never becomes content.
 */
export function doorbellOf(region: string, payload: Uint8Array | string): Doorbell | undefined {
  if (!REGION_CODE.test(region)) return undefined;
  const head =
    typeof payload === 'string'
      ? payload.slice(0, HINT_BYTES)
      : Buffer.from(payload.buffer, payload.byteOffset, Math.min(payload.byteLength, HINT_BYTES)).toString('latin1');
  const m = HINT.exec(head);
  return { region, seq: m && m[1] === region ? Number(m[2]) : undefined };
}

export class BusUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BusUnavailableError';
  }
}
