import { join, resolve } from 'node:path';
import type { FastifyBaseLogger } from 'fastify';
import { Counter } from 'prom-client';
import type { Metrics } from '../../metrics';
import { METRICS } from '../../metric-names';
import type { AuditLog } from '../../ports/audit-log';
import type { RegionLog } from '../../ports/region-log';
import type { TreeStore } from '../../ports/tree-store';
import { SqliteAuditLog } from './audit-log';
import { SqliteRegionLog } from './region-log';
import { SqliteStore, STORE_FILE } from './store';
import { SqliteTreeStore } from './tree-store';

/** The store file of a data directory (what `cordon backup` and `cordon migrate` read by default). */
export function storeFileOf(dataDir: string): string {
  return resolve(join(dataDir, STORE_FILE));
}

/**
 * Opens the embedded store of CORDON_DATA_DIR for the composition root: the region log, the
 * audit trail and the transparency log's trees over one file, its commit and fsync counters in
 * /metrics (a store of an older schema version is upgraded in place). Throws StoreDamagedError
 * (the node does not start) when the file exists but cannot be trusted.
 */
export function openSqliteBackend(
  dataDir: string,
  metrics: Metrics,
  log: Pick<FastifyBaseLogger, 'info' | 'warn'>,
): { regionLog: RegionLog; audit: AuditLog; treeStore: TreeStore; file: string; store: SqliteStore; close: () => Promise<void> } {
  const file = storeFileOf(dataDir);
  const store = SqliteStore.open(file);
  if (store.created) {
    log.warn({ file }, 'new embedded store created: every region log starts empty, with a new epoch');
  } else {
    log.info({ file }, 'embedded store opened and checked');
  }
  const counter = (name: string, help: string, read: () => number) => {
    let seen = 0;
    new Counter({
      name,
      help,
      registers: [metrics.registry],
      collect() {
        const now = read();
        this.inc(now - seen);
        seen = now;
      },
    });
  };
  counter(METRICS.SQLITE_COMMITS, 'Transactions committed by the embedded store (one per batch of writes)', () => store.stats.commits);
  counter(METRICS.SQLITE_FSYNCS, 'fsyncs issued by the embedded store: one per commit, two per checkpoint', () => store.stats.fsyncs);
  return {
    regionLog: new SqliteRegionLog(store),
    audit: new SqliteAuditLog(store),
    treeStore: new SqliteTreeStore(store),
    file,
    store,
    close: () => store.close(),
  };
}
