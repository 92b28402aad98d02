import { isIP } from 'node:net';
import { validator, fieldErrors } from './domain/schemas';

/**
 * The only module that reads the environment. Values are validated against schemas/config.json,
 * given the schema's defaults (ajv useDefaults), frozen and handed down typed.
 */
export interface Config {
  port: number;
  host: string;
  natsUrl?: string;
  redisUrl?: string;
  /** Redis Sentinels (host, port) to find the primary through; CORDON_REDIS_URL gives credentials and db. */
  redisSentinels?: Array<{ host: string; port: number }>;
  redisSentinelName: string;
  /** CORDON_REDIS_URL names seed nodes of a Redis Cluster. */
  redisCluster: boolean;
  trustStorePath?: string;
  regionsPath?: string;
  /** How often the trust store and region registry files are checked for changes. */
  trustReloadMs: number;
  /** Longest accepted token lifetime (exp - iat). */
  tokenMaxTtlS: number;
  logLevel: string;
  retentionMaxAlerts?: number;
  retentionMaxAgeDays: number;
  retentionIntervalMs: number;
  dataDir: string;
  /** where region logs and the audit trail live: sqlite (CORDON_DATA_DIR/cordon.db), memory or redis. */
  store: 'sqlite' | 'memory' | 'redis';
  nodeId: string;
  redisKeyPrefix: string;
  natsSubjectPrefix: string;
  /** NATS credentials (at most one method: user and password, token, NKey seed file, .creds file). */
  natsUser?: string;
  natsPassword?: string;
  natsToken?: string;
  natsNkeySeedFile?: string;
  natsCredsFile?: string;
  /** NATS TLS: any of these requires TLS; cert and key for mutual TLS. */
  natsTlsCaFile?: string;
  natsTlsCertFile?: string;
  natsTlsKeyFile?: string;
  /** Ingest replies go only to reply subjects under `<natsInboxPrefix>.`. */
  natsInboxPrefix: string;
  maxBodyBytes: number;
  maxJsonDepth: number;
  sigMaxAgeS: number;
  sigMaxSkewS: number;
  rateLimitMax: number;
  rateLimitWindowMs: number;
  wsMaxQueueBytes: number;
  wsMaxQueueFrames: number;
  wsMaxFrameBytes: number;
  wsMaxFramesPerS: number;
  wsMaxSessionsPerToken: number;
  readRateLimitMax: number;
  auditRateLimitMax: number;
  tokenRateLimitWindowMs: number;
  pageMaxExamined: number;
  wsReplayBatch: number;
  wsPingMs: number;
  verifyThreads: number;
  positionCheckMs: number;
  wsLogLostCloseMs: number;
  shutdownGraceMs: number;
  replayBatch: number;
  /**
   * Which peers may set X-Forwarded-For: `false` (none), a number of proxy hops in front of the
   * node, or the proxies' addresses and CIDR ranges. Never every hop.
   */
  trustProxy: false | number | string[];
  /** Node's http server limits (slow and hostile clients): contract §11 v1.1 "More settings". */
  httpHeadersTimeoutMs: number;
  httpRequestTimeoutMs: number;
  httpKeepAliveTimeoutMs: number;
  httpIdleTimeoutMs: number;
  httpMaxConnections: number;
  /** The operator listener for /metrics (contract §8 v1.1); never the public port. */
  metricsEnabled: boolean;
  metricsHost: string;
  metricsPort: number;
  /** transparency log (contract §12) */
  logOrigin: string;
  logKey?: string;
  logTree: boolean;
}

