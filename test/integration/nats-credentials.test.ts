import { createHash, randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { nkeys } from '@nats-io/nats-core';
import pino from 'pino';
import { NatsBus, type NatsAuth } from '../../src/adapters/nats/bus';
import { makeTestApp } from '../helpers/app';
import { runCordon } from '../helpers/cli';
import { compose } from '../../src/compose';
import { loadConfig } from '../../src/config';
import { BusUnavailableError, type Bus } from '../../src/ports/bus';
import { TEST_NATS_URL, uniqueRegion, uniqueSubjectPrefix } from '../helpers/env';
import { natsTempDir, startNatsServer, type NatsServerProcess } from '../helpers/nats-server';

/**
 * Every way a node can log in to NATS (CORDON_NATS_* settings), each against a real nats-server
 * that the test starts with that kind of authorization: user and password, token, NKey seed
 * file, .creds file (decentralised JWT authentication), and mutual TLS.
 */

const silent = pino({ level: 'silent' });
/**
 * A password or token as docs/operations.md makes them: nats-server parses a `$VARIABLE`'s value
 * like configuration text, so it must start with a letter (`70e1ab...` would be read as a number).
 */
const secret = () => `pw-${randomBytes(16).toString('hex')}`;
const encoder = new TextEncoder();
const ROOT = join(__dirname, '..', '..');

function capture(): { log: pino.Logger; lines: string[] } {
  const lines: string[] = [];
  return { log: pino({ level: 'info' }, { write: (line: string) => void lines.push(line) }), lines };
}

/** A node's whole use of the bus works: it answers an ingest request and gets a fan-out message. */
async function expectWorkingBus(bus: Bus): Promise<void> {
  const region = uniqueRegion();
  await bus.serveIngest(async (r) => ({ status: 201, body: { region: r, seq: 1 } }));
  await expect(bus.requestIngest(region, encoder.encode('{}'), 5000)).resolves.toEqual({ region, seq: 1, status: 201 });
  const seen: string[] = [];
  await bus.subscribeAlerts((text) => void seen.push(text));
  await bus.publish(region, 'flash', '{"seq":1}');
  const until = Date.now() + 5000;
  while (seen.length === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  expect(seen).toEqual(['{"seq":1}']);
  await bus.ping();
}

async function withBus(url: string, auth: NatsAuth, run: (bus: Bus) => Promise<void>): Promise<void> {
  const bus = await NatsBus.connect({ servers: url, subjectPrefix: uniqueSubjectPrefix(), log: silent, auth });
  try {
    await run(bus);
  } finally {
    await bus.close();
  }
}

const refused = (url: string, auth: NatsAuth) =>
  // A TLS 1.3 client learns that its missing certificate was refused only when the server hangs up.
  expect(NatsBus.connect({ servers: url, log: silent, auth, connectTimeoutMs: 3000 })).rejects.toBeInstanceOf(BusUnavailableError);

const servers: NatsServerProcess[] = [];
afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
});
async function server(body: string, opts: Parameters<typeof startNatsServer>[1] = {}): Promise<NatsServerProcess> {
  const s = await startNatsServer(body, opts);
  servers.push(s);
  return s;
}

