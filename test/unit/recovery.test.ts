import { firstHeld, mergeBySeq, recoveryStep, resumePoint, type LogBounds } from '../../src/ws/recovery';

const R = 'KG-CN-01';
const E = 'epoch-a';
const at = (seq: number, epoch = E) => ({ seq, epoch });
const seqs = (xs: { seq: number }[]) => xs.map((x) => x.seq);
const log = (earliest: number, latest: number, epoch: string | null = E): LogBounds => ({ earliest, latest, epoch });

describe('resumePoint', () => {
  test('without from, delivery starts after the newest seq and nothing is recovered', () => {
    expect(resumePoint(R, undefined, log(1, 40))).toEqual({ kind: 'start', next: 41, recovered: false });
  });

  test('an empty, never written region starts at seq 1', () => {
    expect(resumePoint(R, undefined, log(0, 0, null))).toEqual({ kind: 'start', next: 1, recovered: false });
    expect(resumePoint(R, { seq: 0 }, log(0, 0, null))).toEqual({ kind: 'start', next: 1, recovered: true });
  });

  test('from a held seq, delivery continues right after it and is recovered', () => {
    expect(resumePoint(R, { seq: 41, epoch: E }, log(1, 50))).toEqual({ kind: 'start', next: 42, recovered: true });
    expect(resumePoint(R, { seq: 50 }, log(1, 50))).toEqual({ kind: 'start', next: 51, recovered: true });
  });

  test('from the seq just before the oldest held is still without a gap', () => {
    expect(resumePoint(R, { seq: 9 }, log(10, 50))).toEqual({ kind: 'start', next: 10, recovered: true });
  });

  test('from a trimmed seq, a trimmed gap names the missing range and delivery continues at the oldest held', () => {
    expect(resumePoint(R, { seq: 3, epoch: E }, log(10, 50))).toEqual({
      kind: 'start',
      next: 10,
      recovered: false,
      gap: { region: R, from: 4, to: 9, reason: 'trimmed', epoch: E },
    });
  });

  test('seq 0 on a trimmed log is a gap from seq 1, never silence', () => {
    const p = resumePoint(R, { seq: 0 }, log(10, 50));
    expect(p).toMatchObject({ next: 10, gap: { from: 1, to: 9, reason: 'trimmed' } });
  });

  test('when everything was trimmed, the gap runs to the newest seq and delivery continues after it', () => {
    expect(resumePoint(R, { seq: 2 }, log(0, 50))).toMatchObject({ next: 51, gap: { from: 3, to: 50, reason: 'trimmed' } });
  });

  test('another epoch gives an epoch-changed gap over the new log trimmed range, empty when nothing was trimmed', () => {
    expect(resumePoint(R, { seq: 41, epoch: 'old' }, log(1, 5, 'new'))).toEqual({
      kind: 'start',
      next: 1,
      recovered: false,
      gap: { region: R, from: 1, to: 0, reason: 'epoch-changed', epoch: 'new' },
    });
    expect(resumePoint(R, { seq: 2, epoch: 'old' }, log(7, 9, 'new'))).toMatchObject({
      next: 7,
      gap: { from: 1, to: 6, reason: 'epoch-changed', epoch: 'new' },
    });
  });

  test('another epoch wins over a seq that looks held', () => {
    expect(resumePoint(R, { seq: 3, epoch: 'old' }, log(1, 5, 'new'))).toMatchObject({ gap: { reason: 'epoch-changed' } });
  });

  test('a desk holding an epoch, on a region whose log is gone and not yet rewritten, gets an epoch-changed gap (regression)', () => {
    // e.g. an embedded node restarted, or Redis lost the region: the log is empty, epoch null.
    expect(resumePoint(R, { seq: 7, epoch: 'old' }, log(0, 0, null))).toEqual({
      kind: 'start',
      next: 1,
      recovered: false,
      gap: { region: R, from: 1, to: 0, reason: 'epoch-changed', epoch: null },
    });
  });

  test('a seq beyond the newest of the epoch is refused as ahead', () => {
    expect(resumePoint(R, { seq: 60, epoch: E }, log(1, 50))).toEqual({ kind: 'ahead', latest: 50 });
    expect(resumePoint(R, { seq: 1 }, log(0, 0, null))).toEqual({ kind: 'ahead', latest: 0 });
  });

  test('firstHeld is the oldest held seq, or past the top when nothing is held', () => {
    expect(firstHeld(log(4, 9))).toBe(4);
    expect(firstHeld(log(0, 9))).toBe(10);
    expect(firstHeld(log(0, 0, null))).toBe(1);
  });
});