const INTEGER_VARS = new Set([
  'CORDON_PORT',
  'CORDON_TRUST_RELOAD_MS',
  'CORDON_TOKEN_MAX_TTL_S',
  'CORDON_RETENTION_MAX_ALERTS',
  'CORDON_RETENTION_MAX_AGE_DAYS',
  'CORDON_RETENTION_INTERVAL_MS',
  'CORDON_MAX_BODY_BYTES',
  'CORDON_MAX_JSON_DEPTH',
  'CORDON_SIG_MAX_AGE_S',
  'CORDON_SIG_MAX_SKEW_S',
  'CORDON_RATE_LIMIT_MAX',
  'CORDON_RATE_LIMIT_WINDOW_MS',
  'CORDON_WS_MAX_QUEUE_BYTES',
  'CORDON_WS_MAX_QUEUE_FRAMES',
  'CORDON_WS_MAX_FRAME_BYTES',
  'CORDON_WS_MAX_FRAMES_PER_S',
  'CORDON_WS_MAX_SESSIONS_PER_TOKEN',
  'CORDON_READ_RATE_LIMIT_MAX',
  'CORDON_AUDIT_RATE_LIMIT_MAX',
  'CORDON_TOKEN_RATE_LIMIT_WINDOW_MS',
  'CORDON_PAGE_MAX_EXAMINED',
  'CORDON_WS_REPLAY_BATCH',
  'CORDON_WS_PING_MS',
  'CORDON_VERIFY_THREADS',
  'CORDON_POSITION_CHECK_MS',
  'CORDON_WS_LOG_LOST_CLOSE_MS',
  'CORDON_SHUTDOWN_GRACE_MS',
  'CORDON_REPLAY_BATCH',
  'CORDON_HTTP_HEADERS_TIMEOUT_MS',
  'CORDON_HTTP_REQUEST_TIMEOUT_MS',
  'CORDON_HTTP_KEEP_ALIVE_TIMEOUT_MS',
  'CORDON_HTTP_IDLE_TIMEOUT_MS',
  'CORDON_HTTP_MAX_CONNECTIONS',
  'CORDON_METRICS_PORT',
]);

const BOOLEAN_VARS = new Set(['CORDON_TRUST_PROXY', 'CORDON_REDIS_CLUSTER', 'CORDON_METRICS_ENABLED', 'CORDON_LOG_TREE']);

/** Read by the `cordon` CLI only (src/cli), never by a node: a shell that exports them still starts one. */
export const CLI_VARS: ReadonlySet<string> = new Set(['CORDON_TOKEN', 'CORDON_TOKEN_FILE']);

/** The known variable closest to a misspelt one (edit distance at most 3), if any. */
export function didYouMean(name: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 4;
  for (const k of known) {
    const d = editDistance(name, k);
    if (d < bestDistance) [best, bestDistance] = [k, d];
  }
  return best;
}

/** Levenshtein distance, with a swap of two neighbours counting one (CORDON_PROT → CORDON_PORT). */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** The process environment, for the CLI, which reads a few CORDON_* defaults of its own. */
export function processEnvironment(): Readonly<Record<string, string | undefined>> {
  return process.env;
}

