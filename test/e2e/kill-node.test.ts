import { rmSync } from 'node:fs';
import type { Receipt, Submission } from '../../src/domain/types';
import { validContent } from '../fixtures/alerts';
import { uniqueRegion } from '../helpers/env';
import { killAllNodes, startNode, type CordonNode } from '../helpers/procs';
import { removeKeys, until, watch, writeConfigFiles, type Watcher } from './harness';

/*
 * Contract §6 promises 1, 3 and 4 across a crash: three production nodes (real NATS, real Redis,
 * real processes and sockets); desks on each; a gateway publishing round-robin; one node killed
 * with SIGKILL halfway. Its desks resume on another node from their last seq; the gateway retries
 * what the dead node did not answer elsewhere. Every desk must end with seq 1..N exactly once, in
 * order — including alerts the dead node appended but never published on NATS.
 */

jest.setTimeout(60_000);

const N = 400;
const DESKS_PER_NODE = 3;

/** POSTs a submission; on a connection error (a dead node) retries on the next live node. */
async function publishWithRetry(
  sub: Submission,
  nodes: CordonNode[],
  first: number,
  alive: (n: CordonNode) => boolean,
): Promise<{ receipt: Receipt; status: number; tries: number }> {
  const body = JSON.stringify(sub);
  for (let tries = 1; tries <= 10; tries++) {
    const node = nodes[(first + tries - 1) % nodes.length];
    if (!alive(node)) continue;
    try {
      const res = await fetch(`${node.url}/v1/alerts`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      const json = (await res.json()) as Receipt;
      if (res.status === 200 || res.status === 201) return { receipt: json, status: res.status, tries };
      // 503: nothing accepted; 504 OUTCOME_UNKNOWN: maybe accepted. Either way resubmit (idempotent).
      if (res.status !== 503 && res.status !== 504) throw new Error(`publish answered ${res.status}: ${JSON.stringify(json)}`);
    } catch (err) {
      if ((err as Error).message.startsWith('publish answered')) throw err;
      // Connection refused or reset: the gateway tries another node.
    }
  }
  throw new Error(`publish of ${sub.content.id} failed on every node`);
}

describe('a node killed with SIGKILL while desks watch and a gateway publishes', () => {
  const region = uniqueRegion();
  const cfg = writeConfigFiles(region);
  let nodes: CordonNode[] = [];
  const watchers: Watcher[] = [];

  beforeAll(async () => {
    nodes = await Promise.all([0, 1, 2].map((i) => startNode({ ...cfg.env, CORDON_NODE_ID: `e2e-${i}` })));
  });
  afterAll(async () => {
    await Promise.all(watchers.map((w) => w.stream.stop()));
    await killAllNodes();
    await removeKeys(cfg.prefix);
    rmSync(cfg.dir, { recursive: true, force: true });
  });

  test(`every desk ends with seq 1..${N} exactly once and in order`, async () => {
    const urls = nodes.map((n) => n.url);
    // Desk d of node i connects to node i first and fails over to the others in turn.
    nodes.forEach((_, i) => {
      const order = [...urls.slice(i), ...urls.slice(0, i)];
      for (let d = 0; d < DESKS_PER_NODE; d++) {
        watchers.push(watch(order, cfg.trust.token({ iss: 'KG', sub: `desk-${i}-${d}` }), region));
      }
    });
    await until(
      () => nodes.every((n, i) => watchers.slice(i * DESKS_PER_NODE, (i + 1) * DESKS_PER_NODE).every((w) => w.urls[0] === n.url)),
      'desks connected',
      10_000,
    );
    // Let every subscription reach the live edge before the first alert.
    await new Promise((r) => setTimeout(r, 300));

    const victim = nodes[0];
    let victimAlive = true;
    const alive = (n: CordonNode) => n !== victim || victimAlive;
    const statuses: number[] = [];
    const receipts = new Map<string, number>();
    let next = 0;
    let killed: Promise<void> | undefined;
    // Four concurrent gateway connections, round-robin over the nodes.
    await Promise.all(
      [0, 1, 2, 3].map(async (lane) => {
        while (next < N) {
          const i = next++;
          if (i === N / 2) {
            victimAlive = false;
            killed = victim.kill();
          }
          const sub = cfg.trust.sign(validContent({ region }));
          const r = await publishWithRetry(sub, nodes, i + lane, alive);
          statuses.push(r.status);
          receipts.set(sub.content.id, r.receipt.seq);
          await new Promise((res) => setTimeout(res, 5));
        }
      }),
    );
    await killed;

    // The gateway's view: N distinct alerts, N distinct seqs 1..N (retries answered with the original receipt).
    expect([...receipts.values()].sort((a, b) => a - b)).toEqual(Array.from({ length: N }, (_, k) => k + 1));

    const expected = Array.from({ length: N }, (_, k) => k + 1);
    await until(
      () => watchers.every((w) => w.seqs.length >= N),
      `every desk holding ${N} alerts (have ${watchers.map((w) => w.seqs.length).join(',')})`,
      20_000,
    );
    await new Promise((r) => setTimeout(r, 300)); // nothing more may arrive
    for (const w of watchers) expect(w.seqs).toEqual(expected);

    // The victim's desks really moved: closed once (abnormally), reopened on another node.
    for (const w of watchers.slice(0, DESKS_PER_NODE)) {
      expect(w.closes.length).toBeGreaterThanOrEqual(1);
      expect(w.urls.length).toBeGreaterThanOrEqual(2);
      expect(w.urls[w.urls.length - 1]).not.toBe(victim.url);
    }
    // The other desks never lost their connection.
    for (const w of watchers.slice(DESKS_PER_NODE)) expect(w.closes).toEqual([]);
  });
});
