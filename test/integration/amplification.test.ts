import { makeTestApp, type TestApp } from '../helpers/app';
import { appendDirect, refusedUpgrade, socketDesk, type Desk } from '../helpers/desk';
import { validContent } from '../fixtures/alerts';
import type { AuditRecord } from '../../src/ports/audit-log';
import type { ReadResult } from '../../src/ports/region-log';

/**
 * Issue 8, amplification: each test performs the attack that worked before the fix (one desk
 * token on 20 connections acking one seq wrote thousands of audit records; a token opened 1,000
 * sessions; a limit=1 page over a region of alerts the caller may not see read the whole log; a
 * token could call replay and audit without bound).
 */

const auditOf = async (t: TestApp, pred: (r: AuditRecord) => boolean) => (await t.deps.audit.read(0, 1_000_000)).items.filter(pred);

describe('acks are recorded once per desk and position (real NATS and Redis, real sockets)', () => {
  let t: TestApp;
  let url: string;
  let R: string;
  const desks: Desk[] = [];

  beforeAll(async () => {
    t = await makeTestApp({ backend: 'real', config: { CORDON_WS_MAX_SESSIONS_PER_TOKEN: '32' } });
    R = t.regions.list()[0].code;
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    url = `ws://127.0.0.1:${(t.app.server.address() as { port: number }).port}/v1/stream`;
  });
  afterEach(() => {
    for (const d of desks.splice(0)) d.close();
  });
  afterAll(() => t.close());

  /** Opens `n` sessions of one desk token; each acks `seq` `times` times, then an unknown seq to know it is done. */
  async function ackStorm(sub: string, n: number, seq: number, times: number): Promise<void> {
    const token = t.token({ sub });
    const mine = await Promise.all(Array.from({ length: n }, () => socketDesk(url, token)));
    desks.push(...mine);
    for (const d of mine) {
      for (let i = 0; i < times; i++) d.send({ type: 'ack', region: R, seq });
      d.send({ type: 'ack', region: R, seq: seq + 1_000_000 });
    }
    await Promise.all(mine.map((d) => d.until((x) => x.ofType('error').length >= 1, 15_000, 'the closing STREAM_ACK_UNKNOWN')));
    for (const d of mine) expect(d.ofType('error').map((f) => f.code)).toEqual(['STREAM_ACK_UNKNOWN']);
  }

  test('20 sessions of one desk acking one seq 20 times each write one audit record', async () => {
    const r = await t.publish(validContent({ region: R }));
    await ackStorm('desk-storm', 20, r.seq, 20);
    // Let any ack still on its way to the trail land before counting.
    await new Promise((res) => setTimeout(res, 300));
    const acks = await auditOf(t, (x) => x.kind === 'ack' && x.actor === 'KG/desk-storm');
    expect(acks).toHaveLength(1);
    expect(acks[0]).toMatchObject({ region: R, seq: r.seq, epoch: r.epoch, id: r.id });

    // Another desk acking the same alert is its own record; another seq is a record of its own too.
    const r2 = await t.publish(validContent({ region: R }));
    await ackStorm('desk-other', 2, r.seq, 3);
    await ackStorm('desk-storm', 3, r2.seq, 3);
    await new Promise((res) => setTimeout(res, 300));
    expect(await auditOf(t, (x) => x.kind === 'ack' && x.actor === 'KG/desk-other')).toHaveLength(1);
    expect((await auditOf(t, (x) => x.kind === 'ack' && x.actor === 'KG/desk-storm')).map((x) => x.seq)).toEqual([r.seq, r2.seq]);
  }, 60_000);
});