/** Builds the configuration from an environment-like record (process.env in the server). */
export function loadConfig(env: Readonly<Record<string, string | undefined>> = process.env): Readonly<Config> {
  const raw: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith('CORDON_') || name.startsWith('CORDON_TEST_') || CLI_VARS.has(name) || value === undefined || value === '') continue;
    const v = value.trim();
    if (INTEGER_VARS.has(name) && /^-?\d+$/.test(v)) raw[name] = Number(v);
    else if (BOOLEAN_VARS.has(name) && (v === 'true' || v === 'false')) raw[name] = v === 'true';
    else raw[name] = value;
  }
  if (raw.CORDON_TRUST_PROXY === true) {
    throw new ConfigError(
      "invalid configuration: CORDON_TRUST_PROXY=true would trust every hop, so any client could choose its own address; give the number of proxy hops (1 behind the shipped HAProxy) or the proxies' addresses",
    );
  }
  const validate = validator('config');
  if (!validate(raw)) {
    const known = Object.keys((validate.schema as { properties?: object }).properties ?? {});
    const problems = fieldErrors(validate.errors).map((e) => {
      const name = e.path.slice(1);
      const guess = e.message === 'is not allowed' ? didYouMean(name, known) : undefined;
      return `${name || 'config'} ${e.message}${guess ? ` (did you mean ${guess}?)` : ''}`;
    });
    throw new ConfigError(`invalid configuration: ${problems.join('; ')}`);
  }
  if (raw.CORDON_REDIS_CLUSTER === true && raw.CORDON_REDIS_SENTINELS !== undefined) {
    throw new ConfigError('invalid configuration: CORDON_REDIS_CLUSTER and CORDON_REDIS_SENTINELS exclude each other');
  }
  if (raw.CORDON_REDIS_CLUSTER === true && raw.CORDON_REDIS_URL === undefined) {
    throw new ConfigError('invalid configuration: CORDON_REDIS_CLUSTER needs CORDON_REDIS_URL (the seed nodes)');
  }
  natsChecks(raw);
  if (Number(raw.CORDON_HTTP_HEADERS_TIMEOUT_MS) > Number(raw.CORDON_HTTP_REQUEST_TIMEOUT_MS)) {
    throw new ConfigError('invalid configuration: CORDON_HTTP_HEADERS_TIMEOUT_MS must not exceed CORDON_HTTP_REQUEST_TIMEOUT_MS');
  }
  if (raw.CORDON_STORE === 'redis' && raw.CORDON_REDIS_URL === undefined) {
    throw new ConfigError('invalid configuration: CORDON_STORE=redis needs CORDON_REDIS_URL');
  }
  if ((raw.CORDON_STORE === 'sqlite' || raw.CORDON_STORE === 'memory') && raw.CORDON_REDIS_URL !== undefined) {
    throw new ConfigError(`invalid configuration: CORDON_STORE=${String(raw.CORDON_STORE)} and CORDON_REDIS_URL exclude each other`);
  }
  const v = raw as Record<string, never>;
  return Object.freeze({
    port: v.CORDON_PORT,
    host: v.CORDON_HOST,
    natsUrl: v.CORDON_NATS_URL,
    redisUrl: v.CORDON_REDIS_URL,
    redisSentinels: (v.CORDON_REDIS_SENTINELS as string | undefined)?.split(',').map((hp) => {
      const i = hp.lastIndexOf(':');
      return { host: hp.slice(0, i), port: Number(hp.slice(i + 1)) };
    }),
    redisSentinelName: v.CORDON_REDIS_SENTINEL_NAME,
    redisCluster: v.CORDON_REDIS_CLUSTER,
    trustStorePath: v.CORDON_TRUST_STORE,
    regionsPath: v.CORDON_REGIONS,
    trustReloadMs: v.CORDON_TRUST_RELOAD_MS,
    tokenMaxTtlS: v.CORDON_TOKEN_MAX_TTL_S,
    logLevel: v.CORDON_LOG_LEVEL,
    retentionMaxAlerts: v.CORDON_RETENTION_MAX_ALERTS,
    retentionMaxAgeDays: v.CORDON_RETENTION_MAX_AGE_DAYS,
    retentionIntervalMs: v.CORDON_RETENTION_INTERVAL_MS,
    dataDir: v.CORDON_DATA_DIR,
    store: v.CORDON_STORE ?? (v.CORDON_REDIS_URL ? 'redis' : 'sqlite'),
    nodeId: v.CORDON_NODE_ID ?? `${String(v.CORDON_HOST)}:${String(v.CORDON_PORT)}`,
    redisKeyPrefix: v.CORDON_REDIS_KEY_PREFIX,
    natsSubjectPrefix: v.CORDON_NATS_SUBJECT_PREFIX,
    natsUser: v.CORDON_NATS_USER,
    natsPassword: v.CORDON_NATS_PASSWORD,
    natsToken: v.CORDON_NATS_TOKEN,
    natsNkeySeedFile: v.CORDON_NATS_NKEY_SEED_FILE,
    natsCredsFile: v.CORDON_NATS_CREDS_FILE,
    natsTlsCaFile: v.CORDON_NATS_TLS_CA_FILE,
    natsTlsCertFile: v.CORDON_NATS_TLS_CERT_FILE,
    natsTlsKeyFile: v.CORDON_NATS_TLS_KEY_FILE,
    natsInboxPrefix: v.CORDON_NATS_INBOX_PREFIX,
    maxBodyBytes: v.CORDON_MAX_BODY_BYTES,
    maxJsonDepth: v.CORDON_MAX_JSON_DEPTH,
    sigMaxAgeS: v.CORDON_SIG_MAX_AGE_S,
    sigMaxSkewS: v.CORDON_SIG_MAX_SKEW_S,
    rateLimitMax: v.CORDON_RATE_LIMIT_MAX,
    rateLimitWindowMs: v.CORDON_RATE_LIMIT_WINDOW_MS,
    wsMaxQueueBytes: v.CORDON_WS_MAX_QUEUE_BYTES,
    wsMaxQueueFrames: v.CORDON_WS_MAX_QUEUE_FRAMES,
    wsMaxFrameBytes: v.CORDON_WS_MAX_FRAME_BYTES,
    wsMaxFramesPerS: v.CORDON_WS_MAX_FRAMES_PER_S,
    wsMaxSessionsPerToken: v.CORDON_WS_MAX_SESSIONS_PER_TOKEN,
    readRateLimitMax: v.CORDON_READ_RATE_LIMIT_MAX,
    auditRateLimitMax: v.CORDON_AUDIT_RATE_LIMIT_MAX,
    tokenRateLimitWindowMs: v.CORDON_TOKEN_RATE_LIMIT_WINDOW_MS,
    pageMaxExamined: v.CORDON_PAGE_MAX_EXAMINED,
    wsReplayBatch: v.CORDON_WS_REPLAY_BATCH,
    wsPingMs: v.CORDON_WS_PING_MS,
    verifyThreads: v.CORDON_VERIFY_THREADS,
    positionCheckMs: v.CORDON_POSITION_CHECK_MS,
    wsLogLostCloseMs: v.CORDON_WS_LOG_LOST_CLOSE_MS,
    shutdownGraceMs: v.CORDON_SHUTDOWN_GRACE_MS,
    replayBatch: v.CORDON_REPLAY_BATCH,
    trustProxy: trustedProxies(v.CORDON_TRUST_PROXY),
    httpHeadersTimeoutMs: v.CORDON_HTTP_HEADERS_TIMEOUT_MS,
    httpRequestTimeoutMs: v.CORDON_HTTP_REQUEST_TIMEOUT_MS,
    httpKeepAliveTimeoutMs: v.CORDON_HTTP_KEEP_ALIVE_TIMEOUT_MS,
    httpIdleTimeoutMs: v.CORDON_HTTP_IDLE_TIMEOUT_MS,
    httpMaxConnections: v.CORDON_HTTP_MAX_CONNECTIONS,
    metricsEnabled: v.CORDON_METRICS_ENABLED,
    metricsHost: v.CORDON_METRICS_HOST,
    metricsPort: v.CORDON_METRICS_PORT,
    logOrigin: v.CORDON_LOG_ORIGIN,
    logKey: v.CORDON_LOG_KEY,
    logTree: v.CORDON_LOG_TREE,
  });
}

