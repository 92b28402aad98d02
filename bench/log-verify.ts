/*
 * bench/log-verify: how long an auditor's full check of a region takes. `cordon log verify`
 * replays every alert held and proves each one included, making the proofs from the tree's hash
 * tiles; beside it, the same proofs asked one by one from GET .../log/proof (what the CLI did
 * before, and what a client without tiles does), against the same node and tree, in the same run.
 *
 *   npm run bench:log-verify          (BENCH_ALERTS=20000 by default)
 *
 * The node runs embedded (memory store, no Redis or NATS); it prints the region's size, both
 * times, alerts/s, and the requests each made.
 */
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkRecord, leafHash, type Hash } from '../src/domain/tlog/merkle';
import { openNote, parseCheckpoint, parseVerifierKey } from '../src/domain/tlog/note';
import type { DeliveredAlert } from '../src/domain/types';
import { deliveredLeafData } from '../src/tlog/leaves';
import { benchContent, makeFixture } from './lib/fixture';
import { HttpPublisher } from './lib/publisher';
import { ROOT, startScript, type RunningProcess } from './lib/node';

const ALERTS = Number(process.env.BENCH_ALERTS ?? 20_000);

interface Counts {
  tiles: number;
  proofs: number;
  replay: number;
  other: number;
}

/** A counting proxy in front of the node (GET only): how many requests of each kind a client made. */
async function countingProxy(target: string): Promise<{ url: string; counts: Counts; close(): Promise<void> }> {
  const counts: Counts = { tiles: 0, proofs: 0, replay: 0, other: 0 };
  const server = createServer((req, res) => {
    const path = req.url ?? '/';
    if (path.includes('/log/tile/')) counts.tiles++;
    else if (path.includes('/log/proof')) counts.proofs++;
    else if (/\/alerts\?/.test(path)) counts.replay++;
    else counts.other++;
    const headers: Record<string, string> = {};
    for (const h of ['accept', 'authorization']) if (typeof req.headers[h] === 'string') headers[h] = req.headers[h];
    fetch(target + path, { headers })
      .then(async (r) => {
        const body = Buffer.from(await r.arrayBuffer());
        res.writeHead(r.status, { 'content-type': r.headers.get('content-type') ?? 'application/octet-stream', 'content-length': body.length });
        res.end(body);
      })
      .catch((err: Error) => {
        res.writeHead(502);
        res.end(err.message);
      });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    counts,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

async function main(): Promise<void> {
  const fx = makeFixture();
  const dir = mkdtempSync(join(tmpdir(), 'cordon-bench-logverify-'));
  let node: RunningProcess | undefined;
  try {
    node = await startScript('dist/src/server.js', {
      CORDON_STORE: 'memory',
      CORDON_DATA_DIR: dir,
      CORDON_TRUST_STORE: fx.trustPath,
      CORDON_REGIONS: fx.regionsPath,
      CORDON_LOG_LEVEL: 'warn',
      CORDON_RATE_LIMIT_MAX: '0',
    });
    const url = node.url;
    const token = fx.token({ role: 'desk' });
    const auth = { authorization: `Bearer ${token}` };
    process.stdout.write(`publishing ${ALERTS} alerts to ${fx.region}...\n`);
    const publisher = new HttpPublisher(url, () => JSON.stringify(fx.sign(benchContent(fx.region))));
    publisher.publishUpTo(ALERTS);
    await publisher.settled();
    publisher.close();
    if (publisher.failures > 0) throw new Error(`${publisher.failures} alerts were not accepted: ${publisher.lastFailure}`);
    // Until a signed checkpoint covers them all.
    const vkey = ((await (await fetch(`${url}/v1/trust`)).json()) as { log: { vkey: string } }).log.vkey;
    let cp: { size: number; root: Hash; origin: string } = { size: 0, root: Buffer.alloc(0), origin: '' };
    for (const deadline = Date.now() + 30_000; cp.size < ALERTS;) {
      if (Date.now() > deadline) throw new Error('the log did not reach the size published');
      const note = await (await fetch(`${url}/v1/regions/${fx.region}/log/checkpoint`, { headers: auth })).text();
      cp = parseCheckpoint(openNote(note, [parseVerifierKey(vkey)]).text);
      if (cp.size < ALERTS) await new Promise((r) => setTimeout(r, 100));
    }
    // 1. cordon log verify: proofs from tiles, its requests counted by a proxy.
    const proxy = await countingProxy(url);
    const t0 = performance.now();
    const out = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      const p = spawn(
        process.execPath,
        [join(ROOT, 'bin/cordon.js'), 'log', 'verify', '--url', proxy.url, '--token', token, '--region', fx.region, '--state-file', join(dir, 'state.json')],
        {
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let stdout = '';
      let stderr = '';
      p.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
      p.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      p.on('exit', (code) => resolve({ code: code ?? 1, stdout, stderr }));
    });
    const cliMs = performance.now() - t0;
    await proxy.close();
    const cli = proxy.counts;
    if (out.code !== 0 || !out.stdout.includes(`${ALERTS} alert(s) proved included`)) throw new Error(`log verify failed: ${out.stdout}${out.stderr}`);

    // 2. The same alerts, one proof request each (replayed the same way, pages of 1,000).
    const t1 = performance.now();
    let after = 0;
    let proved = 0;
    for (;;) {
      // Parsed from the text, as the CLI does: plain objects for the RFC 8785 form.
      const page = JSON.parse(await (await fetch(`${url}/v1/regions/${fx.region}/alerts?after=${after}&limit=1000`, { headers: auth })).text()) as {
        items: DeliveredAlert[];
        next: number | null;
      };
      let i = 0;
      await Promise.all(
        Array.from({ length: 4 }, async () => {
          while (i < page.items.length) {
            const d = page.items[i++];
            const p = (await (await fetch(`${url}/v1/regions/${fx.region}/log/proof?seq=${d.seq}&size=${cp.size}`, { headers: auth })).json()) as {
              proof: string[];
            };
            const leaf = leafHash(deliveredLeafData(d));
            if (
              !checkRecord(
                p.proof.map((h) => Buffer.from(h, 'base64')),
                cp.size,
                cp.root,
                d.seq - 1,
                leaf,
              )
            )
              throw new Error(`seq ${d.seq} not proved`);
            proved++;
          }
        }),
      );
      if (page.next === null || page.items.length === 0) break;
      after = page.next;
    }
    const perProofMs = performance.now() - t1;

    const rate = (ms: number) => ((ALERTS / ms) * 1000).toFixed(0);
    process.stdout.write(`\nregion ${fx.region}: ${cp.size} alerts in the signed tree (embedded node, memory store)\n`);
    process.stdout.write(
      `cordon log verify (proofs from tiles):   ${(cliMs / 1000).toFixed(2)} s, ${rate(cliMs)} alerts/s; ` +
        `${cli.tiles} tile requests, ${cli.proofs} proof requests, ${cli.replay} replay pages, ${cli.other} others\n`,
    );
    process.stdout.write(
      `one proof request per alert (4 at once): ${(perProofMs / 1000).toFixed(2)} s, ${rate(perProofMs)} alerts/s; ` + `${proved} proof requests\n`,
    );
    process.stdout.write(`(the CLI time includes starting Node and the replay itself)\n`);
  } finally {
    await node?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
