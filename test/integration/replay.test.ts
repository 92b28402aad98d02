import type { AddressInfo } from 'node:net';
import Redis from 'ioredis';
import { makeTestApp, type TestApp } from '../helpers/app';
import { ndjsonAlerts as ndjson } from '../helpers/ndjson';
import { TEST_REDIS_URL } from '../helpers/env';
import { validContent, timestamp } from '../fixtures/alerts';
import { validator } from '../../src/domain/schemas';
import { deliveredJson } from '../../src/ports/region-log';
import { scanAll } from '../helpers/raw-scan';
import { visibilityKey } from '../../src/domain/entitlement';
import type { AlertContent, DeliveredAlert, Receipt, Region, Submission } from '../../src/domain/types';

/** Three distinct test regions: A and C (KG, CN) and B (KZ, KG). */
function threeRegions(): Region[] {
  const nn = [...new Set(Array.from({ length: 10 }, () => String(Math.floor(Math.random() * 100)).padStart(2, '0')))];
  return [
    { code: `KG-CN-${nn[0]}`, name: 'A', states: ['KG', 'CN'] },
    { code: `KZ-KG-${nn[1]}`, name: 'B', states: ['KZ', 'KG'] },
    { code: `KG-CN-${nn[2]}`, name: 'C', states: ['KG', 'CN'] },
  ];
}

const asDelivered = (sub: Submission, r: Receipt): DeliveredAlert => ({
  region: r.region,
  seq: r.seq,
  epoch: r.epoch,
  received_at: r.received_at,
  content: sub.content,
  sig: sub.sig,
});

