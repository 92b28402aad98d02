import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { FastifyBaseLogger } from 'fastify';
import { Counter, Gauge, type Registry } from 'prom-client';
import { METRICS } from './metric-names';
import { RegionRegistry } from './domain/regions';
import { TrustStore, type TrustStoreJson } from './domain/trust-store';
import type { LiveTrust, TrustSnapshot } from './domain/live-trust';

/**
 * Live trust reload (contract §4 v1.1): the trust store and region registry files are read again
 * on SIGHUP (src/server.ts calls reload) and whenever their content changes (checked every
 * CORDON_TRUST_RELOAD_MS, at most 10 s). A file that fails validation is refused with an error in
 * the log and the snapshot in force stays. Both files are read and checked together, so a store
 * is never paired with a registry it was not checked against.
 */

export interface TrustFiles {
  trustStorePath: string;
  /** unset: the built-in example registry. */
  regionsPath?: string;
}

export type ReloadReason = 'start' | 'signal' | 'file-changed';

export interface ReloadResult {
  outcome: 'applied' | 'unchanged' | 'refused';
  /** the version of what was read (empty when the files could not be read). */
  version: string;
  /** why it was refused. */
  error?: string;
}

/** The files' content identity: SHA-256 over both, length-prefixed so no two pairs collide. */
export function trustVersion(trustBytes: Buffer, regionBytes: Buffer | undefined): string {
  const h = createHash('sha256');
  h.update(`trust-store ${trustBytes.length}\n`).update(trustBytes);
  if (regionBytes) h.update(`\nregions ${regionBytes.length}\n`).update(regionBytes);
  else h.update('\nregions built-in\n');
  return h.digest('hex');
}

/** The version as a Prometheus number: its first 48 bits (exact in a double), equal on every node with the same files. */
export function versionNumber(version: string): number {
  return version === '' ? 0 : parseInt(version.slice(0, 12), 16);
}

