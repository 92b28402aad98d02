import type { RegionRegistry } from './regions';
import type { TrustStore } from './trust-store';

/**
 * The trust store and region registry in force on this node (contract §4 v1.1: both are reloaded
 * while the node runs). Each snapshot is immutable; a reload swaps in a whole new one, so a check
 * that read `current` once sees one consistent pair. Whoever must act on a change (the desk
 * stream closes sessions whose token key stopped being active) listens with onChange. No I/O
 * here: src/trust-reload.ts reads the files and calls replace().
 */

export interface TrustSnapshot {
  readonly store: TrustStore;
  readonly regions: RegionRegistry;
  /** Hex SHA-256 over the files the snapshot was read from; '' when it was built in memory. */
  readonly version: string;
  /** When it was loaded (ms since the epoch). */
  readonly loadedAtMs: number;
}

export type TrustListener = (next: TrustSnapshot, previous: TrustSnapshot) => void;

export class LiveTrust {
  private snapshot: TrustSnapshot;
  private readonly listeners = new Set<TrustListener>();

  constructor(initial: TrustSnapshot) {
    this.snapshot = Object.freeze({ ...initial });
  }

  /** A holder that nothing reloads (tests, and apps built without the composition root). */
  static fixed(store: TrustStore, regions: RegionRegistry, loadedAtMs = Date.now()): LiveTrust {
    return new LiveTrust({ store, regions, version: '', loadedAtMs });
  }

  get current(): TrustSnapshot {
    return this.snapshot;
  }

  get store(): TrustStore {
    return this.snapshot.store;
  }

  get regions(): RegionRegistry {
    return this.snapshot.regions;
  }

  /**
   * Puts `next` in force, then tells every listener. A listener that throws does not keep the
   * others from hearing of the change; the errors are thrown together afterwards.
   */
  replace(next: TrustSnapshot): void {
    const previous = this.snapshot;
    this.snapshot = Object.freeze({ ...next });
    const errors: unknown[] = [];
    for (const listener of [...this.listeners]) {
      try {
        listener(this.snapshot, previous);
      } catch (err) {
        errors.push(err);
      }
    }
    if (errors.length > 0) throw new AggregateError(errors, 'a trust listener failed');
  }

  /** Calls `listener` after every replace(); returns the function that stops it. */
  onChange(listener: TrustListener): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }
}