describe('history on Redis: GET /v1/regions/{region}/alerts and GET /v1/alerts/{id}', () => {
  let t: TestApp;
  let A: string;
  let B: string;
  let C: string;
  const subs: Submission[] = [];
  const receipts: Receipt[] = [];

  const get = (url: string, token?: string, headers: Record<string, string> = {}) =>
    t.app.inject({ method: 'GET', url, headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers } });
  const kg = () => t.token({ iss: 'KG', sub: 'desk-bishkek' });
  const kz = (clearance: 'secret' | 'confidential' = 'secret') => t.token({ iss: 'KZ', sub: 'desk-almaty', clearance });
  const cn = () => t.token({ iss: 'CN', sub: 'desk-kashgar', clearance: 'restricted' });
  const ops = () => t.token({ iss: 'KG', sub: 'ops-1', role: 'ops' });
  const seqs = (items: DeliveredAlert[]) => items.map((i) => i.seq);
  const lastReplayed = async () => {
    const { items } = await t.deps.audit.read(0, 1000);
    return items.filter((r) => r.kind === 'replayed').pop();
  };

  /** Follows `next` from `after` with `limit` until the top; returns every item and every next. */
  async function pageAll(token: string, limit: number, after = 0): Promise<{ items: DeliveredAlert[]; nexts: (number | null)[] }> {
    const items: DeliveredAlert[] = [];
    const nexts: (number | null)[] = [];
    let cursor: number | null = after;
    while (cursor !== null) {
      const res = await get(`/v1/regions/${A}/alerts?after=${cursor}&limit=${limit}`, token);
      expect(res.statusCode).toBe(200);
      const page = res.json<{ items: DeliveredAlert[]; next: number | null }>();
      items.push(...page.items);
      nexts.push(page.next);
      cursor = page.next;
    }
    return { items, nexts };
  }

  beforeAll(async () => {
    // Batches of 3 make every multi-batch path run on a handful of alerts.
    t = await makeTestApp({ backend: 'real', regions: threeRegions(), config: { CORDON_REPLAY_BATCH: '3', CORDON_PAGE_MAX_EXAMINED: '200' } });
    [A, B, C] = t.regions.list().map((r) => r.code);
    const audiences: AlertContent['audience'][] = [
      { states: ['KG', 'CN', 'KZ'], min_clearance: 'restricted' }, // seq 1
      ...Array.from({ length: 10 }, () => ({ states: ['KG'], min_clearance: 'restricted' as const })), // 2..11: KG only
      { states: ['KG', 'KZ'], min_clearance: 'restricted' }, // 12
      { states: ['KG', 'KZ'], min_clearance: 'secret' }, // 13
      { states: ['KG', 'KZ', 'CN'], min_clearance: 'unclassified' }, // 14
    ];
    for (const audience of audiences) {
      const sub = t.sign(validContent({ region: A, audience }));
      const res = await t.app.inject({ method: 'POST', url: '/v1/alerts', payload: sub });
      expect(res.statusCode).toBe(201);
      subs.push(sub);
      receipts.push(res.json<Receipt>());
    }
  });

  afterAll(async () => {
    await t.close();
  });

  test('a desk pages the log oldest first; each item is the delivered alert exactly as signed', async () => {
    const res = await get(`/v1/regions/${A}/alerts?after=0&limit=5`, kg());
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    const page = res.json();
    expect(validator('replay-page')(page)).toBe(true);
    expect(page).toEqual({
      region: A,
      epoch: receipts[0].epoch,
      items: subs.slice(0, 5).map((s, i) => asDelivered(s, receipts[i])),
      next: 5,
      earliest: 1,
      latest: 14,
    });
    // The stored body is served byte for byte, not re-serialised.
    const { entries } = await t.deps.regionLog.read(A, 0, 5);
    for (const e of entries) expect(res.body).toContain(deliveredJson(e));

    const all = await pageAll(kg(), 5);
    expect(seqs(all.items)).toEqual([...Array(14).keys()].map((i) => i + 1));
    expect(all.nexts).toEqual([5, 10, null]);
  });

  test('without after paging starts at the oldest alert held, with 100 items by default', async () => {
    const page = (await get(`/v1/regions/${A}/alerts`, kg())).json();
    expect(seqs(page.items)).toHaveLength(14);
    expect(page.next).toBeNull();
  });

  test('a page that reaches the top with its last item says next: null', async () => {
    const page = (await get(`/v1/regions/${A}/alerts?after=10&limit=4`, kg())).json();
    expect(seqs(page.items)).toEqual([11, 12, 13, 14]);
    expect(page.next).toBeNull();
  });

  test('only alerts the token is entitled to are listed, and paging crosses long invisible runs to the top', async () => {
    // seq 2..11 are for KG only: with batches of 3, the second page reads four batches for one item.
    const kzAll = await pageAll(kz(), 1);
    expect(seqs(kzAll.items)).toEqual([1, 12, 13, 14]);
    expect(kzAll.nexts).toEqual([1, 12, 13, null]);
    expect(seqs((await pageAll(kz('confidential'), 2)).items)).toEqual([1, 12, 14]);
    expect(seqs((await pageAll(cn(), 10)).items)).toEqual([1, 14]);
    // next is the last seq examined even when nothing on the page was visible.
    const page = (await get(`/v1/regions/${A}/alerts?after=1&limit=1`, cn())).json();
    expect(seqs(page.items)).toEqual([14]);
    expect(page.next).toBeNull();
  });

  test('Accept: application/x-ndjson streams every visible alert to the top, one delivered alert per line', async () => {
    const res = await get(`/v1/regions/${A}/alerts?after=0`, kz(), { accept: 'application/x-ndjson' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/x-ndjson/);
    expect(res.headers['cordon-latest']).toBe('14');
    expect(res.headers['cordon-epoch']).toBe(receipts[0].epoch);
    expect(res.body.endsWith('\n')).toBe(true);
    const lines = ndjson(res.body);
    expect(lines).toEqual([0, 11, 12, 13].map((i) => asDelivered(subs[i], receipts[i])));
    for (const l of lines) expect(validator('delivered-alert')(l)).toBe(true);
    // Byte for byte what deliveredJson gives for the stored entries, decided from the keys ingest stored.
    const { entries } = await t.deps.regionLog.read(A, 0, 100);
    expect(res.rawPayload.equals(Buffer.from([0, 11, 12, 13].map((i) => deliveredJson(entries[i]) + '\n').join(''), 'utf8'))).toBe(true);
    const raw = await scanAll(t.deps.regionLog, { region: A, epoch: receipts[0].epoch, after: 0, top: 14 });
    expect(raw.entries.map((e) => e.visibility)).toEqual(subs.map((sub) => visibilityKey(sub.content)));

    const fromSix = ndjson((await get(`/v1/regions/${A}/alerts?after=5&limit=1`, kg(), { accept: 'application/x-ndjson' })).body);
    expect(seqs(fromSix)).toEqual([6, 7, 8, 9, 10, 11, 12, 13, 14]);
    const none = await get(`/v1/regions/${A}/alerts?after=14`, kg(), { accept: 'application/x-ndjson' });
    expect(none.statusCode).toBe(200);
    expect(none.body).toBe('');
  });

  test('since starts at the first alert received at or after it; a future since is an empty page at the top', async () => {
    const since = receipts[6].received_at;
    const first = receipts.find((r) => r.received_at >= since)!.seq;
    const page = (await get(`/v1/regions/${A}/alerts?since=${encodeURIComponent(since)}&limit=3`, kg())).json();
    expect(seqs(page.items)).toEqual([first, first + 1, first + 2]);
    // Any RFC 3339 offset names the same instant.
    const shifted = new Date(Date.parse(since)).toISOString().replace('Z', '+00:00');
    const again = (await get(`/v1/regions/${A}/alerts?since=${encodeURIComponent(shifted)}&limit=3`, kg())).json();
    expect(again.items).toEqual(page.items);
    const future = (await get(`/v1/regions/${A}/alerts?since=${timestamp(Date.now() + 3_600_000)}`, kg())).json();
    expect(future).toMatchObject({ items: [], next: null, latest: 14 });
  });

  test('an ops token must state a purpose', async () => {
    for (const q of ['', '?purpose=', '?purpose=%20%20']) {
      const res = await get(`/v1/regions/${A}/alerts${q}`, ops());
      expect(res.statusCode).toBe(400);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(res.json()).toMatchObject({ status: 400, code: 'PURPOSE_REQUIRED' });
    }
    const alert = await get(`/v1/alerts/${subs[0].content.id}`, ops());
    expect(alert.json()).toMatchObject({ code: 'PURPOSE_REQUIRED' });
  });

  test('every ops read is recorded in the audit trail before anything is served', async () => {
    const purpose = 'case 2026-114';
    const page = await get(`/v1/regions/${A}/alerts?after=2&limit=3&purpose=${encodeURIComponent(purpose)}`, ops());
    expect(page.statusCode).toBe(200);
    expect(seqs(page.json().items)).toEqual([3, 4, 5]);
    let rec = await lastReplayed();
    expect(rec).toMatchObject({
      kind: 'replayed',
      actor: 'KG/ops-1',
      purpose,
      target: 'region',
      mode: 'page',
      region: A,
      from: 3,
      to: 5,
      count: 3,
    });
    expect(validator('audit-record')(rec)).toBe(true);

    const stream = await get(`/v1/regions/${A}/alerts?after=10&purpose=export`, ops(), { accept: 'application/x-ndjson' });
    expect(seqs(ndjson(stream.body))).toEqual([11, 12, 13, 14]);
    rec = await lastReplayed();
    expect(rec).toMatchObject({ actor: 'KG/ops-1', purpose: 'export', target: 'region', mode: 'stream', region: A, from: 11, to: 14 });
    expect(validator('audit-record')(rec)).toBe(true);

    const one = await get(`/v1/alerts/${subs[3].content.id}?purpose=lookup`, ops());
    expect(one.statusCode).toBe(200);
    rec = await lastReplayed();
    expect(rec).toMatchObject({ target: 'alert', id: subs[3].content.id, versions: 'latest', count: 1, region: A, purpose: 'lookup' });
    expect(validator('audit-record')(rec)).toBe(true);

    // Desks read without a purpose and are not recorded as replays.
    const before = (await t.deps.audit.read(0, 1000)).items.length;
    expect((await get(`/v1/regions/${A}/alerts`, kg())).statusCode).toBe(200);
    expect((await t.deps.audit.read(0, 1000)).items.length).toBe(before);
  });

  test.each([
    ['after=-1', '/querystring/after'],
    ['after=abc', '/querystring/after'],
    ['after=1.5', '/querystring/after'],
    ['limit=abc', '/querystring/limit'],
    ['limit=5000', '/querystring/limit'],
    ['limit=0', '/querystring/limit'],
    ['since=yesterday', '/querystring/since'],
    ['since=2026-13-45T99:00:00Z', '/querystring/since'],
    ['after=1&since=2026-01-01T00:00:00Z', '/querystring/since'],
    ['after=1&after=2', '/querystring/after'],
    ['limit=1&limit=1', '/querystring/limit'],
    ['afterr=1', '/querystring/afterr'],
    ['purpose=a%01b', '/querystring/purpose'],
  ])('?%s is 400 QUERY_INVALID naming %s', async (query, path) => {
    const res = await get(`/v1/regions/${A}/alerts?${query}`, kg());
    expect(res.statusCode).toBe(400);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    const body = res.json();
    expect(body).toMatchObject({ status: 400, code: 'QUERY_INVALID' });
    expect(validator('problem')(body)).toBe(true);
    expect(body.errors).toEqual(expect.arrayContaining([{ path, message: expect.any(String) }]));
  });

  test('an unknown region and a region outside the token regions claim answer the same 404 REGION_NOT_FOUND', async () => {
    const unknown = await get(`/v1/regions/ZZ-ZZ-99/alerts`, kg());
    const junk = await get(`/v1/regions/not-a-region/alerts`, kg());
    const outside = await get(`/v1/regions/${A}/alerts`, t.token({ iss: 'KG', regions: [B] }));
    const outsideStream = await get(`/v1/regions/${A}/alerts`, t.token({ iss: 'KG', regions: [B] }), { accept: 'application/x-ndjson' });
    for (const res of [unknown, junk, outside, outsideStream]) {
      expect(res.statusCode).toBe(404);
      expect(res.json()).toMatchObject({ code: 'REGION_NOT_FOUND' });
      expect(res.body).toBe(unknown.body);
    }
    // The same token reads the region its claim names.
    expect((await get(`/v1/regions/${B}/alerts`, t.token({ iss: 'KG', regions: [B] }))).statusCode).toBe(200);
  });

  test('no token is 401 TOKEN_MISSING; a bad one is 401 TOKEN_INVALID', async () => {
    const missing = await get(`/v1/regions/${A}/alerts`);
    expect(missing.statusCode).toBe(401);
    expect(missing.json()).toMatchObject({ code: 'TOKEN_MISSING' });
    const forged = kg().slice(0, -4) + 'AAAA';
    for (const token of ['garbage', forged]) {
      const res = await get(`/v1/regions/${A}/alerts`, token);
      expect(res.statusCode).toBe(401);
      expect(res.json()).toMatchObject({ code: 'TOKEN_INVALID' });
    }
    expect((await get(`/v1/alerts/${subs[0].content.id}`)).json()).toMatchObject({ code: 'TOKEN_MISSING' });
  });

  test('an Accept naming neither JSON nor NDJSON is 406', async () => {
    const res = await get(`/v1/regions/${A}/alerts`, kg(), { accept: 'text/html' });
    expect(res.statusCode).toBe(406);
    expect(res.json()).toMatchObject({ code: 'NOT_ACCEPTABLE' });
  });

  describe('GET /v1/alerts/{id}', () => {
    let v1: Submission;
    let v2: Submission;

    beforeAll(async () => {
      const first = validContent({ region: C, audience: { states: ['KG', 'KZ'], min_clearance: 'restricted' } });
      v1 = t.sign(first);
      const modified = timestamp(Date.parse(first.created) + 1000);
      // The correction narrows the audience: KZ may still see the version it was sent.
      v2 = t.sign({ ...first, modified, correction_note: 'Audience narrowed to KG', audience: { states: ['KG'], min_clearance: 'restricted' } });
      for (const sub of [v1, v2]) {
        expect((await t.app.inject({ method: 'POST', url: '/v1/alerts', payload: sub })).statusCode).toBe(201);
      }
    });

    const fetchAlert = (id: string, token: string, q = '') => get(`/v1/alerts/${id}${q}`, token);

    test('answers the newest version the token may see, as a delivered alert', async () => {
      const latest = await fetchAlert(v1.content.id, kg());
      expect(latest.statusCode).toBe(200);
      const body = latest.json<DeliveredAlert>();
      expect(validator('delivered-alert')(body)).toBe(true);
      expect(body).toMatchObject({ region: C, seq: 2, content: v2.content, sig: v2.sig });
      const forKz = (await fetchAlert(v1.content.id, kz())).json<DeliveredAlert>();
      expect(forKz).toMatchObject({ seq: 1, content: v1.content, sig: v1.sig });
    });

    test('?versions=all lists every visible version oldest first as { id, items }', async () => {
      const all = (await fetchAlert(v1.content.id, kg(), '?versions=all')).json();
      expect(validator('alert-versions')(all)).toBe(true);
      expect(all.id).toBe(v1.content.id);
      expect(all.items.map((i: DeliveredAlert) => [i.seq, i.content.modified])).toEqual([
        [1, v1.content.modified],
        [2, v2.content.modified],
      ]);
      const forKz = (await fetchAlert(v1.content.id, kz(), '?versions=all')).json();
      expect(forKz.items.map((i: DeliveredAlert) => i.seq)).toEqual([1]);
    });

    test('an alert out of scope answers exactly as one that does not exist', async () => {
      const unknown = await fetchAlert('alert--00000000-0000-4000-8000-000000000000', kg());
      expect(unknown.statusCode).toBe(404);
      expect(unknown.json()).toMatchObject({ code: 'ALERT_NOT_FOUND' });
      const cases = [
        await fetchAlert(v1.content.id, cn()), // CN is not in the audience
        await fetchAlert(v1.content.id, t.token({ iss: 'KZ', clearance: 'unclassified' }), '?versions=all'), // below min_clearance
        await fetchAlert(v1.content.id, t.token({ iss: 'KG', regions: [A] })), // C not in regions
        await fetchAlert('not-an-id', kg()),
      ];
      // seq 13 of A is for secret clearance only.
      cases.push(await fetchAlert(subs[12].content.id, kz('confidential')));
      for (const res of cases) {
        expect(res.statusCode).toBe(404);
        expect(res.body).toBe(unknown.body);
        expect(res.headers['content-type']).toBe(unknown.headers['content-type']);
      }
    });

    test('a bad versions value is 400 QUERY_INVALID', async () => {
      const res = await fetchAlert(v1.content.id, kg(), '?versions=some');
      expect(res.statusCode).toBe(400);
      expect(res.json().errors).toEqual([expect.objectContaining({ path: '/querystring/versions' })]);
    });
  });

  describe('trimmed history (410)', () => {
    beforeAll(async () => {
      for (let i = 0; i < 5; i++) {
        const res = await t.app.inject({ method: 'POST', url: '/v1/alerts', payload: t.sign(validContent({ region: B })) });
        expect(res.statusCode).toBe(201);
      }
      expect(await t.deps.regionLog.trim(B, { maxAlerts: 2, nowMs: Date.now() })).toBe(3);
    });

    test('after older than earliest - 1 is 410 HISTORY_TRIMMED with earliest in the body', async () => {
      for (const after of [0, 2]) {
        const res = await get(`/v1/regions/${B}/alerts?after=${after}`, kg());
        expect(res.statusCode).toBe(410);
        expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
        const body = res.json();
        expect(body).toMatchObject({ status: 410, code: 'HISTORY_TRIMMED', earliest: 4 });
        expect(validator('problem')(body)).toBe(true);
      }
      const stream = await get(`/v1/regions/${B}/alerts?after=0`, kg(), { accept: 'application/x-ndjson' });
      expect(stream.statusCode).toBe(410);
      expect(stream.json()).toMatchObject({ code: 'HISTORY_TRIMMED', earliest: 4 });
    });

    test('after = earliest - 1, or no after at all, reads what is held', async () => {
      const page = (await get(`/v1/regions/${B}/alerts?after=3`, kg())).json();
      expect(page).toMatchObject({ earliest: 4, latest: 5, next: null });
      expect(seqs(page.items)).toEqual([4, 5]);
      expect(seqs((await get(`/v1/regions/${B}/alerts`, kg())).json().items)).toEqual([4, 5]);
    });

    test('a since older than the oldest alert held is 410: the trimmed alerts may have been received after it', async () => {
      const res = await get(`/v1/regions/${B}/alerts?since=2020-01-01T00:00:00Z`, kg());
      expect(res.statusCode).toBe(410);
      expect(res.json()).toMatchObject({ code: 'HISTORY_TRIMMED', earliest: 4 });
    });

    test('a position from another epoch is 410 when the epoch is given', async () => {
      const res = await get(`/v1/regions/${B}/alerts?after=4&epoch=some-other-epoch`, kg());
      expect(res.statusCode).toBe(410);
      const { epoch } = await t.deps.regionLog.state(B);
      expect(res.json()).toMatchObject({ code: 'HISTORY_TRIMMED', earliest: 4, epoch });
      expect((await get(`/v1/regions/${B}/alerts?after=4&epoch=${epoch}`, kg())).statusCode).toBe(200);
    });

    test('a region whose every alert was trimmed holds [latest + 1, latest]', async () => {
      await t.deps.regionLog.trim(B, { maxAgeMs: 0, nowMs: Date.now() + 1000 });
      const page = (await get(`/v1/regions/${B}/alerts`, kg())).json();
      expect(page).toMatchObject({ items: [], next: null, earliest: 6, latest: 5 });
      expect((await get(`/v1/regions/${B}/alerts?after=4`, kg())).json()).toMatchObject({ code: 'HISTORY_TRIMMED', earliest: 6 });
      expect((await get(`/v1/regions/${B}/alerts?after=5`, kg())).statusCode).toBe(200);
    });
  });

  test('a page over a long run of alerts the token may not see stops after a bounded scan and says where to go on', async () => {
    const base = (await t.deps.regionLog.state(C)).latest;
    const body = JSON.stringify(t.sign(validContent({ region: C, audience: { states: ['KG'], min_clearance: 'restricted' } })));
    await Promise.all(
      Array.from({ length: 320 }, (_, i) =>
        t.deps.regionLog.append({
          region: C,
          id: `alert--00000000-0000-4000-8000-${String(900000 + i).padStart(12, '0')}`,
          modified: '2026-01-01T00:00:00.000Z',
          created: '2026-01-01T00:00:00.000Z',
          issuerState: 'KG',
          revoked: false,
          contentHash: `hidden${i}`,
          body,
        }),
      ),
    );
    // CORDON_PAGE_MAX_EXAMINED (200 here) entries per request at most, read in batches of 3.
    const first = (await get(`/v1/regions/${C}/alerts?after=${base}&limit=1`, kz())).json();
    expect(first).toMatchObject({ items: [], next: base + 200 });
    const second = (await get(`/v1/regions/${C}/alerts?after=${first.next}&limit=1`, kz())).json();
    expect(second).toMatchObject({ items: [], next: null, latest: base + 320 });
  });

  test('a trim under a running export ends the response incomplete instead of skipping', async () => {
    // Enough data (about 30 MB) that the export cannot sit whole in socket buffers before the trim
    // lands: loopback buffers grow to several MB, and the export is fast.
    const body = JSON.stringify(t.sign(validContent({ region: C, description: 'x'.repeat(30_000) })));
    const count = 1000;
    const base = (await t.deps.regionLog.state(C)).latest;
    for (let i = 0; i < count; i += 1000) {
      await Promise.all(
        Array.from({ length: 1000 }, (_, j) =>
          t.deps.regionLog.append({
            region: C,
            id: `alert--00000000-0000-4000-8000-${String(i + j).padStart(12, '0')}`,
            modified: '2026-01-01T00:00:00.000Z',
            created: '2026-01-01T00:00:00.000Z',
            issuerState: 'KG',
            revoked: false,
            contentHash: `h${i + j}`,
            body,
          }),
        ),
      );
    }
    const address = await t.app.listen({ port: 0, host: '127.0.0.1' });
    const res = await fetch(`${address}/v1/regions/${C}/alerts?after=${base}`, {
      headers: { authorization: `Bearer ${kg()}`, accept: 'application/x-ndjson' },
    });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let text = decoder.decode((await reader.read()).value, { stream: true });
    await new Promise((r) => setTimeout(r, 300));
    await t.deps.regionLog.trim(C, { maxAlerts: 10, nowMs: Date.now() });
    let error: unknown;
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        text += decoder.decode(value, { stream: true });
      }
    } catch (err) {
      error = err;
    }
    expect(error).toBeDefined();
    const complete = text.slice(0, text.lastIndexOf('\n') + 1);
    const got = seqs(ndjson(complete));
    expect(got.length).toBeGreaterThan(0);
    expect(got.length).toBeLessThan(count);
    // What did arrive is gapless from the start.
    expect(got).toEqual(got.map((_, i) => base + 1 + i));
  });
  test('a client that leaves in the middle of an export stops it: the export connection to Redis closes, the node serves on', async () => {
    const body = JSON.stringify(t.sign(validContent({ region: C, description: 'y'.repeat(30_000) })));
    const base = (await t.deps.regionLog.state(C)).latest;
    await Promise.all(
      Array.from({ length: 600 }, (_, j) =>
        t.deps.regionLog.append({
          region: C,
          id: `alert--00000000-0000-4000-9000-${String(j).padStart(12, '0')}`,
          modified: '2026-01-01T00:00:00.000Z',
          created: '2026-01-01T00:00:00.000Z',
          issuerState: 'KG',
          revoked: false,
          contentHash: `abort-${j}`,
          body,
        }),
      ),
    );
    const admin = new Redis(TEST_REDIS_URL);
    const clients = async () =>
      String(await admin.call('CLIENT', 'LIST'))
        .trim()
        .split('\n').length;
    try {
      const before = await clients();
      const address = t.app.server.listening
        ? `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`
        : await t.app.listen({ port: 0, host: '127.0.0.1' });
      const abort = new AbortController();
      const res = await fetch(`${address}/v1/regions/${C}/alerts?after=${base}`, {
        headers: { authorization: `Bearer ${kg()}`, accept: 'application/x-ndjson' },
        signal: abort.signal,
      });
      expect(res.status).toBe(200);
      await res.body!.getReader().read();
      // About 18 MB cannot all sit in socket buffers: the scan is paused on its own connection.
      expect(await clients()).toBe(before + 1);
      abort.abort();
      const deadline = Date.now() + 5000;
      while ((await clients()) > before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
      expect(await clients()).toBe(before);
      expect((await get(`/v1/regions/${C}/alerts?after=${base}&limit=2`, kg())).statusCode).toBe(200);
    } finally {
      await admin.quit();
    }
  });
});
