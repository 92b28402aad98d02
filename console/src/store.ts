import type { FromPosition } from '../../src/ws/frames';
import type { DeliveredAlert } from '../../src/domain/types';
import type { InLogResult } from './inlog';
import type { VerifyResult } from './verify';

/**
 * What the desk holds: the alerts it received (newest first), the position reached in each region
 * (localStorage, so that a reload resumes exactly there), and which alerts it acknowledged.
 */

export interface FeedItem {
  key: string;
  alert: DeliveredAlert;
  verify?: VerifyResult;
  /** inclusion in the region's transparency log (absent: not checked, e.g. the node has no log) */
  inLog?: InLogResult;
  acked: boolean;
  /** a later version of the same alert id is held */
  superseded: boolean;
  /** the alert id was revoked (by this or a later version) */
  revoked: boolean;
  /** bumped on every change, so the view knows what to redraw */
  rev: number;
}

const MAX_ACKS_KEPT = 5000;

function itemKey(a: Pick<DeliveredAlert, 'region' | 'seq' | 'epoch'>): string {
  return `${a.region}:${a.epoch}:${a.seq}`;
}

/** Newest first: by time received, then by position. */
function newerFirst(a: FeedItem, b: FeedItem): number {
  if (a.alert.received_at !== b.alert.received_at) return a.alert.received_at < b.alert.received_at ? 1 : -1;
  return b.alert.seq - a.alert.seq;
}

export class FeedStore {
  readonly items: FeedItem[] = [];
  private readonly byKey = new Map<string, FeedItem>();
  private readonly byId = new Map<string, FeedItem[]>();
  private positions: Record<string, FromPosition>;
  private readonly acks: Set<string>;

  constructor(
    private readonly storage: Storage,
    private readonly posKey: string,
    private readonly ackKey: string,
  ) {
    this.positions = readJson<Record<string, FromPosition>>(storage, posKey) ?? {};
    this.acks = new Set(readJson<string[]>(storage, ackKey) ?? []);
  }

  position(region: string): FromPosition | undefined {
    return this.positions[region];
  }

  allPositions(): Record<string, FromPosition> {
    return { ...this.positions };
  }

  setPosition(region: string, pos: FromPosition): void {
    this.positions[region] = pos;
    this.storage.setItem(this.posKey, JSON.stringify(this.positions));
  }

  /**
   * A live alert from the stream: kept and its position saved, unless this desk already holds it
   * (same region, epoch and a seq at or below the position reached), which returns undefined.
   */
  receive(alert: DeliveredAlert): FeedItem | undefined {
    const pos = this.positions[alert.region];
    if (this.byKey.has(itemKey(alert)) || (pos && pos.epoch === alert.epoch && alert.seq <= pos.seq)) return undefined;
    const item = this.insert(alert);
    this.setPosition(alert.region, { seq: alert.seq, epoch: alert.epoch });
    return item;
  }

  /** An alert from history (at or before the saved position): shown, the position unchanged. */
  restore(alert: DeliveredAlert): FeedItem | undefined {
    if (this.byKey.has(itemKey(alert))) return undefined;
    return this.insert(alert);
  }

  private insert(alert: DeliveredAlert): FeedItem {
    const key = itemKey(alert);
    const item: FeedItem = {
      key,
      alert,
      acked: this.acks.has(key),
      superseded: false,
      revoked: alert.content.revoked === true,
      rev: 0,
    };
    // Mostly at the front; binary search for the rare older arrival (history, other regions).
    let lo = 0;
    let hi = this.items.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (newerFirst(this.items[mid], item) <= 0) lo = mid + 1;
      else hi = mid;
    }
    this.items.splice(lo, 0, item);
    this.byKey.set(key, item);
    const versions = this.byId.get(alert.content.id) ?? [];
    versions.push(item);
    this.byId.set(alert.content.id, versions);
    this.relate(versions);
    return item;
  }

  /** Older versions are marked superseded; a revocation strikes every version of the id. */
  private relate(versions: FeedItem[]): void {
    if (versions.length < 2 && !versions[0]?.revoked) return;
    let latest = versions[0];
    for (const v of versions) if (v.alert.content.modified > latest.alert.content.modified) latest = v;
    const revoked = versions.some((v) => v.alert.content.revoked === true);
    for (const v of versions) {
      const superseded = v !== latest;
      if (v.superseded !== superseded || v.revoked !== revoked) {
        v.superseded = superseded;
        v.revoked = revoked;
        v.rev++;
      }
    }
  }

  get(key: string): FeedItem | undefined {
    return this.byKey.get(key);
  }

  markAcked(item: FeedItem): void {
    item.acked = true;
    item.rev++;
    this.acks.add(item.key);
    const list = [...this.acks].slice(-MAX_ACKS_KEPT);
    this.storage.setItem(this.ackKey, JSON.stringify(list));
  }

  setInLog(item: FeedItem, r: InLogResult): void {
    item.inLog = r;
    item.rev++;
  }

  setVerified(item: FeedItem, v: VerifyResult): void {
    item.verify = v;
    item.rev++;
  }
}

function readJson<T>(storage: Storage, key: string): T | undefined {
  try {
    const s = storage.getItem(key);
    return s ? (JSON.parse(s) as T) : undefined;
  } catch {
    return undefined;
  }
}
