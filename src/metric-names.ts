/**
 * Every Prometheus metric a node registers, named once (as src/errors.ts names the error codes).
 * The modules that own a metric create it under one of these names; docs/operations.md
 * ("Metrics") lists each one with its meaning, and test/unit/metrics-doc.test.ts keeps the two in
 * step.
 */
export const METRICS = {
  // Ingest (src/metrics.ts)
  INGEST_ACCEPTED: 'cordon_ingest_accepted_total',
  INGEST_REJECTED: 'cordon_ingest_rejected_total',
  INGEST_SECONDS: 'cordon_ingest_seconds',
  // HTTP limits (src/metrics.ts)
  HTTP_CONNECTIONS_REFUSED: 'cordon_http_connections_refused_total',
  // NATS door (src/adapters/nats/bus.ts)
  NATS_INGEST_DROPPED: 'cordon_nats_ingest_dropped_total',
  // Stream (src/ws/hub.ts, src/ws/token-keys.ts)
  WS_DESKS: 'cordon_ws_desks',
  WS_DELIVERIES: 'cordon_ws_deliveries_total',
  WS_RESUMES: 'cordon_ws_resumes_total',
  WS_GAPS: 'cordon_ws_gaps_total',
  WS_SLOW_CLOSES: 'cordon_ws_slow_closes_total',
  WS_REGION_LAG: 'cordon_ws_region_lag',
  WS_LOG_READS: 'cordon_ws_log_reads_total',
  REGION_ROLLBACKS: 'cordon_region_rollbacks_total',
  STREAM_TOKEN_KEY_CLOSES: 'cordon_stream_token_key_closes_total',
  // Retention (src/retention.ts)
  RETENTION_TRIMMED: 'cordon_retention_trimmed_total',
  // Trust store (src/trust-reload.ts)
  TRUST_STORE_VERSION: 'cordon_trust_store_version',
  TRUST_STORE_LOADED_SECONDS: 'cordon_trust_store_loaded_seconds',
  TRUST_RELOADS: 'cordon_trust_reloads_total',
  // Embedded store (src/adapters/sqlite/compose.ts)
  SQLITE_COMMITS: 'cordon_sqlite_commits_total',
  SQLITE_FSYNCS: 'cordon_sqlite_fsyncs_total',
} as const;

export type MetricName = (typeof METRICS)[keyof typeof METRICS];

/** prom-client's default process and Node.js metrics carry this prefix (cordon_process_cpu_seconds_total, ...). */
export const PROCESS_METRICS_PREFIX = 'cordon_process_';
