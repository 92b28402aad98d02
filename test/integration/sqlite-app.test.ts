import { makeTestApp, testRegions, type TestApp } from '../helpers/app';
import { ndjsonAlerts } from '../helpers/ndjson';
import { validContent } from '../fixtures/alerts';

/*
 * The whole app on the embedded SQLite store (a temporary file): the NDJSON export (scanRaw),
 * retention (trim), replay's 410 and the audit trail read through the same HTTP routes as on
 * Redis. Ingest and the desks' stream run on it in ingest.test.ts and stream.test.ts.
 */

async function until(check: () => Promise<boolean>, withinMs = 10_000): Promise<void> {
  const deadline = Date.now() + withinMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('the app on the embedded SQLite store', () => {
  const regions = testRegions();
  const [A] = regions.map((r) => r.code);
  let t: TestApp;

  afterEach(async () => {
    await t.close();
  });

  test('exports every alert as NDJSON, as the page route gives them, and serves the audit trail', async () => {
    t = await makeTestApp({ backend: 'sqlite', regions, config: { CORDON_REPLAY_BATCH: '3' } });
    const receipts = [];
    for (let i = 0; i < 10; i++) receipts.push(await t.publish(validContent({ region: A, title: `Export ${i} — пост 🚚` })));
    const token = t.token({ iss: 'KG' });
    const res = await t.app.inject({ url: `/v1/regions/${A}/alerts?after=0`, headers: { authorization: `Bearer ${token}`, accept: 'application/x-ndjson' } });
    expect(res.statusCode).toBe(200);
    const items = ndjsonAlerts(res.body);
    expect(items.map((a) => a.seq)).toEqual(receipts.map((r) => r.seq));
    expect(items.map((a) => a.content.id)).toEqual(receipts.map((r) => r.id));
    expect(items.map((a) => a.content.title)).toEqual(receipts.map((_, i) => `Export ${i} — пост 🚚`));
    // The page route returns the same alerts as the stored bodies.
    const page = await t.app.inject({ url: `/v1/regions/${A}/alerts?after=0&limit=100`, headers: { authorization: `Bearer ${token}` } });
    expect(page.json().items).toEqual(items);

    const ops = t.token({ iss: 'KG', role: 'ops' });
    const audit = await t.app.inject({ url: '/v1/audit?after=0&limit=100&purpose=check', headers: { authorization: `Bearer ${ops}` } });
    expect(audit.statusCode).toBe(200);
    const published = audit.json().items.filter((r: { kind: string }) => r.kind === 'published');
    expect(published.map((r: { seq: number }) => r.seq)).toEqual(receipts.map((r) => r.seq));
  });

  test('retention trims the SQLite log; positions before it answer 410', async () => {
    t = await makeTestApp({ backend: 'sqlite', regions, config: { CORDON_RETENTION_MAX_ALERTS: '3', CORDON_RETENTION_INTERVAL_MS: '100' } });
    for (let i = 0; i < 6; i++) await t.publish(validContent({ region: A }));
    await until(async () => (await t.deps.regionLog.state(A)).earliest === 4);
    expect(await t.deps.regionLog.state(A)).toMatchObject({ earliest: 4, latest: 6 });
    const token = t.token({ iss: 'KG' });
    const gone = await t.app.inject({ url: `/v1/regions/${A}/alerts?after=0`, headers: { authorization: `Bearer ${token}` } });
    expect(gone.statusCode).toBe(410);
    expect(gone.json()).toMatchObject({ code: 'HISTORY_TRIMMED', earliest: 4 });
    const held = await t.app.inject({ url: `/v1/regions/${A}/alerts`, headers: { authorization: `Bearer ${token}` } });
    expect(held.json().items.map((i: { seq: number }) => i.seq)).toEqual([4, 5, 6]);
  });
});
