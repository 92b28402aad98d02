import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../../src/config';
import { TrustStore } from '../../src/domain/trust-store';
import { RegionRegistry } from '../../src/domain/regions';

/**
 * The deployable stack (Dockerfile, docker-compose.yml, deploy/) cannot be started here (no Docker
 * engine), so this file checks what can be checked without one: the variable names agree with
 * schemas/config.json, each node's environment passes loadConfig, and the stack has the shape
 * docs/operations.md promises.
 */

const ROOT = join(__dirname, '..', '..');
const read = (path: string): string => readFileSync(join(ROOT, path), 'utf8');
const schema = JSON.parse(read('schemas/config.json')) as { properties: Record<string, unknown> };

// ---- a YAML subset parser: block maps and lists of scalars, "..."/'...' strings, JSON [..] lists.
// docker-compose.yml is kept inside this subset on purpose (see its header).

type Yaml = string | null | Yaml[] | { [key: string]: Yaml };
interface Line {
  indent: number;
  text: string;
  no: number;
}

function stripComment(text: string): string {
  let quote: string | null = null;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quote) {
      if (ch === quote) quote = null;
    } else if (ch === '"' || ch === "'") {
      quote = ch;
    } else if (ch === '#' && (i === 0 || text[i - 1] === ' ')) {
      return text.slice(0, i).trimEnd();
    }
  }
  return text.trimEnd();
}

function scalar(raw: string, no: number): Yaml {
  const v = raw.trim();
  if (v === '') return null;
  if (v.startsWith('"') || v.startsWith('[')) {
    try {
      return JSON.parse(v) as Yaml;
    } catch {
      throw new Error(`docker-compose.yml:${no}: not a JSON-style value: ${v}`);
    }
  }
  if (v.startsWith("'")) {
    if (!v.endsWith("'") || v.length < 2) throw new Error(`docker-compose.yml:${no}: unterminated string`);
    return v.slice(1, -1).replace(/''/g, "'");
  }
  if (/^[&*!|>{]/.test(v)) throw new Error(`docker-compose.yml:${no}: outside the supported YAML subset: ${v}`);
  return v;
}

function parseYaml(source: string): Yaml {
  const lines: Line[] = [];
  source.split('\n').forEach((raw, i) => {
    if (raw.includes('\t')) throw new Error(`docker-compose.yml:${i + 1}: tab`);
    const text = stripComment(raw);
    if (text.trim() === '') return;
    lines.push({ indent: text.length - text.trimStart().length, text: text.trim(), no: i + 1 });
  });
  let pos = 0;
  function block(indent: number): Yaml {
    if (lines[pos].text.startsWith('- ')) {
      const list: Yaml[] = [];
      while (pos < lines.length && lines[pos].indent === indent && lines[pos].text.startsWith('- ')) {
        const item = lines[pos].text.slice(2);
        if (/^[\w.-]+:( |$)/.test(item)) throw new Error(`docker-compose.yml:${lines[pos].no}: lists of maps are outside the subset`);
        list.push(scalar(item, lines[pos].no));
        pos++;
      }
      return list;
    }
    const map: { [key: string]: Yaml } = {};
    while (pos < lines.length && lines[pos].indent === indent) {
      const { text, no } = lines[pos];
      const m = /^("[^"]+"|[\w.-]+):(?: (.*))?$/.exec(text);
      if (!m) throw new Error(`docker-compose.yml:${no}: expected "key: value": ${text}`);
      const key = m[1].startsWith('"') ? (JSON.parse(m[1]) as string) : m[1];
      if (key in map) throw new Error(`docker-compose.yml:${no}: duplicate key ${key}`);
      pos++;
      if (m[2] !== undefined && m[2] !== '') map[key] = scalar(m[2], no);
      else if (pos < lines.length && lines[pos].indent > indent) map[key] = block(lines[pos].indent);
      else map[key] = null;
    }
    if (pos < lines.length && lines[pos].indent > indent) throw new Error(`docker-compose.yml:${lines[pos].no}: bad indentation`);
    return map;
  }
  const doc = block(0);
  if (pos !== lines.length) throw new Error(`docker-compose.yml:${lines[pos].no}: bad indentation`);
  return doc;
}

// ---- the files

type Service = {
  image?: string;
  build?: string;
  command?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  ports?: string[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[]; interval?: string; timeout?: string; retries?: string };
  stop_grace_period?: string;
};
const compose = parseYaml(read('docker-compose.yml')) as { services: Record<string, Service>; volumes?: Record<string, null> };
const services = compose.services;
const serviceNames = Object.keys(services);
const cordonNodes = serviceNames.filter((n) => services[n].environment && Object.keys(services[n].environment).some((k) => k.startsWith('CORDON_')));
const natsNodes = serviceNames.filter((n) => services[n].image?.startsWith('nats:'));
const dockerfile = read('Dockerfile');

/** `${VAR:-default}` as Compose resolves it with VAR unset. */
function withDefaults(text: string): string {
  return text.replace(/\$\{[A-Z_][A-Z0-9_]*:-([^}]*)\}/g, '$1');
}

