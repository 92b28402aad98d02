import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { METRICS, PROCESS_METRICS_PREFIX } from './metric-names';

/**
 * One Prometheus registry per app instance (tests run several apps in one process). Modules that
 * own a metric create it with `registers: [metrics.registry]`.
 */
export interface Metrics {
  registry: Registry;
  ingestAccepted: Counter<'door' | 'outcome'>;
  ingestRejected: Counter<'door' | 'code'>;
  ingestSeconds: Histogram<'door'>;
}

export function createMetrics(opts: { defaultMetrics?: boolean } = {}): Metrics {
  const registry = new Registry();
  if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: registry, prefix: PROCESS_METRICS_PREFIX });
  return {
    registry,
    ingestAccepted: new Counter({
      name: METRICS.INGEST_ACCEPTED,
      help: 'Submissions answered with a receipt, by door (http|nats) and outcome (new|duplicate)',
      labelNames: ['door', 'outcome'],
      registers: [registry],
    }),
    ingestRejected: new Counter({
      name: METRICS.INGEST_REJECTED,
      help: 'Submissions rejected, by door and error code',
      labelNames: ['door', 'code'],
      registers: [registry],
    }),
    ingestSeconds: new Histogram({
      name: METRICS.INGEST_SECONDS,
      help: 'Time from body received to answer',
      labelNames: ['door'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers: [registry],
    }),
  };
}

export interface HttpMetrics {
  /** connections the HTTP layer refused or cut, by error code (MAX_CONNECTIONS: over the bound). */
  refused: Counter<'code'>;
}

/** The public listener's own metrics; reused when several apps share a registry (tests). */
export function createHttpMetrics(registry: Registry): HttpMetrics {
  const name = METRICS.HTTP_CONNECTIONS_REFUSED;
  const existing = registry.getSingleMetric(name) as Counter<'code'> | undefined;
  return {
    refused:
      existing ??
      new Counter({
        name,
        help: 'Requests and connections refused by the HTTP layer, by code (REQUEST_TIMEOUT, REQUEST_MALFORMED_HTTP, REQUEST_HEADERS_TOO_LARGE, MAX_CONNECTIONS)',
        labelNames: ['code'],
        registers: [registry],
      }),
  };
}
