import pino from 'pino';
import { MemoryBus, MemoryBusNetwork } from '../../src/adapters/memory/bus';
import type { Bus } from '../../src/ports/bus';
import { describeBusContract, type BusTestNetwork } from './bus.contract';

const log = pino({ level: 'silent' });

function memoryNetwork(): BusTestNetwork {
  const network = new MemoryBusNetwork();
  const nodes: Bus[] = [];
  return {
    async openNode() {
      const bus = new MemoryBus({ log, network });
      nodes.push(bus);
      return bus;
    },
    async close() {
      await Promise.all(nodes.map((n) => n.close()));
    },
  };
}

describeBusContract('memory', memoryNetwork);

describe('MemoryBus', () => {
  test('buses on separate networks do not see each other', async () => {
    const a = new MemoryBus({ log });
    const b = new MemoryBus({ log });
    const seen: string[] = [];
    await b.subscribeAlerts((text) => void seen.push(text));
    await b.serveIngest(async () => ({ status: 201, body: {} }));

    await a.publish('KG-CN-01', 'flash', '{"seq":1}');
    await expect(a.requestIngest('KG-CN-01', new Uint8Array(), 500)).rejects.toThrow('no responders');
    await new Promise((r) => setTimeout(r, 20));

    expect(seen).toEqual([]);
    await Promise.all([a.close(), b.close()]);
  });

  test('an alert published by a subscriber during delivery comes after those already published', async () => {
    const bus = new MemoryBus({ log });
    const seen: string[] = [];
    await bus.subscribeAlerts((text) => {
      seen.push(text);
      if (text === '1') void bus.publish('KG-CN-01', 'flash', '3');
    });

    const published = [bus.publish('KG-CN-01', 'flash', '1'), bus.publish('KG-CN-01', 'flash', '2')];
    await Promise.all(published);
    await bus.close();

    expect(seen).toEqual(['1', '2', '3']);
  });
});
