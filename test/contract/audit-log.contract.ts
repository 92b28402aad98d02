import type { AuditLog } from '../../src/ports/audit-log';

export interface AuditLogFixture {
  log: AuditLog;
  cleanup(): Promise<void>;
}

const ISO_MS_Z = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/** One behaviour suite for every AuditLog adapter. */
export function describeAuditLogContract(name: string, factory: () => Promise<AuditLogFixture>): void {
  describe(`AuditLog contract: ${name}`, () => {
    let fx: AuditLogFixture;
    let log: AuditLog;

    beforeEach(async () => {
      fx = await factory();
      log = fx.log;
    });

    afterEach(async () => {
      await fx.cleanup();
    });

    it('reads an empty trail as no items and next null', async () => {
      expect(await log.read(0, 10)).toEqual({ items: [], next: null });
    });

    it('numbers records from 1 upwards by one and stamps them with at (RFC 3339 ms Z)', async () => {
      const before = Date.now();
      const recs = [];
      for (let i = 0; i < 5; i++) recs.push(await log.append({ kind: 'ack', actor: 'KG/desk-1', region: 'KG-CN-01', seq: i }));
      expect(recs.map((r) => r.n)).toEqual([1, 2, 3, 4, 5]);
      for (const r of recs) {
        expect(r.at).toMatch(ISO_MS_Z);
        expect(Math.abs(Date.parse(r.at) - before)).toBeLessThan(5000);
      }
      for (let i = 1; i < recs.length; i++) expect(recs[i].at >= recs[i - 1].at).toBe(true);
      expect(recs[2]).toEqual({ n: 3, at: recs[2].at, kind: 'ack', actor: 'KG/desk-1', region: 'KG-CN-01', seq: 2 });
      expect(Object.keys(recs[2]).slice(0, 4)).toEqual(['n', 'at', 'kind', 'actor']);
    });

    it('reads records oldest first exactly as appended, including nested fields', async () => {
      const a = await log.append({ kind: 'published', actor: 'KG:kid1', id: 'alert--x', seq: 1, region: 'KG-CN-01' });
      const b = await log.append({ kind: 'replayed', actor: 'KZ/ops-7', purpose: 'case 42 — ünïcode 🚚', range: { from: 1, to: 9 } });
      const c = await log.append({ kind: 'security', actor: 'KG:kid1', code: 'VERSION_EQUIVOCATION' });
      expect((await log.read(0, 10)).items).toEqual([a, b, c]);
    });

    it('pages with after/limit and gives next, null at the top', async () => {
      for (let i = 0; i < 7; i++) await log.append({ kind: 'rejected', actor: 'KG:kid1', i });
      const p1 = await log.read(0, 3);
      expect(p1.items.map((r) => r.n)).toEqual([1, 2, 3]);
      expect(p1.next).toBe(3);
      const p2 = await log.read(p1.next!, 3);
      expect(p2.items.map((r) => r.n)).toEqual([4, 5, 6]);
      expect(p2.next).toBe(6);
      const p3 = await log.read(p2.next!, 3);
      expect(p3.items.map((r) => r.n)).toEqual([7]);
      expect(p3.next).toBeNull();
      // a page that ends exactly at the top also says null
      expect((await log.read(4, 3)).next).toBeNull();
      expect(await log.read(7, 3)).toEqual({ items: [], next: null });
      expect((await log.read(0, 100)).items).toHaveLength(7);
    });

    it('gives concurrent appends distinct consecutive n', async () => {
      const recs = await Promise.all(Array.from({ length: 100 }, (_, i) => log.append({ kind: 'ack', actor: `desk-${i}` })));
      expect(recs.map((r) => r.n).sort((x, y) => x - y)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
      const held = (await log.read(0, 1000)).items;
      expect(held.map((r) => r.n)).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
      for (const r of held) expect(recs.find((x) => x.n === r.n)).toEqual(r);
    });

    it('keeps the order of appends made in one turn, across more records than one batch holds', async () => {
      const recs = await Promise.all(Array.from({ length: 600 }, (_, i) => log.append({ kind: 'published', actor: 'KG/k', i })));
      // Called in order i = 0..599, so numbered in that order.
      expect(recs.map((r) => r.n)).toEqual(Array.from({ length: 600 }, (_, i) => i + 1));
      expect((await log.read(0, 1000)).items.map((r) => r.i)).toEqual(Array.from({ length: 600 }, (_, i) => i));
    });

    it('does not let an input field override n or at', async () => {
      const r = await log.append({ kind: 'ack', actor: 'x', n: 999, at: 'bogus' });
      expect(r.n).toBe(1);
      expect(r.at).toMatch(ISO_MS_Z);
      expect((await log.read(0, 1)).items[0]).toEqual(r);
    });

    it('answers ping', async () => {
      await expect(log.ping()).resolves.toBeUndefined();
    });
  });
}
