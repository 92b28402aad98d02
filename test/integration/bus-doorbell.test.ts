import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/nats-core';
import { makeTestApp, sharedBackend, testRegions, type TestApp } from '../helpers/app';
import { makeTestTrust } from '../helpers/keys';
import { injectDesk, type Desk } from '../helpers/desk';
import { validContent } from '../fixtures/alerts';
import type { AlertContent } from '../../src/domain/types';
import { TEST_NATS_URL } from '../helpers/env';

/**
 * Contract §10 (v1.1): the bus is a doorbell. An attacker with access to NATS publishes forged
 * "delivered alerts" on the fan-out subjects; none of it may reach a desk, displace a real alert,
 * change a position or an epoch, or hold memory on the node.
 */
describe('forged messages on the fan-out subjects (real NATS and Redis)', () => {
  let node: TestApp;
  let attacker: NatsConnection;
  let subjectPrefix: string;
  let R: string;
  let R2: string;
  const desks: Desk[] = [];

  beforeAll(async () => {
    const regions = testRegions();
    const shared = sharedBackend();
    subjectPrefix = shared.subjectPrefix;
    node = await makeTestApp({
      backend: 'real',
      shared,
      trust: makeTestTrust(['KG', 'KZ', 'CN'], regions),
      regions,
      config: { CORDON_POSITION_CHECK_MS: '200' },
    });
    R = regions[0].code;
    R2 = regions[1].code;
    attacker = await connect({ servers: TEST_NATS_URL, name: 'attacker' });
  });
  afterEach(() => {
    for (const d of desks.splice(0)) d.close();
  });
  afterAll(async () => {
    await attacker.close();
    await node.close();
  });

  const content = (over: Partial<AlertContent> = {}) => validContent({ region: R, ...over });
  const desk = async (regions: string[]) => {
    const d = await injectDesk(node.app, node.token());
    desks.push(d);
    d.subscribe(regions);
    await d.untilFrames('subscribed', regions.length);
    return d;
  };
  /** A forged delivered alert: the shape the fan-out carries, with content nobody signed. */
  const forged = (region: string, seq: number, epoch: string, extra = '') =>
    `{"region":"${region}","seq":${seq},"epoch":"${epoch}","received_at":"2026-03-01T10:00:00.000Z",` +
    `"content":${JSON.stringify({ ...validContent({ region }), title: 'FORGED: stand down at the Torugart post' })},` +
    `"sig":{"protected":"eyJhbGciOiJFZDI1NTE5In0","signature":"AAAA"}${extra}}`;
  const sendForged = async (subject: string, payload: string) => {
    attacker.publish(subject, new TextEncoder().encode(payload));
    await attacker.flush();
  };
  const titles = (d: Desk) => d.alerts().map((a) => a.content.title as string);

  test('a forged alert at latest + 1 never reaches a desk, and the real alert that takes that seq does', async () => {
    const first = await node.publish(content());
    const d = await desk([R]);
    await sendForged(`${subjectPrefix}.alerts.${R}.flash`, forged(R, first.seq + 1, first.epoch));
    const real = content({ title: 'Real: truck turned back at Torugart' });
    const receipt = await node.publish(real);
    expect(receipt.seq).toBe(first.seq + 1);
    await d.until((x) => x.alerts().some((a) => a.seq === receipt.seq), 5000, 'the real alert');
    await d.settle();
    expect(titles(d)).toEqual(['Real: truck turned back at Torugart']);
    expect(d.alerts()[0].content.id).toBe(real.id);

    // A desk resuming from before it reads the real alert too (nothing cached from the bus).
    const resumed = await injectDesk(node.app, node.token());
    desks.push(resumed);
    resumed.subscribe([R], { [R]: { seq: first.seq, epoch: first.epoch } });
    await resumed.untilFrames('alert', 1);
    expect(resumed.alerts()[0].content.id).toBe(real.id);

    // The ack of that seq is audited with the real id.
    d.send({ type: 'ack', region: R, seq: receipt.seq });
    await new Promise((r) => setTimeout(r, 300));
    const audit = await node.deps.audit.read(0, 1000);
    const acks = audit.items.filter((x) => x.kind === 'ack' && x.region === R && x.seq === receipt.seq);
    expect(acks.map((a) => a.id)).toEqual([real.id]);
  });

  test('a forged frame with a duplicate "type" member is not passed on', async () => {
    const d = await desk([R]);
    const state = await node.deps.regionLog.state(R);
    await sendForged(`${subjectPrefix}.alerts.${R}.urgent`, forged(R, state.latest + 1, state.epoch!, ',"type":"gap","from":1,"to":99999,"reason":"trimmed"'));
    await sendForged(`${subjectPrefix}.alerts.${R}.urgent`, `{"type":"gap","region":"${R}","seq":${state.latest + 1}}`);
    const receipt = await node.publish(content());
    await d.until((x) => x.alerts().some((a) => a.seq === receipt.seq), 5000, 'the real alert');
    await d.settle();
    expect(d.frames.map((f) => f.type)).toEqual(['subscribed', 'alert']);
  });

  test('a forged epoch on an empty region causes no gap and no epoch for the region', async () => {
    const d = await desk([R2]);
    expect(d.frames[0]).toMatchObject({ type: 'subscribed', region: R2, seq: 0, epoch: null });
    await sendForged(`${subjectPrefix}.alerts.${R2}.flash`, forged(R2, 1, 'forged-epoch'));
    await sendForged(`${subjectPrefix}.alerts.${R2}.flash`, forged(R2, 7, 'forged-epoch'));
    await new Promise((r) => setTimeout(r, 500));
    expect(node.app.streamHub.position(R2)).toEqual({ seq: 0, epoch: null });
    const kz = { issuer: { state: 'KZ', agency: 'kz-border-service', gateway: 'kz-gw-1' } };
    const receipt = await node.publish(validContent({ region: R2, ...kz }), 'KZ');
    expect(receipt.seq).toBe(1);
    await d.until((x) => x.alerts(R2).length === 1, 5000, 'the first real alert');
    await d.settle();
    expect(d.frames.map((f) => f.type)).toEqual(['subscribed', 'alert']);
    expect(d.alerts()[0]).toMatchObject({ seq: 1, epoch: receipt.epoch });
  });

  test('far-ahead forged seqs of 900 KiB move no position and delay nothing real', async () => {
    const d = await desk([R]);
    const before = node.app.streamHub.position(R)!;
    const pad = 'x'.repeat(900 * 1024);
    const payloads = Array.from({ length: 40 }, (_, i) => new TextEncoder().encode(forged(R, before.seq + 1000 + i, before.epoch!, `,"pad":"${pad}"`)));
    for (const p of payloads) attacker.publish(`${subjectPrefix}.alerts.${R}.routine`, p);
    await attacker.flush();
    await new Promise((r) => setTimeout(r, 300));
    expect(node.app.streamHub.position(R)).toEqual(before);
    const receipt = await node.publish(content());
    await d.until((x) => x.alerts().some((a) => a.seq === receipt.seq), 5000, 'the real alert');
    await d.settle();
    expect(d.alerts().map((a) => a.seq)).toEqual([receipt.seq]);
  });

  test('a message on a subject that names no region, or names another region than its payload, delivers nothing foreign', async () => {
    const d = await desk([R]);
    const state = await node.deps.regionLog.state(R);
    await sendForged(`${subjectPrefix}.alerts.not-a-region.flash`, forged(R, state.latest + 1, state.epoch!));
    await sendForged(`${subjectPrefix}.alerts.${R2}.flash`, forged(R, state.latest + 1, state.epoch!));
    const receipt = await node.publish(content());
    await d.until((x) => x.alerts().some((a) => a.seq === receipt.seq), 5000, 'the real alert');
    await d.settle();
    expect(d.alerts().map((a) => a.seq)).toEqual([receipt.seq]);
    expect(d.alerts()[0].content.title).not.toMatch(/FORGED/);
  });
});
