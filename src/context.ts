import type { AppDeps } from './deps';
import type { LiveTrust } from './domain/live-trust';
import type { TokenPolicy } from './domain/tokens';
import type { Ingest } from './ingest/pipeline';
import type { LogEntry } from './ports/region-log';

/**
 * Shared across the plugins of one app that need most of it (the NATS door, retention); set by
 * buildApp. The route plugins (src/http/*.ts, the stream in src/ws/stream.ts) take narrower options.
 */
export interface AppContext extends AppDeps {
  /** `trust` and `regions` read through it: always the snapshot in force. */
  live: LiveTrust;
  tokenPolicy: TokenPolicy;
  ingest: Ingest;
  /** true once shutdown has begun: readiness fails and new work is refused. */
  shuttingDown: { value: boolean };
  /**
   * Told of every entry this node's own appends stored (the log's answer, never a bus message):
   * the hub delivers it at once when it is the next seq, instead of waiting for the doorbell.
   */
  appended: Set<(entry: LogEntry) => void>;
}
