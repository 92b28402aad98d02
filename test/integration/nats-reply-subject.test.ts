import type { NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { makeTestApp, type TestApp } from '../helpers/app';
import { TEST_NATS_URL } from '../helpers/env';
import { validContent } from '../fixtures/alerts';

/**
 * The reply-subject confused deputy (issue 8, item 3): a NATS request names where its answer goes.
 * A requester that names a fan-out subject would make the node publish there with the node's own
 * permissions, which the requester does not have. A node answers only reply subjects under the
 * inbox prefix (`_INBOX.` by default) and drops anything else unprocessed, counting it.
 */

const encoder = new TextEncoder();
const decoder = new TextDecoder();

async function eventually(check: () => boolean | Promise<boolean>, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function dropped(t: TestApp): Promise<Record<string, number>> {
  const metric = t.deps.metrics.registry.getSingleMetric('cordon_nats_ingest_dropped_total');
  if (!metric) return {};
  const { values } = await metric.get();
  return Object.fromEntries(values.map((v) => [String(v.labels.reason), v.value]));
}

describe('ingest requests over NATS are answered only on inbox reply subjects', () => {
  let t: TestApp;
  let nc: NatsConnection;
  const opened: NatsConnection[] = [];

  afterEach(async () => {
    await Promise.all(opened.splice(0).map((c) => c.close()));
    await t?.close();
  });

  async function client(opts: { inboxPrefix?: string } = {}): Promise<NatsConnection> {
    const c = await connect({ servers: TEST_NATS_URL, ...opts });
    opened.push(c);
    return c;
  }

  test('a request whose reply subject is a fan-out subject is dropped: nothing appended, nothing published, counted', async () => {
    t = await makeTestApp({ backend: 'real' });
    nc = await client();
    const prefix = t.deps.config.natsSubjectPrefix;
    const region = t.regions.list()[0].code;
    const fanout: Array<{ subject: string; body: Record<string, unknown> }> = [];
    nc.subscribe(`${prefix}.alerts.>`, {
      callback: (err, msg) => void (err || fanout.push({ subject: msg.subject, body: JSON.parse(decoder.decode(msg.data)) })),
    });
    await nc.flush();

    // The attack: a correctly signed submission, its reply aimed at every desk's fan-out subject.
    const attack = t.sign(validContent({ region, urgency: 'flash' }));
    nc.publish(`${prefix}.ingest.${region}`, encoder.encode(JSON.stringify(attack)), { reply: `${prefix}.alerts.${region}.flash` });
    // Lookalikes of the inbox prefix, and no reply subject at all (fire and forget).
    const lookalike = t.sign(validContent({ region }));
    nc.publish(`${prefix}.ingest.${region}`, encoder.encode(JSON.stringify(lookalike)), { reply: '_INBOXES.x' });
    const bare = t.sign(validContent({ region }));
    nc.publish(`${prefix}.ingest.${region}`, encoder.encode(JSON.stringify(bare)));

    // An ordinary request after them still gets its receipt, and the first seq: nothing came before.
    const legit = t.sign(validContent({ region }));
    const reply = await nc.request(`${prefix}.ingest.${region}`, encoder.encode(JSON.stringify(legit)), { timeout: 5000 });
    expect(JSON.parse(decoder.decode(reply.data))).toMatchObject({ status: 201, id: legit.content.id, region, seq: 1 });

    await eventually(async () => (await dropped(t))['reply-subject'] === 2, 5000, 'two reply-subject drops');
    expect(await dropped(t)).toEqual({ 'reply-subject': 2, 'no-reply': 1 });
    await nc.flush();
    await new Promise((r) => setTimeout(r, 300));
    expect((await t.deps.regionLog.state(region)).latest).toBe(1);
    for (const id of [attack.content.id, lookalike.content.id, bare.content.id]) {
      const res = await t.app.inject({ url: `/v1/alerts/${id}`, headers: { authorization: `Bearer ${t.token()}` } });
      expect([id, res.statusCode]).toEqual([id, 404]);
    }
    // The fan-out carries the one real alert, as delivered, and nothing on the attacker's subject.
    expect(fanout.map((m) => [m.subject, m.body.seq, (m.body.content as { id: string }).id])).toEqual([
      [`${prefix}.alerts.${region}.${legit.content.urgency}`, 1, legit.content.id],
    ]);
  });

  test('the inbox prefix is configurable: CORDON_NATS_INBOX_PREFIX', async () => {
    t = await makeTestApp({ backend: 'real', config: { CORDON_NATS_INBOX_PREFIX: '_CORDON_INBOX' } });
    const prefix = t.deps.config.natsSubjectPrefix;
    const region = t.regions.list()[0].code;
    const gateway = await client({ inboxPrefix: '_CORDON_INBOX' });
    const reply = await gateway.request(`${prefix}.ingest.${region}`, encoder.encode(JSON.stringify(t.sign(validContent({ region })))), {
      timeout: 5000,
    });
    expect(JSON.parse(decoder.decode(reply.data))).toMatchObject({ status: 201, seq: 1 });

    // A default inbox is outside that prefix now: the request is dropped, the requester times out.
    const other = await client();
    await expect(
      other.request(`${prefix}.ingest.${region}`, encoder.encode(JSON.stringify(t.sign(validContent({ region })))), { timeout: 1000 }),
    ).rejects.toThrow();
    expect(await dropped(t)).toEqual({ 'reply-subject': 1 });
    expect((await t.deps.regionLog.state(region)).latest).toBe(1);
  });
});
