import { makeTestApp, type TestApp } from '../helpers/app';
import { injectDesk, type Desk } from '../helpers/desk';
import { runCordon } from '../helpers/cli';
import { tmpdir } from 'node:os';
import { validContent } from '../fixtures/alerts';
import { validator } from '../../src/domain/schemas';
import type { AuditRecord } from '../../src/ports/audit-log';
import type { AlertContent, Receipt, Token } from '../../src/domain/types';

/**
 * Contract §7 v1.1 "Audit visibility", attacked per record kind: an ops token of another state
 * reads every page of the trail and must not find the record (before v1.1 every ops token read
 * every record). The records' own state (and, where the contract says so, the issuing state or
 * the audience) still reads them.
 */
describe('GET /v1/audit is scoped to what the caller state may read (Redis)', () => {
  let t: TestApp;
  let kgcn: string;
  const desks: Desk[] = [];

  const ops = (iss: string, claims: Partial<Token> = {}) => t.token({ iss, sub: `ops-${iss.toLowerCase()}`, role: 'ops', clearance: 'secret', ...claims });
  const get = (url: string, token: string) => t.app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${token}` } });

  /**
   * Every record `token` is served up to the top of the trail as it is now (each read adds a
   * record of itself, which the next page would show), page by page, checking each page and that
   * n only grows.
   */
  async function trailAs(token: string, limit = 1000): Promise<{ items: AuditRecord[]; bodies: string; pages: number }> {
    const top = (await t.deps.audit.read(0, 100_000)).items.length;
    const items: AuditRecord[] = [];
    let bodies = '';
    let after = 0;
    let pages = 0;
    while (after < top) {
      const res = await get(`/v1/audit?after=${after}&limit=${limit}&purpose=scope%20check`, token);
      expect(res.statusCode).toBe(200);
      const page = res.json<{ items: AuditRecord[]; next: number | null }>();
      expect(validator('audit-page')(page)).toBe(true);
      bodies += res.body;
      pages++;
      for (const r of page.items) {
        expect(r.n).toBeGreaterThan(after);
        after = r.n;
        if (r.n <= top) items.push(r);
      }
      if (page.next === null) break;
      expect(page.next).toBeGreaterThanOrEqual(after);
      after = page.next;
    }
    return { items, bodies, pages };
  }

  /** The record matching `pred` in the whole trail (read straight from the adapter). */
  async function recordOf(pred: (r: AuditRecord) => boolean): Promise<AuditRecord> {
    for (let i = 0; i < 100; i++) {
      const found = (await t.deps.audit.read(0, 100_000)).items.find(pred);
      if (found) return found;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error('audit record not written');
  }

  const has = (items: AuditRecord[], n: number) => items.some((r) => r.n === n);

  beforeAll(async () => {
    t = await makeTestApp({ backend: 'real' });
    kgcn = t.regions.list()[0].code;
  });
  afterEach(() => {
    for (const d of desks.splice(0)) d.close();
  });
  afterAll(() => t.close());

  const content = (over: Partial<AlertContent> = {}) => validContent({ region: kgcn, ...over });

  test('published: only the issuer and the entitled audience read it', async () => {
    const kgOnly = await t.publish(content({ audience: { states: ['KG'], min_clearance: 'restricted' } }));
    const forKz = await t.publish(content({ audience: { states: ['KG', 'KZ'], min_clearance: 'confidential' } }));
    const rec = await recordOf((r) => r.kind === 'published' && r.id === kgOnly.id);
    const recKz = await recordOf((r) => r.kind === 'published' && r.id === forKz.id);
    expect(rec).toMatchObject({ state: 'KG', audience: { states: ['KG'], min_clearance: 'restricted' } });
    expect(validator('audit-record')(rec)).toBe(true);

    const kz = await trailAs(ops('KZ'));
    expect(has(kz.items, rec.n)).toBe(false);
    expect(kz.bodies).not.toContain(kgOnly.id);
    expect(has(kz.items, recKz.n)).toBe(true);
    // Clearance counts too: a restricted KZ ops token may not see a confidential alert.
    const kzLow = await trailAs(ops('KZ', { sub: 'ops-kz-low', clearance: 'restricted' }));
    expect(has(kzLow.items, recKz.n)).toBe(false);
    // A regions claim that excludes the alert's region hides it as well.
    const kzElsewhere = await trailAs(ops('KZ', { sub: 'ops-kz-r', regions: [t.regions.list()[1].code] }));
    expect(has(kzElsewhere.items, recKz.n)).toBe(false);
    const kg = await trailAs(ops('KG'));
    expect(has(kg.items, rec.n) && has(kg.items, recKz.n)).toBe(true);
  });

  test('ack: the desk state and the issuing state read it, no one else', async () => {
    // A KG alert for KG, CN and KZ, acknowledged by a CN desk.
    const r = await t.publish(content({ audience: { states: ['KG', 'CN', 'KZ'], min_clearance: 'restricted' } }));
    const d = await injectDesk(t.app, t.token({ iss: 'CN', sub: 'desk-cn' }));
    desks.push(d);
    d.send({ type: 'ack', region: kgcn, seq: r.seq });
    const rec = await recordOf((x) => x.kind === 'ack' && x.actor === 'CN/desk-cn' && x.seq === r.seq);
    expect(rec).toMatchObject({ issuer_state: 'KG', epoch: r.epoch, id: r.id });
    expect(validator('audit-record')(rec)).toBe(true);

    // KZ may see the alert itself, but not who received it.
    const kz = await trailAs(ops('KZ'));
    expect(has(kz.items, rec.n)).toBe(false);
    expect(kz.bodies).not.toContain('desk-cn');
    expect(has((await trailAs(ops('KG'))).items, rec.n)).toBe(true);
    expect(has((await trailAs(ops('CN'))).items, rec.n)).toBe(true);
  });

  test('rejected: only the state whose key signed the submission reads it', async () => {
    // Correctly signed by KG, but with an iat two days old: 422, audited as rejected.
    const c = content();
    const res = await t.app.inject({ method: 'POST', url: '/v1/alerts', payload: t.sign(c, 'KG', Math.floor(Date.now() / 1000) - 2 * 86_400) });
    expect(res.json()).toMatchObject({ code: 'SIGNATURE_IAT_OUT_OF_WINDOW' });
    const rec = await recordOf((x) => x.kind === 'rejected' && x.id === c.id);
    expect(rec).toMatchObject({ state: 'KG', code: 'SIGNATURE_IAT_OUT_OF_WINDOW' });
    expect(validator('audit-record')(rec)).toBe(true);

    const kz = await trailAs(ops('KZ'));
    expect(has(kz.items, rec.n)).toBe(false);
    expect(kz.bodies).not.toContain(c.id);
    expect(has((await trailAs(ops('KG'))).items, rec.n)).toBe(true);
  });

  test('security: only the state whose key signed the equivocation reads it', async () => {
    const c = content({ audience: { states: ['KG', 'KZ'], min_clearance: 'restricted' } });
    await t.publish(c);
    const res = await t.app.inject({ method: 'POST', url: '/v1/alerts', payload: t.sign({ ...c, title: 'Another title, same version' }) });
    expect(res.json()).toMatchObject({ code: 'VERSION_EQUIVOCATION' });
    const rec = await recordOf((x) => x.kind === 'security' && x.id === c.id);
    expect(rec).toMatchObject({ state: 'KG', event: 'equivocation' });

    // KZ is in the audience of the alert and reads its published record, not the security event.
    const kz = await trailAs(ops('KZ'));
    expect(has(kz.items, rec.n)).toBe(false);
    expect(kz.items.some((x) => x.kind === 'published' && x.id === c.id)).toBe(true);
    expect(has((await trailAs(ops('KG'))).items, rec.n)).toBe(true);
  });

  test('replayed: another state never reads who replayed what, nor why', async () => {
    const purpose = 'informant-7734 handler meeting';
    const res = await get(`/v1/regions/${kgcn}/alerts?limit=5&purpose=${encodeURIComponent(purpose)}`, ops('KG', { sub: 'ops-kg-case' }));
    expect(res.statusCode).toBe(200);
    const rec = await recordOf((x) => x.kind === 'replayed' && x.purpose === purpose);

    const kz = await trailAs(ops('KZ'));
    expect(has(kz.items, rec.n)).toBe(false);
    expect(kz.bodies).not.toContain('informant-7734');
    expect(kz.items.every((x) => x.kind !== 'replayed' || String(x.actor).startsWith('KZ/'))).toBe(true);
    expect(has((await trailAs(ops('KG'))).items, rec.n)).toBe(true);
  });

  test('paging: records keep their real n, empty pages still move on, and next reaches null', async () => {
    // Plenty of records KZ may not read (KG-only alerts), then one KZ may.
    const hidden: Receipt[] = [];
    for (let i = 0; i < 12; i++) hidden.push(await t.publish(content({ audience: { states: ['KG'], min_clearance: 'restricted' } })));
    const seen = await t.publish(content({ audience: { states: ['KG', 'KZ'], min_clearance: 'restricted' } }));
    const seenRec = await recordOf((x) => x.kind === 'published' && x.id === seen.id);

    const all = await trailAs(ops('KZ'), 1000);
    const small = await trailAs(ops('KZ'), 1);
    // The same records either way (minus the replayed records of these very reads), with their own n.
    const ids = (items: AuditRecord[]) => items.filter((x) => x.kind !== 'replayed').map((x) => x.n);
    expect(ids(small.items)).toEqual(ids(all.items));
    expect(has(small.items, seenRec.n)).toBe(true);
    const full = (await t.deps.audit.read(0, 100_000)).items;
    for (const r of small.items) expect(full.find((x) => x.n === r.n)).toEqual(r);
    for (const h of hidden) expect(small.bodies).not.toContain(h.id);

    // A page over records none of which KZ may read is bounded and empty, and next moves on.
    const firstHidden = await recordOf((x) => x.kind === 'published' && x.id === hidden[0].id);
    const page = (await get(`/v1/audit?after=${firstHidden.n - 1}&limit=1&purpose=x`, ops('KZ'))).json();
    expect(page.items[0]?.n ?? Infinity).toBeGreaterThanOrEqual(seenRec.n);
    expect(page.next === null || page.next > firstHidden.n - 1).toBe(true);
  });

  test("cordon audit with another state's token prints only its records, paging past empty pages", async () => {
    const small = await makeTestApp({ backend: 'memory', config: { CORDON_PAGE_MAX_EXAMINED: '1000' } });
    try {
      const url = await small.app.listen({ port: 0, host: '127.0.0.1' });
      const R = small.regions.list()[0].code;
      // 1,500 records KZ may not read, then one it may: the first page (limit 1000) is empty.
      const many = Array.from({ length: 1500 }, () =>
        small.deps.audit.append({ kind: 'published', actor: 'KG/kid', state: 'KG', region: R, audience: { states: ['KG'], min_clearance: 'restricted' } }),
      );
      await Promise.all(many);
      const mine = await small.deps.audit.append({
        kind: 'published',
        actor: 'KG/kid',
        state: 'KG',
        region: R,
        audience: { states: ['KG', 'KZ'], min_clearance: 'restricted' },
      });
      const kz = small.token({ iss: 'KZ', sub: 'ops-kz', role: 'ops' });
      const r = await runCordon(tmpdir(), ['audit', '--url', url, '--token', kz, '--purpose', 'review']);
      expect(r.code).toBe(0);
      const recs = r.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as AuditRecord);
      expect(recs[0].n).toBe(mine.n);
      expect(recs.every((x) => x.n === mine.n || (x.kind === 'replayed' && x.actor === 'KZ/ops-kz'))).toBe(true);
    } finally {
      await small.close();
    }
  });

  test('a page examines at most CORDON_PAGE_MAX_EXAMINED records and continues with next', async () => {
    const small = await makeTestApp({ backend: 'memory', config: { CORDON_PAGE_MAX_EXAMINED: '5' } });
    try {
      for (let i = 0; i < 20; i++)
        await small.publish(validContent({ region: small.regions.list()[0].code, audience: { states: ['KG'], min_clearance: 'restricted' } }));
      const kz = small.token({ iss: 'KZ', sub: 'ops-kz', role: 'ops' });
      const nexts: (number | null)[] = [];
      let after = 0;
      for (let i = 0; i < 10 && after !== null; i++) {
        const page = (
          await small.app.inject({ method: 'GET', url: `/v1/audit?after=${after}&limit=1&purpose=x`, headers: { authorization: `Bearer ${kz}` } })
        ).json();
        nexts.push(page.next);
        expect(page.items.every((r: AuditRecord) => r.kind === 'replayed')).toBe(true);
        if (page.next === null) break;
        expect(page.next - after).toBeLessThanOrEqual(5);
        after = page.next;
      }
      expect(nexts.slice(0, 4)).toEqual([5, 10, 15, 20]);
    } finally {
      await small.close();
    }
  });
});
