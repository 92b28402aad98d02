import { makeTestApp, type Backend, type TestApp } from '../helpers/app';
import { appendDirect, type Desk, expectedAlertFrame, injectDesk, refusedUpgrade, socketDesk } from '../helpers/desk';
import { validContent } from '../fixtures/alerts';
import { validator } from '../../src/domain/schemas';
import type { AlertContent, Receipt } from '../../src/domain/types';

const serverFrame = validator('ws-server-frame');
const expectValidFrames = (d: Desk) => {
  for (const f of d.frames) {
    if (!serverFrame(f)) throw new Error(`frame violates ws-server-frame.json: ${JSON.stringify(serverFrame.errors)}`);
  }
};

describe.each<Backend>(['memory', 'real', 'sqlite'])('GET /v1/stream on the %s backend', (backend) => {
  let t: TestApp;
  let url: string;
  let R: string;
  let R2: string;
  const desks: Desk[] = [];

  beforeAll(async () => {
    t = await makeTestApp({ backend, config: { CORDON_POSITION_CHECK_MS: '100' } });
    [R, R2] = t.regions.list().map((r) => r.code);
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    const addr = t.app.server.address() as { port: number };
    url = `ws://127.0.0.1:${addr.port}/v1/stream`;
  });
  afterEach(() => {
    for (const d of desks.splice(0)) d.close();
  });
  afterAll(() => t.close());

  const content = (over: Partial<AlertContent> = {}) => validContent({ region: R, ...over });
  const desk = async (claims = {}) => {
    const d = await injectDesk(t.app, t.token(claims));
    desks.push(d);
    return d;
  };
  const publishN = async (n: number, over: Partial<AlertContent> = {}): Promise<Receipt[]> => {
    const out: Receipt[] = [];
    for (let i = 0; i < n; i++) out.push(await t.publish(content(over)));
    return out;
  };
  const top = async (region = R) => (await t.deps.regionLog.state(region)).latest;

  describe('authentication happens before the upgrade', () => {
    test('no token: 401 TOKEN_MISSING problem body and no socket', async () => {
      const res = await refusedUpgrade(url, {});
      expect(res.status).toBe(401);
      expect(res.body).toMatchObject({ status: 401, code: 'TOKEN_MISSING' });
    });

    test('a token not signed by a trusted key: 401 TOKEN_INVALID', async () => {
      const [h, p] = t.token().split('.');
      const res = await refusedUpgrade(url, { authorization: `Bearer ${h}.${p}.${'A'.repeat(86)}` });
      expect(res).toMatchObject({ status: 401, body: { code: 'TOKEN_INVALID' } });
    });

    test('a bad token in the subprotocol is refused the same way', async () => {
      const res = await refusedUpgrade(url, {}, ['cordon.v1', 'cordon.token.not-a-token']);
      expect(res).toMatchObject({ status: 401, body: { code: 'TOKEN_INVALID' } });
    });

    test('an ops token is refused with 403 ROLE_FORBIDDEN', async () => {
      const res = await refusedUpgrade(url, { authorization: `Bearer ${t.token({ role: 'ops' })}` });
      expect(res).toMatchObject({ status: 403, body: { code: 'ROLE_FORBIDDEN' } });
    });

    test('injectWS with a bad token gets no socket', async () => {
      await expect(t.app.injectWS('/v1/stream', { headers: { authorization: 'Bearer x.y.z' } })).rejects.toThrow(/401/);
    });

    test('the token as subprotocol pair is accepted and cordon.v1 is selected', async () => {
      const d = await socketDesk(url, t.token(), 'protocol');
      desks.push(d);
      expect(d.ws.protocol).toBe('cordon.v1');
      d.subscribe([R]);
      await d.untilFrames('subscribed', 1);
    });
  });

  describe('live delivery', () => {
    test('subscribe answers subscribed with the newest position, then alerts arrive in seq order exactly as signed', async () => {
      await publishN(1);
      const latest = await top();
      const d = await desk();
      d.subscribe([R]);
      await d.untilFrames('subscribed', 1);
      const state = await t.deps.regionLog.state(R);
      expect(d.frames[0]).toEqual({ type: 'subscribed', region: R, epoch: state.epoch, seq: latest, recovered: false });

      const subs = [t.sign(content()), t.sign(content({ urgency: 'flash' })), t.sign(content())];
      for (const s of subs) await t.app.inject({ method: 'POST', url: '/v1/alerts', payload: s });
      await d.untilFrames('alert', 3);
      const alerts = d.alerts();
      expect(alerts.map((a) => a.seq)).toEqual([latest + 1, latest + 2, latest + 3]);
      alerts.forEach((a, i) => {
        expect(a.content).toEqual(subs[i].content);
        expect(a.sig).toEqual(subs[i].sig);
      });
      // byte for byte: the frame is the stored body wrapped, never re-serialised
      const read = await t.deps.regionLog.read(R, latest, 3);
      expect(d.raw.slice(1)).toEqual(read.entries.map(expectedAlertFrame));
      expectValidFrames(d);
    });

    test('an empty region answers subscribed with seq 0 and epoch null, then delivers its first alert', async () => {
      const d = await desk();
      d.subscribe([R2]);
      await d.untilFrames('subscribed', 1);
      expect(d.frames[0]).toMatchObject({ region: R2, seq: 0, epoch: null, recovered: false });
      await t.publish(validContent({ region: R2 }));
      await d.untilFrames('alert', 1);
      expect(d.alerts()[0]).toMatchObject({ region: R2, seq: 1 });
    });

    test('the filter passes only the urgencies and categories asked for', async () => {
      const d = await desk();
      d.subscribe([R], undefined, { urgency: ['flash'], category: ['seizure', 'route-change'] });
      await d.untilFrames('subscribed', 1);
      await t.publish(content({ urgency: 'flash', category: 'seizure' }));
      await t.publish(content({ urgency: 'routine', category: 'seizure' }));
      await t.publish(content({ urgency: 'flash', category: 'other' }));
      const last = await t.publish(content({ urgency: 'flash', category: 'route-change' }));
      await d.until((x) => x.alerts().some((a) => a.seq === last.seq));
      expect(d.alerts().map((a) => [a.content.urgency, a.content.category])).toEqual([
        ['flash', 'seizure'],
        ['flash', 'route-change'],
      ]);
    });

    test('entitlement decides every delivery: audience state and clearance', async () => {
      const kz = await desk({ iss: 'KZ', sub: 'desk-almaty', clearance: 'secret' });
      const low = await desk({ clearance: 'unclassified' });
      kz.subscribe([R]);
      low.subscribe([R]);
      await kz.untilFrames('subscribed', 1);
      await low.untilFrames('subscribed', 1);
      const notForKz = await t.publish(content({ audience: { states: ['KG', 'CN'], min_clearance: 'restricted' } }));
      const forAll = await t.publish(content({ audience: { states: ['KG', 'KZ'], min_clearance: 'unclassified' } }));
      await kz.until((x) => x.alerts().some((a) => a.seq === forAll.seq));
      await low.until((x) => x.alerts().some((a) => a.seq === forAll.seq));
      expect(kz.alerts().map((a) => a.seq)).toEqual([forAll.seq]);
      expect(low.alerts().map((a) => a.seq)).toEqual([forAll.seq]);
      expect(notForKz.seq).toBe(forAll.seq - 1);
    });

    test('a token narrowed by regions may not watch others: STREAM_REGION_FORBIDDEN, nothing subscribed, session open', async () => {
      const d = await desk({ regions: [R2] });
      d.subscribe([R2, R]);
      await d.untilFrames('error', 1);
      expect(d.frames[0]).toMatchObject({ type: 'error', code: 'STREAM_REGION_FORBIDDEN' });
      d.subscribe([R2]);
      await d.untilFrames('subscribed', 1);
      expect(d.ofType('subscribed').map((f) => f.region)).toEqual([R2]);
    });

    test('unsubscribe stops delivery for that region', async () => {
      const d = await desk();
      d.subscribe([R]);
      await d.untilFrames('subscribed', 1);
      const a = await t.publish(content());
      await d.untilFrames('alert', 1);
      d.send({ type: 'unsubscribe', regions: [R] });
      await d.settle(50);
      await t.publish(content());
      await d.settle(200);
      expect(d.alerts().map((x) => x.seq)).toEqual([a.seq]);
    });
  });

  describe('resume', () => {
    test('from a seq: exactly what was missed, recovered, then live, no duplicates', async () => {
      const before = await publishN(3);
      const held = before[0].seq;
      const d = await desk();
      d.subscribe([R], { [R]: { seq: held, epoch: before[0].epoch } });
      await d.untilFrames('subscribed', 1);
      expect(d.frames[0]).toMatchObject({ type: 'subscribed', recovered: true, seq: before[2].seq });
      await d.untilFrames('alert', 2);
      const live = await publishN(2);
      await d.until((x) => x.alerts().some((a) => a.seq === live[1].seq));
      await d.settle();
      expect(d.alerts().map((a) => a.seq)).toEqual([held + 1, held + 2, held + 3, held + 4]);
      expectValidFrames(d);
    });

    test('alerts published while the history is read are neither lost nor duplicated', async () => {
      const start = (await publishN(1))[0].seq;
      const d = await desk();
      d.subscribe([R], { [R]: { seq: start - 1 } });
      const during = publishN(5);
      await during;
      const end = await top();
      await d.until((x) => x.alerts().some((a) => a.seq === end));
      await d.settle();
      const got = d.alerts().map((a) => a.seq);
      expect(got).toEqual(Array.from({ length: end - start + 1 }, (_, i) => start + i));
    });

    test('seq 0 replays everything held', async () => {
      const latest = await top();
      const d = await desk();
      d.subscribe([R], { [R]: { seq: 0 } });
      await d.until((x) => x.alerts().length === latest);
      expect(d.alerts()[0].seq).toBe(1);
      expect(d.frames[0]).toMatchObject({ type: 'subscribed', recovered: true });
    });

    test('a long backlog is paged in bounded batches and arrives complete and in order', async () => {
      const region = R2;
      const base = await top(region);
      await appendDirect(
        t.deps,
        t.sign,
        Array.from({ length: 1200 }, () => validContent({ region })),
      );
      const d = await desk();
      d.subscribe([region], { [region]: { seq: base } });
      await d.until((x) => x.alerts().length === 1200, 20000, '1200 alerts');
      const got = d.alerts().map((a) => a.seq);
      expect(got[0]).toBe(base + 1);
      expect(got.every((s, i) => s === base + 1 + i)).toBe(true);
    });

    test('trimmed history: a gap frame comes first, then subscribed, then alerts from the oldest held', async () => {
      const region = R2;
      await publishN(3, { region });
      const latest = await top(region);
      await t.deps.regionLog.trim(region, { maxAlerts: 2, nowMs: Date.now() });
      const state = await t.deps.regionLog.state(region);
      expect(state.earliest).toBe(latest - 1);
      const d = await desk();
      d.subscribe([region], { [region]: { seq: 1, epoch: state.epoch! } });
      await d.untilFrames('alert', 2);
      expect(d.frames[0]).toEqual({ type: 'gap', region, from: 2, to: latest - 2, reason: 'trimmed', epoch: state.epoch });
      expect(d.frames[1]).toMatchObject({ type: 'subscribed', recovered: false, seq: latest });
      expect(d.alerts().map((a) => a.seq)).toEqual([latest - 1, latest]);
      expectValidFrames(d);
      expect(await t.metrics()).toMatch(/cordon_ws_gaps_total\{reason="trimmed"\} [1-9]/);
    });

    test('another epoch: an epoch-changed gap comes before anything else, then the held log', async () => {
      const state = await t.deps.regionLog.state(R);
      const d = await desk();
      d.subscribe([R], { [R]: { seq: 2, epoch: 'an-epoch-that-is-gone' } });
      await d.until((x) => x.alerts().length === state.latest);
      expect(d.frames[0]).toEqual({ type: 'gap', region: R, from: 1, to: state.earliest - 1, reason: 'epoch-changed', epoch: state.epoch });
      expect(d.frames[1]).toMatchObject({ type: 'subscribed', recovered: false });
      expect(d.alerts()[0].seq).toBe(state.earliest);
    });

    test('a seq beyond the newest is refused with STREAM_POSITION_AHEAD and not subscribed', async () => {
      const d = await desk();
      const latest = await top();
      d.subscribe([R], { [R]: { seq: latest + 100 } });
      await d.untilFrames('error', 1);
      expect(d.frames[0]).toMatchObject({ code: 'STREAM_POSITION_AHEAD' });
      d.subscribe([R]);
      await d.untilFrames('subscribed', 1);
    });
  });

  describe('bad frames get an error frame and the session stays open', () => {
    test.each([
      ['not JSON', '{nope', 'STREAM_FRAME_MALFORMED'],
      ['not an object', '[1,2]', 'STREAM_FRAME_MALFORMED'],
      ['duplicate keys', '{"type":"ack","type":"ack"}', 'STREAM_FRAME_MALFORMED'],
      ['unknown type', '{"type":"hello"}', 'STREAM_FRAME_INVALID'],
      ['unknown member', '{"type":"unsubscribe","regions":["KG-CN-01"],"x":1}', 'STREAM_FRAME_INVALID'],
      ['bad region code', '{"type":"subscribe","regions":["kg"]}', 'STREAM_FRAME_INVALID'],
      ['from for a region not subscribed', '{"type":"subscribe","regions":["KG-CN-01"],"from":{"KZ-KG-01":{"seq":1}}}', 'STREAM_FRAME_INVALID'],
      ['negative seq', '{"type":"ack","region":"KG-CN-01","seq":-1}', 'STREAM_FRAME_INVALID'],
      ['unknown region', '{"type":"subscribe","regions":["ZZ-ZZ-99"]}', 'REGION_NOT_FOUND'],
    ])('%s → %s', async (_what, text, code) => {
      const d = await desk();
      d.send(text);
      await d.untilFrames('error', 1);
      expect(d.frames[0]).toEqual({ type: 'error', code, message: expect.any(String) });
      d.subscribe([R]);
      await d.untilFrames('subscribed', 1);
      expectValidFrames(d);
    });

    test('subscribing twice to a region is STREAM_ALREADY_SUBSCRIBED', async () => {
      const d = await desk();
      d.subscribe([R]);
      await d.untilFrames('subscribed', 1);
      d.subscribe([R]);
      await d.untilFrames('error', 1);
      expect(d.ofType('error')[0]).toMatchObject({ code: 'STREAM_ALREADY_SUBSCRIBED' });
    });
  });

  describe('ack', () => {
    test('an ack of a delivered alert is audited with the alert id and modified', async () => {
      const d = await desk({ sub: 'desk-ack' });
      d.subscribe([R]);
      await d.untilFrames('subscribed', 1);
      const r = await t.publish(content());
      await d.untilFrames('alert', 1);
      d.send({ type: 'ack', region: R, seq: r.seq });
      let rec: Record<string, unknown> | undefined;
      for (let i = 0; i < 50 && !rec; i++) {
        await new Promise((res) => setTimeout(res, 20));
        const page = await t.deps.audit.read(0, 1000);
        rec = page.items.find((x) => x.kind === 'ack' && x.actor === 'KG/desk-ack');
      }
      expect(rec).toMatchObject({ kind: 'ack', actor: 'KG/desk-ack', region: R, seq: r.seq, id: r.id, modified: r.modified });
      expect(d.ofType('error')).toEqual([]);
    });

    test('an ack of an old alert not in recent memory is looked up in the log', async () => {
      const d = await desk({ sub: 'desk-ack-old' });
      d.send({ type: 'ack', region: R, seq: 1 });
      let rec: Record<string, unknown> | undefined;
      for (let i = 0; i < 50 && !rec; i++) {
        await new Promise((res) => setTimeout(res, 20));
        rec = (await t.deps.audit.read(0, 1000)).items.find((x) => x.actor === 'KG/desk-ack-old');
      }
      const first = (await t.deps.regionLog.read(R, 0, 1)).entries[0];
      expect(rec).toMatchObject({ kind: 'ack', region: R, seq: 1, id: JSON.parse(first.body).content.id });
    });

    test('an ack of a seq that does not exist, or that the desk may not see, is STREAM_ACK_UNKNOWN', async () => {
      const hidden = await t.publish(content({ audience: { states: ['KG'], min_clearance: 'unclassified' } }));
      const d = await desk({ iss: 'KZ', sub: 'desk-nosy' });
      d.send({ type: 'ack', region: R, seq: hidden.seq });
      d.send({ type: 'ack', region: R, seq: hidden.seq + 1000 });
      await d.untilFrames('error', 2);
      expect(d.ofType('error').map((f) => f.code)).toEqual(['STREAM_ACK_UNKNOWN', 'STREAM_ACK_UNKNOWN']);
      expect(d.frames[0].message).toBe(d.frames[0].message.replace(/hidden|visible/, ''));
      const audit = await t.deps.audit.read(0, 1000);
      expect(audit.items.some((x) => x.actor === 'KZ/desk-nosy')).toBe(false);
    });
  });

  describe('abuse is bounded', () => {
    test('a frame over wsMaxFrameBytes closes the session with 4500', async () => {
      const d = await desk();
      d.send(JSON.stringify({ type: 'subscribe', regions: [R], pad: 'x'.repeat(t.deps.config.wsMaxFrameBytes) }));
      expect((await d.closed).code).toBe(4500);
    });

    test('more frames per second than wsMaxFramesPerS closes the session with 4500', async () => {
      const d = await desk();
      for (let i = 0; i <= t.deps.config.wsMaxFramesPerS; i++) d.send({ type: 'unsubscribe', regions: [R] });
      expect((await d.closed).code).toBe(4500);
    });
  });

  test('the connected desks gauge and deliveries counter are exported', async () => {
    const d = await desk();
    d.subscribe([R]);
    await d.untilFrames('subscribed', 1);
    await t.publish(content());
    await d.untilFrames('alert', 1);
    await d.settle(20);
    const body = await t.metrics();
    expect(body).toMatch(/cordon_ws_desks [1-9]/);
    expect(body).toMatch(/cordon_ws_deliveries_total [1-9]/);
    expect(body).toMatch(/cordon_ws_resumes_total\{recovered="true"\} [1-9]/);
  });
});

