import { sign as cryptoSign } from 'node:crypto';
import { makeTestApp, type Backend, type TestApp } from '../helpers/app';
import { validContent, timestamp } from '../fixtures/alerts';
import { canonicalize } from '../../src/domain/jcs';
import type { AlertContent, Receipt, Submission } from '../../src/domain/types';
import type { TestKey } from '../helpers/keys';

const b64u = (s: string | Buffer) => Buffer.from(s).toString('base64url');

/** Signs with an arbitrary protected header (to test the header rules). */
function signWithHeader(content: AlertContent, key: TestKey, header: Record<string, unknown>): Submission {
  const protectedB64 = b64u(JSON.stringify(header));
  const input = Buffer.from(`${protectedB64}.${b64u(canonicalize(content))}`, 'ascii');
  return { content, sig: { protected: protectedB64, signature: b64u(cryptoSign(null, input, key.privateKey)) } };
}

const nowS = () => Math.floor(Date.now() / 1000);

describe.each<Backend>(['memory', 'real', 'sqlite'])('POST /v1/alerts on the %s backend', (backend) => {
  let t: TestApp;
  let region: string;
  const delivered: string[] = [];

  beforeAll(async () => {
    t = await makeTestApp({ backend });
    region = t.regions.list()[0].code;
    await t.deps.bus.subscribeAlerts((json) => delivered.push(json));
  });
  afterAll(() => t.close());

  const content = (over: Partial<AlertContent> = {}) => validContent({ region, ...over });
  const post = (payload: unknown, headers: Record<string, string> = {}) =>
    t.app.inject({
      method: 'POST',
      url: '/v1/alerts',
      headers: { 'content-type': 'application/json', ...headers },
      payload: typeof payload === 'string' || Buffer.isBuffer(payload) ? payload : JSON.stringify(payload),
    });
  const top = async () => (await t.deps.regionLog.state(region)).latest;
  const waitDelivered = async (n: number) => {
    for (let i = 0; i < 100 && delivered.length < n; i++) await new Promise((r) => setTimeout(r, 20));
  };

  test('a valid signed alert gets a 201 receipt with the next seq and is published exactly as signed', async () => {
    const before = await top();
    const sub = t.sign(content());
    const res = await post(sub);
    expect(res.statusCode).toBe(201);
    const receipt = res.json<Receipt>();
    expect(receipt).toEqual({
      id: sub.content.id,
      modified: sub.content.modified,
      region,
      seq: before + 1,
      epoch: expect.any(String),
      received_at: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/),
      leaf_index: before, // contract §12: seq - 1
    });
    await waitDelivered(1);
    const d = JSON.parse(delivered.find((j) => j.includes(sub.content.id))!);
    expect(d).toEqual({ region, seq: receipt.seq, epoch: receipt.epoch, received_at: receipt.received_at, ...sub });
  });

  test('an identical resubmission returns the original receipt with 200 and publishes nothing new', async () => {
    const c = content();
    const before = delivered.length;
    const first = await post(t.sign(c));
    expect(first.statusCode).toBe(201);
    await waitDelivered(before + 1);
    const count = delivered.length;
    const atTop = await top();
    // Same content, signed again later (another iat): still the same version.
    const again = await post(t.sign(c, undefined, nowS() - 5));
    expect(again.statusCode).toBe(200);
    expect(again.json()).toEqual(first.json());
    await new Promise((r) => setTimeout(r, 100));
    expect(delivered.length).toBe(count);
    expect(await top()).toBe(atTop);
  });

  test('the same (id, modified) with other content is a 409 equivocation and a security audit record', async () => {
    const c = content();
    expect((await post(t.sign(c))).statusCode).toBe(201);
    const atTop = await top();
    const res = await post(t.sign({ ...c, title: 'A different title' }));
    expect(res.statusCode).toBe(409);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.json()).toMatchObject({ status: 409, code: 'VERSION_EQUIVOCATION' });
    expect(await top()).toBe(atTop);
    const audit = await t.deps.audit.read(0, 1000);
    expect(audit.items).toContainEqual(expect.objectContaining({ kind: 'security', event: 'equivocation', id: c.id, modified: c.modified }));
  });

  test('versions: a later version is accepted, an older one is stale, nothing follows a revocation', async () => {
    const v1 = content();
    const later = (ms: number) => timestamp(Date.parse(v1.created) + ms);
    expect((await post(t.sign(v1))).statusCode).toBe(201);
    const v3 = { ...v1, modified: later(2000), correction_note: 'Plate number corrected' };
    expect((await post(t.sign(v3))).statusCode).toBe(201);
    const v2 = { ...v1, modified: later(1000), correction_note: 'Late correction' };
    const stale = await post(t.sign(v2));
    expect(stale.statusCode).toBe(409);
    expect(stale.json().code).toBe('VERSION_STALE');
    const revoked = { ...v1, modified: later(3000), revoked: true };
    delete (revoked as Partial<AlertContent>).correction_note;
    expect((await post(t.sign(revoked))).statusCode).toBe(201);
    const after = await post(t.sign({ ...v1, modified: later(4000), correction_note: 'Too late' }));
    expect(after.statusCode).toBe(409);
    expect(after.json().code).toBe('VERSION_AFTER_REVOCATION');
  });

  test('another state reusing an alert id with the same modified is 403 VERSION_NOT_ISSUER, not a security event of the caller', async () => {
    const c = content();
    expect((await post(t.sign(c))).statusCode).toBe(201);
    const atTop = await top();
    const squatter = { ...c, title: 'Same id, same modified, from China', issuer: { state: 'CN', agency: 'cn-customs', gateway: 'cn-gw-1' } };
    const res = await post(t.sign(squatter, 'CN'));
    expect(res.statusCode).toBe(403);
    expect(res.json()).toMatchObject({ status: 403, code: 'VERSION_NOT_ISSUER' });
    expect(await top()).toBe(atTop);
    const records = (await t.deps.audit.read(0, 100_000)).items.filter((r) => r.id === c.id);
    expect(records.filter((r) => r.kind === 'security')).toEqual([]);
    expect(records).toContainEqual(expect.objectContaining({ kind: 'rejected', code: 'VERSION_NOT_ISSUER', state: 'CN' }));
  });

  test('another state may not version an alert (403) and created may not change (409)', async () => {
    const v1 = content();
    expect((await post(t.sign(v1))).statusCode).toBe(201);
    const modified = timestamp(Date.parse(v1.created) + 1000);
    const byChina = {
      ...v1,
      modified,
      correction_note: 'Chinese correction',
      issuer: { state: 'CN', agency: 'cn-customs', gateway: 'cn-gw-1' },
    };
    const res = await post(t.sign(byChina, 'CN'));
    expect(res.statusCode).toBe(403);
    expect(res.json().code).toBe('VERSION_NOT_ISSUER');
    const moved = { ...v1, modified, correction_note: 'x', created: timestamp(Date.parse(v1.created) - 1000) };
    const res2 = await post(t.sign(moved));
    expect(res2.statusCode).toBe(409);
    expect(res2.json().code).toBe('VERSION_FIELD_CHANGED');
  });

  describe('hostile and invalid input is rejected with its code and writes nothing', () => {
    const cases: Array<[string, () => { body: string | Buffer; headers?: Record<string, string> }, number, string]> = [
      ['malformed JSON', () => ({ body: '{"content": ' }), 400, 'REQUEST_MALFORMED_JSON'],
      ['an empty body', () => ({ body: '' }), 400, 'REQUEST_MALFORMED_JSON'],
      ['deep nesting', () => ({ body: '['.repeat(5000) + ']'.repeat(5000) }), 400, 'REQUEST_TOO_DEEP'],
      [
        'a duplicate key',
        () => {
          const s = JSON.stringify(t.sign(content()));
          return { body: s.replace('"content":{', '"content":{"title":"x",') };
        },
        400,
        'REQUEST_DUPLICATE_KEY',
      ],
      ['a __proto__ key', () => ({ body: '{"__proto__":{"x":1},"content":{},"sig":{}}' }), 400, 'REQUEST_FORBIDDEN_KEY'],
      ['a constructor key', () => ({ body: '{"constructor":1}' }), 400, 'REQUEST_FORBIDDEN_KEY'],
      ['a lone surrogate', () => ({ body: JSON.stringify(t.sign(content())).replace('"title":"', '"title":"\\ud800') }), 400, 'REQUEST_INVALID_UNICODE'],
      ['an unsafe integer', () => ({ body: '{"content":{"n":9007199254740993},"sig":{}}' }), 400, 'REQUEST_UNSAFE_NUMBER'],
      ['a control character in the title', () => ({ body: JSON.stringify(t.sign(content({ title: 'bad\u0007title' }))) }), 400, 'SUBMISSION_INVALID'],
      ['a body over the limit', () => ({ body: JSON.stringify({ pad: 'x'.repeat(70 * 1024) }) }), 413, 'REQUEST_TOO_LARGE'],
      ['a body that is not JSON', () => ({ body: 'hello', headers: { 'content-type': 'text/plain' } }), 415, 'REQUEST_UNSUPPORTED_MEDIA_TYPE'],
      [
        'alg EdDSA',
        () => ({
          body: JSON.stringify(
            signWithHeader(content(), t.trust.alertKey('KG'), { alg: 'EdDSA', kid: t.trust.alertKey('KG').kid, typ: 'cordon-alert+jws', iat: nowS() }),
          ),
        }),
        401,
        'SIGNATURE_HEADER_INVALID',
      ],
      ...(['jwk', 'jku', 'x5u', 'x5c', 'crit', 'b64'] as const).map((h): [string, () => { body: string }, number, string] => [
        `a ${h} header`,
        () => ({
          body: JSON.stringify(
            signWithHeader(content(), t.trust.alertKey('KG'), {
              alg: 'Ed25519',
              kid: t.trust.alertKey('KG').kid,
              typ: 'cordon-alert+jws',
              iat: nowS(),
              [h]: h === 'b64' ? false : h === 'crit' ? ['b64'] : 'https://attacker.invalid/key',
            }),
          ),
        }),
        401,
        'SIGNATURE_HEADER_INVALID',
      ]),
      [
        'an unknown kid',
        () => {
          const sub = t.sign(content());
          const header = JSON.parse(Buffer.from(sub.sig.protected, 'base64url').toString());
          return {
            body: JSON.stringify(signWithHeader(content(), t.trust.alertKey('KG'), { ...header, kid: 'A'.repeat(43) })),
          };
        },
        401,
        'SIGNATURE_KEY_UNKNOWN',
      ],
      [
        'a bad signature',
        () => {
          const sub = t.sign(content());
          return { body: JSON.stringify({ ...sub, content: { ...sub.content, title: 'tampered' } }) };
        },
        401,
        'SIGNATURE_INVALID',
      ],
      ["another state's key", () => ({ body: JSON.stringify(t.sign(content(), 'CN')) }), 403, 'KEY_NOT_AUTHORISED'],
      [
        'iat a day and more in the past',
        () => ({ body: JSON.stringify(t.sign(content(), undefined, nowS() - 86_400 - 60)) }),
        422,
        'SIGNATURE_IAT_OUT_OF_WINDOW',
      ],
      ['iat ten minutes in the future', () => ({ body: JSON.stringify(t.sign(content(), undefined, nowS() + 600)) }), 422, 'SIGNATURE_IAT_OUT_OF_WINDOW'],
    ];

    test.each(cases)('%s', async (_name, make, status, code) => {
      const before = await top();
      const auditBefore = (await t.deps.audit.read(0, 10_000)).items.length;
      const { body, headers } = make();
      const res = await post(body, headers);
      expect(res.statusCode).toBe(status);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(res.json()).toMatchObject({ status, code, type: expect.any(String), title: expect.any(String), detail: expect.any(String) });
      expect(await top()).toBe(before);
      // Only correctly signed submissions are audited.
      const signedRejection = ['KEY_NOT_AUTHORISED', 'SIGNATURE_IAT_OUT_OF_WINDOW'].includes(code);
      expect((await t.deps.audit.read(0, 10_000)).items.length).toBe(auditBefore + (signedRejection ? 1 : 0));
    });

    test('all schema violations are listed, not only the first', async () => {
      const c = content({ urgency: 'whenever' as never, title: '' });
      delete (c as Partial<AlertContent>).grading;
      const res = await post(t.sign(c));
      expect(res.statusCode).toBe(400);
      const body = res.json();
      expect(body.code).toBe('SUBMISSION_INVALID');
      const paths = body.errors.map((e: { path: string }) => e.path);
      expect(paths).toEqual(expect.arrayContaining(['/content/urgency', '/content/title', '/content/grading']));
    });

    test('the server is still up after all of it', async () => {
      expect((await t.app.inject({ url: '/healthz' })).statusCode).toBe(200);
      expect((await post(t.sign(content()))).statusCode).toBe(201);
    });
  });

  test('the NATS door answers the same receipt with the status folded in', async () => {
    const sub = t.sign(content());
    const reply = await t.deps.bus.requestIngest(region, Buffer.from(JSON.stringify(sub)), 5000);
    expect(reply).toMatchObject({ status: 201, id: sub.content.id, region, seq: expect.any(Number) });
    const again = await t.deps.bus.requestIngest(region, Buffer.from(JSON.stringify(sub)), 5000);
    expect(again).toEqual({ ...reply, status: 200 });
    const wrongSubject = await t.deps.bus.requestIngest(t.regions.list()[1].code, Buffer.from(JSON.stringify(t.sign(content()))), 5000);
    expect(wrongSubject).toMatchObject({ status: 400, code: 'INGEST_SUBJECT_MISMATCH' });
    const junk = await t.deps.bus.requestIngest(region, Buffer.from('not json'), 5000);
    expect(junk).toMatchObject({ status: 400, code: 'REQUEST_MALFORMED_JSON' });
  });

  test('GET /v1/regions shows a token holder its regions with epoch and newest seq', async () => {
    expect((await t.app.inject({ url: '/v1/regions' })).statusCode).toBe(401);
    const bad = await t.app.inject({ url: '/v1/regions', headers: { authorization: 'Bearer x.y.z' } });
    expect(bad.statusCode).toBe(401);
    expect(bad.json().code).toBe('TOKEN_INVALID');
    const res = await t.app.inject({ url: '/v1/regions', headers: { authorization: `Bearer ${t.token()}` } });
    expect(res.statusCode).toBe(200);
    const entry = res.json().regions.find((r: { code: string }) => r.code === region);
    expect(entry).toMatchObject({ code: region, name: expect.any(String), states: ['KG', 'CN'], seq: await top() });
    expect(typeof entry.epoch).toBe('string');
    const empty = res.json().regions.find((r: { code: string }) => r.code !== region);
    expect(empty).toMatchObject({ seq: 0, epoch: null });
  });

  test('GET /v1/trust, /healthz, /readyz answer, and /metrics on the operator listener', async () => {
    const trust = await t.app.inject({ url: '/v1/trust' });
    expect(trust.statusCode).toBe(200);
    expect(Object.keys(trust.json().states)).toEqual(expect.arrayContaining(['KG', 'KZ', 'CN']));
    expect(JSON.stringify(trust.json())).not.toMatch(/"d"\s*:/); // no private key material
    expect((await t.app.inject({ url: '/healthz' })).statusCode).toBe(200);
    expect((await t.app.inject({ url: '/readyz' })).statusCode).toBe(200);
    expect(await t.metrics()).toMatch(/cordon_ingest_accepted_total\{door="http",outcome="new"\} \d+/);
  });
});