/** Bind mounts of a service: host path (defaults applied) -> container path. */
function binds(service: Service): Array<{ host: string; target: string }> {
  return (service.volumes ?? [])
    .map((v) => withDefaults(v).split(':'))
    .filter(([host]) => host.startsWith('./') || host.startsWith('/'))
    .map(([host, target]) => ({ host, target }));
}

function mountedFile(service: Service, targetPath: string): string {
  const bind = binds(service).find((b) => b.target === targetPath);
  if (!bind) throw new Error(`nothing is mounted at ${targetPath}`);
  return bind.host;
}

function seconds(duration: string): number {
  const m = /^(\d+)(ms|s|m)$/.exec(duration);
  if (!m) throw new Error(`unsupported duration ${duration}`);
  return Number(m[1]) / (m[2] === 'ms' ? 1000 : m[2] === 'm' ? 1 / 60 : 1);
}

describe('docker-compose.yml and Dockerfile agree with schemas/config.json', () => {
  it('names no CORDON_* variable that the configuration schema does not define', () => {
    const named = new Set([...read('docker-compose.yml').matchAll(/CORDON_[A-Z0-9_]+/g), ...dockerfile.matchAll(/CORDON_[A-Z0-9_]+/g)].map((m) => m[0]));
    expect(named.size).toBeGreaterThan(5);
    for (const name of named) expect([name, name in schema.properties]).toEqual([name, true]);
  });

  it('gives every Cordon node an environment that loadConfig accepts in production mode', () => {
    expect(cordonNodes.length).toBeGreaterThanOrEqual(2);
    for (const name of cordonNodes) {
      const env = services[name].environment!;
      for (const v of Object.values(env)) expect(typeof v).toBe('string');
      const config = loadConfig(env);
      expect(config.host).toBe('0.0.0.0');
      expect(config.redisUrl).toMatch(/^redis:\/\/redis:6379/);
      expect(config.trustStorePath).toBeDefined();
      expect(config.regionsPath).toBeDefined();
    }
  });

  it('accepts the Dockerfile ENV in loadConfig', () => {
    const env: Record<string, string> = {};
    for (const m of dockerfile.replace(/\\\n\s*/g, ' ').matchAll(/^ENV (.+)$/gm)) {
      for (const pair of m[1].trim().split(/\s+/)) {
        const [k, v] = pair.split('=');
        env[k] = v;
      }
    }
    expect(env.CORDON_HOST).toBe('0.0.0.0');
    const config = loadConfig(env);
    expect(config.port).toBe(8080);
  });
});

