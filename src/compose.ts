import { readFileSync } from 'node:fs';
import type { FastifyBaseLogger } from 'fastify';
import type { Config } from './config';
import type { AppDeps } from './app';
import { RegionRegistry } from './domain/regions';
import { TrustStore } from './domain/trust-store';
import { createMetrics } from './metrics';
import { MemoryRegionLog } from './adapters/memory/region-log';
import { MemoryAuditLog } from './adapters/memory/audit-log';
import { MemoryBus } from './adapters/memory/bus';
import { RedisRegionLog } from './adapters/redis/region-log';
import { RedisAuditLog } from './adapters/redis/audit-log';
import { createRedisClient, quitClient } from './adapters/redis/client';
import { NatsBus } from './adapters/nats/bus';
import { createVerifyPool } from './ingest/verify-pool';
import { ensureDevTrustStore } from './dev/dev-trust-store';
import { MemoryTreeStore } from './adapters/memory/tree-store';
import { RedisTreeStore } from './adapters/redis/tree-store';
import type { TreeStore } from './ports/tree-store';
import { TransparencyLog } from './tlog/service';
import { loadLogSigner } from './tlog/key';

export interface Composition {
  deps: AppDeps;
  /** embedded: memory log and bus; production: Redis and NATS. */
  mode: { log: 'memory' | 'redis'; bus: 'memory' | 'nats' };
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
  const regions = config.regionsPath
    ? RegionRegistry.fromJson(readJsonFile(config.regionsPath, 'region registry'))
    : RegionRegistry.example();

  const production = Boolean(config.redisUrl || config.natsUrl);
  let trust: TrustStore;
  if (config.trustStorePath) {
    trust = TrustStore.fromJson(readJsonFile(config.trustStorePath, 'trust store'));
  } else if (production) {
    throw new Error('CORDON_TRUST_STORE must be set when CORDON_REDIS_URL or CORDON_NATS_URL is set');
  } else {
    trust = ensureDevTrustStore(config.dataDir, regions, log.child({ component: 'dev-trust-store' })).store;
  }

  for (const finding of trust.mismatches((code) => regions.get(code))) {
    log.warn({ component: 'trust-store' }, `trust store and region registry disagree: ${finding}`);
  }

  const closers: Array<() => Promise<void>> = [];
  let regionLog: AppDeps['regionLog'];
  let audit: AppDeps['audit'];
  let treeStore: TreeStore;
  if (config.redisUrl) {
    const redis = createRedisClient(config.redisUrl, {
      log: log.child({ component: 'redis' }) as never,
      sentinels: config.redisSentinels,
      sentinelName: config.redisSentinelName,
      cluster: config.redisCluster,
    });
    regionLog = new RedisRegionLog(redis, { prefix: config.redisKeyPrefix });
    audit = new RedisAuditLog(redis, { prefix: config.redisKeyPrefix });
    treeStore = new RedisTreeStore(redis, { prefix: config.redisKeyPrefix });
    closers.push(() => quitClient(redis));
  } else {
    regionLog = new MemoryRegionLog();
    audit = new MemoryAuditLog();
    treeStore = new MemoryTreeStore();
  }

  const bus = config.natsUrl
    ? await NatsBus.connect({
        servers: config.natsUrl.split(','),
        subjectPrefix: config.natsSubjectPrefix,
        name: `cordon-${config.nodeId}`,
        log: log.child({ component: 'nats' }),
      })
    : new MemoryBus({ log: log.child({ component: 'bus' }) });
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
      witnesses: () => trust.witnesses(),
    });
    tlog.start();
    const started = tlog;
    closers.unshift(() => started.close());
  }

  return {
    deps: { config, regionLog, bus, audit, trust, regions, metrics: createMetrics(), now: Date.now, check: verifier.check, tlog },
    mode: { log: config.redisUrl ? 'redis' : 'memory', bus: config.natsUrl ? 'nats' : 'memory' },
    async close() {
      for (const close of closers) {
        await close().catch((err: unknown) => log.warn({ err }, 'error while closing a backend'));
      }
    },
  };
}