describe('desk lifecycle on real sockets', () => {
  test('a desk that does not read is closed with 4002, and resuming from its last seq loses nothing', async () => {
    const t = await makeTestApp({
      backend: 'memory',
      config: { CORDON_WS_MAX_QUEUE_BYTES: String(256 * 1024), CORDON_WS_MAX_QUEUE_FRAMES: '64' },
    });
    try {
      const R = t.regions.list()[0].code;
      await t.app.listen({ port: 0, host: '127.0.0.1' });
      const url = `ws://127.0.0.1:${(t.app.server.address() as { port: number }).port}/v1/stream`;
      const slow = await socketDesk(url, t.token());
      slow.subscribe([R]);
      await slow.untilFrames('subscribed', 1);
      // Stop reading: the kernel buffers fill, then the session queue, then 4002.
      (slow.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket.pause();
      const big = { description: 'x'.repeat(30_000) };
      const entries = await appendDirect(
        t.deps,
        t.sign,
        Array.from({ length: 600 }, () => validContent({ region: R, ...big })),
      );
      const { deliveredJson } = await import('../../src/ports/region-log');
      for (const e of entries) await t.deps.bus.publish(R, 'urgent', deliveredJson(e));
      await new Promise((r) => setTimeout(r, 200));
      (slow.ws as unknown as { _socket: { resume(): void } })._socket.resume();
      expect((await slow.closed).code).toBe(4002);
      const got = slow.alerts().map((a) => a.seq);
      expect(got.length).toBeLessThan(600);
      expect(got).toEqual(got.map((_, i) => 1 + i)); // contiguous from the first: nothing skipped
      const body = await t.metrics();
      expect(body).toMatch(/cordon_ws_slow_closes_total [1-9]/);

      const again = await socketDesk(url, t.token());
      again.subscribe([R], { [R]: { seq: got.length } });
      await again.until((x) => x.alerts().length === 600 - got.length, 20000);
      expect(again.frames[0]).toMatchObject({ type: 'subscribed', recovered: true });
      expect(again.alerts().map((a) => a.seq)).toEqual(Array.from({ length: 600 - got.length }, (_, i) => got.length + 1 + i));
      again.close();
    } finally {
      await t.close();
    }
  });

  test('a token that expires during the session closes it with 4501', async () => {
    // The app's clock runs a day ahead; the token expires a second or two after that.
    const appNow = () => Date.now() + 86_400_000;
    const t = await makeTestApp({ backend: 'memory', now: appNow });
    try {
      const iat = Math.floor(appNow() / 1000);
      const d = await injectDesk(t.app, t.token({ iat, exp: iat + 2 }));
      d.subscribe([t.regions.list()[0].code]);
      const { code } = await d.closed;
      expect(code).toBe(4501);
    } finally {
      await t.close();
    }
  });

  test('on shutdown every desk is closed with 4001 so it resumes elsewhere', async () => {
    const t = await makeTestApp({ backend: 'memory' });
    const R = t.regions.list()[0].code;
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    const url = `ws://127.0.0.1:${(t.app.server.address() as { port: number }).port}/v1/stream`;
    const a = await socketDesk(url, t.token());
    const b = await injectDesk(t.app, t.token());
    a.subscribe([R]);
    await a.untilFrames('subscribed', 1);
    const closing = t.close();
    const [ca, cb] = await Promise.all([a.closed, b.closed]);
    await closing;
    expect(ca.code).toBe(4001);
    expect(cb.code).toBe(4001);
  });

  test('a desk that stops answering pings is cut; one that answers stays connected', async () => {
    const t = await makeTestApp({ backend: 'memory', config: { CORDON_WS_PING_MS: '1000' } });
    try {
      await t.app.listen({ port: 0, host: '127.0.0.1' });
      const url = `ws://127.0.0.1:${(t.app.server.address() as { port: number }).port}/v1/stream`;
      const alive = await socketDesk(url, t.token());
      const WebSocket = (await import('ws')).default;
      const deaf = new WebSocket(url, { headers: { authorization: `Bearer ${t.token()}` }, autoPong: false });
      const deafClosed = new Promise<number>((resolve) => deaf.on('close', (code) => resolve(code)));
      await new Promise((resolve) => deaf.once('open', resolve));
      const started = Date.now();
      // Cut without a close frame (1006 on the client side) after at most two ping periods.
      expect(await deafClosed).toBe(1006);
      expect(Date.now() - started).toBeLessThan(3500);
      expect(alive.closeCode).toBeUndefined();
      alive.ws.close();
    } finally {
      await t.close();
    }
  });
});
