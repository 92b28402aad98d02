import fc from 'fast-check';
import { validator } from '../../src/domain/schemas';
import { makeTestApp, type TestApp } from '../helpers/app';
import { injectDesk, type Desk } from '../helpers/desk';
import { validContent } from '../fixtures/alerts';
import type { Receipt } from '../../src/domain/types';
import { CLOSE } from '../../src/ws/frames';
import {
  anyBytes,
  DoorStats,
  ErrorLog,
  fcParams,
  fuzzRuns,
  isDocumented,
  mutate,
  mutateText,
  structuralMutation,
  textBytes,
  textMutation,
  timeoutFor,
} from './lib';

/**
 * Door: the frames a desk sends on GET /v1/stream, through a real app on the real Redis with
 * alerts in its regions (injectWS). Frames are random bytes (text and binary), or valid subscribe,
 * unsubscribe and ack frames mutated. After each, a sentinel frame with a known answer shows the
 * session still answers. Invariant: every server frame is valid against ws-server-frame.json,
 * every error frame carries a documented code (never INTERNAL), a session ends only with a
 * documented close code, the region log is unchanged, and nothing is logged as an error.
 */

const RUNS = fuzzRuns(1500);
const SENTINEL = JSON.stringify({ type: 'ack', region: 'QQ-QQ-00', seq: 1 });
const serverFrame = validator('ws-server-frame');
const CLOSE_CODES = new Set<number>(Object.values(CLOSE));

describe('fuzz: WebSocket client frames on /v1/stream (real Redis)', () => {
  const stats = new DoorStats('ws-frames');
  const errors = new ErrorLog();
  let t: TestApp;
  let regions: string[];
  let receipts: Receipt[];
  let desk: Desk | undefined;
  let answered = 0; // sentinel answers seen on the current desk
  let sentinels = 0;
  let checked = 0; // frames of the current desk already checked

  beforeAll(async () => {
    t = await makeTestApp({
      backend: 'real',
      config: { CORDON_LOG_LEVEL: 'error', CORDON_WS_MAX_FRAMES_PER_S: '1000000', CORDON_WS_MAX_FRAME_BYTES: '16384' },
      logStream: errors,
    });
    regions = t.regions.list().map((r) => r.code);
    receipts = [];
    for (let i = 0; i < 8; i++) receipts.push(await t.publish(validContent({ region: regions[0], urgency: i % 2 ? 'flash' : 'routine' })));
  });
  afterAll(async () => {
    stats.print();
    desk?.close();
    await t?.close();
  });

  function bases(): unknown[] {
    const r = receipts[receipts.length - 1];
    return [
      { type: 'subscribe', regions: [regions[0]] },
      {
        type: 'subscribe',
        regions: [regions[0], regions[1]],
        from: { [regions[0]]: { seq: 3, epoch: r.epoch } },
        filter: { urgency: ['flash'], category: ['suspected-consignment'] },
      },
      { type: 'subscribe', regions: [regions[0]], from: { [regions[0]]: { seq: 0 } } },
      { type: 'unsubscribe', regions: [regions[0]] },
      { type: 'ack', region: regions[0], seq: 2 },
    ];
  }

  type Frame = { data: Buffer; binary: boolean };
  const frame: fc.Arbitrary<(b: unknown[]) => Frame> = fc.oneof(
    fc.record({ bytes: anyBytes, binary: fc.boolean() }).map(({ bytes, binary }) => () => ({ data: bytes, binary })),
    {
      weight: 4,
      arbitrary: fc
        .record({
          base: fc.nat(),
          sm: fc.array(structuralMutation, { maxLength: 2 }),
          tm: fc.oneof({ weight: 3, arbitrary: fc.constant([]) }, fc.array(textMutation, { minLength: 1, maxLength: 2 })),
        })
        .map(({ base, sm, tm }) => (b: unknown[]) => {
          let v = b[base % b.length];
          for (const m of sm) v = mutate(v, m);
          let text = JSON.stringify(v) ?? 'null';
          for (const m of tm) text = mutateText(text, m);
          return { data: textBytes(text, tm), binary: false };
        }),
    },
  );

  async function openDesk(): Promise<Desk> {
    const d = await injectDesk(t.app, t.token({ regions: undefined }));
    answered = 0;
    sentinels = 0;
    checked = 0;
    return d;
  }

  /** Error codes received (sentinel answers apart) since the last case. */
  let codes: string[] = [];

  /** Checks the frames received since the last call. */
  function check(d: Desk): void {
    for (; checked < d.frames.length; checked++) {
      const f = d.frames[checked];
      if (!serverFrame(f)) throw new Error(`server frame violates ws-server-frame.json: ${d.raw[checked].slice(0, 300)}`);
      if (f.type !== 'error') continue;
      if (!isDocumented(f.code) || f.code === 'INTERNAL') throw new Error(`error frame with code ${String(f.code)}: ${d.raw[checked]}`);
      if (f.code === 'REGION_NOT_FOUND' && String(f.message).includes('QQ-QQ-00')) answered++;
      else {
        codes.push(String(f.code));
        if (process.env.CORDON_FUZZ_DEBUG) process.stdout.write(`${String(f.message).slice(0, 160)}\n`);
      }
    }
  }

  test(
    `${RUNS} frames: documented answers, the session stays up or closes with a documented code, nothing stored`,
    async () => {
      const top = (await t.deps.regionLog.state(regions[0])).latest;
      const b = bases();
      await fc.assert(
        fc.asyncProperty(frame, async (make) => {
          if (!desk || desk.closeCode !== undefined) desk = await openDesk();
          const d = desk;
          codes = [];
          d.send({ type: 'unsubscribe', regions });
          const f = make(b);
          d.ws.send(f.data, { binary: f.binary });
          d.send(SENTINEL);
          sentinels++;
          await d.until((x) => x.closeCode !== undefined || (check(x), answered >= sentinels), 15_000, 'the sentinel answer');
          check(d);
          if (d.closeCode !== undefined) {
            if (!CLOSE_CODES.has(d.closeCode)) throw new Error(`session closed with ${d.closeCode}`);
            stats.reject(`close ${d.closeCode}`);
          } else if (codes.length > 0) {
            stats.reject(codes[0]);
          } else {
            stats.accept();
          }
          expect(errors.lines).toEqual([]);
        }),
        fcParams(RUNS),
      );
      expect((await t.deps.regionLog.state(regions[0])).latest).toBe(top);
      expect(stats.accepted).toBeGreaterThan(0);
    },
    timeoutFor(RUNS, 6),
  );
});
