import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyBaseLogger } from 'fastify';
import type { Config } from './config';
import type { AppDeps } from './app';
import { RegionRegistry } from './domain/regions';
import { LiveTrust } from './domain/live-trust';
import { readTrustSnapshot, TrustReloader } from './trust-reload';
import { createMetrics } from './metrics';
import { MemoryRegionLog } from './adapters/memory/region-log';
import { MemoryAuditLog } from './adapters/memory/audit-log';
import { MemoryBus } from './adapters/memory/bus';
import { RedisRegionLog } from './adapters/redis/region-log';
import { RedisAuditLog } from './adapters/redis/audit-log';
import { createRedisClient, quitClient } from './adapters/redis/client';
import { NatsBus, hasNatsCredentials, natsAuthOf } from './adapters/nats/bus';
import { openSqliteBackend } from './adapters/sqlite/compose';
import { createVerifyPool } from './ingest/verify-pool';
import { ensureDevTrustStore } from './dev/dev-trust-store';
import { DevDesks } from './dev/dev-desks';
import { MemoryTreeStore } from './adapters/memory/tree-store';
import { RedisTreeStore } from './adapters/redis/tree-store';
import type { TreeStore } from './ports/tree-store';
import { TransparencyLog } from './tlog/service';
import { loadLogSigner } from './tlog/key';

export interface Composition {
  deps: AppDeps;
  /** embedded: SQLite (or memory) log and memory bus; production: Redis and NATS. */
  mode: { log: 'memory' | 'redis' | 'sqlite'; bus: 'memory' | 'nats'; file?: string };
  /** Re-reads the trust store and region registry (SIGHUP, src/server.ts) and watches their files. */
  trust: TrustReloader;
  /** Drains the bus, then quits Redis (shutdown order: after the app stopped accepting). */
  close(): Promise<void>;
}

function readJsonFile(path: string, what: string): unknown {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new Error(`cannot read ${what} ${path}: ${(err as Error).message}`, { cause: err });
  }
}

/** The one composition root: picks adapters from the configuration. */
export async function compose(config: Readonly<Config>, log: FastifyBaseLogger): Promise<Composition> {
  const production = Boolean(config.redisUrl || config.natsUrl);
  let trustStorePath = config.trustStorePath;
  let devStore = false;
  if (!trustStorePath) {
    if (production) throw new Error('CORDON_TRUST_STORE must be set when CORDON_REDIS_URL or CORDON_NATS_URL is set');
    const devRegions = config.regionsPath
      ? RegionRegistry.fromJson(readJsonFile(config.regionsPath, 'region registry'))
      : RegionRegistry.example();
    trustStorePath = ensureDevTrustStore(config.dataDir, devRegions, log.child({ component: 'dev-trust-store' })).path;
    devStore = true;
  }
  // The trust store and region registry in force; the reloader keeps them current (contract §4).
  const trustFiles = { trustStorePath, regionsPath: config.regionsPath };
  const live = new LiveTrust(readTrustSnapshot(trustFiles));
  const { store: trust, regions } = live.current;
  // The console's one-click desks exist only with the development store's own token keys.
  const devDesks = devStore ? DevDesks.fromKeysDir(join(config.dataDir, 'keys'), trust) : undefined;
  const metrics = createMetrics();
  const trustReloader = new TrustReloader(live, {
    files: trustFiles,
    intervalMs: config.trustReloadMs,
    log: log.child({ component: 'trust-reload' }),
    registry: metrics.registry,
  });
  trustReloader.warnMismatches();
  trustReloader.start();

  const closers: Array<() => Promise<void>> = [async () => trustReloader.close()];
  let regionLog: AppDeps['regionLog'];
  let audit: AppDeps['audit'];
  let storeFile: string | undefined;
  let treeStore: TreeStore;
  if (config.store === 'sqlite') {
    const sqlite = openSqliteBackend(config.dataDir, metrics, log.child({ component: 'sqlite' }));
    ({ regionLog, audit, file: storeFile } = sqlite);
    closers.push(sqlite.close);
    // The tree is a function of the log: rebuilt from it at start (not yet kept in the file).
    treeStore = new MemoryTreeStore();
  } else if (config.redisUrl) {
    const redis = createRedisClient(config.redisUrl, {
      // The client names its own lines ({ component: 'redis' }); a child here would repeat the key.
      log,
      sentinels: config.redisSentinels,
      sentinelName: config.redisSentinelName,
      cluster: config.redisCluster,
    });
    regionLog = new RedisRegionLog(redis, { prefix: config.redisKeyPrefix });
    audit = new RedisAuditLog(redis, { prefix: config.redisKeyPrefix });
    treeStore = new RedisTreeStore(redis, { prefix: config.redisKeyPrefix });
    closers.push(() => quitClient(redis));
  } else {
    log.warn({ store: 'memory' }, 'CORDON_STORE=memory: region logs and audit trail are kept in memory only; a restart loses them');
    regionLog = new MemoryRegionLog();
    audit = new MemoryAuditLog();
    treeStore = new MemoryTreeStore();
  }

  const natsAuth = natsAuthOf(config);
  if (config.natsUrl && !hasNatsCredentials(natsAuth)) {
    log.warn(
      { component: 'nats' },
      'NATS without credentials: any client of that server can answer ingest requests or read every alert; see docs/operations.md',
    );
  }
  const bus = config.natsUrl
    ? await NatsBus.connect({
        servers: config.natsUrl.split(','),
        subjectPrefix: config.natsSubjectPrefix,
        name: `cordon-${config.nodeId}`,
        // Both buses bind { component: 'bus' } themselves: a child here would repeat the key.
        log,
        auth: natsAuth,
        inboxPrefix: config.natsInboxPrefix,
        registry: metrics.registry,
      })
    : new MemoryBus({ log });
  // Bus first (drain), then the stores.
  closers.unshift(() => bus.close());
  const verifier = createVerifyPool(config.verifyThreads, log.child({ component: 'verify' }));
  closers.push(() => verifier.close());

  // The transparency log (contract §12): integrates behind the appends, before the stores close.
  let tlog: TransparencyLog | undefined;
  if (config.logTree) {
    const signer = loadLogSigner(
      { keyPath: config.logKey, dataDir: config.dataDir, origin: config.logOrigin, production },
      log.child({ component: 'tlog' }),
    );
    tlog = new TransparencyLog({
      regionLog,
      audit,
      store: treeStore,
      signer,
      originPrefix: config.logOrigin,
      regions: regions.list().map((r) => r.code),
      log: log.child({ component: 'tlog' }),
      witnesses: () => live.store.witnesses(),
    });
    tlog.start();
    const started = tlog;
    closers.unshift(() => started.close());
  }

  return {
    deps: { config, regionLog, bus, audit, trust, regions, live, metrics, now: Date.now, check: verifier.check, devDesks, tlog },
    mode: { log: config.store, bus: config.natsUrl ? 'nats' : 'memory', file: storeFile },
    trust: trustReloader,
    async close() {
      for (const close of closers) {
        await close().catch((err: unknown) => log.warn({ err }, 'error while closing a backend'));
      }
    },
  };
}
