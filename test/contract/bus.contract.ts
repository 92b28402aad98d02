import { CordonError, problemBody } from '../../src/errors';
import { BusUnavailableError, type Bus, type Doorbell, type IngestHandler } from '../../src/ports/bus';
import { uniqueRegion } from '../helpers/env';

/**
 * One behaviour suite for every Bus backend (contract §10). Each test gets a fresh network (its
 * own subject prefix, or its own in-process network); every bus opened on it is one node.
 */
export interface BusTestNetwork {
  openNode(): Promise<Bus>;
  /**
   * A consumer that speaks the backend natively (a plain NATS subscription on
   * `<prefix>.<pattern>`); subjects are reported without the prefix. Only for backends with subjects.
   */
  subscribeNative?(pattern: string): Promise<NativeConsumer>;
  /** Closes every node still open and anything else the network opened. */
  close(): Promise<void>;
}

export interface NativeConsumer {
  readonly received: ReadonlyArray<{ subject: string; data: string }>;
  close(): Promise<void>;
}

export interface BusContractOptions {
  /** The backend has subjects that native consumers can subscribe to with wildcards. */
  nativeSubjects?: boolean;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function delivered(region: string, seq: number, urgency = 'flash'): string {
  return JSON.stringify({
    region,
    seq,
    epoch: 'e1',
    received_at: '2026-01-01T00:00:00.000Z',
    content: { region, urgency, title: `alert ${seq}` },
    sig: { protected: 'p', signature: 's' },
  });
}

function collect(): { items: string[]; onAlert: (json: string) => void } {
  const items: string[] = [];
  return { items, onAlert: (json) => void items.push(json) };
}

async function eventually(check: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function json(body: unknown): Uint8Array {
  return encoder.encode(JSON.stringify(body));
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

export function describeBusContract(name: string, createNetwork: () => BusTestNetwork, options: BusContractOptions = {}): void {
  describe(`Bus contract: ${name}`, () => {
    let net: BusTestNetwork;

    beforeEach(() => {
      net = createNetwork();
    });

    afterEach(async () => {
      await net.close();
    });

    describe('alerts', () => {
      test('a published alert reaches the subscriber of every node, text unchanged', async () => {
        const [a, b] = await Promise.all([net.openNode(), net.openNode()]);
        const onA = collect();
        const onB = collect();
        await a.subscribeAlerts(onA.onAlert);
        await b.subscribeAlerts(onB.onAlert);
        const region = uniqueRegion();
        const text = delivered(region, 1);

        await a.publish(region, 'flash', text);

        await eventually(() => onA.items.length === 1 && onB.items.length === 1, 5000, 'both nodes');
        expect(onA.items).toEqual([text]);
        expect(onB.items).toEqual([text]);
      });

      test('1,000 alerts of one region arrive at two nodes in publish order, none lost', async () => {
        const [a, b] = await Promise.all([net.openNode(), net.openNode()]);
        const onA = collect();
        const onB = collect();
        await a.subscribeAlerts(onA.onAlert);
        await b.subscribeAlerts(onB.onAlert);
        const region = uniqueRegion();
        const sent = Array.from({ length: 1000 }, (_, i) => delivered(region, i + 1, i % 3 === 0 ? 'flash' : 'routine'));

        for (const text of sent) await a.publish(region, JSON.parse(text).content.urgency, text);

        await eventually(() => onA.items.length >= 1000 && onB.items.length >= 1000, 10_000, '1,000 alerts');
        await sleep(50); // nothing extra may follow
        expect(onA.items).toEqual(sent);
        expect(onB.items).toEqual(sent);
      });

      test('one subscription receives alerts of every region and urgency', async () => {
        const a = await net.openNode();
        const on = collect();
        await a.subscribeAlerts(on.onAlert);
        const r1 = uniqueRegion('KZ', 'KG');
        const r2 = uniqueRegion('UZ', 'TJ');
        const sent = [delivered(r1, 1, 'flash'), delivered(r2, 1, 'routine'), delivered(r1, 2, 'urgent')];

        await a.publish(r1, 'flash', sent[0]);
        await a.publish(r2, 'routine', sent[1]);
        await a.publish(r1, 'urgent', sent[2]);

        await eventually(() => on.items.length === 3);
        expect(on.items).toEqual(sent);
      });

      test('delivery is asynchronous: the subscriber is not called inside publish', async () => {
        const a = await net.openNode();
        const on = collect();
        await a.subscribeAlerts(on.onAlert);
        const region = uniqueRegion();

        const p = a.publish(region, 'flash', delivered(region, 1));
        expect(on.items).toHaveLength(0);
        await p;

        await eventually(() => on.items.length === 1);
      });

      test('after unsubscribe that subscription gets nothing while others still do', async () => {
        const a = await net.openNode();
        const gone = collect();
        const kept = collect();
        const sub = await a.subscribeAlerts(gone.onAlert);
        await a.subscribeAlerts(kept.onAlert);
        const region = uniqueRegion();

        await sub.unsubscribe();
        await sub.unsubscribe(); // idempotent
        await a.publish(region, 'flash', delivered(region, 1));

        await eventually(() => kept.items.length === 1);
        await sleep(50);
        expect(gone.items).toHaveLength(0);
      });

      test('a subscriber that throws does not stop later alerts or other subscribers', async () => {
        const a = await net.openNode();
        const other = collect();
        const seen: string[] = [];
        await a.subscribeAlerts((text) => {
          seen.push(text);
          if (seen.length === 1) throw new Error('subscriber bug');
        });
        await a.subscribeAlerts(other.onAlert);
        const region = uniqueRegion();

        await a.publish(region, 'flash', delivered(region, 1));
        await a.publish(region, 'flash', delivered(region, 2));

        await eventually(() => seen.length === 2 && other.items.length === 2);
        expect(seen).toEqual([delivered(region, 1), delivered(region, 2)]);
      });

      (options.nativeSubjects ? test : test.skip)(
        'a native consumer of alerts.<region>.> sees the alert on alerts.<region>.<urgency> and no other region',
        async () => {
          const a = await net.openNode();
          const region = uniqueRegion('KG', 'CN');
          const other = uniqueRegion('KZ', 'CN');
          const byRegion = await net.subscribeNative!(`alerts.${region}.>`);
          const flashOnly = await net.subscribeNative!('alerts.*.flash');
          const text = delivered(region, 7, 'urgent');

          await a.publish(other, 'flash', delivered(other, 1, 'flash'));
          await a.publish(region, 'urgent', text);

          await eventually(() => byRegion.received.length === 1 && flashOnly.received.length === 1);
          await sleep(50);
          expect(byRegion.received).toEqual([{ subject: `alerts.${region}.urgent`, data: text }]);
          expect(flashOnly.received).toEqual([{ subject: `alerts.${other}.flash`, data: delivered(other, 1, 'flash') }]);
        },
      );
    });

    describe('doorbell', () => {
      test('each message rings with the region of its subject and the seq its payload starts with', async () => {
        const [a, b] = await Promise.all([net.openNode(), net.openNode()]);
        const rings: Doorbell[] = [];
        await b.subscribeDoorbell((r) => void rings.push(r));
        const region = uniqueRegion();
        for (let seq = 1; seq <= 3; seq++) await a.publish(region, 'flash', delivered(region, seq));
        await eventually(() => rings.length === 3, 5000, 'three doorbells');
        expect(rings).toEqual([1, 2, 3].map((seq) => ({ region, seq })));
      });

      test('a payload of another region, or not a delivered alert, rings its subject region without a hint', async () => {
        const a = await net.openNode();
        const rings: Doorbell[] = [];
        await a.subscribeDoorbell((r) => void rings.push(r));
        const region = uniqueRegion();
        const other = uniqueRegion('KZ', 'KG');
        await a.publish(region, 'flash', delivered(other, 7));
        await a.publish(region, 'flash', '{"seq":8,"region":"' + region + '"}');
        await a.publish(region, 'flash', 'x'.repeat(100_000));
        await eventually(() => rings.length === 3, 5000, 'three doorbells');
        expect(rings).toEqual([0, 1, 2].map(() => ({ region, seq: undefined })));
      });

      test('a subject whose region token is not a region code rings nothing', async () => {
        const a = await net.openNode();
        const rings: Doorbell[] = [];
        await a.subscribeDoorbell((r) => void rings.push(r));
        const region = uniqueRegion();
        await a.publish('not-a-region', 'flash', delivered(region, 1));
        await a.publish(region, 'flash', delivered(region, 2));
        await eventually(() => rings.length >= 1, 5000, 'the doorbell of the real region');
        await sleep(50);
        expect(rings).toEqual([{ region, seq: 2 }]);
      });
    });

    describe('ingest', () => {
      test('a request reaches the handler with its region and exact bytes; the reply folds in the status', async () => {
        const [server, client] = await Promise.all([net.openNode(), net.openNode()]);
        const region = uniqueRegion();
        const payload = new Uint8Array([0x7b, 0x7d, 0x00, 0xff, 0xc3, 0xa9]);
        const calls: Array<{ region: string; payload: Uint8Array }> = [];
        await server.serveIngest(async (r, p) => {
          calls.push({ region: r, payload: Uint8Array.from(p) });
          return { status: 201, body: { id: 'alert--1', seq: 3, region: r } };
        });

        const reply = await client.requestIngest(region, payload, 2000);

        expect(reply).toEqual({ id: 'alert--1', seq: 3, region, status: 201 });
        expect(calls).toHaveLength(1);
        expect(calls[0].region).toBe(region);
        expect(Buffer.from(calls[0].payload).equals(Buffer.from(payload))).toBe(true);
      });

      test('the reply status overrides a status inside the body (problem bodies)', async () => {
        const node = await net.openNode();
        await node.serveIngest(async () => ({ status: 409, body: { ...problemBody('VERSION_STALE'), status: 999 } }));

        const reply = await node.requestIngest(uniqueRegion(), json({}), 2000);

        expect(reply.status).toBe(409);
        expect(reply.code).toBe('VERSION_STALE');
      });

      test('handlers run concurrently: a slow request does not hold up the next', async () => {
        const node = await net.openNode();
        let release!: () => void;
        const gate = new Promise<void>((r) => (release = r));
        const handler: IngestHandler = async (_region, payload) => {
          const { n } = JSON.parse(decoder.decode(payload)) as { n: number };
          if (n === 1)
            await gate; // waits for request 2, which can only arrive if 1 does not block it
          else release();
          return { status: 201, body: { n } };
        };
        await node.serveIngest(handler);
        const region = uniqueRegion();

        const replies = await Promise.all([node.requestIngest(region, json({ n: 1 }), 3000), node.requestIngest(region, json({ n: 2 }), 3000)]);

        expect(replies).toEqual([
          { n: 1, status: 201 },
          { n: 2, status: 201 },
        ]);
      });

      test('with two serving nodes each request is answered exactly once, and both nodes answer', async () => {
        const [a, b, client] = await Promise.all([net.openNode(), net.openNode(), net.openNode()]);
        const handled = { a: [] as number[], b: [] as number[] };
        const serve =
          (who: 'a' | 'b'): IngestHandler =>
          async (_region, payload) => {
            const { n } = JSON.parse(decoder.decode(payload)) as { n: number };
            handled[who].push(n);
            return { status: 201, body: { n, by: who } };
          };
        await a.serveIngest(serve('a'));
        await b.serveIngest(serve('b'));
        const region = uniqueRegion();

        const replies = await Promise.all(Array.from({ length: 100 }, (_, n) => client.requestIngest(region, json({ n }), 5000)));

        expect(replies.map((r) => r.n)).toEqual(Array.from({ length: 100 }, (_, n) => n));
        const all = [...handled.a, ...handled.b].sort((x, y) => x - y);
        expect(all).toEqual(Array.from({ length: 100 }, (_, n) => n));
        expect(handled.a.length).toBeGreaterThan(0);
        expect(handled.b.length).toBeGreaterThan(0);
      });

      test('a handler that rejects still answers: 500 INTERNAL without the internal message', async () => {
        const node = await net.openNode();
        await node.serveIngest(async () => {
          throw new Error('redis password is hunter2');
        });

        const reply = await node.requestIngest(uniqueRegion(), json({}), 2000);

        expect(reply.status).toBe(500);
        expect(reply.code).toBe('INTERNAL');
        expect(JSON.stringify(reply)).not.toContain('hunter2');
      });

      test('a handler that throws synchronously still answers 500 INTERNAL', async () => {
        const node = await net.openNode();
        await node.serveIngest((): never => {
          throw new TypeError('secret internals');
        });

        const reply = await node.requestIngest(uniqueRegion(), json({}), 2000);

        expect(reply).toMatchObject({ status: 500, code: 'INTERNAL' });
        expect(JSON.stringify(reply)).not.toContain('secret');
      });

      test('a handler that throws a CordonError answers with that error', async () => {
        const node = await net.openNode();
        await node.serveIngest(async () => {
          throw new CordonError('SHUTTING_DOWN');
        });

        const reply = await node.requestIngest(uniqueRegion(), json({}), 2000);

        expect(reply).toMatchObject({ status: 503, code: 'SHUTTING_DOWN' });
      });

      test('a request without any responder rejects with BusUnavailableError', async () => {
        const node = await net.openNode();

        const err = await rejection(node.requestIngest(uniqueRegion(), json({}), 2000));

        expect(err).toBeInstanceOf(BusUnavailableError);
        expect((err as Error).message).toBe('no responders');
      });

      test('after the only responder unsubscribes, requests reject with no responders', async () => {
        const node = await net.openNode();
        const sub = await node.serveIngest(async () => ({ status: 201, body: {} }));
        const region = uniqueRegion();
        await expect(node.requestIngest(region, json({}), 2000)).resolves.toEqual({ status: 201 });

        await sub.unsubscribe();

        const err = await rejection(node.requestIngest(region, json({}), 2000));
        expect(err).toBeInstanceOf(BusUnavailableError);
        expect((err as Error).message).toBe('no responders');
      });

      test('a request whose handler is slower than the timeout rejects with BusUnavailableError', async () => {
        const node = await net.openNode();
        await node.serveIngest(async () => {
          await sleep(300);
          return { status: 201, body: {} };
        });

        const err = await rejection(node.requestIngest(uniqueRegion(), json({}), 50));

        expect(err).toBeInstanceOf(BusUnavailableError);
        expect((err as Error).message).toBe('request timed out');
      });
    });

    describe('ping and close', () => {
      test('ping resolves on an open bus', async () => {
        const node = await net.openNode();
        await expect(node.ping()).resolves.toBeUndefined();
      });

      test('close is idempotent; afterwards every operation rejects with BusUnavailableError', async () => {
        const node = await net.openNode();
        const sub = await node.subscribeAlerts(() => undefined);
        const region = uniqueRegion();

        await Promise.all([node.close(), node.close()]);
        await node.close();
        await sub.unsubscribe(); // after close: a no-op, not an error

        for (const op of [
          () => node.ping(),
          () => node.publish(region, 'flash', delivered(region, 1)),
          () => node.requestIngest(region, json({}), 500),
          () => node.subscribeAlerts(() => undefined),
          () => node.serveIngest(async () => ({ status: 201, body: {} })),
        ]) {
          expect(await rejection(op())).toBeInstanceOf(BusUnavailableError);
        }
      });

      test('close drains: alerts published just before it reach the other node and its own subscriber', async () => {
        const [a, b] = await Promise.all([net.openNode(), net.openNode()]);
        const onA = collect();
        const onB = collect();
        await a.subscribeAlerts(onA.onAlert);
        await b.subscribeAlerts(onB.onAlert);
        const region = uniqueRegion();
        const sent = Array.from({ length: 200 }, (_, i) => delivered(region, i + 1));

        for (const text of sent) await a.publish(region, 'flash', text);
        await a.close();

        expect(onA.items).toEqual(sent);
        await eventually(() => onB.items.length >= 200);
        expect(onB.items).toEqual(sent);
      });

      test('close waits for ingest requests in flight to be answered', async () => {
        const [server, client] = await Promise.all([net.openNode(), net.openNode()]);
        let started!: () => void;
        const running = new Promise<void>((r) => (started = r));
        await server.serveIngest(async () => {
          started();
          await sleep(200);
          return { status: 201, body: { done: true } };
        });

        const request = client.requestIngest(uniqueRegion(), json({}), 3000);
        await running;
        const closing = server.close();

        await expect(request).resolves.toEqual({ done: true, status: 201 });
        await closing;
      });
    });
  });
}
