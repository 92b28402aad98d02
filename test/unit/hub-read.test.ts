import pino from 'pino';
import { Registry } from 'prom-client';
import { MemoryRegionLog } from '../../src/adapters/memory/region-log';
import type { ReadResult } from '../../src/ports/region-log';
import { createStreamMetrics, Hub, type Delivery, type FeedListener } from '../../src/ws/hub';

const R = 'KG-CN-01';

/** The memory log, counting the reads that reach it. */
class CountingLog extends MemoryRegionLog {
  reads = 0;
  override read(region: string, after: number, limit: number): Promise<ReadResult> {
    this.reads++;
    return super.read(region, after, limit);
  }
}

async function setup(alerts: number): Promise<{ log: CountingLog; hub: Hub }> {
  const log = new CountingLog();
  for (let i = 1; i <= alerts; i++) {
    const id = `alert-${i}`;
    const content = {
      id,
      modified: '2026-03-01T10:00:00.000Z',
      region: R,
      urgency: 'immediate',
      category: 'weather',
      issuer: { state: 'KG' },
      audience: { states: ['KG'], min_clearance: 'public' },
    };
    await log.append({
      region: R,
      id,
      created: content.modified,
      modified: content.modified,
      issuerState: 'KG',
      revoked: false,
      contentHash: `hash-${i}`,
      body: JSON.stringify({ content, sig: { protected: 'p', signature: 's' } }),
    });
  }
  const hub = new Hub({ regionLog: log, log: pino({ level: 'silent' }), metrics: createStreamMetrics(new Registry()), batch: 100, positionCheckMs: 60_000 });
  return { log, hub };
}

const listener = (): FeedListener => ({ region: R, offer: (_d: Delivery) => undefined, resync: () => undefined, logLost: () => undefined });

describe('Hub.readPage', () => {
  test('recoveries asking for the same page while it is read share one read and the same deliveries', async () => {
    const { log, hub } = await setup(5);
    const a = hub.watch(listener());
    const b = hub.watch(listener());
    const [pa, pb] = await Promise.all([hub.readPage(R, 0, 10, a), hub.readPage(R, 0, 10, b)]);
    expect(log.reads).toBe(1);
    expect(pa).toBe(pb);
    expect(pa.page.map((d) => d.seq)).toEqual([1, 2, 3, 4, 5]);
  });

  test('a read issued before a watch is not shared with it (it could miss what the hub delivered just before)', async () => {
    const { log, hub } = await setup(3);
    const early = hub.watch(listener());
    const first = hub.readPage(R, 0, 10, early);
    const late = hub.watch(listener());
    const second = hub.readPage(R, 0, 10, late);
    await Promise.all([first, second]);
    expect(log.reads).toBe(2);
  });

  test('a later read of the same history reuses the deliveries the hub built (one parse per node)', async () => {
    const { log, hub } = await setup(3);
    const mark = hub.watch(listener());
    const one = await hub.readPage(R, 0, 10, mark);
    const two = await hub.readPage(R, 0, 10, hub.watch(listener()));
    expect(log.reads).toBe(2);
    expect(two.page).not.toBe(one.page);
    two.page.forEach((d, i) => expect(d).toBe(one.page[i]));
  });
});
