import fc from 'fast-check';
import { ERRORS } from '../../src/errors';
import type { Receipt } from '../../src/domain/types';
import { makeTestApp, type TestApp } from '../helpers/app';
import { validContent } from '../fixtures/alerts';
import { DoorStats, edgeNumber, edgeString, ErrorLog, fcParams, fuzzRuns, isDocumented, timeoutFor } from './lib';

/**
 * Door: the query strings (and path parameters and Accept headers) of the history routes
 * GET /v1/regions/{region}/alerts, GET /v1/alerts/{id} and GET /v1/audit, on the real Redis with
 * alerts in the log, for desk and ops tokens. Queries are random text, or valid queries with a
 * parameter dropped, repeated, added, retyped or re-encoded.
 * Invariant: 200, or a problem body with a documented code and its status; never a 5xx; the
 * region log is unchanged; nothing is logged as an error.
 */

const RUNS = fuzzRuns(1200);

type Param = [string, string];
type Route = 'replay' | 'alert' | 'audit';

interface QueryCase {
  route: Route;
  who: number;
  base: number;
  edits: Array<{ op: number; at: number; key: string; value: string }>;
  raw?: string;
  path: number;
  pathText: string;
  accept: number;
}

const KEYS = ['after', 'limit', 'since', 'epoch', 'purpose', 'versions', 'x', '__proto__', 'constructor', 'after[]', 'limit[0]', '', 'AFTER', 'purpose '];
const VALUES = fc.oneof(
  edgeString,
  edgeNumber.map(String),
  fc.constantFrom(
    '0',
    '1',
    '5',
    '1000',
    '1001',
    '-1',
    '01',
    '1.0',
    '1e3',
    ' 5',
    '0x10',
    '9007199254740991',
    '9007199254740992',
    '99999999999999999999',
    'latest',
    'all',
    'ALL',
    '2026-01-01T00:00:00Z',
    '2026-13-01T00:00:00Z',
    '2026-06-30T23:59:60Z',
    '0000-01-01T00:00:00Z',
    '9999-12-31T23:59:59.999999999+14:00',
    '2026-01-01t00:00:00z',
    '2026-01-01T00:00:00-00:00',
    '+275760-09-13T00:00:00Z',
    'now',
  ),
);
const ACCEPTS = [
  undefined,
  'application/json',
  'application/x-ndjson',
  'text/html',
  '*/*',
  'application/x-ndjson;q=0, application/json',
  'application/*;q=0',
  ',,;;q=',
  'x'.repeat(5000),
];

const queryCase: fc.Arbitrary<QueryCase> = fc.record({
  route: fc.constantFrom<Route>('replay', 'replay', 'alert', 'audit'),
  who: fc.nat({ max: 3 }),
  base: fc.nat(),
  edits: fc.array(
    fc.record({
      op: fc.nat({ max: 5 }),
      at: fc.nat(),
      key: fc.oneof(
        fc.constantFrom(...KEYS),
        edgeString.filter((s) => s.length < 100),
      ),
      value: VALUES.filter((s) => s.length < 5000),
    }),
    { maxLength: 2 },
  ),
  raw: fc.oneof(
    { weight: 3, arbitrary: fc.constant(undefined) },
    fc.oneof(
      fc.string({ maxLength: 80 }),
      fc.fullUnicodeString({ maxLength: 40 }),
      fc.constantFrom('%', '%%', '%ZZ', '%00', '&&&', '=&=', 'after=1&after=2', 'a=%E0%A4%A', '%ud800', 'after=%31', 'limit=+1', '?&?', ';;', 'purpose=%0A'),
    ),
  ),
  path: fc.nat({ max: 9 }),
  pathText: fc.oneof(
    edgeString.filter((s) => s.length < 300),
    fc.constantFrom(
      'KG-CN-01',
      'ZZ-ZZ-00',
      'kg-cn-01',
      '..',
      '%2e%2e',
      '%E0%A4%A',
      '%ZZ',
      '%',
      '%00',
      'x'.repeat(101),
      'alert--00000000-0000-4000-8000-000000000000',
      'alert--x',
    ),
  ),
  accept: fc.nat({ max: 3 * ACCEPTS.length }),
});