describe('a node logs in to NATS', () => {
  test('with a user and password', async () => {
    const password = secret();
    const s = await server('authorization { users: [ { user: node, password: $P } ] }', { env: { P: password } });
    await withBus(s.url, { user: 'node', password }, expectWorkingBus);
    await refused(s.url, { user: 'node', password: 'wrong' });
    await refused(s.url, {});
  });

  test('with a token', async () => {
    const token = secret();
    const s = await server('authorization { token: $T }', { env: { T: token } });
    await withBus(s.url, { token }, expectWorkingBus);
    await refused(s.url, { token: 'not-the-token' });
    await refused(s.url, {});
  });

  test('with an NKey seed file', async () => {
    const user = nkeys.createUser();
    const other = nkeys.createUser();
    const dir = natsTempDir();
    const seedFile = join(dir, 'node.nk');
    writeFileSync(seedFile, new TextDecoder().decode(user.getSeed()) + '\n', { mode: 0o600 });
    const otherFile = join(dir, 'other.nk');
    writeFileSync(otherFile, new TextDecoder().decode(other.getSeed()), { mode: 0o600 });
    const s = await server(`authorization { users: [ { nkey: ${user.getPublicKey()} } ] }`, { dir });

    await withBus(s.url, { nkeySeedFile: seedFile }, expectWorkingBus);
    await refused(s.url, { nkeySeedFile: otherFile });
    await expect(NatsBus.connect({ servers: s.url, log: silent, auth: { nkeySeedFile: join(dir, 'missing.nk') } })).rejects.toThrow(
      /cannot read NATS NKey seed file/,
    );
  });

  test('with a .creds file (operator, account and user JWTs)', async () => {
    const operator = nkeys.createOperator();
    const account = nkeys.createAccount();
    const user = nkeys.createUser();
    const stranger = nkeys.createAccount();
    const operatorJwt = jwt(operator, operator.getPublicKey(), 'operator', { type: 'operator', version: 2 });
    const accountJwt = jwt(operator, account.getPublicKey(), 'cordon', {
      type: 'account',
      version: 2,
      limits: { subs: -1, data: -1, payload: -1, imports: -1, exports: -1, wildcards: true, conn: -1, leaf: -1 },
      default_permissions: { pub: {}, sub: {} },
    });
    const userClaims = { type: 'user', version: 2, pub: {}, sub: {}, subs: -1, data: -1, payload: -1 };
    const dir = natsTempDir();
    const credsFile = join(dir, 'node.creds');
    writeFileSync(credsFile, creds(jwt(account, user.getPublicKey(), 'node', userClaims), user), { mode: 0o600 });
    // A user signed by an account the operator never issued.
    const strangerFile = join(dir, 'stranger.creds');
    writeFileSync(strangerFile, creds(jwt(stranger, user.getPublicKey(), 'node', userClaims), user), { mode: 0o600 });
    const s = await server([`operator: "${operatorJwt}"`, 'resolver: MEMORY', `resolver_preload: { ${account.getPublicKey()}: "${accountJwt}" }`].join('\n'), {
      dir,
    });

    await withBus(s.url, { credsFile }, expectWorkingBus);
    await refused(s.url, { credsFile: strangerFile });
  });

  test('over mutual TLS (CA, client certificate and key), with a password on top', async () => {
    const dir = natsTempDir();
    const tls = makeCertificates(dir);
    const password = secret();
    const s = await server(
      [
        `tls { cert_file: "${tls.serverCert}", key_file: "${tls.serverKey}", ca_file: "${tls.ca}", verify: true, timeout: 5 }`,
        'authorization { users: [ { user: node, password: $P } ] }',
      ].join('\n'),
      { dir, env: { P: password } },
    );
    const mutual: NatsAuth = { user: 'node', password, tlsCaFile: tls.ca, tlsCertFile: tls.clientCert, tlsKeyFile: tls.clientKey };

    await withBus(s.url, mutual, expectWorkingBus);
    // No client certificate, no TLS at all, or a server certificate from an unknown CA: refused.
    await refused(s.url, { user: 'node', password, tlsCaFile: tls.ca });
    await refused(s.url, { user: 'node', password });
    await refused(s.url, { ...mutual, tlsCaFile: tls.otherCa });
  });
});

describe('the composition root reads the CORDON_NATS_* settings', () => {
  const env = (over: Record<string, string>) =>
    loadConfig({
      CORDON_TRUST_STORE: join(ROOT, 'deploy', 'trust-store.example.json'),
      CORDON_NATS_SUBJECT_PREFIX: uniqueSubjectPrefix(),
      CORDON_VERIFY_THREADS: '0',
      ...over,
    });

  test('connects with the configured credentials and says nothing about them', async () => {
    const token = secret();
    const s = await server('authorization { token: $T }', { env: { T: token } });
    const { log, lines } = capture();
    const c = await compose(env({ CORDON_NATS_URL: s.url, CORDON_NATS_TOKEN: token }), log);
    try {
      expect(c.mode.bus).toBe('nats');
      await c.deps.bus.ping();
      expect(lines.filter((l) => l.includes('NATS without credentials'))).toEqual([]);
    } finally {
      await c.close();
    }
    await expect(compose(env({ CORDON_NATS_URL: s.url, CORDON_NATS_TOKEN: 'wrong' }), silent)).rejects.toBeInstanceOf(BusUnavailableError);
  });

  test('warns at start when a node uses NATS without credentials', async () => {
    const { log, lines } = capture();
    const c = await compose(env({ CORDON_NATS_URL: TEST_NATS_URL }), log);
    try {
      const warning = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => String(l.msg).startsWith('NATS without credentials'));
      expect(warning).toMatchObject({ level: 40, component: 'nats' });
    } finally {
      await c.close();
    }
  });
});