/**
 * The CORDON_NATS_* settings of an environment, alone and validated like the node's: for CLI
 * commands that talk to NATS as a client (a gateway's login, TLS files, inbox prefix).
 */
export function loadNatsClientConfig(env: Readonly<Record<string, string | undefined>>): Readonly<Config> {
  return loadConfig(Object.fromEntries(Object.entries(env).filter(([name]) => name.startsWith('CORDON_NATS_'))));
}

/** NATS credentials come in pairs and as one method: a server accepts only one of them. */
function natsChecks(raw: Record<string, unknown>): void {
  const has = (name: string) => raw[name] !== undefined;
  for (const [a, b] of [
    ['CORDON_NATS_USER', 'CORDON_NATS_PASSWORD'],
    ['CORDON_NATS_TLS_CERT_FILE', 'CORDON_NATS_TLS_KEY_FILE'],
  ]) {
    if (has(a) !== has(b)) throw new ConfigError(`invalid configuration: ${has(a) ? a : b} needs ${has(a) ? b : a}`);
  }
  const methods = ['CORDON_NATS_USER', 'CORDON_NATS_TOKEN', 'CORDON_NATS_NKEY_SEED_FILE', 'CORDON_NATS_CREDS_FILE'].filter(has);
  if (methods.length > 1) {
    throw new ConfigError(`invalid configuration: give one NATS authentication method, not ${methods.join(' and ')}`);
  }
}

/**
 * CORDON_TRUST_PROXY: `false`, a hop count, or addresses / CIDR ranges (the schema admits the
 * shapes; each address is checked here so a typo fails at start, not on the first request).
 */
function trustedProxies(value: false | string): false | number | string[] {
  if (value === false) return false;
  if (/^\d+$/.test(value.trim())) {
    const hops = Number(value);
    if (hops < 1 || hops > 99) throw new ConfigError('invalid configuration: CORDON_TRUST_PROXY: a hop count is 1 to 99');
    return hops;
  }
  const list = value.split(',').map((a) => a.trim());
  for (const entry of list) {
    const [address, bits, extra] = entry.split('/');
    const family = isIP(address);
    const max = family === 4 ? 32 : 128;
    const validBits = bits === undefined || (/^\d{1,3}$/.test(bits) && Number(bits) <= max);
    if (family === 0 || !validBits || extra !== undefined) {
      throw new ConfigError(`invalid configuration: CORDON_TRUST_PROXY: ${entry} is not an IP address or CIDR range`);
    }
  }
  return list;
}
