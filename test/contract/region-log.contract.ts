import { randomUUID } from 'node:crypto';
import { deliveredJson, type AppendInput, type AppendOutcome, type LogEntry, type RegionLog } from '../../src/ports/region-log';
import { uniqueRegion } from '../helpers/env';
import { scanAll, type ScannedEntry } from '../helpers/raw-scan';

export interface RegionLogFixture {
  log: RegionLog;
  /** a second, independent adapter instance over the same backend (its own connection). */
  peer: RegionLog;
  cleanup(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const T0 = Date.parse('2026-03-01T10:00:00.000Z');
const ts = (offsetMs: number) => new Date(T0 + offsetMs).toISOString();

let counter = 0;

/** An append input for a first version unless overridden; `body` embeds the id so entries are told apart. */
export function alertInput(region: string, over: Partial<AppendInput> = {}): AppendInput {
  const id = over.id ?? `alert--${randomUUID()}`;
  const created = over.created ?? ts(0);
  const modified = over.modified ?? created;
  const n = ++counter;
  return {
    region,
    id,
    created,
    modified,
    issuerState: 'KG',
    revoked: false,
    contentHash: `hash-${id}-${modified}`,
    body: `{"content":{"id":"${id}","modified":"${modified}","n":${n}},"sig":{"protected":"p","signature":"s"}}`,
    ...over,
  };
}

function appended(o: AppendOutcome): Extract<AppendOutcome, { outcome: 'appended' }> {
  if (o.outcome !== 'appended') throw new Error(`expected appended, got ${JSON.stringify(o)}`);
  return o;
}

const ISO_MS_Z = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/** One behaviour suite for every RegionLog adapter (contract §6). */
export function describeRegionLogContract(name: string, factory: () => Promise<RegionLogFixture>): void {
  describe(`RegionLog contract: ${name}`, () => {
    let fx: RegionLogFixture;
    let log: RegionLog;
    let region: string;

    beforeEach(async () => {
      fx = await factory();
      log = fx.log;
      region = uniqueRegion();
    });

    afterEach(async () => {
      await fx.cleanup();
    });

    async function appendMany(n: number, r = region): Promise<LogEntry[]> {
      const out: LogEntry[] = [];
      for (let i = 0; i < n; i++) out.push(appended(await log.append(alertInput(r))).entry);
      return out;
    }

    it('rotates the epoch by compare-and-set: entries kept under the new epoch, seq goes on, a stale expectation changes nothing', async () => {
      const [first] = await appendMany(3);
      const rotated = await log.rotateEpoch(region, first.epoch);
      expect(rotated).toMatchObject({ region, latest: 3, earliest: 1 });
      expect(rotated.epoch).not.toBe(first.epoch);
      // A second node that found the same rollback expects the old epoch: it adopts the new one.
      expect(await fx.peer.rotateEpoch(region, first.epoch)).toEqual(rotated);
      const read = await log.read(region, 0, 10);
      expect(read.entries.map((e) => [e.seq, e.epoch])).toEqual([1, 2, 3].map((s) => [s, rotated.epoch]));
      const next = appended(await log.append(alertInput(region)));
      expect(next.receipt).toMatchObject({ seq: 4, epoch: rotated.epoch });
      // A region no test writes (uniqueRegion() draws from 100 codes and could meet this test's own).
      expect(await log.rotateEpoch('ZQ-ZQ-00', 'none')).toMatchObject({ epoch: null, latest: 0 });
    });

    it('holds the retention bound at every append, trimmed in the same step (contract §11 v1.1)', async () => {
      for (let i = 0; i < 7; i++) {
        const out = appended(await log.append(alertInput(region, { maxAlerts: 3 })));
        const state = await log.state(region);
        expect(state).toMatchObject({ latest: out.receipt.seq, earliest: Math.max(1, out.receipt.seq - 2) });
      }
      const read = await log.read(region, 0, 10);
      expect(read.entries.map((e) => e.seq)).toEqual([5, 6, 7]);
    });

    it('reports an empty, never-written region with a null epoch and zero positions', async () => {
      expect(await log.state(region)).toEqual({ region, epoch: null, latest: 0, earliest: 0 });
      const page = await log.read(region, 0, 10);
      expect(page).toEqual({ region, epoch: null, latest: 0, earliest: 0, entries: [] });
      expect(await log.seqAtOrAfter(region, 0)).toBeNull();
      expect(await log.versions(`alert--${randomUUID()}`)).toEqual([]);
      expect(await log.trim(region, { maxAlerts: 1, nowMs: Date.now() })).toBe(0);
    });

    it('starts seq at 1, grows it by exactly 1 and keeps the epoch while the log lives', async () => {
      const entries = await appendMany(5);
      expect(entries.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5]);
      const epoch = entries[0].epoch;
      expect(typeof epoch).toBe('string');
      expect(epoch.length).toBeGreaterThan(0);
      for (const e of entries) expect(e.epoch).toBe(epoch);
      expect(await log.state(region)).toEqual({ region, epoch, latest: 5, earliest: 1 });
    });

    it('returns a receipt and entry that describe the stored alert, received_at as RFC 3339 ms Z near now', async () => {
      const input = alertInput(region);
      const before = Date.now();
      const o = appended(await log.append(input));
      const after = Date.now();
      expect(o.receipt).toEqual({
        id: input.id,
        modified: input.modified,
        region,
        seq: 1,
        epoch: o.entry.epoch,
        received_at: o.entry.receivedAt,
      });
      expect(o.entry).toEqual({ region, seq: 1, epoch: o.entry.epoch, receivedAt: o.entry.receivedAt, body: input.body });
      expect(o.entry.receivedAt).toMatch(ISO_MS_Z);
      expect(new Date(o.entry.receivedAt).toISOString()).toBe(o.entry.receivedAt);
      const at = Date.parse(o.entry.receivedAt);
      expect(at).toBeGreaterThanOrEqual(before - 2000);
      expect(at).toBeLessThanOrEqual(after + 2000);
      const read = await log.read(region, 0, 10);
      expect(read.entries).toEqual([o.entry]);
      expect(JSON.parse(deliveredJson(read.entries[0]))).toMatchObject({ region, seq: 1, received_at: o.entry.receivedAt });
    });

    it('keeps received_at non-decreasing along seq', async () => {
      const entries = await appendMany(30);
      for (let i = 1; i < entries.length; i++) {
        expect(entries[i].receivedAt >= entries[i - 1].receivedAt).toBe(true);
      }
    });

    it('answers an identical resubmission with the original receipt and appends nothing', async () => {
      const input = alertInput(region);
      const first = appended(await log.append(input));
      await appendMany(2);
      const again = await log.append({ ...input });
      expect(again).toEqual({ outcome: 'duplicate', receipt: first.receipt });
      expect((await log.state(region)).latest).toBe(3);
    });

    it('still answers a resubmission with the original receipt after its entry was trimmed', async () => {
      const input = alertInput(region);
      const first = appended(await log.append(input));
      await appendMany(3);
      expect(await log.trim(region, { maxAlerts: 2, nowMs: Date.now() })).toBe(2);
      expect(await log.append(input)).toEqual({ outcome: 'duplicate', receipt: first.receipt });
      expect((await log.state(region)).latest).toBe(4);
    });

    it('rejects the same (id, modified) with different content as equivocation', async () => {
      const input = alertInput(region);
      await log.append(input);
      const o = await log.append({ ...input, contentHash: 'other-hash', body: '{"content":{},"sig":{}}' });
      expect(o).toEqual({ outcome: 'rejected', reason: 'equivocation' });
      expect((await log.state(region)).latest).toBe(1);
    });

    it('appends a later version of the same alert and rejects an older or equal modified as stale', async () => {
      const v1 = alertInput(region);
      await log.append(v1);
      const v3 = alertInput(region, { id: v1.id, modified: ts(3000) });
      expect(appended(await log.append(v3)).entry.seq).toBe(2);
      const v2 = alertInput(region, { id: v1.id, modified: ts(2000) });
      expect(await log.append(v2)).toEqual({ outcome: 'rejected', reason: 'stale' });
      expect((await log.state(region)).latest).toBe(2);
    });

    it('rejects any version after a revocation, but a resubmitted revocation is a duplicate', async () => {
      const v1 = alertInput(region);
      await log.append(v1);
      const rev = alertInput(region, { id: v1.id, modified: ts(1000), revoked: true });
      const r = appended(await log.append(rev));
      const later = alertInput(region, { id: v1.id, modified: ts(5000) });
      expect(await log.append(later)).toEqual({ outcome: 'rejected', reason: 'after-revocation' });
      expect(await log.append(rev)).toEqual({ outcome: 'duplicate', receipt: r.receipt });
      expect((await log.state(region)).latest).toBe(2);
    });

    it('rejects a version from another state as not-issuer', async () => {
      const v1 = alertInput(region);
      await log.append(v1);
      const o = await log.append(alertInput(region, { id: v1.id, modified: ts(1000), issuerState: 'CN' }));
      expect(o).toEqual({ outcome: 'rejected', reason: 'not-issuer' });
      expect((await log.state(region)).latest).toBe(1);
    });

    it('rejects another state reusing the id with the same modified as not-issuer, not as equivocation', async () => {
      const v1 = alertInput(region);
      await log.append(v1);
      const o = await log.append({ ...v1, issuerState: 'CN', contentHash: 'cn-hash', body: '{"content":{},"sig":{}}' });
      expect(o).toEqual({ outcome: 'rejected', reason: 'not-issuer' });
      expect((await log.state(region)).latest).toBe(1);
    });

    it('rejects a version whose created differs as field-changed', async () => {
      const v1 = alertInput(region);
      await log.append(v1);
      const o = await log.append(alertInput(region, { id: v1.id, created: ts(1), modified: ts(1000) }));
      expect(o).toEqual({ outcome: 'rejected', reason: 'field-changed' });
      expect((await log.state(region)).latest).toBe(1);
    });

    it('rejects a version in another region as field-changed and writes nothing there', async () => {
      const v1 = alertInput(region);
      await log.append(v1);
      const other = uniqueRegion('KZ', 'KG');
      const o = await log.append(alertInput(other, { id: v1.id, modified: ts(1000) }));
      expect(o).toEqual({ outcome: 'rejected', reason: 'field-changed' });
      expect(await log.state(other)).toEqual({ region: other, epoch: null, latest: 0, earliest: 0 });
    });

    it('keeps regions independent: each has its own seq and epoch', async () => {
      const other = uniqueRegion('KZ', 'KG');
      const a = await appendMany(2);
      const b = await appendMany(3, other);
      expect(a.map((e) => e.seq)).toEqual([1, 2]);
      expect(b.map((e) => e.seq)).toEqual([1, 2, 3]);
      expect(b[0].region).toBe(other);
      expect((await log.read(other, 0, 10)).entries).toEqual(b);
    });

    it('pages by seq: entries after `after`, ascending, at most `limit`', async () => {
      const all = await appendMany(7);
      const epoch = all[0].epoch;
      expect(await log.read(region, 0, 3)).toEqual({ region, epoch, latest: 7, earliest: 1, entries: all.slice(0, 3) });
      expect((await log.read(region, 3, 3)).entries).toEqual(all.slice(3, 6));
      expect((await log.read(region, 6, 3)).entries).toEqual(all.slice(6));
      expect((await log.read(region, 7, 3)).entries).toEqual([]);
      expect((await log.read(region, 2, 1000)).entries).toEqual(all.slice(2));
      const top = await log.read(region, 0, 0);
      expect(top.entries).toEqual([]);
      expect(top.latest).toBe(7);
    });

    it('trims by count to the newest maxAlerts and reports earliest/latest', async () => {
      const all = await appendMany(10);
      expect(await log.trim(region, { maxAlerts: 4, nowMs: Date.now() })).toBe(6);
      const r = await log.read(region, 0, 100);
      expect(r.earliest).toBe(7);
      expect(r.latest).toBe(10);
      expect(r.entries).toEqual(all.slice(6));
      expect(await log.trim(region, { maxAlerts: 4, nowMs: Date.now() })).toBe(0);
      // reading from before earliest starts at the oldest held
      expect((await log.read(region, 3, 2)).entries.map((e) => e.seq)).toEqual([7, 8]);
      // the next append continues the sequence
      expect(appended(await log.append(alertInput(region))).entry.seq).toBe(11);
    });

    it('trims by age to the first entry received at or after now - maxAge', async () => {
      const old = await appendMany(3);
      await sleep(15);
      const recent = await appendMany(2);
      const cutMs = Date.parse(recent[0].receivedAt);
      expect(cutMs).toBeGreaterThan(Date.parse(old[2].receivedAt));
      expect(await log.trim(region, { maxAgeMs: 1000, nowMs: cutMs + 1000 })).toBe(3);
      expect(await log.state(region)).toMatchObject({ earliest: 4, latest: 5 });
      // everything older than the cut-off goes, the log stays writable
      expect(await log.trim(region, { maxAgeMs: 1000, nowMs: Date.parse(recent[1].receivedAt) + 1001 })).toBe(2);
      expect(await log.state(region)).toMatchObject({ earliest: 0, latest: 5 });
      expect(appended(await log.append(alertInput(region))).entry.seq).toBe(6);
    });

    it('trims to the higher of the count and age cut points', async () => {
      await appendMany(3);
      await sleep(15);
      const recent = await appendMany(5);
      const nowMs = Date.parse(recent[0].receivedAt) + 1000;
      // age keeps 4..8, count keeps 7..8: count wins
      expect(await log.trim(region, { maxAlerts: 2, maxAgeMs: 1000, nowMs })).toBe(6);
      expect((await log.state(region)).earliest).toBe(7);
    });

    it('finds the first seq received at or after a time', async () => {
      const a = await appendMany(4);
      await sleep(15);
      const b = await appendMany(3);
      await sleep(15);
      const c = await appendMany(5);
      expect(await log.seqAtOrAfter(region, 0)).toBe(1);
      expect(await log.seqAtOrAfter(region, Date.parse(a[0].receivedAt))).toBe(1);
      expect(await log.seqAtOrAfter(region, Date.parse(a[3].receivedAt) + 1)).toBe(b[0].seq);
      expect(await log.seqAtOrAfter(region, Date.parse(b[0].receivedAt))).toBe(b[0].seq);
      expect(await log.seqAtOrAfter(region, Date.parse(b[2].receivedAt) + 1)).toBe(c[0].seq);
      expect(await log.seqAtOrAfter(region, Date.parse(c[4].receivedAt))).toBe(c.find((e) => e.receivedAt === c[4].receivedAt)!.seq);
      expect(await log.seqAtOrAfter(region, Date.parse(c[4].receivedAt) + 1)).toBeNull();
      await log.trim(region, { maxAlerts: 6, nowMs: Date.now() });
      expect(await log.seqAtOrAfter(region, 0)).toBe(7);
    });

    it('lists every held version of an alert, oldest first', async () => {
      const v1 = alertInput(region);
      const e1 = appended(await log.append(v1)).entry;
      await appendMany(2);
      const e2 = appended(await log.append(alertInput(region, { id: v1.id, modified: ts(1000) }))).entry;
      const e3 = appended(await log.append(alertInput(region, { id: v1.id, modified: ts(2000), revoked: true }))).entry;
      expect(await log.versions(v1.id)).toEqual([e1, e2, e3]);
      await log.trim(region, { maxAlerts: 3, nowMs: Date.now() });
      expect(await log.versions(v1.id)).toEqual([e2, e3]);
    });

    it('gives 200 concurrent appends from two adapter instances seq 1..200 exactly once each', async () => {
      const inputs = Array.from({ length: 200 }, () => alertInput(region));
      const outcomes = await Promise.all(inputs.map((inp, i) => (i % 2 === 0 ? log : fx.peer).append(inp)));
      const seqs = outcomes.map((o) => appended(o).entry.seq).sort((x, y) => x - y);
      expect(seqs).toEqual(Array.from({ length: 200 }, (_, i) => i + 1));
      const epochs = new Set(outcomes.map((o) => appended(o).entry.epoch));
      expect(epochs.size).toBe(1);
      // the log holds each body at the seq its receipt named
      const bySeq = new Map(outcomes.map((o, i) => [appended(o).entry.seq, inputs[i].body]));
      const held = (await log.read(region, 0, 1000)).entries;
      expect(held).toHaveLength(200);
      for (const e of held) expect(e.body).toBe(bySeq.get(e.seq));
    });

    it('lets only one of two concurrent identical submissions append; the other gets its receipt', async () => {
      const input = alertInput(region);
      const [a, b] = await Promise.all([log.append(input), fx.peer.append({ ...input })]);
      const kinds = [a.outcome, b.outcome].sort();
      expect(kinds).toEqual(['appended', 'duplicate']);
      const ra = a.outcome === 'rejected' ? null : a.receipt;
      const rb = b.outcome === 'rejected' ? null : b.receipt;
      expect(ra).toEqual(rb);
      expect((await log.state(region)).latest).toBe(1);
    });

    it('round-trips unicode and large bodies byte-exact', async () => {
      const text = 'Torugart 🚚 пограничный пост 边境 \u00e9\u0301 "quoted" \\ back\\slash \u2028\u2029 \t';
      const big = 'x'.repeat(60 * 1024);
      const b1 = `{"content":{"title":${JSON.stringify(text)}},"sig":{"protected":"p","signature":"s"}}`;
      const b2 = `{"content":{"description":"${big}"},"sig":{"protected":"p","signature":"s"}}`;
      const e1 = appended(await log.append(alertInput(region, { body: b1 }))).entry;
      const e2 = appended(await log.append(alertInput(region, { body: b2 }))).entry;
      const held = (await log.read(region, 0, 10)).entries;
      expect(held.map((e) => e.body)).toEqual([b1, b2]);
      expect(Buffer.from(held[0].body, 'utf8').equals(Buffer.from(b1, 'utf8'))).toBe(true);
      expect(held).toEqual([e1, e2]);
    });

    /** What a raw scan handed out, decoded as read gives entries. */
    function decoded(entries: ScannedEntry[], epoch: string): LogEntry[] {
      return entries.map((e) => ({ region, seq: e.seq, epoch, receivedAt: e.receivedAt, body: e.body.toString('utf8') }));
    }

    it('scans raw: the entries read gives, bodies as their exact UTF-8 bytes, in batches of any size', async () => {
      const text = 'Torugart 🚚 пограничный пост 边境 \u00e9\u0301 "quoted" \\ back\\slash \u2028\u2029 \t';
      const body = `{"content":{"title":${JSON.stringify(text)}},"sig":{"protected":"p","signature":"s"}}`;
      await appendMany(2);
      await log.append(alertInput(region, { body }));
      await appendMany(4);
      const { epoch, entries } = await log.read(region, 0, 10);
      for (const batch of [1, 2, 3, 7, 1000]) {
        const scan = await scanAll(log, { region, epoch: epoch!, after: 0, top: 7, batch });
        expect(scan.last).toBe(7);
        expect(decoded(scan.entries, epoch!)).toEqual(entries);
      }
      const scan = await scanAll(log, { region, epoch: epoch!, after: 0, top: 7 });
      expect(scan.entries[2].body.equals(Buffer.from(body, 'utf8'))).toBe(true);
    });

    it('scans raw exactly the range after < seq <= top', async () => {
      await appendMany(9);
      const { epoch, entries } = await log.read(region, 0, 10);
      for (const [after, top] of [
        [0, 3],
        [3, 6],
        [6, 9],
        [8, 9],
        [2, 4],
      ]) {
        const scan = await scanAll(log, { region, epoch: epoch!, after, top, batch: 2 });
        expect(scan.last).toBe(top);
        expect(scan.entries.map((e) => e.seq)).toEqual(entries.filter((e) => e.seq > after && e.seq <= top).map((e) => e.seq));
      }
      expect(await scanAll(log, { region, epoch: epoch!, after: 5, top: 5 })).toEqual({ last: 5, entries: [] });
    });

    it('scans raw with the visibility key stored at append, and none for an entry written without one', async () => {
      await log.append(alertInput(region, { visibility: 'KG|KG,CN,KZ|restricted|KG-CN-01' }));
      await log.append(alertInput(region));
      await log.append(alertInput(region, { visibility: 'CN|KZ|secret|KG-CN-01' }));
      const { epoch, entries } = await log.read(region, 0, 10);
      const scan = await scanAll(log, { region, epoch: epoch!, after: 0, top: 3 });
      expect(scan.entries.map((e) => e.visibility)).toEqual(['KG|KG,CN,KZ|restricted|KG-CN-01', undefined, 'CN|KZ|secret|KG-CN-01']);
      // the key is stored beside the body, never inside it
      expect(entries.map((e) => e.body)).toEqual(scan.entries.map((e) => e.body.toString('utf8')));
    });

    it('stops a raw scan at a hole, never skipping: trimmed before it starts or under it', async () => {
      await appendMany(10);
      const { epoch } = await log.read(region, 0, 0);
      await log.trim(region, { maxAlerts: 4, nowMs: Date.now() });
      // 4..6 are gone: nothing after 3 can be handed out without a gap.
      expect(await scanAll(log, { region, epoch: epoch!, after: 3, top: 10, batch: 2 })).toEqual({ last: 3, entries: [] });
      expect((await scanAll(log, { region, epoch: epoch!, after: 6, top: 10, batch: 2 })).last).toBe(10);

      // Trimmed while the scan waits on its consumer: it stops where the hole starts.
      await appendMany(10);
      let trimmed = false;
      const scan = await scanAll(log, { region, epoch: epoch!, after: 10, top: 20, batch: 2 }, () => {
        if (trimmed) return undefined;
        trimmed = true;
        return log.trim(region, { maxAlerts: 3, nowMs: Date.now() }).then(() => undefined);
      });
      expect(scan.last).toBeLessThan(20);
      expect(scan.entries.map((e) => e.seq)).toEqual(Array.from({ length: scan.last - 10 }, (_, i) => 11 + i));
    });

    it('hands out nothing from a raw scan of another epoch or a never-written region', async () => {
      await appendMany(3);
      expect(await scanAll(log, { region, epoch: 'another-epoch', after: 0, top: 3 })).toEqual({ last: 0, entries: [] });
      expect(await scanAll(log, { region: uniqueRegion(), epoch: 'e', after: 0, top: 3 })).toEqual({ last: 0, entries: [] });
    });

    it('pauses a raw scan while its consumer holds it back, then hands out the rest in order', async () => {
      await appendMany(30);
      const { epoch } = await log.read(region, 0, 0);
      let waits = 0;
      const scan = await scanAll(log, { region, epoch: epoch!, after: 0, top: 30, batch: 4 }, () => {
        waits++;
        return sleep(5).then(() => undefined);
      });
      expect(waits).toBeGreaterThan(0);
      expect(scan.entries.map((e) => e.seq)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
      // The consumer's refusal ends the scan with its own error.
      await expect(
        log.scanRaw({ region, epoch: epoch!, after: 0, top: 30, batch: 4 }, { entry: () => undefined, flush: () => Promise.reject(new Error('client gone')) }),
      ).rejects.toThrow('client gone');
    });

    it('answers ping', async () => {
      await expect(log.ping()).resolves.toBeUndefined();
    });
  });
}
