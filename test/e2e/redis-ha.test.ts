import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import { validContent } from '../fixtures/alerts';
import { ndjsonAlerts } from '../helpers/ndjson';
import { TEST_REDIS_URL, uniqueId, uniqueRegion } from '../helpers/env';
import { freePort, killAllNodes, startNode, type CordonNode } from '../helpers/procs';
import { HAS_REDIS_SERVER, startRedisCluster, type TestRedisCluster } from '../helpers/redis-cluster';
import { removeKeys, writeConfigFiles, type Watcher, watch, until } from './harness';

/*
 * Production nodes on highly available Redis:
 * - through Sentinel (CORDON_REDIS_SENTINELS): a real Sentinel (redis-server --sentinel) monitors
 *   the test Redis, and the node's CORDON_REDIS_URL points nowhere, so everything it writes and
 *   reads, the raw export connection included, reaches Redis only through what Sentinel says;
 * - on a Redis Cluster (CORDON_REDIS_CLUSTER): three primaries started for this file.
 */

jest.setTimeout(60_000);

const maybe = HAS_REDIS_SERVER ? describe : describe.skip;

maybe('a node behind Redis Sentinel', () => {
  const region = uniqueRegion();
  const cfg = writeConfigFiles(region);
  const master = `cordon-test-${uniqueId()}`;
  const dir = mkdtempSync(join(tmpdir(), 'cordon-sentinel-'));
  let sentinel: ChildProcess;
  let sentinelPort: number;
  let node: CordonNode;

  beforeAll(async () => {
    sentinelPort = await freePort();
    const target = new URL(TEST_REDIS_URL);
    writeFileSync(
      join(dir, 'sentinel.conf'),
      [`port ${sentinelPort}`, 'bind 127.0.0.1', `dir ${dir}`, `sentinel monitor ${master} ${target.hostname} ${target.port || 6379} 1`].join('\n') + '\n',
    );
    sentinel = spawn('redis-server', [join(dir, 'sentinel.conf'), '--sentinel'], { stdio: 'ignore' });
    const probe = new Redis({ port: sentinelPort, host: '127.0.0.1', retryStrategy: () => 50, maxRetriesPerRequest: null });
    let addr: unknown = null;
    for (let i = 0; i < 100 && !addr; i++) {
      addr = await probe.call('SENTINEL', 'get-master-addr-by-name', master).catch(() => null);
      if (!addr) await new Promise((r) => setTimeout(r, 100));
    }
    probe.disconnect();
    expect(addr).toEqual([target.hostname, String(target.port || 6379)]);

    node = await startNode({
      ...cfg.env,
      // Nothing listens here: the primary can only come from the sentinel.
      CORDON_REDIS_URL: `redis://127.0.0.1:${await freePort()}`,
      CORDON_REDIS_SENTINELS: `127.0.0.1:${sentinelPort}`,
      CORDON_REDIS_SENTINEL_NAME: master,
    });
  });

  afterAll(async () => {
    await killAllNodes();
    sentinel?.kill('SIGKILL');
    await removeKeys(cfg.prefix);
    rmSync(cfg.dir, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  });

  test('appends through the primary Sentinel names, pages and exports what it appended', async () => {
    await publishPageExport(node, cfg, region);
    // In the Redis the sentinel monitors, under this node's prefix.
    const direct = new Redis(TEST_REDIS_URL);
    try {
      expect(await direct.xlen(`${cfg.prefix}{${region}}:log`)).toBe(5);
    } finally {
      await direct.quit();
    }
  });
});

maybe('nodes on a Redis Cluster', () => {
  const region = uniqueRegion();
  const cfg = writeConfigFiles(region);
  let cluster: TestRedisCluster;
  let a: CordonNode;
  let b: CordonNode;
  let desk: Watcher | undefined;

  beforeAll(async () => {
    cluster = await startRedisCluster();
    const env = { ...cfg.env, CORDON_REDIS_URL: cluster.url, CORDON_REDIS_CLUSTER: 'true' };
    [a, b] = await Promise.all(['a', 'b'].map((id) => startNode({ ...env, CORDON_NODE_ID: `e2e-cluster-${id}` })));
  });

  afterAll(async () => {
    await desk?.stream.stop();
    await killAllNodes();
    await cluster?.stop();
    rmSync(cfg.dir, { recursive: true, force: true });
  });

  test('two nodes share the region logs: appends on one, a desk on the other, pages and exports', async () => {
    desk = watch([b.url], cfg.trust.token({ iss: 'CN', sub: 'desk-cluster' }), region);
    await until(() => desk!.recovered.length > 0, 'the desk to subscribe', 10_000);
    await publishPageExport(a, cfg, region);
    await until(() => desk!.seqs.length === 5, 'the desk on the other node to get all five', 10_000);
    expect(desk.seqs).toEqual([1, 2, 3, 4, 5]);
    await publishPageExport(b, cfg, region, 5);
  });
});

/** Publishes five alerts through `node`, then pages and exports the region from it. */
async function publishPageExport(node: CordonNode, cfg: ReturnType<typeof writeConfigFiles>, region: string, before = 0): Promise<void> {
  for (let i = 0; i < 5; i++) {
    const res = await fetch(`${node.url}/v1/alerts`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(cfg.trust.sign(validContent({ region }))),
    });
    expect(res.status).toBe(201);
  }
  const all = Array.from({ length: before + 5 }, (_, i) => i + 1);
  const auth = { authorization: `Bearer ${cfg.trust.token({ role: 'ops' })}` };
  const page = await fetch(`${node.url}/v1/regions/${region}/alerts?after=0&purpose=test`, { headers: auth });
  expect(page.status).toBe(200);
  expect(((await page.json()) as { items: Array<{ seq: number }> }).items.map((i) => i.seq)).toEqual(all);
  const exported = await fetch(`${node.url}/v1/regions/${region}/alerts?after=0&purpose=test`, {
    headers: { ...auth, accept: 'application/x-ndjson' },
  });
  expect(exported.status).toBe(200);
  expect(ndjsonAlerts(await exported.text()).map((l) => l.seq)).toEqual(all);
}
