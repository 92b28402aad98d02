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
  logLevel: string;
  retentionMaxAlerts?: number;
  retentionMaxAgeDays: number;
  retentionIntervalMs: number;
  dataDir: string;
  nodeId: string;
  redisKeyPrefix: string;
  natsSubjectPrefix: string;
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
  wsReplayBatch: number;
  wsPingMs: number;
  verifyThreads: number;
  positionCheckMs: number;
  shutdownGraceMs: number;
  replayBatch: number;
  trustProxy: boolean;
  /** transparency log (contract §12) */
  logOrigin: string;
  logKey?: string;
  logTree: boolean;
}

const INTEGER_VARS = new Set([
  'CORDON_PORT',
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
  'CORDON_WS_REPLAY_BATCH',
  'CORDON_WS_PING_MS',
  'CORDON_VERIFY_THREADS',
  'CORDON_POSITION_CHECK_MS',
  'CORDON_SHUTDOWN_GRACE_MS',
  'CORDON_REPLAY_BATCH',
]);

const BOOLEAN_VARS = new Set(['CORDON_TRUST_PROXY', 'CORDON_REDIS_CLUSTER', 'CORDON_LOG_TREE']);

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
    if (!name.startsWith('CORDON_') || name.startsWith('CORDON_TEST_') || value === undefined || value === '') continue;
    const v = value.trim();
    if (INTEGER_VARS.has(name) && /^-?\d+$/.test(v)) raw[name] = Number(v);
    else if (BOOLEAN_VARS.has(name) && (v === 'true' || v === 'false')) raw[name] = v === 'true';
    else raw[name] = value;
  }
  const validate = validator('config');
  if (!validate(raw)) {
    const problems = fieldErrors(validate.errors).map((e) => `${e.path.slice(1) || 'config'} ${e.message}`);
    throw new ConfigError(`invalid configuration: ${problems.join('; ')}`);
  }
  if (raw.CORDON_REDIS_CLUSTER === true && raw.CORDON_REDIS_SENTINELS !== undefined) {
    throw new ConfigError('invalid configuration: CORDON_REDIS_CLUSTER and CORDON_REDIS_SENTINELS exclude each other');
  }
  if (raw.CORDON_REDIS_CLUSTER === true && raw.CORDON_REDIS_URL === undefined) {
    throw new ConfigError('invalid configuration: CORDON_REDIS_CLUSTER needs CORDON_REDIS_URL (the seed nodes)');
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
    logLevel: v.CORDON_LOG_LEVEL,
    retentionMaxAlerts: v.CORDON_RETENTION_MAX_ALERTS,
    retentionMaxAgeDays: v.CORDON_RETENTION_MAX_AGE_DAYS,
    retentionIntervalMs: v.CORDON_RETENTION_INTERVAL_MS,
    dataDir: v.CORDON_DATA_DIR,
    nodeId: v.CORDON_NODE_ID ?? `${v.CORDON_HOST}:${v.CORDON_PORT}`,
    redisKeyPrefix: v.CORDON_REDIS_KEY_PREFIX,
    natsSubjectPrefix: v.CORDON_NATS_SUBJECT_PREFIX,
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
    wsReplayBatch: v.CORDON_WS_REPLAY_BATCH,
    wsPingMs: v.CORDON_WS_PING_MS,
    verifyThreads: v.CORDON_VERIFY_THREADS,
    positionCheckMs: v.CORDON_POSITION_CHECK_MS,
    shutdownGraceMs: v.CORDON_SHUTDOWN_GRACE_MS,
    replayBatch: v.CORDON_REPLAY_BATCH,
    trustProxy: v.CORDON_TRUST_PROXY,
    logOrigin: v.CORDON_LOG_ORIGIN,
    logKey: v.CORDON_LOG_KEY,
    logTree: v.CORDON_LOG_TREE,
  });
}
