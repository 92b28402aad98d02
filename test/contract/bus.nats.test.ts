import net from 'node:net';
import type { NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import pino from 'pino';
import { NatsBus } from '../../src/adapters/nats/bus';
import { BusUnavailableError, type Bus } from '../../src/ports/bus';
import { TEST_NATS_URL, uniqueRegion, uniqueSubjectPrefix } from '../helpers/env';
import { startProxy } from '../helpers/tcp-proxy';
import { describeBusContract, type BusTestNetwork, type NativeConsumer } from './bus.contract';

const silent = pino({ level: 'silent' });
const decoder = new TextDecoder();
const encoder = new TextEncoder();

function natsNetwork(): BusTestNetwork {
  const prefix = uniqueSubjectPrefix();
  const nodes: Bus[] = [];
  const raw: NatsConnection[] = [];
  return {
    async openNode() {
      const bus = await NatsBus.connect({ servers: TEST_NATS_URL, subjectPrefix: prefix, log: silent });
      nodes.push(bus);
      return bus;
    },
    async subscribeNative(pattern: string): Promise<NativeConsumer> {
      const nc: NatsConnection = await connect({ servers: TEST_NATS_URL });
      raw.push(nc);
      const received: Array<{ subject: string; data: string }> = [];
      nc.subscribe(`${prefix}.${pattern}`, {
        callback: (err, msg) => {
          if (!err) received.push({ subject: msg.subject.slice(prefix.length + 1), data: decoder.decode(msg.data) });
        },
      });
      await nc.flush();
      return { received, close: () => nc.close() };
    },
    async close() {
      await Promise.all([...nodes.map((n) => n.close()), ...raw.map((nc) => nc.close())]);
    },
  };
}

describeBusContract('nats', natsNetwork, { nativeSubjects: true });

async function eventually(check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('NatsBus', () => {
  test('connecting to an unreachable server rejects with BusUnavailableError', async () => {
    const closed = net.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const { port } = closed.address() as net.AddressInfo;
    await new Promise<void>((r) => closed.close(() => r()));

    await expect(NatsBus.connect({ servers: `127.0.0.1:${port}`, log: silent })).rejects.toBeInstanceOf(BusUnavailableError);
  });

  test('a plain NATS gateway gets the JSON reply with the status from cordon.ingest.<region>', async () => {
    const prefix = uniqueSubjectPrefix();
    const bus = await NatsBus.connect({ servers: TEST_NATS_URL, subjectPrefix: prefix, log: silent });
    const gateway: NatsConnection = await connect({ servers: TEST_NATS_URL });
    try {
      const region = uniqueRegion();
      await bus.serveIngest(async (r) => ({ status: 201, body: { region: r, seq: 1 } }));

      const msg = await gateway.request(`${prefix}.ingest.${region}`, encoder.encode('{}'), { timeout: 2000 });

      expect(JSON.parse(decoder.decode(msg.data))).toEqual({ region, seq: 1, status: 201 });
    } finally {
      await gateway.close();
      await bus.close();
    }
  });

  test('while disconnected ping rejects and the loss is logged; after reconnect alerts flow again', async () => {
    const proxy = await startProxy(TEST_NATS_URL);
    const lines: string[] = [];
    const log = pino({ level: 'info' }, { write: (line: string) => void lines.push(line) });
    const prefix = uniqueSubjectPrefix();
    const viaProxy = await NatsBus.connect({
      servers: proxy.url,
      subjectPrefix: prefix,
      log,
      reconnectTimeWaitMs: 100,
    });
    const direct = await NatsBus.connect({ servers: TEST_NATS_URL, subjectPrefix: prefix, log: silent });
    try {
      const seen: string[] = [];
      await viaProxy.subscribeAlerts((text) => void seen.push(text));
      const region = uniqueRegion();

      await proxy.pause();
      await eventually(() => lines.some((l) => l.includes('"msg":"bus disconnected"')));
      const err = await viaProxy.ping().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(BusUnavailableError);

      await proxy.resume();
      await eventually(() =>
        viaProxy.ping().then(
          () => true,
          () => false,
        ),
      );
      expect(lines.some((l) => l.includes('"msg":"bus reconnected"'))).toBe(true);
      await direct.publish(region, 'flash', '{"seq":1}');
      await eventually(() => seen.length === 1);
      expect(seen).toEqual(['{"seq":1}']);
    } finally {
      await Promise.all([viaProxy.close(), direct.close()]);
      await proxy.close();
    }
  });
});