describe('stream sessions are capped per token', () => {
  let t: TestApp;
  let url: string;
  const desks: Desk[] = [];

  beforeAll(async () => {
    t = await makeTestApp({ backend: 'memory', config: { CORDON_WS_MAX_SESSIONS_PER_TOKEN: '3' } });
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    url = `ws://127.0.0.1:${(t.app.server.address() as { port: number }).port}/v1/stream`;
  });
  afterEach(() => {
    for (const d of desks.splice(0)) d.close();
  });
  afterAll(() => t.close());

  test('a burst of 20 upgrades with one token gets 3 sessions; the rest are 429 STREAM_TOO_MANY_SESSIONS before any socket', async () => {
    const token = t.token({ sub: 'desk-greedy' });
    const results = await Promise.allSettled(Array.from({ length: 20 }, () => socketDesk(url, token)));
    const opened = results.filter((r): r is PromiseFulfilledResult<Desk> => r.status === 'fulfilled').map((r) => r.value);
    desks.push(...opened);
    expect(opened).toHaveLength(3);
    expect(results.filter((r) => r.status === 'rejected').map((r) => String(r.reason))).toEqual(Array(17).fill('Error: upgrade refused: 429'));
    const refused = await refusedUpgrade(url, { authorization: `Bearer ${token}` });
    expect(refused).toMatchObject({ status: 429, body: { status: 429, code: 'STREAM_TOO_MANY_SESSIONS' } });
    expect(t.app.deskSessions.size).toBe(3);

    // Other desks are not affected, and a slot frees when a session's connection closes.
    desks.push(await socketDesk(url, t.token({ sub: 'desk-modest' })));
    opened[0].close();
    await opened[0].closed;
    let again: Desk | undefined;
    for (let i = 0; i < 50 && !again; i++) {
      again = await socketDesk(url, token).catch(() => undefined);
      if (!again) await new Promise((res) => setTimeout(res, 50));
    }
    expect(again).toBeDefined();
    desks.push(again!);
  }, 30_000);

  test('a refused or failed upgrade does not keep a slot', async () => {
    const token = t.token({ sub: 'desk-plain' });
    // Plain GETs (no upgrade) with the token, more than the cap: each is 400, none holds a slot.
    for (let i = 0; i < 5; i++) {
      const res = await fetch(url.replace('ws:', 'http:'), { headers: { authorization: `Bearer ${token}` } });
      expect(res.status).toBe(400);
    }
    const three = await Promise.all([socketDesk(url, token), socketDesk(url, token), socketDesk(url, token)]);
    desks.push(...three);
    expect((await refusedUpgrade(url, { authorization: `Bearer ${token}` })).status).toBe(429);
  });
});

describe('a replay page over alerts the caller may not see is bounded', () => {
  let t: TestApp;
  let R: string;
  let entriesRead = 0;
  const ALERTS = 20_000;

  beforeAll(async () => {
    t = await makeTestApp({ backend: 'memory' });
    R = t.regions.list()[0].code;
    // 20,000 signed alerts for KG only: a CN desk is entitled to none of them.
    const contents = Array.from({ length: ALERTS }, () => validContent({ region: R, audience: { states: ['KG'], min_clearance: 'restricted' } }));
    await appendDirect(t.deps, (c) => t.sign(c), contents);
    const log = t.deps.regionLog;
    const read = log.read.bind(log);
    log.read = async (region: string, after: number, limit: number): Promise<ReadResult> => {
      const r = await read(region, after, limit);
      entriesRead += r.entries.length;
      return r;
    };
  }, 120_000);
  afterAll(() => t.close());

  test('limit=1 by a desk entitled to nothing examines at most CORDON_PAGE_MAX_EXAMINED entries, and next pages to the top', async () => {
    const token = t.token({ iss: 'CN', sub: 'desk-nothing' });
    const max = t.deps.config.pageMaxExamined;
    expect(max).toBe(1000);
    let after = 0;
    let pages = 0;
    let slowest = 0;
    for (;;) {
      entriesRead = 0;
      const started = process.hrtime.bigint();
      const res = await t.app.inject({ method: 'GET', url: `/v1/regions/${R}/alerts?after=${after}&limit=1`, headers: { authorization: `Bearer ${token}` } });
      slowest = Math.max(slowest, Number(process.hrtime.bigint() - started) / 1e6);
      expect(res.statusCode).toBe(200);
      const page = res.json();
      pages++;
      expect(page.items).toEqual([]);
      expect(entriesRead).toBeLessThanOrEqual(max);
      if (page.next === null) break;
      expect(page.next).toBe(after + max);
      after = page.next;
    }
    expect(pages).toBe(ALERTS / max);
    // Not asserted (the machine is shared), but worth seeing: before the bound one page took ~250 ms.
    console.log(`invisible region of ${ALERTS}: ${pages} pages, slowest ${slowest.toFixed(1)} ms`);
  }, 60_000);

  test('a page the caller may see in full still returns limit items', async () => {
    const token = t.token({ iss: 'KG', sub: 'desk-all' });
    entriesRead = 0;
    const res = await t.app.inject({ method: 'GET', url: `/v1/regions/${R}/alerts?after=0&limit=1000`, headers: { authorization: `Bearer ${token}` } });
    expect(res.json().items).toHaveLength(1000);
    expect(res.json().next).toBe(1000);
  });
});

