import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLI_VARS, ConfigError, loadConfig, type Config } from '../../src/config';

const ROOT = join(__dirname, '..', '..');

interface PropertySchema {
  type?: string;
  enum?: string[];
  minimum?: number;
  maximum?: number;
  pattern?: string;
  default?: unknown;
}

const schema = JSON.parse(readFileSync(join(ROOT, 'schemas', 'config.json'), 'utf8')) as {
  additionalProperties: boolean;
  properties: Record<string, PropertySchema>;
};
const VARIABLES = Object.keys(schema.properties);

/** CORDON_RETENTION_MAX_AGE_DAYS -> retentionMaxAgeDays; the two paths are named for what they hold. */
const FIELD_EXCEPTIONS: Record<string, keyof Config> = {
  CORDON_TRUST_STORE: 'trustStorePath',
  CORDON_REGIONS: 'regionsPath',
};
function fieldOf(variable: string): keyof Config {
  if (FIELD_EXCEPTIONS[variable]) return FIELD_EXCEPTIONS[variable];
  const words = variable
    .replace(/^CORDON_/, '')
    .toLowerCase()
    .split('_');
  return (words[0] +
    words
      .slice(1)
      .map((w) => w[0].toUpperCase() + w.slice(1))
      .join('')) as keyof Config;
}

/** A valid value for a variable that differs from its default: [environment text, parsed value]. */
function sampleValue(name: string, p: PropertySchema): [string, unknown] {
  if (p.enum) {
    const v = p.enum.find((e) => e !== p.default)!;
    return [v, v];
  }
  if (p.type === 'boolean') return [String(!p.default), !p.default];
  if (p.type === 'integer') {
    const base = typeof p.default === 'number' ? p.default + 1 : (p.minimum ?? 0) + 7;
    const v = p.maximum !== undefined ? Math.min(base, p.maximum) : base;
    return [String(v), v];
  }
  if (name === 'CORDON_NATS_SUBJECT_PREFIX') return ['cordon_b', 'cordon_b'];
  if (name === 'CORDON_TRUST_PROXY') return ['10.0.0.1, 10.0.1.0/24', ['10.0.0.1', '10.0.1.0/24']];
  if (name === 'CORDON_REDIS_SENTINELS') {
    return [
      'sentinel-1:26379,10.0.0.2:26380',
      [
        { host: 'sentinel-1', port: 26379 },
        { host: '10.0.0.2', port: 26380 },
      ],
    ];
  }
  return [`value-of-${name.toLowerCase()}`, `value-of-${name.toLowerCase()}`];
}

/** Settings that need their partner to be valid on their own. */
const NATS_PAIRS: Record<string, Record<string, string>> = {
  CORDON_NATS_USER: { CORDON_NATS_PASSWORD: 'pw' },
  CORDON_NATS_PASSWORD: { CORDON_NATS_USER: 'node' },
  CORDON_NATS_TLS_CERT_FILE: { CORDON_NATS_TLS_KEY_FILE: 'key.pem' },
  CORDON_NATS_TLS_KEY_FILE: { CORDON_NATS_TLS_CERT_FILE: 'cert.pem' },
};

function configError(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error(`loadConfig accepted ${JSON.stringify(env)}`);
}

