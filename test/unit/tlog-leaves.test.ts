import { verifySubmission } from '../../src/domain/signature';
import { leafHash } from '../../src/domain/tlog/merkle';
import { appendInputOf } from '../../src/ingest/pipeline';
import { PendingHashes, alertLeafData, alertLeafHash, auditLeafData, auditLeafHash, deliveredLeafData } from '../../src/tlog/leaves';
import type { Submission } from '../../src/domain/types';
import { validContent } from '../fixtures/alerts';
import { makeTestTrust } from '../helpers/keys';

const trust = makeTestTrust();
const OPTS = { nowMs: Date.now(), maxAgeS: 86_400, maxSkewS: 300 };

/** Contents whose RFC 8785 form differs from JSON.stringify: member order, escapes, numbers, astral characters. */
function submissions(): Submission[] {
  const titles = ['Truck for the pass', 'Грузовик 🚚 "к перевалу"\\', '卡车\u2028前往\t山口', 'é'.repeat(300), '\u0000\u001f</script>'];
  return titles.map((title, i) => {
    const sub = trust.sign(validContent({ title, ...(i % 2 ? { confidence: 0.1 + i / 3 } : {}) }));
    // Another member order as a gateway might send it: the same RFC 8785 form.
    if (i % 2 === 0) sub.content = JSON.parse(JSON.stringify(Object.fromEntries(Object.entries(sub.content).reverse()))) as Submission['content'];
    return sub;
  });
}

test("the leaf hash made at append from the signature check's RFC 8785 form equals the one made from the stored entry and from the delivered frame", async () => {
  let seq = 0;
  for (const sub of submissions()) {
    const verified = await verifySubmission(sub, trust.store, OPTS);
    const input = appendInputOf(sub, verified.contentHash);
    const entry = { region: input.region, seq: ++seq * 977, epoch: `ep-${seq}\u00e9`, receivedAt: new Date().toISOString(), body: input.body };
    const fromEntry = leafHash(alertLeafData(entry));
    expect(Buffer.from(alertLeafHash(entry, verified.canonical, sub.sig), 'latin1').equals(fromEntry)).toBe(true);
    const frame = { type: 'alert', region: entry.region, seq: entry.seq, epoch: entry.epoch, received_at: entry.receivedAt, ...JSON.parse(entry.body) };
    expect(leafHash(deliveredLeafData(frame)).equals(fromEntry)).toBe(true);
  }
});

test("an audit record's leaf hash written in place equals the hash of its RFC 8785 form, whatever its member order", () => {
  const records = [
    {
      kind: 'published' as const,
      actor: 'KG/k1',
      state: 'KG',
      seq: 12,
      region: 'KG-CN-01',
      audience: { states: ['KG', 'CN'], min_clearance: 'restricted' },
      n: 1,
      at: '2026-12-03T11:00:00.000Z',
    },
    { n: 2, at: '2026-12-03T11:00:00.001Z', actor: 'desk «Бишкек» 🚚', kind: 'ack' as const, detail: 'x'.repeat(100) + '\n"' },
    { kind: 'security' as const, actor: 'KZ/k2', code: 'VERSION_EQUIVOCATION', n: 3, at: '2026-12-03T11:00:00.002Z', extra: { b: [1.5, null, true], a: {} } },
  ];
  for (const r of [...records, ...records]) {
    expect(Buffer.from(auditLeafHash(r), 'latin1').equals(leafHash(auditLeafData(r)))).toBe(true);
  }
});

test('pending leaf hashes survive growth, compaction and partial deletes with their values', () => {
  const p = new PendingHashes();
  const h = (i: number) => leafHash(`leaf ${i}`);
  for (let i = 0; i < 5000; i += 2) p.set(i, h(i));
  p.deleteBelow(3000);
  for (let i = 5000; i < 9000; i++) p.set(i, h(i));
  expect(p.size).toBe(1000 + 4000);
  for (let i = 0; i < 9000; i++) {
    const got = p.get(i);
    if (i < 3000 || (i < 5000 && i % 2 === 1)) expect(got).toBeUndefined();
    else expect(got?.equals(h(i))).toBe(true);
  }
  p.deleteBelow(9000);
  expect(p.size).toBe(0);
  p.set(7, h(7));
  expect(p.get(7)?.equals(h(7))).toBe(true);
});