describe('history and audit calls are rate limited per token', () => {
  let t: TestApp;
  let R: string;

  beforeAll(async () => {
    t = await makeTestApp({
      backend: 'memory',
      // The ingest limit is on too (as in production): both share one @fastify/rate-limit registration.
      config: { CORDON_READ_RATE_LIMIT_MAX: '3', CORDON_AUDIT_RATE_LIMIT_MAX: '2', CORDON_TOKEN_RATE_LIMIT_WINDOW_MS: '60000', CORDON_RATE_LIMIT_MAX: '1000' },
    });
    R = t.regions.list()[0].code;
    await t.publish(validContent({ region: R }));
  });
  afterAll(() => t.close());

  const get = (url: string, token: string) => t.app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${token}` } });

  test('replay: the 4th call of a token in the window is 429 RATE_LIMITED with Retry-After; another token is unaffected', async () => {
    const a = t.token({ sub: 'desk-hammer' });
    const codes: number[] = [];
    for (let i = 0; i < 2; i++) codes.push((await get(`/v1/regions/${R}/alerts?limit=1`, a)).statusCode);
    codes.push((await get(`/v1/alerts/alert--00000000-0000-4000-8000-000000000000`, a)).statusCode);
    const over = await get(`/v1/regions/${R}/alerts?limit=1`, a);
    expect(codes).toEqual([200, 200, 404]);
    expect(over.statusCode).toBe(429);
    expect(over.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(over.json()).toMatchObject({ status: 429, code: 'RATE_LIMITED' });
    expect(Number(over.headers['retry-after'])).toBeGreaterThan(0);
    // Same address, another token: its own budget. A forged token with the same sub spends nothing.
    expect((await get(`/v1/regions/${R}/alerts?limit=1`, t.token({ sub: 'desk-quiet' }))).statusCode).toBe(200);
    const [h, p] = t.token({ sub: 'desk-quiet' }).split('.');
    for (let i = 0; i < 5; i++) expect((await get(`/v1/regions/${R}/alerts?limit=1`, `${h}.${p}.${'A'.repeat(86)}`)).statusCode).toBe(401);
    expect((await get(`/v1/regions/${R}/alerts?limit=1`, t.token({ sub: 'desk-quiet' }))).statusCode).toBe(200);
  });

  test('audit: the 3rd call of an ops token in the window is 429 RATE_LIMITED, and nothing is recorded for it', async () => {
    const ops = t.token({ sub: 'ops-hammer', role: 'ops' });
    expect((await get('/v1/audit?purpose=x', ops)).statusCode).toBe(200);
    expect((await get('/v1/audit?purpose=x', ops)).statusCode).toBe(200);
    const before = (await t.deps.audit.read(0, 100_000)).items.length;
    const over = await get('/v1/audit?purpose=x', ops);
    expect(over.statusCode).toBe(429);
    expect(over.json()).toMatchObject({ code: 'RATE_LIMITED' });
    expect((await t.deps.audit.read(0, 100_000)).items.length).toBe(before);
    expect((await get('/v1/audit?purpose=x', t.token({ sub: 'ops-other', role: 'ops' }))).statusCode).toBe(200);
  });
});
