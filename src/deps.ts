import type { Config } from './config';
import type { RegionLog } from './ports/region-log';
import type { Bus } from './ports/bus';
import type { AuditLog } from './ports/audit-log';
import type { TrustStore } from './domain/trust-store';
import type { LiveTrust } from './domain/live-trust';
import type { RegionRegistry } from './domain/regions';
import type { Metrics } from './metrics';
import type { SubmissionCheck } from './domain/signature';
import type { TransparencyLog } from './tlog/service';
import type { DevDesks } from './dev/dev-desks';

/**
 * Everything the app needs, chosen by the composition root (src/compose.ts). Its own module, so
 * that what consumes it (the ingest pipeline, the plugins) never imports src/app.ts back.
 */
export interface AppDeps {
  config: Readonly<Config>;
  regionLog: RegionLog;
  bus: Bus;
  audit: AuditLog;
  trust: TrustStore;
  regions: RegionRegistry;
  /** The reloadable trust store and region registry (src/trust-reload.ts); unset: trust and regions never change. */
  live?: LiveTrust;
  metrics: Metrics;
  /** Milliseconds since the epoch; tests may pin it. */
  now: () => number;
  /** Ingest's signature check on worker threads (src/ingest/verify-pool.ts); unset: on the event loop. */
  check?: SubmissionCheck;
  /** One-click development desks for the console; set only with the development trust store. */
  devDesks?: DevDesks;
  /** The transparency log (contract §12); unset when it is off. */
  tlog?: TransparencyLog;
}