describe('mergeBySeq', () => {
  test('merges two ascending runs, drops duplicates and what is before next', () => {
    const a = [at(3), at(4), at(5)];
    const b = [at(5), at(6), at(7)];
    expect(seqs(mergeBySeq(a, b, 4, E))).toEqual([4, 5, 6, 7]);
  });

  test('the history copy of a seq wins over the buffered one', () => {
    const hist = at(5);
    const live = at(5);
    expect(mergeBySeq([hist], [live], 1, E)[0]).toBe(hist);
  });

  test('items of another epoch are dropped', () => {
    expect(seqs(mergeBySeq([at(1), at(2)], [at(3, 'other')], 1, E))).toEqual([1, 2]);
  });
});

describe('recoveryStep', () => {
  test('a page that reaches the top with nothing buffered goes live', () => {
    const s = recoveryStep(42, E, [at(42), at(43)], true, []);
    expect(seqs(s.deliver)).toEqual([42, 43]);
    expect(s).toMatchObject({ next: 44, live: true, buffer: [] });
  });

  test('a full page below the top keeps recovering', () => {
    const s = recoveryStep(1, E, [at(1), at(2)], false, []);
    expect(s).toMatchObject({ next: 3, live: false });
  });

  test('history and buffered live alerts join by seq without duplicates and go live at the buffer edge', () => {
    const s = recoveryStep(10, E, [at(10), at(11), at(12)], false, [at(12), at(13), at(14)]);
    expect(seqs(s.deliver)).toEqual([10, 11, 12, 13, 14]);
    expect(s).toMatchObject({ next: 15, live: true, buffer: [] });
  });

  test('buffered alerts beyond a hole wait for more history', () => {
    const s = recoveryStep(10, E, [at(10), at(11)], false, [at(20), at(21)]);
    expect(seqs(s.deliver)).toEqual([10, 11]);
    expect(s.next).toBe(12);
    expect(seqs(s.buffer)).toEqual([20, 21]);
    expect(s.live).toBe(false);
  });

  test('a page at the top that does not reach the buffer is not live: the hole must be read', () => {
    const s = recoveryStep(10, E, [at(10)], true, [at(13)]);
    expect(s.live).toBe(false);
    expect(seqs(s.buffer)).toEqual([13]);
  });

  test('a buffer that the page already covers is dropped and the session is live', () => {
    const s = recoveryStep(10, E, [at(10), at(11), at(12)], false, [at(11)]);
    expect(seqs(s.deliver)).toEqual([10, 11, 12]);
    expect(s).toMatchObject({ live: true, buffer: [] });
  });

  test('with no page, a contiguous buffer drains and goes live', () => {
    const s = recoveryStep(5, E, [], false, [at(4), at(5), at(6)]);
    expect(seqs(s.deliver)).toEqual([5, 6]);
    expect(s).toMatchObject({ next: 7, live: true });
  });

  test('with no page and an empty buffer nothing is live yet', () => {
    expect(recoveryStep(5, E, [], false, []).live).toBe(false);
  });

  test('buffered alerts of an older epoch are ignored', () => {
    const s = recoveryStep(1, 'new', [at(1, 'new')], true, [at(7, 'old')]);
    expect(seqs(s.deliver)).toEqual([1]);
    expect(s).toMatchObject({ live: true, buffer: [] });
  });
});
