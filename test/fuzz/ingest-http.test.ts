import fc from 'fast-check';
import { ERRORS } from '../../src/errors';
import type { Receipt, Submission } from '../../src/domain/types';
import { makeTestApp, type TestApp } from '../helpers/app';
import { DoorStats, ErrorLog, fcParams, fuzzRuns, isDocumented, timeoutFor } from './lib';
import { submissionCase, type SubmissionContext } from './submissions';

/**
 * Door: POST /v1/alerts, through the whole ingest pipeline on the real Redis (region log, audit)
 * and NATS, with a real trust store, real Ed25519 keys and the verify worker thread.
 * Invariant: 201 stores exactly one entry, 200 (a replay) and every rejection store none; every
 * rejection is a problem body with a documented code and its status; never a 5xx; nothing is
 * logged as an error.
 */

const RUNS = fuzzRuns(1000);
/** Mostly the right media type; sometimes another, a malformed one, or none. */
const CONTENT_TYPES = [
  'application/json',
  'application/json',
  'application/json',
  'application/json',
  'application/json',
  'application/json; charset=utf-8',
  'application/JSON',
  'application/json; charset=latin1',
  'application/json;;',
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'application/jsonx',
  '',
  'application/json, text/plain',
  'application/json; charset="utf-8"',
  '*/*',
];

describe('fuzz: submissions through POST /v1/alerts (real Redis, NATS, keys)', () => {
  const stats = new DoorStats('http-submissions');
  const errors = new ErrorLog();
  let t: TestApp;
  let ctx: SubmissionContext;

  beforeAll(async () => {
    t = await makeTestApp({ backend: 'real', config: { CORDON_LOG_LEVEL: 'error' }, logStream: errors });
    ctx = { trust: t.trust, regions: t.regions.list().map((r) => r.code), accepted: [] };
  });
  afterAll(async () => {
    stats.print();
    await t?.close();
  });

  const tops = async (): Promise<number> => {
    let sum = 0;
    for (const r of ctx.regions) sum += (await t.deps.regionLog.state(r)).latest;
    return sum;
  };

  test(
    `${RUNS} submissions: a documented answer each, and only accepted ones stored`,
    async () => {
      let before = await tops();
      await fc.assert(
        fc.asyncProperty(submissionCase, fc.oneof({ weight: 6, arbitrary: fc.constant(0) }, fc.nat({ max: CONTENT_TYPES.length - 1 })), async (c, ct) => {
          const payload = c.build(ctx);
          const contentType = CONTENT_TYPES[ct];
          const res = await t.app.inject({ method: 'POST', url: '/v1/alerts', headers: contentType ? { 'content-type': contentType } : {}, payload });
          const after = await tops();
          const body = res.json<Record<string, unknown>>();
          if (res.statusCode === 201) {
            stats.accept();
            expect(after).toBe(before + 1);
            expect(body).toMatchObject({ region: expect.any(String), seq: expect.any(Number) });
            ctx.accepted.push(JSON.parse(payload.toString('utf8')) as Submission);
          } else if (res.statusCode === 200) {
            stats.note('replayed (200)');
            expect(after).toBe(before);
            expect((body as unknown as Receipt).seq).toBeGreaterThan(0);
          } else {
            stats.reject(String(body.code));
            if (!isDocumented(body.code)) throw new Error(`undocumented code ${String(body.code)}: ${res.body}`);
            expect(res.statusCode).toBe(ERRORS[body.code].status);
            expect(res.statusCode).toBeLessThan(500);
            expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
            if (after !== before) throw new Error(`rejected (${body.code}) yet the log grew: ${payload.toString('utf8').slice(0, 300)}`);
          }
          before = after;
          expect(errors.lines).toEqual([]);
        }),
        fcParams(RUNS),
      );
      expect(stats.accepted).toBeGreaterThan(0);
    },
    timeoutFor(RUNS, 6),
  );
});
