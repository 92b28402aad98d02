import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeTestApp, type TestApp } from '../helpers/app';
import { validContent } from '../fixtures/alerts';
import { runCordon } from '../helpers/cli';
import { resumePoint } from '../../src/cli/replay';
import { ndjsonAlerts as lines } from '../helpers/ndjson';
import type { DeliveredAlert, Receipt } from '../../src/domain/types';

describe('cordon replay and cordon audit against a listening node on Redis', () => {
  let t: TestApp;
  let url: string;
  let A: string;
  let B: string;
  let dir: string;
  const receipts: Receipt[] = [];
  const N = 25;

  /** Runs the CLI in-process; returns the exit code and what it printed. */
  function cli(args: string[], opts: { tty?: boolean } = {}) {
    return runCordon(dir, args, opts);
  }
  const ops = () => t.token({ iss: 'KG', sub: 'ops-1', role: 'ops' });
  const replayArgs = (region: string, ...more: string[]) => [
    'replay',
    '--url',
    url,
    '--token',
    ops(),
    '--region',
    region,
    '--purpose',
    'case 2026-114',
    ...more,
  ];

  beforeAll(async () => {
    // Small batches: the export crosses many batch and chunk boundaries.
    t = await makeTestApp({ backend: 'real', config: { CORDON_REPLAY_BATCH: '4' } });
    [A, B] = t.regions.list().map((r) => r.code);
    url = await t.app.listen({ port: 0, host: '127.0.0.1' });
    for (let i = 0; i < N; i++) receipts.push(await t.publish(validContent({ region: A })));
    dir = mkdtempSync(join(tmpdir(), 'cordon-cli-replay-'));
  });

  afterAll(async () => {
    await t.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('exports every alert of a region to a file, verified, with progress on stderr, and is audited', async () => {
    const r = await cli(replayArgs(A, '--out', 'all.ndjson'));
    expect(r.stderr).toMatch(/replay: .*seq/);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`${N} alerts verified and written to all.ndjson, up to seq ${N}`);
    const got = lines(readFileSync(join(dir, 'all.ndjson'), 'utf8'));
    expect(got.map((a) => a.seq)).toEqual(receipts.map((x) => x.seq));
    expect(got.map((a) => a.content.id)).toEqual(receipts.map((x) => x.id));
    // Byte for byte what the node serves.
    const res = await fetch(`${url}/v1/regions/${A}/alerts?purpose=check`, {
      headers: { authorization: `Bearer ${ops()}`, accept: 'application/x-ndjson' },
    });
    expect(readFileSync(join(dir, 'all.ndjson'), 'utf8')).toBe(await res.text());
    const { items } = await t.deps.audit.read(0, 10000);
    expect(items.filter((x) => x.kind === 'replayed' && x.purpose === 'case 2026-114')).toEqual([
      expect.objectContaining({ actor: 'KG/ops-1', target: 'region', mode: 'stream', region: A, from: 1, to: N }),
    ]);
  });

  test('off a terminal there is one summary line and no progress lines; 1 alert is singular', async () => {
    const r = await cli(replayArgs(A, '--out', 'one.ndjson', '--after', String(N - 1)));
    expect(r.code).toBe(0);
    expect(r.stderr).toBe(`replay: 1 alert verified and written to one.ndjson, up to seq ${N}\n`);
  });

  test('--token-file and CORDON_TOKEN_FILE give the token to replay and audit', async () => {
    writeFileSync(join(dir, 'ops.jwt'), ops() + '\n');
    const byFlag = await cli(['replay', '--url', url, '--token-file', 'ops.jwt', '--region', A, '--purpose', 'p', '--after', String(N - 1)]);
    expect(byFlag.code).toBe(0);
    expect(lines(byFlag.stdout).map((a) => a.seq)).toEqual([N]);
    const byEnv = await runCordon(dir, ['audit', '--url', url, '--purpose', 'p', '--after', '1'], { env: { CORDON_TOKEN_FILE: 'ops.jwt' } });
    expect(byEnv.code).toBe(0);
    expect(JSON.parse(byEnv.stdout.split('\n')[0]).n).toBe(2);
    const both = await cli(['audit', '--url', url, '--token', ops(), '--token-file', 'ops.jwt', '--purpose', 'p']);
    expect(both.code).toBe(2);
    const none = await cli(['audit', '--url', url, '--purpose', 'p']);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('--token or --token-file is required (or set CORDON_TOKEN or CORDON_TOKEN_FILE)');
  });

  test('on a terminal the progress is a bar redrawn in place', async () => {
    const r = await cli(replayArgs(A, '--out', 'tty.ndjson', '--after', '20'), { tty: true });
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/\r\[#+-*\] +100%/);
    expect(lines(readFileSync(join(dir, 'tty.ndjson'), 'utf8')).map((a) => a.seq)).toEqual([21, 22, 23, 24, 25]);
  });

  test('resumes an interrupted export after the last complete line, cutting a partial one', async () => {
    const full = readFileSync(join(dir, 'all.ndjson'), 'utf8');
    const all = full.split('\n');
    // Ten whole lines, then half of the eleventh, as a killed process leaves it.
    const partial = all.slice(0, 10).join('\n') + '\n' + all[10].slice(0, 300);
    writeFileSync(join(dir, 'resumed.ndjson'), partial);
    expect(resumePoint(join(dir, 'resumed.ndjson'), A)).toEqual({ seq: 10, epoch: receipts[0].epoch, truncated: 300 });
    expect(readFileSync(join(dir, 'resumed.ndjson'), 'utf8')).toBe(all.slice(0, 10).join('\n') + '\n');
    appendFileSync(join(dir, 'resumed.ndjson'), all[10].slice(0, 300));

    const r = await cli(replayArgs(A, '--out', 'resumed.ndjson'));
    expect(r.code).toBe(0);
    expect(r.stderr).toContain('resuming after seq 10');
    expect(r.stderr).toContain('cut a partial last line of 300 bytes');
    expect(readFileSync(join(dir, 'resumed.ndjson'), 'utf8')).toBe(full);

    // Run again on a complete file: nothing new, nothing duplicated.
    const again = await cli(replayArgs(A, '--out', 'resumed.ndjson'));
    expect(again.code).toBe(0);
    expect(again.stderr).toContain('0 alerts verified and written');
    expect(readFileSync(join(dir, 'resumed.ndjson'), 'utf8')).toBe(full);
  });

  test('refuses to resume into a file from another epoch of the log', async () => {
    const all = readFileSync(join(dir, 'all.ndjson'), 'utf8').split('\n');
    const last = JSON.parse(all[4]) as DeliveredAlert;
    writeFileSync(join(dir, 'old-epoch.ndjson'), all.slice(0, 4).join('\n') + '\n' + JSON.stringify({ ...last, epoch: 'lost-log' }) + '\n');
    const r = await cli(replayArgs(A, '--out', 'old-epoch.ndjson'));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('HISTORY_TRIMMED');
  });

  test('stops at the first alert whose signature does not verify, keeping the verified ones before it', async () => {
    const good = await t.publish(validContent({ region: B }));
    // An entry whose content was altered after signing (as a tampering store would do).
    const sub = t.sign(validContent({ region: B }));
    const forged = { ...sub, content: { ...sub.content, title: 'Altered after signing' } };
    await t.deps.regionLog.append({
      region: B,
      id: forged.content.id,
      modified: forged.content.modified,
      created: forged.content.created,
      issuerState: 'KG',
      revoked: false,
      contentHash: 'forged',
      body: JSON.stringify(forged),
    });
    const r = await cli(replayArgs(B, '--out', 'b.ndjson'));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`seq ${good.seq + 1} \\(${forged.content.id}\\) does not verify: SIGNATURE_INVALID`));
    expect(lines(readFileSync(join(dir, 'b.ndjson'), 'utf8')).map((a) => a.seq)).toEqual([good.seq]);

    // --no-verify exports it as served (to stdout without --out).
    const raw = await cli(replayArgs(B, '--no-verify'));
    expect(raw.code).toBe(0);
    expect(lines(raw.stdout).map((a) => a.content.title)).toEqual([expect.any(String), 'Altered after signing']);
  });

  test('history trimmed before a resume point is reported with the oldest seq held', async () => {
    const before = readFileSync(join(dir, 'b.ndjson'), 'utf8');
    for (let i = 0; i < 3; i++) await t.publish(validContent({ region: B }));
    await t.deps.regionLog.trim(B, { maxAlerts: 2, nowMs: Date.now() });
    const { earliest } = await t.deps.regionLog.state(B);
    const r = await cli(replayArgs(B, '--out', 'b.ndjson'));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('answered 410 HISTORY_TRIMMED');
    expect(r.stderr).toContain(`the oldest alert held is seq ${earliest}`);
    expect(readFileSync(join(dir, 'b.ndjson'), 'utf8')).toBe(before);
  });

  test('server refusals come back as exit 1 with the problem code', async () => {
    const noPurpose = await cli(['replay', '--url', url, '--token', ops(), '--region', A]);
    expect(noPurpose.code).toBe(1);
    expect(noPurpose.stderr).toContain('400 PURPOSE_REQUIRED');
    const unknown = await cli(replayArgs('ZZ-ZZ-99'));
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('404 REGION_NOT_FOUND');
    const down = await cli(['replay', '--url', 'http://127.0.0.1:9', '--token', ops(), '--region', A, '--no-verify']);
    expect(down.code).toBe(1);
    expect(down.stderr).toContain('cannot reach');
  });

  test.each([
    [['replay', '--url', 'http://x', '--token', 't'], '--region is required'],
    [['replay', '--url', 'http://x', '--token', 't', '--region', 'KG-CN-01', '--after', '1', '--since', '2026-01-01T00:00:00Z'], 'not both'],
    [['replay', '--url', 'http://x', '--token', 't', '--region', 'KG-CN-01', '--after=-3'], '--after must be'],
    [['replay', '--url', 'ftp://x', '--token', 't', '--region', 'KG-CN-01'], '--url must be'],
    [['replay', '--url', 'http://x', '--region', 'KG-CN-01'], '--token or --token-file is required'],
  ])('bad arguments %j exit 2 with usage', async (args, message) => {
    const r = await cli(args);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(message);
    expect(r.stderr).toContain('usage: cordon replay');
  });

  test('--after on a file that already holds alerts is refused rather than mixing positions', async () => {
    const r = await cli(replayArgs(A, '--out', 'all.ndjson', '--after', '3'));
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('already holds alerts up to seq 25');
  });

  describe('cordon audit', () => {
    test('prints the trail oldest first, one JSON record per line', async () => {
      const r = await cli(['audit', '--url', url, '--token', ops(), '--purpose', 'review']);
      expect(r.code).toBe(0);
      const recs = r.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { n: number; kind: string; at: string });
      expect(recs.map((x) => x.n)).toEqual(recs.map((_, i) => i + 1));
      expect(recs.filter((x) => x.kind === 'published').length).toBeGreaterThanOrEqual(N);
      expect(recs.some((x) => x.kind === 'replayed')).toBe(true);
    });

    test('--after, --since and --until narrow the listing', async () => {
      const { items } = await t.deps.audit.read(0, 10000);
      const mid = items[10];
      const after = await cli(['audit', '--url', url, '--token', ops(), '--purpose', 'review', '--after', '20']);
      expect(JSON.parse(after.stdout.split('\n')[0]).n).toBe(21);
      const window = await cli(['audit', '--url', url, '--token', ops(), '--purpose', 'review', '--since', mid.at, '--until', mid.at]);
      expect(window.code).toBe(0);
      const recs = window.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { at: string });
      expect(recs.length).toBeGreaterThan(0);
      for (const x of recs) expect(x.at).toBe(mid.at);
    });

    test('a desk token is refused with ROLE_FORBIDDEN, and --purpose is required', async () => {
      const desk = await cli(['audit', '--url', url, '--token', t.token({ iss: 'KG' }), '--purpose', 'x']);
      expect(desk.code).toBe(1);
      expect(desk.stderr).toContain('403 ROLE_FORBIDDEN');
      const noPurpose = await cli(['audit', '--url', url, '--token', ops()]);
      expect(noPurpose.code).toBe(2);
      expect(noPurpose.stderr).toContain('--purpose is required');
    });
  });
});