describe('loadConfig defaults', () => {
  it('gives the contract defaults with an empty environment (embedded mode)', () => {
    const c = loadConfig({});
    expect(c.port).toBe(8080);
    expect(c.host).toBe('127.0.0.1');
    expect(c.logLevel).toBe('info');
    expect(c.retentionMaxAgeDays).toBe(365);
    expect(c.retentionMaxAlerts).toBeUndefined();
    expect(c.natsUrl).toBeUndefined();
    expect(c.redisUrl).toBeUndefined();
    expect(c.trustStorePath).toBeUndefined();
    expect(c.regionsPath).toBeUndefined();
    expect(c.dataDir).toBe('.cordon');
  });

  it('applies every default declared in schemas/config.json', () => {
    const c = loadConfig({}) as unknown as Record<string, unknown>;
    const withDefault = VARIABLES.filter((v) => 'default' in schema.properties[v]);
    expect(withDefault.length).toBeGreaterThan(10);
    for (const v of withDefault) expect([v, c[fieldOf(v)]]).toEqual([v, schema.properties[v].default]);
  });

  it('keeps region logs in the SQLite store by default, in Redis when CORDON_REDIS_URL is set', () => {
    expect(loadConfig({}).store).toBe('sqlite');
    expect(loadConfig({ CORDON_NATS_URL: 'nats://x:4222' }).store).toBe('sqlite');
    expect(loadConfig({ CORDON_REDIS_URL: 'redis://x:6379' }).store).toBe('redis');
    expect(loadConfig({ CORDON_STORE: 'memory' }).store).toBe('memory');
    expect(configError({ CORDON_STORE: 'redis' }).message).toContain('CORDON_STORE=redis needs CORDON_REDIS_URL');
    expect(configError({ CORDON_STORE: 'sqlite', CORDON_REDIS_URL: 'redis://x:6379' }).message).toContain('exclude each other');
    expect(configError({ CORDON_STORE: 'disk' }).message).toContain('CORDON_STORE');
  });

  it('names the node host:port when CORDON_NODE_ID is unset', () => {
    expect(loadConfig({ CORDON_HOST: '0.0.0.0', CORDON_PORT: '9000' }).nodeId).toBe('0.0.0.0:9000');
    expect(loadConfig({ CORDON_NODE_ID: 'cordon-1' }).nodeId).toBe('cordon-1');
  });

  it('returns a frozen object, and a fresh one per call', () => {
    const a = loadConfig({});
    expect(Object.isFrozen(a)).toBe(true);
    expect(() => {
      (a as { port: number }).port = 1;
    }).toThrow(TypeError);
    expect(loadConfig({ CORDON_PORT: '9001' }).port).toBe(9001);
    expect(loadConfig({}).port).toBe(8080);
  });
});

describe('loadConfig values', () => {
  it('carries every variable of the schema into its typed field', () => {
    for (const v of VARIABLES) {
      const [text, parsed] = sampleValue(v, schema.properties[v]);
      // Sentinels name where to find the primary of CORDON_REDIS_URL: never without it.
      const needs = v === 'CORDON_REDIS_SENTINELS' || v === 'CORDON_REDIS_CLUSTER' ? { CORDON_REDIS_URL: 'redis://:pw@x/2' } : (NATS_PAIRS[v] ?? {});
      const c = loadConfig({ ...needs, [v]: text }) as unknown as Record<string, unknown>;
      expect([v, c[fieldOf(v)]]).toEqual([v, parsed]);
    }
  });

  it('parses integers from their decimal text', () => {
    const c = loadConfig({ CORDON_PORT: '9090', CORDON_RETENTION_MAX_ALERTS: '5000', CORDON_SHUTDOWN_GRACE_MS: ' 2500 ' });
    expect(c.port).toBe(9090);
    expect(c.retentionMaxAlerts).toBe(5000);
    expect(c.shutdownGraceMs).toBe(2500);
    expect(typeof c.port).toBe('number');
  });

  it('keeps a comma-separated NATS server list as given', () => {
    const url = 'nats://nats-1:4222,nats://nats-2:4222,nats://nats-3:4222';
    expect(loadConfig({ CORDON_NATS_URL: url }).natsUrl).toBe(url);
  });

  it('takes Redis Sentinels only with CORDON_REDIS_URL (credentials, database) and as host:port pairs', () => {
    expect(configError({ CORDON_REDIS_SENTINELS: 's1:26379' }).message).toMatch(/CORDON_REDIS_URL/);
    expect(configError({ CORDON_REDIS_URL: 'redis://x', CORDON_REDIS_SENTINELS: 's1' }).message).toMatch(/CORDON_REDIS_SENTINELS/);
    expect(configError({ CORDON_REDIS_URL: 'redis://x', CORDON_REDIS_SENTINELS: 's1:26379,' }).message).toMatch(/CORDON_REDIS_SENTINELS/);
    const c = loadConfig({ CORDON_REDIS_URL: 'redis://x', CORDON_REDIS_SENTINELS: 's1:26379' });
    expect([c.redisSentinels, c.redisSentinelName]).toEqual([[{ host: 's1', port: 26379 }], 'mymaster']);
    expect(configError({ CORDON_REDIS_URL: 'redis://x', CORDON_REDIS_SENTINELS: 's1:1', CORDON_REDIS_CLUSTER: 'true' }).message).toMatch(/exclude each other/);
    expect(configError({ CORDON_REDIS_CLUSTER: 'true' }).message).toMatch(/CORDON_REDIS_URL/);
  });

  it('trusts X-Forwarded-For from nobody, a number of hops, or listed proxies; never from every hop', () => {
    expect(loadConfig({}).trustProxy).toBe(false);
    expect(loadConfig({ CORDON_TRUST_PROXY: 'false' }).trustProxy).toBe(false);
    expect(loadConfig({ CORDON_TRUST_PROXY: '1' }).trustProxy).toBe(1);
    expect(loadConfig({ CORDON_TRUST_PROXY: '10.0.0.7,fd00::/8' }).trustProxy).toEqual(['10.0.0.7', 'fd00::/8']);
    expect(configError({ CORDON_TRUST_PROXY: 'true' }).message).toMatch(/would trust every hop/);
    for (const bad of ['true', '0', '10.0.0.300', '10.0.0.0/33', 'proxy.internal', '10.0.0.1/8/1']) {
      expect([bad, configError({ CORDON_TRUST_PROXY: bad }).message]).toEqual([bad, expect.stringContaining('CORDON_TRUST_PROXY')]);
    }
  });

  it('bounds header, request and idle times and the connection count, with the headers inside the request time', () => {
    const c = loadConfig({});
    expect([c.httpHeadersTimeoutMs, c.httpRequestTimeoutMs, c.httpKeepAliveTimeoutMs, c.httpIdleTimeoutMs]).toEqual([10000, 30000, 30000, 60000]);
    expect(c.httpMaxConnections).toBe(10000);
    expect(configError({ CORDON_HTTP_HEADERS_TIMEOUT_MS: '5000', CORDON_HTTP_REQUEST_TIMEOUT_MS: '1000' }).message).toMatch(
      /CORDON_HTTP_HEADERS_TIMEOUT_MS must not exceed/,
    );
    expect(configError({ CORDON_HTTP_REQUEST_TIMEOUT_MS: '0' }).message).toContain('CORDON_HTTP_REQUEST_TIMEOUT_MS');
  });

  it('puts /metrics on an operator listener, 127.0.0.1:9464 unless told otherwise', () => {
    const c = loadConfig({});
    expect([c.metricsEnabled, c.metricsHost, c.metricsPort]).toEqual([true, '127.0.0.1', 9464]);
    expect(loadConfig({ CORDON_METRICS_PORT: '0', CORDON_METRICS_ENABLED: 'false' })).toMatchObject({ metricsPort: 0, metricsEnabled: false });
  });

  it('treats an empty value as unset', () => {
    const c = loadConfig({ CORDON_PORT: '', CORDON_REDIS_URL: '' });
    expect(c.port).toBe(8080);
    expect(c.redisUrl).toBeUndefined();
  });

  it("ignores variables outside CORDON_* and the test suite's CORDON_TEST_*", () => {
    const c = loadConfig({ PATH: '/usr/bin', PORT: 'x', CORDON_TEST_REDIS_URL: 'redis://elsewhere:1', CORDON_TEST_ANYTHING: '?' });
    expect(c.port).toBe(8080);
    expect(c.redisUrl).toBeUndefined();
  });
});