describe('fuzz: query strings of the replay, alert and audit routes (real Redis)', () => {
  const stats = new DoorStats('history-queries');
  const errors = new ErrorLog();
  let t: TestApp;
  let regions: string[];
  let receipts: Receipt[];
  let tokens: string[];

  beforeAll(async () => {
    t = await makeTestApp({ backend: 'real', config: { CORDON_LOG_LEVEL: 'error' }, logStream: errors });
    regions = t.regions.list().map((r) => r.code);
    receipts = [];
    for (let i = 0; i < 12; i++) {
      receipts.push(await t.publish(validContent({ region: regions[0], urgency: i % 2 ? 'flash' : 'routine' })));
    }
    tokens = [
      t.token(),
      t.token({ role: 'ops', sub: 'ops-1' }),
      t.token({ clearance: 'unclassified', regions: [regions[1]] }),
      t.token({ iss: 'KZ', role: 'ops', sub: 'ops-kz' }),
    ];
  });
  afterAll(async () => {
    stats.print();
    await t?.close();
  });

  function baseParams(c: QueryCase): Param[] {
    const r = receipts[c.base % receipts.length];
    const all: Record<Route, Param[][]> = {
      replay: [
        [],
        [
          ['after', String(c.base % 14)],
          ['limit', '5'],
        ],
        [['since', r.received_at]],
        [
          ['after', String(r.seq)],
          ['epoch', r.epoch],
          ['purpose', 'case 17'],
        ],
        [
          ['limit', '1000'],
          ['purpose', 'x'],
        ],
      ],
      alert: [
        [],
        [['versions', 'all']],
        [
          ['versions', 'latest'],
          ['purpose', 'lookup'],
        ],
      ],
      audit: [
        [['purpose', 'review']],
        [
          ['after', String(c.base % 50)],
          ['limit', '3'],
          ['purpose', 'review'],
        ],
      ],
    };
    return all[c.route][c.base % all[c.route].length].map((p) => [...p] as Param);
  }

  /** Percent-encoded, with lone surrogates made U+FFFD (encodeURIComponent throws on them). */
  const enc = (s: string) => encodeURIComponent((s as unknown as { toWellFormed(): string }).toWellFormed());

  /** Text as typed, only made sendable: controls, spaces, `#`, `?` and non-ASCII escaped; `%` kept. */
  // eslint-disable-next-line no-control-regex -- controls are exactly what must be escaped
  const sendable = (s: string) => s.replace(/[\u0000-\u0020\u007f#?]/g, (ch) => encodeURIComponent(ch)).replace(/[^\u0000-\u007f]+/g, (run) => enc(run));

  function url(c: QueryCase): string {
    let path: string;
    const r = receipts[c.base % receipts.length];
    if (c.route === 'audit') path = '/v1/audit';
    else if (c.route === 'replay') path = `/v1/regions/${c.path < 7 ? regions[c.path % 2] : c.path === 9 ? sendable(c.pathText) : enc(c.pathText)}/alerts`;
    else path = `/v1/alerts/${c.path < 7 ? r.id : c.path === 9 ? sendable(c.pathText) : enc(c.pathText)}`;
    if (c.raw !== null && c.raw !== undefined) {
      // sent as typed, only made sendable (a request line cannot hold spaces or controls)
      return path + '?' + sendable(c.raw);
    }
    const params = baseParams(c);
    for (const e of c.edits) {
      const i = params.length > 0 ? e.at % params.length : 0;
      switch (e.op) {
        case 0:
          params.splice(i, 1);
          break; // drop
        case 1:
          if (params[i]) params.push([params[i][0], e.value]);
          break; // repeat
        case 2:
          params.push([e.key, e.value]);
          break; // add (maybe unknown)
        case 3:
          if (params[i]) params[i][1] = e.value;
          break; // another value
        case 4:
          if (params[i]) params[i][0] = e.key;
          break; // another name
        default:
          params.push([e.key, '']);
          break; // flag without value
      }
    }
    return path + (params.length ? '?' + params.map(([k, v]) => `${enc(k)}=${enc(v)}`).join('&') : '');
  }

  const tops = async () => {
    let sum = 0;
    for (const r of regions) sum += (await t.deps.regionLog.state(r)).latest;
    return sum;
  };

  test(
    `${RUNS} queries: 200 or a documented problem, never a 5xx, nothing stored`,
    async () => {
      const before = await tops();
      await fc.assert(
        fc.asyncProperty(queryCase, async (c) => {
          const accept = ACCEPTS[c.accept]; // mostly none
          const res = await t.app.inject({
            method: 'GET',
            url: url(c),
            headers: { authorization: `Bearer ${tokens[c.who]}`, ...(accept ? { accept } : {}) },
          });
          if (res.statusCode === 200) {
            stats.accept();
            if (!String(res.headers['content-type']).includes('ndjson')) res.json();
          } else {
            const body = res.json<Record<string, unknown>>();
            stats.reject(String(body.code));
            if (!isDocumented(body.code)) throw new Error(`undocumented code ${String(body.code)}: ${res.body}`);
            expect(res.statusCode).toBe(ERRORS[body.code].status);
            if (res.statusCode >= 500) throw new Error(`${res.statusCode} for ${url(c)}: ${res.body}`);
          }
          expect(errors.lines).toEqual([]);
        }),
        fcParams(RUNS),
      );
      expect(await tops()).toBe(before);
      expect(stats.accepted).toBeGreaterThan(0);
    },
    timeoutFor(RUNS, 6),
  );
});
