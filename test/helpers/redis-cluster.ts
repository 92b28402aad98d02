import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import { freePort } from './procs';

/** A Redis Cluster of this test file's own: three primaries on free ports, no replicas. */
export interface TestRedisCluster {
  /** the seed URLs, comma-separated, as CORDON_REDIS_URL takes them with CORDON_REDIS_CLUSTER */
  url: string;
  ports: number[];
  stop(): Promise<void>;
}

export const HAS_REDIS_SERVER = spawnSync('redis-server', ['--version']).status === 0;

/**
 * Starts three `redis-server --cluster-enabled yes` processes in a temporary directory, gives each
 * a third of the 16384 slots, introduces them (CLUSTER MEET) and waits until every node reports
 * `cluster_state:ok`. Nothing is persisted; stop() kills them and removes the directory.
 */
export async function startRedisCluster(nodes = 3): Promise<TestRedisCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'cordon-redis-cluster-'));
  const ports: number[] = [];
  const buses: number[] = [];
  const procs: ChildProcess[] = [];
  const clients: Redis[] = [];
  const stop = async () => {
    for (const c of clients) c.disconnect();
    await Promise.all(
      procs.map(
        (p) =>
          new Promise<void>((resolve) => {
            if (p.exitCode !== null || p.signalCode !== null) return resolve();
            p.once('exit', () => resolve());
            p.kill('SIGKILL');
          }),
      ),
    );
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < nodes; i++) {
      const port = await freePort();
      const bus = await freePort();
      ports.push(port);
      buses.push(bus);
      const args = ['--port', String(port), '--cluster-port', String(bus), '--bind', '127.0.0.1', '--cluster-enabled', 'yes'];
      args.push('--cluster-config-file', join(dir, `nodes-${port}.conf`), '--dir', dir, '--save', '', '--appendonly', 'no');
      procs.push(spawn('redis-server', args, { stdio: 'ignore' }));
      clients.push(new Redis({ port, host: '127.0.0.1', lazyConnect: true, retryStrategy: () => 50, maxRetriesPerRequest: null }));
    }
    await Promise.all(clients.map((c) => c.ping()));
    const per = Math.ceil(16384 / nodes);
    await Promise.all(clients.map((c, i) => c.call('CLUSTER', 'ADDSLOTSRANGE', String(i * per), String(Math.min(16383, (i + 1) * per - 1)))));
    // The bus ports are not port + 10000 here, so MEET names them.
    for (let i = 1; i < nodes; i++) await clients[0].call('CLUSTER', 'MEET', '127.0.0.1', String(ports[i]), String(buses[i]));
    const deadline = Date.now() + 20_000;
    for (;;) {
      const infos = (await Promise.all(clients.map((c) => c.call('CLUSTER', 'INFO')))) as string[];
      if (infos.every((i) => i.includes('cluster_state:ok') && i.includes(`cluster_known_nodes:${nodes}`))) break;
      if (Date.now() > deadline) throw new Error(`the test Redis Cluster did not form: ${infos[0]}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  } catch (err) {
    await stop();
    throw err;
  }
  for (const c of clients) c.disconnect();
  clients.length = 0;
  return { url: ports.map((p) => `redis://127.0.0.1:${p}`).join(','), ports, stop };
}