describe('docker-compose.yml: the production-shaped stack', () => {
  it('is inside the YAML subset the tests read, with every service health-checked', () => {
    expect(serviceNames.length).toBeGreaterThanOrEqual(7);
    for (const name of serviceNames) {
      const hc = services[name].healthcheck;
      expect([name, Array.isArray(hc?.test) && hc.test.length > 1]).toEqual([name, true]);
      expect(['CMD', 'CMD-SHELL']).toContain(hc!.test[0]);
    }
  });

  it('runs a 3-node NATS cluster whose routes name all three servers, and nodes that use all three', () => {
    expect(natsNodes).toHaveLength(3);
    const confs = new Set<string>();
    const names = new Set<string>();
    for (const n of natsNodes) {
      const cmd = services[n].command!;
      const conf = cmd[cmd.indexOf('--config') + 1];
      confs.add(mountedFile(services[n], conf));
      names.add(cmd[cmd.indexOf('--name') + 1]);
    }
    expect(names.size).toBe(3);
    expect(confs.size).toBe(1);
    const conf = read([...confs][0]);
    const cluster = /cluster\s*\{([\s\S]*?)\n\}/.exec(conf)?.[1] ?? '';
    expect(cluster).toMatch(/name:\s*cordon/);
    expect(cluster).toMatch(/listen:\s*0\.0\.0\.0:6222/);
    for (const n of natsNodes) expect(cluster).toContain(`nats-route://${n}:6222`);
    for (const node of cordonNodes) {
      const servers = services[node].environment!.CORDON_NATS_URL.split(',');
      expect(servers.sort()).toEqual(natsNodes.map((n) => `nats://${n}:4222`).sort());
    }
  });

  it('runs Redis with AOF persistence, an fsync policy, noeviction and a named volume', () => {
    const redis = services.redis;
    expect(redis.image).toMatch(/^redis:7/);
    const confPath = redis.command![1];
    const conf = read(mountedFile(redis, confPath)).replace(/#.*$/gm, '');
    expect(conf).toMatch(/^appendonly yes$/m);
    expect(conf).toMatch(/^appendfsync (always|everysec)$/m);
    expect(conf).toMatch(/^maxmemory-policy noeviction$/m);
    expect(conf).toMatch(/^no-appendfsync-on-rewrite no$/m);
    expect(conf).toMatch(/^dir \/data$/m);
    expect(redis.volumes).toContain('redis-data:/data');
    expect(compose.volumes).toHaveProperty('redis-data');
  });

  it('runs two Cordon nodes, each waiting for healthy stores, with a clean-shutdown margin', () => {
    const ids = new Set<string>();
    for (const name of cordonNodes) {
      const s = services[name];
      expect(s.build).toBe('.');
      ids.add(s.environment!.CORDON_NODE_ID);
      for (const dep of ['redis', ...natsNodes]) expect([name, dep, s.depends_on?.[dep]?.condition]).toEqual([name, dep, 'service_healthy']);
      expect(s.healthcheck!.test.join(' ')).toContain('/readyz');
      const grace = Number(s.environment!.CORDON_SHUTDOWN_GRACE_MS ?? 10000) / 1000;
      expect(seconds(s.stop_grace_period ?? '10s')).toBeGreaterThan(grace);
      // the mounted trust store and registry are the paths the node is told to read
      for (const [variable, file] of [
        ['CORDON_TRUST_STORE', 'deploy/trust-store.example.json'],
        ['CORDON_REGIONS', 'deploy/regions.example.json'],
      ]) {
        const host = mountedFile(s, s.environment![variable]);
        expect(host).toBe(`./${file}`);
      }
      expect((s.volumes ?? []).every((v) => v.endsWith(':ro'))).toBe(true);
    }
    expect(ids.size).toBe(cordonNodes.length);
  });

  it("puts a proxy in front that carries WebSockets and checks each node's readiness", () => {
    const proxy = services.proxy;
    expect(proxy.image).toMatch(/^haproxy:/);
    expect(proxy.ports).toContain('8080:8080');
    const cfg = read(mountedFile(proxy, '/usr/local/etc/haproxy/haproxy.cfg'));
    const defaults = /^defaults\n([\s\S]*?)\n\n/m.exec(cfg)?.[1] ?? '';
    // HTTP mode forwards Upgrade/Connection itself; after the 101 the tunnel timeout applies.
    expect(defaults).toMatch(/^\s+mode http$/m);
    expect(defaults).toMatch(/^\s+timeout tunnel \d+[smh]$/m);
    expect(defaults).toMatch(/^\s+option redispatch/m);
    expect(cfg).toMatch(/^\s+option httpchk$/m);
    expect(cfg).toMatch(/^\s+http-check send meth GET uri \/readyz$/m);
    expect(cfg).toMatch(/^\s+default-server check /m);
    expect(cfg).toMatch(/^\s+bind :8080$/m);
    for (const name of cordonNodes) {
      expect(cfg).toContain(`server ${name} ${name}:${services[name].environment!.CORDON_PORT}`);
      expect(proxy.depends_on).toHaveProperty(name);
    }
  });

  it('sets X-Forwarded-For at the proxy (never appends) and has the nodes trust exactly that one hop', () => {
    const cfg = read(mountedFile(services.proxy, '/usr/local/etc/haproxy/haproxy.cfg')).replace(/#.*$/gm, '');
    const frontend = cfg.split(/^(?=\S)/m).find((section) => section.startsWith('frontend cordon\n')) ?? '';
    expect(frontend).toMatch(/^\s+http-request set-header X-Forwarded-For %\[src\]$/m);
    for (const header of ['Forwarded', 'X-Forwarded-Host', 'X-Forwarded-Proto']) {
      expect(frontend).toMatch(new RegExp(`^\\s+http-request del-header ${header}$`, 'm'));
    }
    // `option forwardfor` appends to what the client sent: a spoofed chain would reach the node
    expect(cfg).not.toMatch(/option\s+forwardfor/);
    expect(cfg).not.toMatch(/add-header\s+X-Forwarded-For/i);
    for (const name of cordonNodes) expect([name, loadConfig(services[name].environment).trustProxy]).toEqual([name, 1]);
  });

  it("serves /metrics on each node's operator listener, which neither the proxy nor the host reaches", () => {
    const cfg = read(mountedFile(services.proxy, '/usr/local/etc/haproxy/haproxy.cfg')).replace(/#.*$/gm, '');
    // no path rule needed (and none that an encoding like /%6detrics could slip past)
    expect(cfg).not.toMatch(/metrics/);
    for (const name of cordonNodes) {
      const config = loadConfig(services[name].environment);
      expect(config.metricsEnabled).toBe(true);
      expect(config.metricsPort).not.toBe(config.port);
      // the proxy's servers are the public port only
      for (const m of cfg.matchAll(new RegExp(`server ${name} ${name}:(\\d+)`, 'g'))) expect(Number(m[1])).toBe(config.port);
      // the node publishes no port on the host at all, the operator port least of all
      expect([name, services[name].ports ?? []]).toEqual([name, []]);
    }
    for (const name of serviceNames) {
      for (const p of services[name].ports ?? []) expect([name, p]).toEqual([name, expect.not.stringMatching(/:9464$/)]);
    }
    expect(dockerfile).not.toMatch(/^EXPOSE .*9464/m);
  });

  it('mounts only files that exist in the repository', () => {
    for (const name of serviceNames) {
      for (const b of binds(services[name])) expect([name, b.host, existsSync(join(ROOT, b.host))]).toEqual([name, b.host, true]);
    }
  });
});

describe('Dockerfile: a small multi-stage image', () => {
  const stages = [...dockerfile.matchAll(/^FROM (\S+)(?: AS (\w+))?$/gm)];

  it('builds in stages from Node 20 and installs production dependencies only in the image', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    expect(dockerfile).toMatch(/^ARG NODE_IMAGE=node:20-/m);
    expect(dockerfile).toMatch(/npm ci --omit=dev/);
    const runtime = dockerfile.slice(stages[stages.length - 1].index);
    expect(runtime).toMatch(/^COPY --from=deps \/app\/node_modules \.\/node_modules$/m);
    expect(runtime).not.toMatch(/^RUN npm /m);
  });

  it('runs node dist/src/server.js as a non-root user, with schemas/ beside dist/ and a health check', () => {
    const runtime = dockerfile.slice(stages[stages.length - 1].index);
    expect(runtime).toMatch(/^WORKDIR \/app$/m);
    expect(runtime).toMatch(/^COPY --from=build \/app\/dist\/src \.\/dist\/src$/m);
    expect(runtime).toMatch(/^COPY schemas \.\/schemas$/m);
    expect(runtime).toMatch(/^USER node$/m);
    expect(runtime).toMatch(/^HEALTHCHECK .*\n?.*\/healthz/m);
    expect(runtime).toMatch(/^CMD \["node", "dist\/src\/server\.js"\]$/m);
  });

  it('sends the build everything it copies, and nothing it should not', () => {
    const ignored = read('.dockerignore')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    for (const must of ['node_modules', 'dist', '.git', '.cordon', 'test']) expect(ignored).toContain(must);
    const copied = [...dockerfile.matchAll(/^COPY (?!--from)(.+) \S+$/gm)].flatMap((m) => m[1].split(' '));
    expect(copied).toEqual(expect.arrayContaining(['package.json', 'package-lock.json', 'src', 'schemas', 'bin']));
    for (const path of copied) {
      expect([path, ignored.includes(path)]).toEqual([path, false]);
      expect([path, existsSync(join(ROOT, path))]).toEqual([path, true]);
    }
  });
});

describe('deploy/ examples', () => {
  it('ships a trust store that Cordon loads, with alert and token keys for every state of the registry', () => {
    const registry = RegionRegistry.fromJson(JSON.parse(read('deploy/regions.example.json')));
    const doc = JSON.parse(read('deploy/trust-store.example.json'));
    const store = TrustStore.fromJson(doc);
    expect(store.states().sort()).toEqual([...registry.states].sort());
    for (const [state, entry] of Object.entries(doc.states as Record<string, { keys: Array<{ use: string; status: string; regions?: string[] }> }>)) {
      const active = entry.keys.filter((k) => k.status === 'active');
      expect([state, active.map((k) => k.use).sort()]).toEqual([state, ['alert', 'token']]);
      for (const k of entry.keys.filter((k) => k.use === 'alert')) {
        for (const code of k.regions!) expect(registry.get(code)?.states).toContain(state);
      }
    }
  });

  it('shows a rotation: a retired key with retired_at next to the active one', () => {
    const doc = JSON.parse(read('deploy/trust-store.example.json'));
    const retired = Object.values(doc.states as Record<string, { keys: Array<{ status: string; retired_at?: string }> }>)
      .flatMap((s) => s.keys)
      .filter((k) => k.status === 'retired');
    expect(retired.length).toBeGreaterThan(0);
    for (const k of retired) expect(Date.parse(k.retired_at!)).not.toBeNaN();
  });

  it('holds no private key material', () => {
    for (const file of ['deploy/trust-store.example.json', 'deploy/regions.example.json']) expect(read(file)).not.toMatch(/"d"\s*:/);
  });

  it('ships the built-in example registry as deploy/regions.example.json', () => {
    const registry = RegionRegistry.fromJson(JSON.parse(read('deploy/regions.example.json')));
    expect(registry.list()).toEqual(RegionRegistry.example().list());
  });
});

describe('deploy/nats/nats-cluster.conf: NATS authorization with least privilege', () => {
  const conf = read('deploy/nats/nats-cluster.conf');
  // The top-level block, braces matched, comments skipped (what test/helpers/nats-server.ts extracts).
  const block = (() => {
    const lines = conf.split('\n');
    const start = lines.findIndex((l) => /^authorization\s*\{/.test(l));
    expect(start).toBeGreaterThanOrEqual(0);
    let depth = 0;
    for (let i = start; i < lines.length; i++) {
      for (const ch of lines[i].replace(/#.*$/, '')) depth += ch === '{' ? 1 : ch === '}' ? -1 : 0;
      if (depth === 0)
        return lines
          .slice(start, i + 1)
          .map((l) => l.replace(/#.*$/, ''))
          .join('\n');
    }
    throw new Error('unterminated authorization block');
  })();
  /** Each user's entry: its password variable and its permission lists. */
  const users = new Map(
    block
      .split(/(?=\{ user: )/)
      .slice(1)
      .map((entry) => {
        const m = /^\{ user: ([\w-]+), password: \$([A-Z0-9_]+),/.exec(entry);
        if (!m) throw new Error(`a user entry without a password variable: ${entry.slice(0, 80)}`);
        const list = (kind: 'publish' | 'subscribe', rule: 'allow' | 'deny'): string[] | undefined => {
          const found = new RegExp(`${kind}: \\{ ${rule}: \\[([^\\]]*)\\] \\}`).exec(entry);
          return found ? (JSON.parse(`[${found[1]}]`) as string[]) : undefined;
        };
        return [
          m[1],
          {
            password: m[2],
            publish: list('publish', 'allow'),
            publishDeny: list('publish', 'deny'),
            subscribe: list('subscribe', 'allow'),
            subscribeDeny: list('subscribe', 'deny'),
          },
        ] as const;
      }),
  );
  const registry = RegionRegistry.fromJson(JSON.parse(read('deploy/regions.example.json')));
  const trust = JSON.parse(read('deploy/trust-store.example.json')) as {
    states: Record<string, { keys: Array<{ use: string; status: string; regions?: string[] }> }>;
  };
  const defaults = schema.properties as Record<string, { default?: string }>;
  const inbox = `${defaults.CORDON_NATS_INBOX_PREFIX.default}.>`;
  const prefix = defaults.CORDON_NATS_SUBJECT_PREFIX.default;

  it('has exactly a node user, one gateway user per state of the registry, and a consumer user', () => {
    expect([...users.keys()].sort()).toEqual(['consumer', 'cordon-node', ...[...registry.states].map((s) => `gateway-${s.toLowerCase()}`)].sort());
  });

  it('lets nodes answer ingest only in their queue group, reply to inboxes, and publish and read the fan-out', () => {
    const node = users.get('cordon-node')!;
    expect(node.publish?.sort()).toEqual([`${prefix}.alerts.>`, inbox].sort());
    // NatsBus's queue group: a subscription to the ingest subjects outside it is refused.
    expect(node.subscribe?.sort()).toEqual([`${prefix}.alerts.>`, `${prefix}.ingest.* cordon-ingest`].sort());
  });

  it("lets each state's gateway publish only on the ingest subjects of its own regions and read only inboxes", () => {
    for (const state of registry.states) {
      const gateway = users.get(`gateway-${state.toLowerCase()}`)!;
      const regions = registry
        .list()
        .filter((r) => r.states.includes(state))
        .map((r) => `${prefix}.ingest.${r.code}`);
      const keyRegions = trust.states[state].keys.filter((k) => k.use === 'alert' && k.status === 'active').flatMap((k) => k.regions!);
      expect([state, gateway.publish?.sort()]).toEqual([state, regions.sort()]);
      expect([state, gateway.publish?.sort()]).toEqual([state, keyRegions.map((r) => `${prefix}.ingest.${r}`).sort()]);
      expect([state, gateway.subscribe]).toEqual([state, [inbox]]);
    }
  });

  it('lets consumers read the fan-out and publish nothing', () => {
    const consumer = users.get('consumer')!;
    expect(consumer.subscribe).toEqual([`${prefix}.alerts.>`]);
    expect(consumer.publish).toBeUndefined();
    expect(consumer.publishDeny).toEqual(['>']);
  });

  it("gives every NATS server every password variable, without a default, and the nodes the node user's", () => {
    const variables = [...users.values()].map((u) => u.password);
    expect(new Set(variables).size).toBe(variables.length);
    for (const n of natsNodes) {
      const env = services[n].environment ?? {};
      expect([n, Object.keys(env).sort()]).toEqual([n, [...variables].sort()]);
      for (const v of variables) expect([n, env[v]]).toEqual([n, expect.stringMatching(new RegExp(`^\\$\\{${v}:\\?`))]);
    }
    for (const name of cordonNodes) {
      const env = services[name].environment!;
      expect([name, env.CORDON_NATS_USER]).toEqual([name, 'cordon-node']);
      expect([name, env.CORDON_NATS_PASSWORD]).toEqual([name, expect.stringMatching(new RegExp(`^\\$\\{${users.get('cordon-node')!.password}:\\?`))]);
    }
  });
});

describe('docs/operations.md stays in step with the stack', () => {
  const doc = read('docs/operations.md');

  it('marks the fsync policy that deploy/redis/redis.conf actually sets as "this stack"', () => {
    const policy = /^appendfsync (\w+)$/m.exec(read('deploy/redis/redis.conf'))![1];
    const row = doc.split('\n').find((l) => l.includes('(this stack)'));
    expect(row).toContain(`\`appendfsync ${policy}\``);
  });

  it('names every service of docker-compose.yml', () => {
    for (const name of serviceNames) expect([name, doc.includes(name)]).toEqual([name, true]);
  });
});