describe('cordon publish --nats', () => {
  test('logs in with the CORDON_NATS_* variables of its environment', async () => {
    const node = secret();
    const gateway = secret();
    const s = await server('authorization { users: [ { user: node, password: $N }, { user: gateway-kg, password: $G } ] }', {
      env: { N: node, G: gateway },
    });
    const t = await makeTestApp({ backend: 'real', nats: { url: s.url, auth: { user: 'node', password: node } } });
    try {
      const k = t.trust.alertKey('KG');
      const mine = t.regions
        .list()
        .filter((r) => r.states.includes('KG'))
        .map((r) => r.code);
      writeFileSync(
        join(s.dir, 'kg.jwk.json'),
        JSON.stringify({ ...k.privateKey.export({ format: 'jwk' }), kid: k.kid, cordon: { state: 'KG', use: 'alert', regions: mine } }),
      );
      writeFileSync(join(s.dir, 'regions.json'), JSON.stringify({ regions: t.regions.list() }));
      const argv = ['publish', '--demo', '--key', 'kg.jwk.json', '--regions', 'regions.json', '--nats', s.url, '--timeout', '3000'];
      const env = { CORDON_NATS_SUBJECT_PREFIX: t.deps.config.natsSubjectPrefix };

      const anonymous = await runCordon(s.dir, argv, { env });
      expect(anonymous.code).toBe(1);
      expect(anonymous.stderr).toMatch(/cannot connect to NATS/);

      const r = await runCordon(s.dir, argv, { env: { ...env, CORDON_NATS_USER: 'gateway-kg', CORDON_NATS_PASSWORD: gateway } });
      expect(r.stderr).toContain('published');
      expect(JSON.parse(r.stdout)).toMatchObject({ region: mine[0], seq: 1, status: 201 });
      expect(r.code).toBe(0);

      const bad = await runCordon(s.dir, argv, { env: { ...env, CORDON_NATS_USER: 'gateway-kg' } });
      expect([bad.code, bad.stderr]).toEqual([1, expect.stringContaining('CORDON_NATS_USER needs CORDON_NATS_PASSWORD')]);
    } finally {
      await t.close();
    }
  });
});

// ---- key material made the way nsc and openssl make it

const b64url = (data: string | Uint8Array) => Buffer.from(data).toString('base64url');

/** A NATS JWT (ed25519-nkey), signed by `issuer`. */
function jwt(issuer: ReturnType<typeof nkeys.createOperator>, subject: string, name: string, nats: Record<string, unknown>): string {
  const claims: Record<string, unknown> = { iat: Math.floor(Date.now() / 1000), iss: issuer.getPublicKey(), name, sub: subject, nats };
  claims.jti = createHash('sha256').update(JSON.stringify(claims)).digest('base64url');
  const signingInput = `${b64url(JSON.stringify({ typ: 'JWT', alg: 'ed25519-nkey' }))}.${b64url(JSON.stringify(claims))}`;
  return `${signingInput}.${b64url(issuer.sign(encoder.encode(signingInput)))}`;
}

function creds(userJwt: string, user: ReturnType<typeof nkeys.createUser>): string {
  return [
    '-----BEGIN NATS USER JWT-----',
    userJwt,
    '------END NATS USER JWT------',
    '',
    '-----BEGIN USER NKEY SEED-----',
    new TextDecoder().decode(user.getSeed()),
    '------END USER NKEY SEED------',
    '',
  ].join('\n');
}

/** A CA, a server certificate for 127.0.0.1, a client certificate, and a second, unrelated CA. */
function makeCertificates(dir: string) {
  const file = (name: string) => join(dir, name);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const key = (name: string) => openssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', file(name));
  const ca = (name: string) => {
    key(`${name}.key`);
    openssl('req', '-x509', '-new', '-key', file(`${name}.key`), '-out', file(`${name}.pem`), '-days', '2', '-subj', `/CN=${name}`);
  };
  const issue = (name: string, ext: string) => {
    key(`${name}.key`);
    openssl('req', '-new', '-key', file(`${name}.key`), '-out', file(`${name}.csr`), '-subj', `/CN=${name}`);
    writeFileSync(file(`${name}.ext`), ext);
    openssl(
      'x509',
      '-req',
      '-in',
      file(`${name}.csr`),
      '-CA',
      file('ca.pem'),
      '-CAkey',
      file('ca.key'),
      '-CAcreateserial',
      '-out',
      file(`${name}.pem`),
      '-days',
      '2',
      '-extfile',
      file(`${name}.ext`),
    );
  };
  ca('ca');
  ca('other-ca');
  // nats.js gives Node's TLS no server name when the URL holds an IP address, and Node then checks
  // the certificate against "localhost".
  issue('server', 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  issue('client', 'extendedKeyUsage=clientAuth\n');
  return {
    ca: file('ca.pem'),
    otherCa: file('other-ca.pem'),
    serverCert: file('server.pem'),
    serverKey: file('server.key'),
    clientCert: file('client.pem'),
    clientKey: file('client.key'),
  };
}
