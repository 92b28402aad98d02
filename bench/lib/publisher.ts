import { Agent, request } from 'node:http';

/**
 * Posts pre-signed alerts to a Cordon node over keep-alive HTTP, like a gateway. Each distinct
 * alert becomes exactly one seq in a fresh region, so "issued" maps one to one onto seqs and the
 * in-flight window can be measured against the seqs desks hold.
 */
export class HttpPublisher {
  private readonly agent: Agent;
  issued = 0;
  acked = 0;
  failures = 0;
  lastFailure = '';
  /** newest receipt seen (seq, epoch) */
  epoch = '';
  private idle: Array<() => void> = [];

  constructor(
    private readonly url: string,
    private readonly nextBody: () => string,
    maxSockets = 64,
  ) {
    this.agent = new Agent({ keepAlive: true, maxSockets });
  }

  /** Issues POSTs until `issued` reaches `upTo`. */
  publishUpTo(upTo: number): void {
    while (this.issued < upTo) {
      this.issued++;
      this.post(this.nextBody());
    }
  }

  private post(body: string): void {
    const req = request(
      `${this.url}/v1/alerts`,
      { method: 'POST', agent: this.agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          if (res.statusCode === 201 || res.statusCode === 200) {
            if (!this.epoch) this.epoch = (JSON.parse(Buffer.concat(chunks).toString()) as { epoch: string }).epoch;
          } else {
            this.failures++;
            this.lastFailure = `HTTP ${res.statusCode} ${Buffer.concat(chunks).toString().slice(0, 200)}`;
          }
          this.done();
        });
      },
    );
    req.on('error', (err) => {
      this.failures++;
      this.lastFailure = err.message;
      this.done();
    });
    req.end(body);
  }

  private done(): void {
    this.acked++;
    if (this.acked === this.issued) for (const f of this.idle.splice(0)) f();
  }

  /** Resolves when every issued POST has been answered. */
  settled(): Promise<void> {
    if (this.acked === this.issued) return Promise.resolve();
    return new Promise((res) => this.idle.push(res));
  }

  close(): void {
    this.agent.destroy();
  }
}
