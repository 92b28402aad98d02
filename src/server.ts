import type { AddressInfo } from 'node:net';
import closeWithGrace from 'close-with-grace';
import pino from 'pino';
import { loadConfig } from './config';
import { compose } from './compose';
import { buildApp, REDACT_PATHS } from './app';
import { buildOperatorApp } from './http/operator';
import { listenFailure, startupBanner } from './startup-banner';

/** The start line names the store (and, for SQLite, its file in the `file` field). */
const STARTED = {
  sqlite: 'cordon started (embedded mode, SQLite store: region logs and audit trail kept in the file named)',
  memory: 'cordon started (in-memory store: nothing is kept after exit)',
  redis: 'cordon started',
} as const;

/**
 * The only file that listens and handles signals. Shutdown order: stop accepting, close desks with
 * 4001 (the stream plugin's preClose hook), drain NATS, quit Redis, exit — bounded by a grace timer.
 */
async function main(): Promise<void> {
  const config = loadConfig();
  const logger = pino({ level: config.logLevel, redact: REDACT_PATHS });
  const composition = await compose(config, logger);
  const app = await buildApp(composition.deps, { logger });
  // /metrics only on the operator listener, never on the public port (contract §8 v1.1).
  const operator = config.metricsEnabled ? await buildOperatorApp(composition.deps.metrics, { logger }) : undefined;

  // SIGHUP reloads the trust store and region registry (contract §4); it does not stop the node.
  process.on('SIGHUP', () => void composition.trust?.reload('signal'));
  closeWithGrace({ delay: config.shutdownGraceMs, logger, skip: ['SIGHUP'] }, async ({ signal, err }) => {
    if (err) logger.error({ err }, 'fatal error, shutting down');
    else logger.info({ signal }, 'shutting down');
    await app.close();
    await operator?.close();
    await composition.close();
    logger.info('shutdown complete');
  });

  await app.listen({ port: config.port, host: config.host }).catch((err: unknown) => {
    throw listenFailure(err, 'CORDON_PORT', config.host, config.port);
  });
  if (operator) {
    // Metrics are for the operator: a node that cannot bind them still carries alerts.
    await operator.listen({ port: config.metricsPort, host: config.metricsHost }).then(
      (address) => logger.info({ address }, 'operator listener (/metrics) started'),
      (err: unknown) =>
        logger.error(
          { err, host: config.metricsHost, port: config.metricsPort, setting: 'CORDON_METRICS_PORT' },
          'operator listener could not start; /metrics unavailable',
        ),
    );
  }
  logger.info(
    { node: config.nodeId, log: composition.mode.log, store: composition.mode.log, file: composition.mode.file, bus: composition.mode.bus, port: config.port },
    STARTED[composition.mode.log],
  );
  // For people: where to go next, beside the JSON log (stderr, so log pipelines on stdout stay JSON).
  const port = (app.server.address() as AddressInfo | null)?.port ?? config.port;
  process.stderr.write(startupBanner({ host: config.host, port, ...composition.mode }) + '\n');
}

main().catch((err: unknown) => {
  // The logger may not exist yet (bad configuration): write one JSON line to stderr and exit.
  process.stderr.write(JSON.stringify({ level: 60, msg: 'cordon failed to start', err: String(err) }) + '\n');
  process.stderr.write(`cordon failed to start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
