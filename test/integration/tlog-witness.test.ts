import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { createServer, type Server } from 'node:http';
import { SIG_COSIGNATURE_V1, noteSigner, openNote, parseCheckpoint, parseVerifierKey } from '../../src/domain/tlog/note';
import { Witness, submitCheckpoint } from '../../src/tlog/witness';
import Redis from 'ioredis';
import { deleteKeysWithPrefix } from '../../src/adapters/redis/client';
import { makeTestApp, sharedBackend, testRegions, type TestApp } from '../helpers/app';
import { makeTestTrust } from '../helpers/keys';
import { TEST_REDIS_URL } from '../helpers/env';
import { validContent } from '../fixtures/alerts';
import { tamperStoredTile } from '../helpers/tlog-tamper';

/** A C2SP tlog-witness against Cordon's real checkpoints (real Redis and NATS). */
describe('witness (C2SP tlog-witness add-checkpoint)', () => {
  jest.setTimeout(60_000);
  const regions = testRegions();
  const region = regions[0].code;
  let t: TestApp;
  let server: Server;
  let url: string;
  let witness: Witness;
  const warnings: object[] = [];
  const errors: object[] = [];
  const signer = noteSigner('witness.kg.example/w1', SIG_COSIGNATURE_V1, generateKeyPairSync('ed25519').privateKey);
  const stateFile = join(mkdtempSync(join(tmpdir(), 'cordon-witness-')), 'state.json');
  // One node's Redis keys, key and trust, so that the node can be restarted on them.
  const shared = sharedBackend();
  const trust = makeTestTrust(['KG', 'KZ', 'CN'], regions);
  const logPrivateKey = generateKeyPairSync('ed25519').privateKey;
  const startNode = () => makeTestApp({ backend: 'real', shared, trust, regions, tlog: { key: logPrivateKey, delayMs: 20 } });

  beforeAll(async () => {
    t = await startNode();
    const logKey = parseVerifierKey(((await t.app.inject({ method: 'GET', url: '/v1/trust' })).json().log as { vkey: string }).vkey);
    witness = new Witness({
      signer,
      logKey,
      stateFile,
      log: { info() {}, warn: (o) => warnings.push(o), error: (o) => errors.push(o) },
    });
    server = await witness.listen('127.0.0.1', 0);
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.close();
    await t.close();
    const admin = new Redis(TEST_REDIS_URL);
    await deleteKeysWithPrefix(admin, shared.keyPrefix);
    await admin.quit();
  });

  const get = (path: string) => t.app.inject({ method: 'GET', url: path, headers: { authorization: `Bearer ${t.token()}` } });
  async function checkpointAt(size: number): Promise<string> {
    const deadline = Date.now() + 15_000;
    for (;;) {
      const res = await get(`/v1/regions/${region}/log/checkpoint`);
      if (res.statusCode === 200 && res.body.includes(`\n${size}\n`)) return res.body;
      if (Date.now() > deadline) throw new Error(`no checkpoint of size ${size}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }
  async function consistency(from: number, to: number): Promise<Buffer[]> {
    return ((await get(`/v1/regions/${region}/log/consistency?from=${from}&to=${to}`)).json().proof as string[]).map((h) => Buffer.from(h, 'base64'));
  }
  const publish = async (n: number) => {
    for (let i = 0; i < n; i++) await t.publish(validContent({ region }));
  };

  it('cosigns extensions, refuses a rollback with 409 and its size, and a forked tree with 422, logged loudly', async () => {
    await publish(3);
    const cp3 = await checkpointAt(3);
    const first = await submitCheckpoint(url, 0, [], cp3);
    expect(first.status).toBe(200);
    // The cosignature verifies as cosignature/v1 over the checkpoint.
    const v = openNote(cp3 + first.body, [signer]);
    expect(v.verified.map((s) => s.name)).toEqual([signer.name]);
    expect(JSON.parse(readFileSync(stateFile, 'utf8')).origins[parseCheckpoint(v.text).origin].size).toBe(3);

    await publish(2);
    const cp5 = await checkpointAt(5);
    expect((await submitCheckpoint(url, 3, await consistency(3, 5), cp5)).status).toBe(200);

    // Rollback: the older checkpoint again.
    const rollback = await submitCheckpoint(url, 3, [], cp3);
    expect(rollback).toEqual({ status: 409, body: '5\n' });
    // A new witness process reads the durable state and refuses it too.
    const again = new Witness({
      signer,
      logKey: parseVerifierKey(((await t.app.inject({ method: 'GET', url: '/v1/trust' })).json().log as { vkey: string }).vkey),
      stateFile,
      log: { info() {}, warn() {}, error() {} },
    });
    expect(await again.addCheckpoint(`old 0\n\n${cp3}`)).toMatchObject({ status: 409, body: '5\n' });

    // Fork: change a stored leaf hash behind Cordon's back while the node restarts. A running node
    // extends the right-edge tiles from what it holds in memory (and so overwrites such a change);
    // the restarted one builds on what Redis holds, and its tree no longer extends size 5.
    const epoch = parseCheckpoint(cp5.slice(0, cp5.lastIndexOf('\n\n') + 1))
      .origin.split('/')
      .pop()!;
    await t.close();
    await tamperStoredTile(t, { region, epoch }, 0, 0xff);
    t = await startNode();
    await publish(3);
    const cp8 = await checkpointAt(8);
    const forked = await submitCheckpoint(url, 5, await consistency(5, 8), cp8);
    expect(forked.status).toBe(422);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ security: true, witnessSize: 5, size: 8 });
    // Still at 5: a log that pretends the witness saw nothing is told its size.
    expect(await submitCheckpoint(url, 0, [], cp8)).toEqual({ status: 409, body: '5\n' });
    // Unsigned or unknown-origin checkpoints.
    expect((await submitCheckpoint(url, 5, [], cp8.replace(/— .*\n$/, '— cordon.localhost AAAAAAAA\n'))).status).toBe(403);
    expect((await submitCheckpoint(url, 0, [], 'other.example/log\n1\n' + 'A'.repeat(43) + '=\n\n— x AAAA\n')).status).toBe(404);
  });
});

describe('nodes submit checkpoints to the witnesses of the trust store', () => {
  jest.setTimeout(60_000);

  it('serves each checkpoint with the cosignatures of every witness with a url, as they extend', async () => {
    const { runCordon } = await import('../helpers/cli');
    const { makeTestTrust } = await import('../helpers/keys');
    const { TrustStore, signingKeyFromJwk } = await import('../../src/domain/trust-store');
    const dir = mkdtempSync(join(tmpdir(), 'cordon-wkeys-'));
    const regions = testRegions();
    const region = regions[0].code;
    const base = makeTestTrust(['KG', 'KZ', 'CN'], regions);
    const servers: Server[] = [];
    const vkeys: string[] = [];
    let logVkey = '';
    const witnesses: Witness[] = [];
    for (const [state, name] of [
      ['KG', 'witness.kg.example/w1'],
      ['KZ', 'witness.kz.example/w1'],
    ]) {
      // The witness process: a key from keygen, an HTTP listener; its url goes into the trust store.
      const server = await new Promise<Server>((resolve) => {
        const s = createServer((req, res) => {
          const chunks: Buffer[] = [];
          req.on('data', (c: Buffer) => chunks.push(c));
          req.on('end', () => {
            const w = witnesses[servers.indexOf(s)];
            void w.addCheckpoint(Buffer.concat(chunks).toString()).then(
              (a) => res.writeHead(a.status, { 'content-type': a.contentType }).end(a.body),
              (err: Error) => res.writeHead(500).end(err.message),
            );
          });
        });
        s.listen(0, '127.0.0.1', () => resolve(s));
      });
      servers.push(server);
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/${state.toLowerCase()}`;
      const kg = await runCordon(dir, ['keygen', '--state', state, '--use', 'witness', '--name', name, '--url', url]);
      expect(kg.code).toBe(0);
      const entry = JSON.parse(kg.stdout);
      expect(entry).toMatchObject({ use: 'witness', name, url, status: 'active' });
      vkeys.push(/cosignature vkey (\S+);/.exec(kg.stderr)![1]);
      base.storeJson.states[state].keys.push(entry);
      const file = readdirSync(dir).find((f) => f.startsWith(`${state}-witness-`))!;
      const key = signingKeyFromJwk(JSON.parse(readFileSync(join(dir, file), 'utf8')));
      witnesses.push(
        new Witness({
          signer: noteSigner(name, SIG_COSIGNATURE_V1, key.privateKey),
          get logKey() {
            return parseVerifierKey(logVkey);
          },
          log: { info() {}, warn() {}, error() {} },
        }),
      );
    }
    const store = TrustStore.fromJson(base.storeJson);
    expect(store.witnesses().map((w) => w.name)).toEqual(['witness.kg.example/w1', 'witness.kz.example/w1']);
    const t = await makeTestApp({ backend: 'real', regions, trust: { ...base, store }, tlog: { delayMs: 20 } });
    try {
      logVkey = ((await t.app.inject({ method: 'GET', url: '/v1/trust' })).json().log as { vkey: string }).vkey;
      const keys = [parseVerifierKey(logVkey), ...vkeys.map(parseVerifierKey)];
      const cosigned = async (size: number) => {
        const deadline = Date.now() + 15_000;
        for (;;) {
          const res = await t.app.inject({ method: 'GET', url: `/v1/regions/${region}/log/checkpoint`, headers: { authorization: `Bearer ${t.token()}` } });
          if (res.statusCode === 200 && res.body.includes(`\n${size}\n`)) {
            const v = openNote(res.body, keys);
            if (v.verified.length === 3) return v;
          }
          if (Date.now() > deadline) throw new Error(`no cosigned checkpoint of size ${size}`);
          await new Promise((r) => setTimeout(r, 25));
        }
      };
      for (let i = 0; i < 3; i++) await t.publish(validContent({ region }));
      expect((await cosigned(3)).verified.map((s) => s.name)).toEqual(['cordon.localhost', ...['witness.kg.example/w1', 'witness.kz.example/w1']]);
      for (let i = 0; i < 4; i++) await t.publish(validContent({ region }));
      await cosigned(7);
      const origin = `cordon.localhost/${region}/${(await t.deps.regionLog.state(region)).epoch}`;
      expect(witnesses.map((w) => w.sizeOf(origin))).toEqual([7, 7]);
    } finally {
      await t.close();
      for (const s of servers) s.close();
    }
  });
});