function parseJson(bytes: Buffer, what: string, path: string): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new Error(`${what} ${path} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
}

/** Validates both files' bytes into a snapshot; throws an Error naming the first problem. */
export function snapshotFromBytes(files: TrustFiles, trustBytes: Buffer, regionBytes: Buffer | undefined, loadedAtMs: number): TrustSnapshot {
  const regions =
    files.regionsPath !== undefined && regionBytes !== undefined
      ? RegionRegistry.fromJson(parseJson(regionBytes, 'region registry', files.regionsPath))
      : RegionRegistry.example();
  const store = TrustStore.fromJson(parseJson(trustBytes, 'trust store', files.trustStorePath));
  return { store, regions, version: trustVersion(trustBytes, regionBytes), loadedAtMs };
}

function readSync(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new Error(`cannot read ${what} ${path}: ${(err as Error).message}`, { cause: err });
  }
}

/** Start-up: reads and validates both files or throws (a node does not start on a bad store). */
export function readTrustSnapshot(files: TrustFiles, nowMs: number = Date.now()): TrustSnapshot {
  const trustBytes = readSync(files.trustStorePath, 'trust store');
  const regionBytes = files.regionsPath !== undefined ? readSync(files.regionsPath, 'region registry') : undefined;
  return snapshotFromBytes(files, trustBytes, regionBytes, nowMs);
}

/** One line per key whose status or presence differs between two stores (for the reload log line). */
export function keyChanges(before: TrustStoreJson, after: TrustStoreJson): string[] {
  const index = (doc: TrustStoreJson): Map<string, string> => {
    const m = new Map<string, string>();
    for (const [state, entry] of Object.entries(doc.states)) {
      for (const k of entry.keys) m.set(k.kid, `${state} ${k.use} ${k.status} ${k.nbf ?? ''}..${k.exp ?? ''}`);
    }
    return m;
  };
  const a = index(before);
  const b = index(after);
  const out: string[] = [];
  for (const [kid, was] of a) {
    const now = b.get(kid);
    if (now === undefined) out.push(`${kid} removed (was ${was})`);
    else if (now !== was) out.push(`${kid} ${was} -> ${now}`);
  }
  for (const [kid, now] of b) if (!a.has(kid)) out.push(`${kid} added (${now})`);
  return out;
}

export interface TrustReloaderOptions {
  files: TrustFiles;
  /** how often the files are checked for changes. */
  intervalMs: number;
  log: FastifyBaseLogger;
  /** where the trust gauges go (the app's registry). */
  registry?: Registry;
  now?: () => number;
}

export class TrustReloader {
  private timer: NodeJS.Timeout | undefined;
  /** reloads run one after another: a SIGHUP during a periodic check waits for it. */
  private chain: Promise<unknown> = Promise.resolve();
  /** what the last refusal was about, so a bad file is logged once, not at every check. */
  private lastRefused: string | undefined;
  private readonly now: () => number;
  private readonly reloads: Counter<'outcome'> | undefined;

  constructor(
    readonly live: LiveTrust,
    private readonly opts: TrustReloaderOptions,
  ) {
    this.now = opts.now ?? Date.now;
    if (opts.registry) {
      const registers = [opts.registry];
      new Gauge({
        name: METRICS.TRUST_STORE_VERSION,
        help: 'The trust store and region registry in force: the first 48 bits of the SHA-256 of their files (equal on nodes that hold the same files)',
        registers,
        collect() {
          this.set(versionNumber(live.current.version));
        },
      });
      new Gauge({
        name: METRICS.TRUST_STORE_LOADED_SECONDS,
        help: 'When the trust store in force was loaded (Unix time, seconds)',
        registers,
        collect() {
          this.set(live.current.loadedAtMs / 1000);
        },
      });
      this.reloads = new Counter({
        name: METRICS.TRUST_RELOADS,
        help: 'Trust store reloads that changed something (applied) or were refused (invalid or unreadable files)',
        labelNames: ['outcome'],
        registers,
      });
    }
  }

  /** Starts the periodic check. */
  start(): void {
    if (this.timer) return;
    let checking = false;
    this.timer = setInterval(() => {
      // A check still running (a slow file system) is not queued behind by more checks.
      if (checking) return;
      checking = true;
      void this.reload('file-changed').finally(() => {
        checking = false;
      });
    }, this.opts.intervalMs);
    this.timer.unref();
  }

  /** Reads both files again and puts them in force if they changed and are valid. Never throws. */
  reload(reason: ReloadReason): Promise<ReloadResult> {
    const run = this.chain.then(() =>
      this.reloadNow(reason).catch((err: unknown): ReloadResult => {
        // Only a bug gets here; the store in force stays, as for a bad file.
        this.opts.log.error({ err, reason }, 'trust store reload failed');
        return { outcome: 'refused', version: '', error: String(err) };
      }),
    );
    this.chain = run;
    return run;
  }

  /** Logs what the store and the registry disagree on (as at start-up); a store is not refused for it. */
  warnMismatches(snapshot: TrustSnapshot = this.live.current): void {
    for (const finding of snapshot.store.mismatches((code) => snapshot.regions.get(code))) {
      this.opts.log.warn({ finding }, 'trust store and region registry disagree');
    }
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private async reloadNow(reason: ReloadReason): Promise<ReloadResult> {
    const { files, log } = this.opts;
    let trustBytes: Buffer;
    let regionBytes: Buffer | undefined;
    try {
      [trustBytes, regionBytes] = await Promise.all([
        readFile(files.trustStorePath),
        files.regionsPath !== undefined ? readFile(files.regionsPath) : Promise.resolve(undefined),
      ]);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'error';
      return this.refuse(reason, `read ${code}`, '', `cannot read the trust store or region registry: ${(err as Error).message}`);
    }
    const version = trustVersion(trustBytes, regionBytes);
    const current = this.live.current;
    if (version === current.version) {
      this.lastRefused = undefined;
      if (reason === 'signal') log.info({ reason, version }, 'trust store unchanged');
      return { outcome: 'unchanged', version };
    }
    let next: TrustSnapshot;
    try {
      next = snapshotFromBytes(files, trustBytes, regionBytes, this.now());
    } catch (err) {
      return this.refuse(reason, version, version, (err as Error).message);
    }
    this.lastRefused = undefined;
    const changes = keyChanges(current.store.publicView(), next.store.publicView());
    try {
      this.live.replace(next);
    } catch (err) {
      // The new store is in force; a consumer failed to act on it (logged, not fatal).
      log.error({ err }, 'a consumer of the trust store failed to apply a reload');
    }
    this.reloads?.inc({ outcome: 'applied' });
    log.info({ reason, version, previous: current.version, changes }, 'trust store reloaded');
    this.warnMismatches(next);
    return { outcome: 'applied', version };
  }

  private refuse(reason: ReloadReason, what: string, version: string, error: string): ReloadResult {
    // A periodic check meets the same bad file every few seconds: say it once. SIGHUP always answers.
    if (reason === 'signal' || this.lastRefused !== what) {
      this.reloads?.inc({ outcome: 'refused' });
      this.opts.log.error({ reason, version, error, inForce: this.live.current.version }, 'trust store reload refused; the store in force stays');
    }
    this.lastRefused = what;
    return { outcome: 'refused', version, error };
  }
}
