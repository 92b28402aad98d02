import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyBaseLogger } from 'fastify';
import type { Config } from './config';
import type { AppDeps } from './deps';
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
import { TransparencyLog, auditFeedingTree } from './tlog/service';
import { loadLogSigner } from './tlog/key';
import type { TrustStore } from './domain/trust-store';
import type { Metrics } from './metrics';
import type { NatsAuth } from './adapters/nats/bus';
import type { NoteSigner } from './domain/tlog/note';

/**
 * What a caller (a test, a bench) may choose instead of the configuration; everything else is
 * wired as the server wires it. Unset: as configured.
 */
export interface ComposeOverrides {
  /** The clock (milliseconds since the epoch). */
  now?: () => number;
  /** A fixed trust store and region registry instead of the files (nothing reloads them). */
  trust?: { store: TrustStore; regions: RegionRegistry };
  /** A reloadable trust store and registry the caller drives (wins over `trust`; nothing watches files). */
  live?: LiveTrust;
  metrics?: Metrics;
  /** How to log in to NATS, instead of CORDON_NATS_USER / _PASSWORD / _TOKEN / _CREDS. */
  natsAuth?: NatsAuth;
  /** The transparency log's signing key, instead of CORDON_LOG_KEY or the data directory's. */
  logSigner?: NoteSigner;
  /** How long the transparency log lets appends gather before it integrates them. */
  tlogDelayMs?: number;
  /** Where the adapters (bus, Redis, verify pool, tlog) log; default: the composition's log. */
  adapterLog?: FastifyBaseLogger;
  /** Run again on close, after the backends closed (a test's clean-up of its keys, its files). */
  onClose?: () => Promise<void>;
}

export interface Composition {
  deps: AppDeps;
  /** embedded: SQLite (or memory) log and memory bus; production: Redis and NATS. */
  mode: { log: 'memory' | 'redis' | 'sqlite'; bus: 'memory' | 'nats'; file?: string };
  /**
   * Re-reads the trust store and region registry (SIGHUP, src/server.ts) and watches their files;
   * unset when the caller gave the trust store (ComposeOverrides).
   */
  trust: TrustReloader | undefined;
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

/** The one composition root: picks adapters from the configuration (tests: and from `overrides`). */
export async function compose(config: Readonly<Config>, log: FastifyBaseLogger, overrides: ComposeOverrides = {}): Promise<Composition> {
  const production = Boolean(config.redisUrl || config.natsUrl);
  const metrics = overrides.metrics ?? createMetrics();
  const given = overrides.live ?? (overrides.trust ? LiveTrust.fixed(overrides.trust.store, overrides.trust.regions) : undefined);
  let live: LiveTrust;
  let trustReloader: TrustReloader | undefined;
  let devDesks: DevDesks | undefined;
  if (given) {
    live = given;
  } else {
    let trustStorePath = config.trustStorePath;
    let devStore = false;
    if (!trustStorePath) {
      if (production) throw new Error('CORDON_TRUST_STORE must be set when CORDON_REDIS_URL or CORDON_NATS_URL is set');
      const devRegions = config.regionsPath ? RegionRegistry.fromJson(readJsonFile(config.regionsPath, 'region registry')) : RegionRegistry.example();
      trustStorePath = ensureDevTrustStore(config.dataDir, devRegions, log.child({ component: 'dev-trust-store' })).path;
      devStore = true;
    }
    // The trust store and region registry in force; the reloader keeps them current (contract §4).
    const trustFiles = { trustStorePath, regionsPath: config.regionsPath };
    live = new LiveTrust(readTrustSnapshot(trustFiles));
    // The console's one-click desks exist only with the development store's own token keys.
    devDesks = devStore ? DevDesks.fromKeysDir(join(config.dataDir, 'keys'), live.current.store) : undefined;
    trustReloader = new TrustReloader(live, {
      files: trustFiles,
      intervalMs: config.trustReloadMs,
      log: log.child({ component: 'trust-reload' }),
      registry: metrics.registry,
    });
    trustReloader.warnMismatches();
    trustReloader.start();
  }
  const { store: trust, regions } = live.current;
  const adapterLog = overrides.adapterLog ?? log;

  const closers: Array<() => Promise<void>> = [];
  const reloader = trustReloader;
  if (reloader) closers.push(async () => reloader.close());
  let regionLog: AppDeps['regionLog'];
  let audit: AppDeps['audit'];
  let storeFile: string | undefined;
  let treeStore: TreeStore;
  if (config.store === 'sqlite') {
    const sqlite = openSqliteBackend(config.dataDir, metrics, adapterLog.child({ component: 'sqlite' }));
    ({ regionLog, audit, file: storeFile } = sqlite);
    closers.push(sqlite.close);
    // Tiles and checkpoints in the same file: kept across restarts, cosignatures included.
    treeStore = sqlite.treeStore;
  } else if (config.redisUrl) {
    const redis = createRedisClient(config.redisUrl, {
      // The client names its own lines ({ component: 'redis' }); a child here would repeat the key.
      log: adapterLog,
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

  const natsAuth = overrides.natsAuth ?? natsAuthOf(config);
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
        log: adapterLog,
        auth: natsAuth,
        inboxPrefix: config.natsInboxPrefix,
        registry: metrics.registry,
      })
    : new MemoryBus({ log: adapterLog });
  // Bus first (drain), then the stores.
  closers.unshift(() => bus.close());
  const verifier = createVerifyPool(config.verifyThreads, adapterLog.child({ component: 'verify' }));
  closers.push(() => verifier.close());

  // The transparency log (contract §12): integrates behind the appends, before the stores close.
  let tlog: TransparencyLog | undefined;
  if (config.logTree) {
    const signer =
      overrides.logSigner ??
      loadLogSigner({ keyPath: config.logKey, dataDir: config.dataDir, origin: config.logOrigin, production }, log.child({ component: 'tlog' }));
    tlog = new TransparencyLog({
      regionLog,
      audit,
      store: treeStore,
      signer,
      originPrefix: config.logOrigin,
      regions: regions.list().map((r) => r.code),
      log: adapterLog.child({ component: 'tlog' }),
      delayMs: overrides.tlogDelayMs,
      witnesses: () => live.store.witnesses(),
    });
    tlog.start();
    // This node's audit records reach the audit tree with their leaf hash (never read back).
    audit = auditFeedingTree(audit, tlog);
    const started = tlog;
    closers.unshift(() => started.close());
  }

  return {
    deps: {
      config,
      regionLog,
      bus,
      audit,
      trust,
      regions,
      live,
      metrics,
      now: overrides.now ?? Date.now,
      check: verifier.check,
      devDesks,
      tlog,
    },
    mode: { log: config.store, bus: config.natsUrl ? 'nats' : 'memory', file: storeFile },
    trust: trustReloader,
    async close() {
      for (const close of closers) {
        await close().catch((err: unknown) => log.warn({ err }, 'error while closing a backend'));
      }
      await overrides.onClose?.();
    },
  };
}
