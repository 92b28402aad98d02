import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { errors, type NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { makeTestApp, type TestApp } from '../helpers/app';
import { makeTestTrust } from '../helpers/keys';
import { type Desk, socketDesk } from '../helpers/desk';
import { uniqueKeyPrefix } from '../helpers/env';
import { authorizationBlock, NATS_SERVER_BINARY, startNatsServer, type NatsServerProcess } from '../helpers/nats-server';
import { validContent } from '../fixtures/alerts';
import { RegionRegistry } from '../../src/domain/regions';

/**
 * The shipped deploy/nats/nats-cluster.conf enforced by a real nats-server: the test starts one on
 * a free port with the file's own `authorization` block (passwords from the environment, as in
 * docker-compose.yml) and attacks it as each kind of user, then runs Cordon nodes on it.
 */

const ROOT = join(__dirname, '..', '..');
const SHIPPED = readFileSync(join(ROOT, 'deploy', 'nats', 'nats-cluster.conf'), 'utf8');
const AUTHORIZATION = authorizationBlock(SHIPPED);
const encoder = new TextEncoder();
/**
 * A password or token as docs/operations.md makes them: nats-server parses a `$VARIABLE`'s value
 * like configuration text, so it must start with a letter (`70e1ab...` would be read as a number).
 */
const secret = () => `pw-${randomBytes(16).toString('hex')}`;
const decoder = new TextDecoder();

/** Every `$VARIABLE` the block names, with a fresh random value. */
const PASSWORDS: Record<string, string> = Object.fromEntries(
  [...new Set([...AUTHORIZATION.matchAll(/\$([A-Z][A-Z0-9_]*)/g)].map((m) => m[1]))].map((v) => [v, secret()]),
);
const REGIONS = RegionRegistry.example().list();

interface Client {
  nc: NatsConnection;
  /** asynchronous errors the server sent this client (permission violations). */
  errors: Error[];
}

async function eventually(check: () => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('the shipped NATS authorization, enforced by a real nats-server', () => {
  let server: NatsServerProcess;
  const clients: Client[] = [];

  async function login(user: string, password = PASSWORDS[passwordVariable(user)]): Promise<Client> {
    const nc = await connect({ servers: server.url, user, pass: password, name: `test-${user}` });
    const client: Client = { nc, errors: [] };
    void (async () => {
      for await (const s of nc.status()) if (s.type === 'error') client.errors.push(s.error);
    })();
    clients.push(client);
    return client;
  }

  /** The variable holding a user's password in the shipped block: `password: $X` on its line. */
  function passwordVariable(user: string): string {
    const m = new RegExp(`user: ${user}, password: \\$([A-Z0-9_]+)`).exec(AUTHORIZATION);
    if (!m) throw new Error(`no user ${user} in the shipped authorization block`);
    return m[1];
  }

  /** Receives on `subject` as `client`; the list fills as messages arrive. */
  async function listen(client: Client, subject: string): Promise<string[]> {
    const got: string[] = [];
    client.nc.subscribe(subject, { callback: (err, msg) => void (err ? undefined : got.push(`${msg.subject} ${decoder.decode(msg.data)}`)) });
    await client.nc.flush();
    return got;
  }

  const violation = (client: Client, text: string) => () => client.errors.some((e) => e instanceof errors.PermissionViolationError && e.message.includes(text));

  beforeAll(async () => {
    server = await startNatsServer(AUTHORIZATION, { env: PASSWORDS });
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.nc.close().catch(() => undefined)));
    await server.close();
  });

  test('the whole shipped file is a valid nats-server configuration with passwords made as docs/operations.md makes them', () => {
    const run = spawnSync(NATS_SERVER_BINARY, ['-t', '-c', join(ROOT, 'deploy', 'nats', 'nats-cluster.conf')], {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...PASSWORDS },
      encoding: 'utf8',
    });
    expect([run.status, run.stderr.trim()]).toEqual([0, expect.stringMatching(/configuration file .* is valid$/)]);
  });

  test('a client without credentials, or with a wrong password, cannot connect', async () => {
    await expect(connect({ servers: server.url })).rejects.toBeInstanceOf(errors.AuthorizationError);
    await expect(connect({ servers: server.url, user: 'gateway-kg', pass: 'guess' })).rejects.toBeInstanceOf(errors.AuthorizationError);
    await expect(connect({ servers: server.url, user: 'cordon-node', pass: PASSWORDS[passwordVariable('gateway-kg')] })).rejects.toBeInstanceOf(
      errors.AuthorizationError,
    );
  });

  test('a gateway cannot publish on the fan-out: the message reaches nobody', async () => {
    const node = await login('cordon-node');
    const fanout = await listen(node, 'cordon.alerts.>');
    const gateway = await login('gateway-kg');

    gateway.nc.publish('cordon.alerts.KG-CN-01.flash', encoder.encode('{"seq":1,"forged":true}'));
    gateway.nc.publish('cordon.alerts.KG-CN-01.urgent', encoder.encode('{"seq":2,"forged":true}'));
    await gateway.nc.flush();

    await eventually(violation(gateway, 'Publish to "cordon.alerts.KG-CN-01.urgent"'), 5000, 'the permission violation');
    await node.nc.flush();
    expect(fanout).toEqual([]);
  });

  test("a gateway cannot join the ingest queue group, read the fan-out, or submit for another state's region", async () => {
    const gateway = await login('gateway-kg');
    const subErrors: Error[] = [];
    const steal = gateway.nc.subscribe('cordon.ingest.*', { queue: 'cordon-ingest', callback: (err) => void (err && subErrors.push(err)) });
    const plain = gateway.nc.subscribe('cordon.ingest.>', { callback: (err) => void (err && subErrors.push(err)) });
    const read = gateway.nc.subscribe('cordon.alerts.>', { callback: (err) => void (err && subErrors.push(err)) });

    await eventually(() => steal.isClosed() && plain.isClosed() && read.isClosed(), 5000, 'the refused subscriptions to close');
    expect(subErrors.map((e) => e.message).sort()).toEqual([
      'Permissions Violation for Subscription to "cordon.alerts.>"',
      'Permissions Violation for Subscription to "cordon.ingest.*" using queue "cordon-ingest"',
      'Permissions Violation for Subscription to "cordon.ingest.>"',
    ]);
    for (const e of subErrors) expect(e).toBeInstanceOf(errors.PermissionViolationError);

    // TJ-AF-01 lies between Tajikistan and Afghanistan: not Kyrgyzstan's to submit.
    await expect(gateway.nc.request('cordon.ingest.TJ-AF-01', encoder.encode('{}'), { timeout: 2000 })).rejects.toThrow(
      /Permissions Violation for Publish to "cordon.ingest.TJ-AF-01"/,
    );
  });

  test('a NATS-native consumer reads nothing but the fan-out and can publish nothing', async () => {
    const node = await login('cordon-node');
    const fanout = await listen(node, 'cordon.alerts.>');
    const consumer = await login('consumer');
    const ingestErrors: Error[] = [];
    const sub = consumer.nc.subscribe('cordon.ingest.*', { queue: 'cordon-ingest', callback: (err) => void (err && ingestErrors.push(err)) });

    for (const subject of ['cordon.alerts.KG-CN-01.flash', 'cordon.ingest.KG-CN-01', '_INBOX.anything']) {
      consumer.nc.publish(subject, encoder.encode('{}'));
    }
    await consumer.nc.flush();

    await eventually(violation(consumer, 'Publish to "_INBOX.anything"'), 5000, 'the last permission violation');
    expect(consumer.errors.filter((e) => e instanceof errors.PermissionViolationError).map((e) => e.message)).toEqual(
      expect.arrayContaining([
        'Permissions Violation for Publish to "cordon.alerts.KG-CN-01.flash"',
        'Permissions Violation for Publish to "cordon.ingest.KG-CN-01"',
      ]),
    );
    await eventually(() => sub.isClosed(), 5000, 'the refused subscription to close');
    expect(ingestErrors[0]).toBeInstanceOf(errors.PermissionViolationError);
    await node.nc.flush();
    expect(fanout).toEqual([]);
  });

  describe('Cordon nodes logged in as cordon-node', () => {
    let a: TestApp;
    let b: TestApp;
    let desk: Desk;
    const region = 'KG-CN-01';

    beforeAll(async () => {
      const trust = makeTestTrust(['KG', 'KZ', 'CN'], REGIONS);
      // The shipped permissions name the production subjects: this server is the test's own.
      const shared = { keyPrefix: uniqueKeyPrefix(), subjectPrefix: 'cordon' };
      const nats = { url: server.url, auth: { user: 'cordon-node', password: PASSWORDS[passwordVariable('cordon-node')] } };
      // No position check within the test's time: what reaches the desk came over NATS.
      const config = { CORDON_POSITION_CHECK_MS: '600000' };
      a = await makeTestApp({ backend: 'real', shared, trust, regions: REGIONS, config, nats });
      b = await makeTestApp({ backend: 'real', shared, trust, regions: REGIONS, config, nats });
      await b.app.listen({ port: 0, host: '127.0.0.1' });
      const url = `ws://127.0.0.1:${(b.app.server.address() as { port: number }).port}/v1/stream`;
      desk = await socketDesk(url, b.token());
      desk.subscribe([region]);
      await desk.untilFrames('subscribed', 1);
    });
    afterAll(async () => {
      desk?.close();
      await a?.close();
      await b?.close();
    });

    test("answer a gateway's ingest requests with receipts, and the fan-out reaches a desk and a consumer", async () => {
      const gateway = await login('gateway-kg');
      const consumer = await login('consumer');
      const consumed = await listen(consumer, `cordon.alerts.${region}.>`);
      // A rogue responder in the queue group would take some of these requests: it is refused.
      gateway.nc.subscribe('cordon.ingest.*', { queue: 'cordon-ingest', callback: () => undefined });

      const receipts: Array<Record<string, unknown>> = [];
      for (let i = 0; i < 4; i++) {
        const submission = a.sign(validContent({ region }));
        const reply = await gateway.nc.request(`cordon.ingest.${region}`, encoder.encode(JSON.stringify(submission)), { timeout: 5000 });
        receipts.push(JSON.parse(decoder.decode(reply.data)) as Record<string, unknown>);
      }

      expect(receipts.map((r) => [r.status, r.region, r.seq])).toEqual([
        [201, region, 1],
        [201, region, 2],
        [201, region, 3],
        [201, region, 4],
      ]);
      await desk.untilFrames('alert', 4, 10_000);
      expect(desk.alerts().map((f) => f.seq)).toEqual([1, 2, 3, 4]);
      await eventually(() => consumed.length === 4, 10_000, 'the consumer to get four alerts');
      expect(consumed.map((line) => JSON.parse(line.slice(line.indexOf(' ') + 1)).seq)).toEqual([1, 2, 3, 4]);
    });
  });
});