describe('NATS credentials', () => {
  it('come in pairs (user and password, certificate and key) and as one method', () => {
    expect(configError({ CORDON_NATS_USER: 'node' }).message).toMatch(/CORDON_NATS_USER needs CORDON_NATS_PASSWORD/);
    expect(configError({ CORDON_NATS_PASSWORD: 'pw' }).message).toMatch(/CORDON_NATS_PASSWORD needs CORDON_NATS_USER/);
    expect(configError({ CORDON_NATS_TLS_CERT_FILE: 'c.pem' }).message).toMatch(/needs CORDON_NATS_TLS_KEY_FILE/);
    expect(configError({ CORDON_NATS_TOKEN: 't', CORDON_NATS_CREDS_FILE: 'n.creds' }).message).toMatch(
      /one NATS authentication method, not CORDON_NATS_TOKEN and CORDON_NATS_CREDS_FILE/,
    );
    const c = loadConfig({ CORDON_NATS_USER: 'node', CORDON_NATS_PASSWORD: 'pw', CORDON_NATS_TLS_CA_FILE: 'ca.pem' });
    expect([c.natsUser, c.natsPassword, c.natsTlsCaFile, c.natsInboxPrefix]).toEqual(['node', 'pw', 'ca.pem', '_INBOX']);
  });

  it('take an inbox prefix of whole subject tokens', () => {
    expect(loadConfig({ CORDON_NATS_INBOX_PREFIX: '_INBOX.cordon' }).natsInboxPrefix).toBe('_INBOX.cordon');
    for (const bad of ['_INBOX.', '_INBOX.>', 'a b', '*']) expect(configError({ CORDON_NATS_INBOX_PREFIX: bad }).message).toContain('CORDON_NATS_INBOX_PREFIX');
  });
});