describe('two Cordon instances appending to one region at once', () => {
  test('every accepted alert gets a distinct seq, 1..n with no gap', async () => {
    const a = await makeTestApp({ backend: 'real' });
    const b = await makeTestApp({
      backend: 'real',
      regions: a.regions.list(),
      trust: a.trust,
      shared: { keyPrefix: a.deps.config.redisKeyPrefix, subjectPrefix: a.deps.config.natsSubjectPrefix },
    });
    try {
      const region = a.regions.list()[0].code;
      const n = 120;
      const results = await Promise.all(
        Array.from({ length: n }, (_, i) => {
          const node = i % 2 === 0 ? a : b;
          return node.app.inject({ method: 'POST', url: '/v1/alerts', payload: node.sign(validContent({ region })) });
        }),
      );
      expect(results.map((r) => r.statusCode)).toEqual(Array(n).fill(201));
      const seqs = results.map((r) => r.json<Receipt>().seq).sort((x, y) => x - y);
      expect(seqs).toEqual(Array.from({ length: n }, (_, i) => i + 1));
      const epochs = new Set(results.map((r) => r.json<Receipt>().epoch));
      expect(epochs.size).toBe(1);
    } finally {
      await a.close();
      await b.close();
    }
  });
});

describe('with Redis unreachable', () => {
  test('ingest answers 503 LOG_UNAVAILABLE, writes nothing, and works again when Redis is back', async () => {
    const { startProxy } = await import('../helpers/tcp-proxy');
    const { TEST_REDIS_URL } = await import('../helpers/env');
    const proxy = await startProxy(TEST_REDIS_URL);
    const t = await makeTestApp({ backend: 'real', redisUrl: proxy.url });
    try {
      const region = t.regions.list()[0].code;
      const post = (c: AlertContent) => t.app.inject({ method: 'POST', url: '/v1/alerts', payload: t.sign(c) });
      expect((await post(validContent({ region }))).statusCode).toBe(201);

      await proxy.pause();
      const started = Date.now();
      const down = await post(validContent({ region }));
      expect(down.statusCode).toBe(503);
      expect(down.json()).toMatchObject({ code: 'LOG_UNAVAILABLE', status: 503 });
      expect(down.body).not.toMatch(/ECONNREFUSED|127\.0\.0\.1|Connection is closed/);
      expect(Date.now() - started).toBeLessThan(3000);
      expect((await t.app.inject({ url: '/readyz' })).statusCode).toBe(503);

      await proxy.resume();
      let res: Awaited<ReturnType<typeof post>> | undefined;
      for (let i = 0; i < 50; i++) {
        res = await post(validContent({ region }));
        if (res.statusCode === 201) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(res!.statusCode).toBe(201);
      // Nothing was half-written while Redis was away: the next seq follows the first without a gap.
      expect(res!.json<Receipt>().seq).toBe(2);
    } finally {
      await t.close();
      await proxy.close();
    }
  });
});
