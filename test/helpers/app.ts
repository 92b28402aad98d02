import type { FastifyInstance } from 'fastify';
import pino from 'pino';
import { buildApp, type AppContext, type AppDeps } from '../../src/app';
import type { NatsAuth } from '../../src/adapters/nats/bus';
import { buildOperatorApp } from '../../src/http/operator';
import { compose } from '../../src/compose';
import { loadConfig, type Config } from '../../src/config';
import { RegionRegistry } from '../../src/domain/regions';
import type { AlertContent, Receipt, Region, Submission, Token } from '../../src/domain/types';
import { createMetrics } from '../../src/metrics';
import { createRedisClient, deleteKeysWithPrefix, quitClient } from '../../src/adapters/redis/client';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeTestTrust } from './keys';
import type { LiveTrust } from '../../src/domain/live-trust';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { SIG_ED25519, noteSigner } from '../../src/domain/tlog/note';
import { TEST_NATS_URL, TEST_REDIS_URL, uniqueKeyPrefix, uniqueSubjectPrefix } from './env';

/** memory adapters; real NATS + Redis; or the embedded SQLite store in a temporary directory (memory bus). */
export type Backend = 'memory' | 'real' | 'sqlite';

export interface TestApp {
  app: FastifyInstance;
  /** what the app was built from (adapters, trust store, config). */
  deps: AppDeps;
  trust: ReturnType<typeof makeTestTrust>;
  regions: RegionRegistry;
  /** Signs content with the alert key of its issuer's state (or `state`). */
  sign: (content: AlertContent, state?: string, iat?: number) => Submission;
  /** A desk token (defaults: iss KG, role desk, clearance secret) with overrides. */
  token(claims?: Partial<Token>): string;
  /** POSTs a signed alert through inject() and returns the receipt (throws on a non-2xx answer). */
  publish(content: AlertContent, state?: string): Promise<Receipt>;
  /** The body of GET /metrics on this node's operator listener (never the public app). */
  metrics(): Promise<string>;
  close(): Promise<void>;
}

export interface TestAppOptions {
  backend: Backend;
  config?: Partial<Record<string, string>>;
  /** Shared between several apps to simulate several nodes on one NATS + Redis. */
  shared?: { keyPrefix: string; subjectPrefix: string };
  regions?: Region[];
  /** Reuse one trust across apps (several nodes must trust the same keys). */
  trust?: ReturnType<typeof makeTestTrust>;
  now?: () => number;
  /** A reloadable trust store and registry (src/trust-reload.ts drives it); `trust` still signs. */
  live?: LiveTrust;
  /** Real backend only: reach Redis through this URL (e.g. a test proxy that can be paused). */
  redisUrl?: string;
  /** Real backend only: another NATS server (e.g. one the test started with authorization), and how to log in. */
  nats?: { url: string; auth?: NatsAuth };
  /** Where the app's log lines go (at CORDON_LOG_LEVEL); default: pino's stdout. */
  logStream?: pino.DestinationStream;
  /** Run the transparency log (contract §12), signing with this key (default: a fresh one). */
  tlog?: { key?: KeyObject; delayMs?: number };
}

/** Unique regions per test run so real-backend tests never see each other's logs. */
export function testRegions(): Region[] {
  const n = () => String(Math.floor(Math.random() * 100)).padStart(2, '0');
  return [
    { code: `KG-CN-${n()}`, name: 'Torugart pass (test)', states: ['KG', 'CN'] },
    { code: `KZ-KG-${n()}`, name: 'Korday (test)', states: ['KZ', 'KG'] },
  ];
}

/**
 * Another node of `t`'s deployment on the real backend: the same Redis keys, NATS subjects, trust
 * and regions (and, given `tlog.key`, the same log key). After `t.close()` it is `t` restarted, as
 * long as `t` was made with `shared` (an app that made its own prefix removes its keys on close).
 */
export function nodeBeside(t: TestApp, opts: Pick<TestAppOptions, 'tlog' | 'config'> = {}): Promise<TestApp> {
  return makeTestApp({
    backend: 'real',
    regions: t.regions.list(),
    trust: t.trust,
    shared: { keyPrefix: t.deps.config.redisKeyPrefix, subjectPrefix: t.deps.config.natsSubjectPrefix },
    ...opts,
  });
}

export function sharedBackend(): { keyPrefix: string; subjectPrefix: string } {
  return { keyPrefix: uniqueKeyPrefix(), subjectPrefix: uniqueSubjectPrefix() };
}

/**
 * Builds the same app the server runs, on memory adapters or on the real NATS and Redis of this
 * machine, isolated by a unique key prefix and subject prefix.
 */
