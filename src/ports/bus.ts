/**
 * The bus: fan-out of delivered alerts to every node, and request/reply ingest for gateways that
 * speak NATS. Redis is the truth, the bus is the doorbell: a lost message is repaired by the hub
 * from the region log, so publish is fire-and-forget after the append.
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
  /** Receives every delivered alert of every region (one subscription per node, no queue group). */
  subscribeAlerts(onAlert: (deliveredJson: string) => void): Promise<BusSubscription>;
  /** Answers ingest requests on cordon.ingest.<region>; one node of the group answers each. */
  serveIngest(handler: IngestHandler): Promise<BusSubscription>;
  /** Sends an ingest request (used by the CLI and tests); the reply is `{...body, status}`. */
  requestIngest(region: string, payload: Uint8Array, timeoutMs: number): Promise<Record<string, unknown>>;
  ping(): Promise<void>;
  /** Drains pending work, then closes. */
  close(): Promise<void>;
}

export class BusUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BusUnavailableError';
  }
}
