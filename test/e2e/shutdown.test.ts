import { rmSync } from 'node:fs';
import WebSocket from 'ws';
import type { Receipt } from '../../src/domain/types';
import { validContent } from '../fixtures/alerts';
import { uniqueRegion } from '../helpers/env';
import { killAllNodes, startNode, type CordonNode } from '../helpers/procs';
import { removeKeys, until, watch, writeConfigFiles, type Watcher } from './harness';

/*
 * Shutdown is ordered (STYLE 8, contract §9): on SIGTERM a node closes every desk with 4001, stops
 * and exits 0 within its grace time; a desk that resumes on another node gets exactly what it
 * missed while it was away.
 */

jest.setTimeout(60_000);

const GRACE_MS = 5000;

describe('SIGTERM on a node with connected desks', () => {
  const region = uniqueRegion();
  const cfg = writeConfigFiles(region);
  let a: CordonNode;
  let b: CordonNode;
  const watchers: Watcher[] = [];

  beforeAll(async () => {
    [a, b] = await Promise.all(['a', 'b'].map((id) => startNode({ ...cfg.env, CORDON_NODE_ID: `e2e-${id}`, CORDON_SHUTDOWN_GRACE_MS: String(GRACE_MS) })));
  });
  afterAll(async () => {
    await Promise.all(watchers.map((w) => w.stream.stop()));
    await killAllNodes();
    await removeKeys(cfg.prefix);
    rmSync(cfg.dir, { recursive: true, force: true });
  });

  const publish = async (node: CordonNode): Promise<Receipt> => {
    const res = await fetch(`${node.url}/v1/alerts`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(cfg.trust.sign(validContent({ region }))),
    });
    expect(res.status).toBe(201);
    return (await res.json()) as Receipt;
  };

  test('each desk gets 4001, the process exits 0 within the grace time, and resuming on another node loses nothing', async () => {
    // Desks that come back only after 2.5 s: long enough to miss alerts published meanwhile.
    for (let d = 0; d < 3; d++) watchers.push(watch([a.url, b.url], cfg.trust.token({ sub: `desk-${d}` }), region, 2500));
    // One bare socket too, to see the close frame exactly as a browser would.
    const bare = new WebSocket(`${a.url.replace('http', 'ws')}/v1/stream`, { headers: { authorization: `Bearer ${cfg.trust.token({ sub: 'desk-bare' })}` } });
    const bareClose = new Promise<{ code: number; reason: string }>((resolve) =>
      bare.on('close', (code, reason) => resolve({ code, reason: reason.toString() })),
    );
    await new Promise((resolve, reject) => {
      bare.once('open', resolve);
      bare.once('error', reject);
    });
    await until(() => watchers.every((w) => w.urls[0] === a.url), 'desks connected to node a', 10_000);
    await new Promise((r) => setTimeout(r, 300));

    const before: Receipt[] = [];
    for (let i = 0; i < 10; i++) before.push(await publish(i % 2 ? a : b));
    await until(() => watchers.every((w) => w.seqs.length === 10), 'the first 10 alerts', 10_000);

    const t0 = Date.now();
    const exitCode = await a.stop('SIGTERM', GRACE_MS + 2000);
    const tookMs = Date.now() - t0;
    expect(exitCode).toBe(0);
    expect(tookMs).toBeLessThan(GRACE_MS);
    expect(await bareClose).toEqual({ code: 4001, reason: 'shutting down' });
    for (const w of watchers) expect(w.closes[0]).toBe(4001);

    // Published while the desks are away (they come back to node b after 2.5 s).
    const missed: Receipt[] = [];
    for (let i = 0; i < 10; i++) missed.push(await publish(b));
    for (const w of watchers) expect(w.urls).toHaveLength(1);
    await until(() => watchers.every((w) => w.urls.length === 2), 'desks reconnected to node b', 10_000);
    const live: Receipt[] = [];
    for (let i = 0; i < 5; i++) live.push(await publish(b));

    const all = [...before, ...missed, ...live].map((r) => r.seq);
    expect(all).toEqual(Array.from({ length: 25 }, (_, k) => k + 1));
    await until(() => watchers.every((w) => w.seqs.length >= 25), 'every desk holding 25 alerts', 10_000);
    await new Promise((r) => setTimeout(r, 300));
    for (const w of watchers) {
      expect(w.urls).toEqual([a.url, b.url]);
      expect(w.recovered).toEqual([false, true]);
      expect(w.seqs).toEqual(all);
    }
  });
});