export async function makeTestApp(opts: TestAppOptions): Promise<TestApp> {
  const regionList = opts.regions ?? testRegions();
  const regions = RegionRegistry.fromJson({ regions: regionList });
  const trust = opts.trust ?? makeTestTrust(['KG', 'KZ', 'CN'], regionList);
  const shared = opts.shared ?? sharedBackend();
  const baseConfig: Record<string, string | undefined> = {
    CORDON_LOG_LEVEL: 'silent',
    CORDON_REDIS_KEY_PREFIX: shared.keyPrefix,
    CORDON_NATS_SUBJECT_PREFIX: shared.subjectPrefix,
    CORDON_RATE_LIMIT_MAX: '0',
    // Per-token limits are tested on their own (test/integration/amplification.test.ts). injectWS
    // sockets never finish their closing handshake on the server, so their sessions would keep slots.
    CORDON_READ_RATE_LIMIT_MAX: '0',
    CORDON_AUDIT_RATE_LIMIT_MAX: '0',
    CORDON_WS_MAX_SESSIONS_PER_TOKEN: '0',
  };

  // The server's own wiring (src/compose.ts), with this test's choices: its trust store and
  // registry, clock, metrics, NATS login, log key; on this machine's Redis and NATS, or the
  // embedded store in a temporary directory, or memory.
  let dataDir: string | undefined;
  let backendConfig: Record<string, string>;
  if (opts.backend === 'real') {
    backendConfig = {
      CORDON_STORE: 'redis',
      CORDON_REDIS_URL: opts.redisUrl ?? TEST_REDIS_URL,
      CORDON_NATS_URL: opts.nats?.url ?? TEST_NATS_URL,
    };
  } else {
    // A directory of this app's own, removed on close (never .cordon/): the store file, the log key.
    dataDir = mkdtempSync(join(tmpdir(), `cordon-test-${opts.backend}-`));
    // Signatures on the event loop, as these backends always had them (the real one: on a worker).
    backendConfig = { CORDON_STORE: opts.backend, CORDON_DATA_DIR: dataDir, CORDON_VERIFY_THREADS: '0' };
  }
  const config: Readonly<Config> = loadConfig({
    ...baseConfig,
    ...backendConfig,
    // The transparency log only when the test asks for it.
    CORDON_LOG_TREE: opts.tlog ? 'true' : 'false',
    ...opts.config,
  });
  const logger = opts.logStream ? pino({ level: config.logLevel }, opts.logStream) : pino({ level: config.logLevel });
  const composition = await compose(config, logger, {
    now: opts.now,
    trust: { store: trust.store, regions },
    live: opts.live,
    metrics: createMetrics({ defaultMetrics: false }),
    natsAuth: opts.nats?.auth,
    logSigner: opts.tlog ? noteSigner(config.logOrigin, SIG_ED25519, opts.tlog.key ?? generateKeyPairSync('ed25519').privateKey) : undefined,
    tlogDelayMs: opts.tlog?.delayMs,
    adapterLog: pino({ level: 'silent' }),
    async onClose() {
      if (dataDir) rmSync(dataDir, { recursive: true, force: true });
      // An app that made its own prefix removes its keys; shared prefixes belong to the test.
      if (opts.backend === 'real' && !opts.shared) {
        const redis = createRedisClient(opts.redisUrl ?? TEST_REDIS_URL);
        await deleteKeysWithPrefix(redis, shared.keyPrefix).finally(() => quitClient(redis));
      }
    },
  });
  const deps = composition.deps;
  const app = await buildApp(deps, { logger });
  await app.ready();

  const sign = (content: AlertContent, state?: string, iat?: number) => trust.sign(content, state, iat);
  let operator: FastifyInstance | undefined;
  return {
    app,
    deps,
    trust,
    regions,
    sign,
    token: (claims = {}) => trust.token({ iss: 'KG', sub: 'desk-bishkek', role: 'desk', clearance: 'secret', ...claims }),
    async publish(content, state) {
      const res = await app.inject({ method: 'POST', url: '/v1/alerts', payload: sign(content, state) });
      if (res.statusCode !== 201 && res.statusCode !== 200) {
        throw new Error(`publish failed: ${res.statusCode} ${res.body}`);
      }
      return res.json<Receipt>();
    },
    async metrics() {
      operator ??= await buildOperatorApp(deps.metrics, { logger: pino({ level: 'silent' }) });
      return (await operator.inject({ url: '/metrics' })).body;
    },
    async close() {
      await operator?.close();
      await app.close();
      await composition.close();
    },
  };
}

export type { AppContext };
