import fc from 'fast-check';
import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/nats-core';
import { ERRORS } from '../../src/errors';
import type { Submission } from '../../src/domain/types';
import { createRedisClient, deleteKeysWithPrefix, quitClient } from '../../src/adapters/redis/client';
import { makeTestApp, sharedBackend, type TestApp } from '../helpers/app';
import { TEST_NATS_URL, TEST_REDIS_URL } from '../helpers/env';
import { DoorStats, ErrorLog, fcParams, fuzzRuns, isDocumented, timeoutFor } from './lib';
import { submissionCase, type SubmissionContext } from './submissions';

/**
 * Door: NATS ingest requests on `<prefix>.ingest.<region>`, sent over the real NATS server to a
 * real app (its own subject prefix) that stores in the real Redis. The subject names the
 * content's region, another region, or a token that is no region at all.
 * Invariant: a reply to every request; `status` 201 stores exactly one entry, 200 none, every
 * rejection none and carries a documented code with its status; never a 5xx; no error logged.
 */

const RUNS = fuzzRuns(800);
const NOT_REGIONS = ['ZZ-ZZ-00', 'kg-cn-01', 'KG-CN-1', 'x', '-', '%41', 'KGCN01', '\u00e9', '__proto__', 'A'.repeat(200)];

describe('fuzz: submissions through NATS ingest requests (real NATS and Redis)', () => {
  const stats = new DoorStats('nats-ingest');
  const errors = new ErrorLog();
  const shared = sharedBackend();
  let t: TestApp;
  let nc: NatsConnection;
  let ctx: SubmissionContext;

  beforeAll(async () => {
    t = await makeTestApp({ backend: 'real', shared, config: { CORDON_LOG_LEVEL: 'error' }, logStream: errors });
    ctx = { trust: t.trust, regions: t.regions.list().map((r) => r.code), accepted: [] };
    nc = await connect({ servers: TEST_NATS_URL });
  });
  afterAll(async () => {
    stats.print();
    await nc?.close();
    await t?.close();
    const redis = createRedisClient(TEST_REDIS_URL);
    await deleteKeysWithPrefix(redis, shared.keyPrefix);
    await quitClient(redis);
  });

  const tops = async (): Promise<number> => {
    let sum = 0;
    for (const r of ctx.regions) sum += (await t.deps.regionLog.state(r)).latest;
    return sum;
  };

  /** The content's region when the payload names one, else the first region. */
  function subjectRegion(payload: Buffer, pick: number): string {
    if (pick % 6 === 5) return ctx.regions[(pick >> 3) % ctx.regions.length];
    if (pick % 12 === 11) return NOT_REGIONS[(pick >> 4) % NOT_REGIONS.length];
    try {
      const region = (JSON.parse(payload.toString('utf8')) as Submission).content.region;
      if (typeof region === 'string' && /^[A-Z]{2}-[A-Z]{2}-[0-9]{2}$/.test(region)) return region;
    } catch {
      /* not JSON */
    }
    return ctx.regions[0];
  }

  test(
    `${RUNS} requests: a documented answer each, and only accepted ones stored`,
    async () => {
      let before = await tops();
      await fc.assert(
        fc.asyncProperty(submissionCase, async (c) => {
          const payload = c.build(ctx);
          const subject = `${shared.subjectPrefix}.ingest.${subjectRegion(payload, c.subject)}`;
          const msg = await nc.request(subject, payload, { timeout: 20_000 });
          const body = msg.json<Record<string, unknown>>();
          const after = await tops();
          const status = body.status;
          if (status === 201) {
            stats.accept();
            expect(after).toBe(before + 1);
            ctx.accepted.push(JSON.parse(payload.toString('utf8')) as Submission);
          } else if (status === 200) {
            stats.note('replayed (200)');
            expect(after).toBe(before);
          } else {
            stats.reject(String(body.code));
            if (!isDocumented(body.code)) throw new Error(`undocumented code ${String(body.code)}: ${JSON.stringify(body)}`);
            expect(status).toBe(ERRORS[body.code].status);
            expect(status).toBeLessThan(500);
            if (after !== before) throw new Error(`rejected (${body.code}) yet the log grew: ${payload.toString('utf8').slice(0, 300)}`);
          }
          before = after;
          expect(errors.lines).toEqual([]);
        }),
        fcParams(RUNS),
      );
      expect(stats.accepted).toBeGreaterThan(0);
      expect(stats.rejected.get('INGEST_SUBJECT_MISMATCH')).toBeGreaterThan(0);
    },
    timeoutFor(RUNS, 8),
  );
});
