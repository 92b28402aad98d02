/**
 * The acks this node already recorded, per desk (`<iss>/<sub>`): one audit record per desk per
 * position `{ region, seq, epoch }`, however many sessions the desk has open on this node and
 * however often it repeats the frame. Without it one desk token on 20 connections acking one seq
 * for 10 s wrote about 5,000 audit records (issue 8).
 *
 * Bounded both ways: the newest `perDesk` positions per desk, and the `desks` most recently active
 * desks; what falls out may be recorded again (a repeat is harmless, an unbounded map is not).
 */
export class AckDedup {
  /** desk → its recent positions (insertion order = age); the Map's own order makes it an LRU of desks. */
  private readonly byDesk = new Map<string, Set<string>>();

  constructor(private readonly opts: { perDesk: number; desks: number } = { perDesk: 1024, desks: 10_000 }) {}

  /**
   * True when this desk has not recorded this position yet, and marks it (synchronously, so
   * concurrent acks of one position cannot both pass); false for a repeat.
   */
  claim(desk: string, p: { region: string; seq: number; epoch: string }): boolean {
    const key = positionKey(p);
    let seen = this.byDesk.get(desk);
    if (seen) {
      // Most recently active desk last.
      this.byDesk.delete(desk);
      this.byDesk.set(desk, seen);
      if (seen.has(key)) return false;
    } else {
      seen = new Set();
      this.byDesk.set(desk, seen);
      if (this.byDesk.size > this.opts.desks) this.byDesk.delete(this.byDesk.keys().next().value as string);
    }
    seen.add(key);
    if (seen.size > this.opts.perDesk) seen.delete(seen.values().next().value as string);
    return true;
  }

  /** Forgets a claim whose record could not be written, so the desk's next ack records it. */
  release(desk: string, p: { region: string; seq: number; epoch: string }): void {
    this.byDesk.get(desk)?.delete(positionKey(p));
  }
}

function positionKey(p: { region: string; seq: number; epoch: string }): string {
  return `${p.region}|${p.seq}|${p.epoch}`;
}