describe('loadConfig rejects bad configuration with a message naming the variable', () => {
  it.each([
    ['CORDON_PORT', 'eighty'],
    ['CORDON_PORT', '70000'],
    ['CORDON_PORT', '-1'],
    ['CORDON_PORT', '80.5'],
    ['CORDON_LOG_LEVEL', 'verbose'],
    ['CORDON_RETENTION_MAX_ALERTS', '0'],
    ['CORDON_RETENTION_MAX_AGE_DAYS', '1e3'],
    ['CORDON_MAX_JSON_DEPTH', '5000'],
    ['CORDON_NATS_SUBJECT_PREFIX', 'cordon.alerts'],
    ['CORDON_WS_MAX_QUEUE_FRAMES', '8'],
  ])('%s=%s', (name, value) => {
    const err = configError({ [name]: value });
    expect(err.message).toMatch(/^invalid configuration: /);
    expect(err.message).toContain(name);
  });

  it('lists every bad variable at once', () => {
    const err = configError({ CORDON_PORT: 'x', CORDON_LOG_LEVEL: 'loud' });
    expect(err.message).toContain('CORDON_PORT');
    expect(err.message).toContain('CORDON_LOG_LEVEL');
  });

  it('names the allowed log levels', () => {
    expect(configError({ CORDON_LOG_LEVEL: 'loud' }).message).toContain('fatal, error, warn, info, debug, trace, silent');
  });

  it('rejects an unknown CORDON_* variable, so a typo cannot fall back to a default silently', () => {
    expect(schema.additionalProperties).toBe(false);
    const err = configError({ CORDON_PROT: '9090' });
    expect(err.message).toContain('CORDON_PROT is not allowed (did you mean CORDON_PORT?)');
    expect(configError({ CORDON_REDIS_UR: 'redis://x' }).message).toContain('(did you mean CORDON_REDIS_URL?)');
    // Nothing close: no guess.
    expect(configError({ CORDON_SOMETHING_ELSE_ENTIRELY: '1' }).message).not.toContain('did you mean');
  });

  it('ignores the variables only the CLI reads, so a shell that exports CORDON_TOKEN still starts a node', () => {
    expect(() => loadConfig({ CORDON_TOKEN: 'eyJ...', CORDON_TOKEN_FILE: '.cordon/desk.jwt' })).not.toThrow();
  });
});

describe('docs/configuration.md', () => {
  const doc = readFileSync(join(ROOT, 'docs', 'configuration.md'), 'utf8');
  const header = '| variable | default | meaning |';
  const rows = (() => {
    const lines = doc.split('\n');
    const start = lines.indexOf(header);
    expect(start).toBeGreaterThanOrEqual(0);
    const out: Array<{ variable: string; def: string; meaning: string }> = [];
    for (const line of lines.slice(start + 2)) {
      if (!line.startsWith('|')) break;
      const cells = line
        .slice(1, -1)
        .split(' | ')
        .map((c) => c.trim());
      expect(cells).toHaveLength(3);
      const m = /^`(CORDON_[A-Z0-9_]+)`$/.exec(cells[0]);
      if (!m) throw new Error(`not a variable cell: ${cells[0]}`);
      out.push({ variable: m[1], def: cells[1], meaning: cells[2] });
    }
    return out;
  })();

  it('has one row per property of schemas/config.json and nothing else', () => {
    const documented = rows.map((r) => r.variable);
    expect(new Set(documented).size).toBe(documented.length);
    expect([...documented].sort()).toEqual([...VARIABLES].sort());
  });

  it('states each default as the schema declares it, and "unset" where there is none', () => {
    for (const r of rows) {
      const p = schema.properties[r.variable];
      if ('default' in p) expect([r.variable, r.def]).toEqual([r.variable, `\`${String(p.default)}\``]);
      else expect([r.variable, r.def.startsWith('unset')]).toEqual([r.variable, true]);
      expect(r.meaning.length).toBeGreaterThan(10);
    }
  });

  it('keeps no CORDON_* name in its text that the schema does not know', () => {
    const named = new Set((doc.match(/CORDON_[A-Z0-9_]*[A-Z0-9]/g) ?? []).filter((n) => n !== 'CORDON_TEST'));
    for (const n of named) expect([n, n in schema.properties || CLI_VARS.has(n)]).toEqual([n, true]);
  });
});
