import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, createWriteStream, mkdirSync } from 'node:fs';
import net from 'node:net';
import { join, resolve } from 'node:path';
import Redis from 'ioredis';
import { ROOT } from './node';

/**
 * The processes a chaos run starts and breaks: its own redis-server (AOF, appendfsync always),
 * its own nats-server, Cordon nodes on fixed ports (a restarted node comes back where desks look
 * for it), and a TCP proxy that can stall one node's Redis link without closing it.
 */

const started = new Set<ChildProcess>();
process.once('exit', () => {
  for (const p of started) p.kill('SIGKILL');
});

function run(cmd: string, args: string[], logPath: string, env?: NodeJS.ProcessEnv, cwd?: string): ChildProcess {
  const out = createWriteStream(logPath, { flags: 'a' });
  const proc = spawn(cmd, args, { cwd: cwd ?? ROOT, env: env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  proc.stdout?.pipe(out);
  proc.stderr?.pipe(out);
  started.add(proc);
  proc.once('exit', () => started.delete(proc));
  return proc;
}

function exited(proc: ChildProcess): Promise<void> {
  return new Promise((res) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return res();
    proc.once('exit', () => res());
  });
}

export async function kill(proc: ChildProcess | undefined, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  if (!proc) return;
  const done = exited(proc);
  proc.kill(signal);
  await done;
}

async function waitFor(what: string, cond: () => Promise<boolean>, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`${what} not up after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((res) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => {
      s.destroy();
      res(true);
    });
    s.on('error', () => res(false));
  });
}

export class RedisProc {
  proc?: ChildProcess;
  constructor(
    readonly port: number,
    readonly dir: string,
  ) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /**
   * Starts redis-server in `dir`. With `fromRdb`, the dataset is that snapshot (AOF is switched
   * on once it has loaded, so what follows is durable again); otherwise the AOF in `dir` is loaded.
   */
  async start(fromRdb?: string): Promise<void> {
    mkdirSync(this.dir, { recursive: true });
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir, '--save', '', '--daemonize', 'no', '--dbfilename', 'dump.rdb'];
    if (fromRdb) {
      copyFileSync(fromRdb, join(this.dir, 'dump.rdb'));
      args.push('--appendonly', 'no');
    } else {
      args.push('--appendonly', 'yes', '--appendfsync', 'always');
    }
    this.proc = run('redis-server', args, join(this.dir, '..', `redis-${this.port}.log`));
    await waitFor('redis', () => this.ping(), 15_000);
    if (fromRdb) {
      await this.admin(async (r) => {
        await r.config('SET', 'appendfsync', 'always');
        await r.config('SET', 'appendonly', 'yes');
      });
    }
  }

  async ping(): Promise<boolean> {
    try {
      return (await this.admin((r) => r.ping())) === 'PONG';
    } catch {
      return false;
    }
  }

  async admin<T>(fn: (r: Redis) => Promise<T>): Promise<T> {
    const r = new Redis(this.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 1000 });
    r.on('error', () => undefined);
    try {
      await r.connect();
      return await fn(r);
    } finally {
      r.disconnect();
    }
  }

  /** SAVE, then a copy of the RDB file at `to`. */
  async snapshot(to: string): Promise<void> {
    await this.admin((r) => r.save());
    copyFileSync(join(this.dir, 'dump.rdb'), to);
  }

  async kill(): Promise<void> {
    await kill(this.proc);
  }
}

export class NatsProc {
  proc?: ChildProcess;
  constructor(
    readonly port: number,
    readonly logDir: string,
  ) {}

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    this.proc = run('nats-server', ['-a', '127.0.0.1', '-p', String(this.port)], join(this.logDir, `nats-${this.port}.log`));
    await waitFor('nats', () => portOpen(this.port), 15_000);
  }

  async kill(): Promise<void> {
    await kill(this.proc);
  }
}

export class NodeProc {
  proc?: ChildProcess;
  constructor(
    readonly index: number,
    readonly port: number,
    readonly env: Record<string, string>,
    readonly logDir: string,
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(readyMs = 30_000): Promise<void> {
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('CORDON_')) env[k] = v;
    Object.assign(env, { CORDON_PORT: String(this.port), CORDON_HOST: '127.0.0.1', CORDON_NODE_ID: `chaos-${this.index}` }, this.env);
    const proc = run(process.execPath, [resolve(ROOT, 'dist/src/server.js')], join(this.logDir, `node-${this.index}.log`), env);
    this.proc = proc;
    await waitFor(
      `node ${this.index}`,
      async () => {
        if (proc.exitCode !== null) throw new Error(`node ${this.index} exited with ${proc.exitCode}; see ${this.logDir}`);
        try {
          const res = await fetch(`${this.url}/healthz`, { signal: AbortSignal.timeout(1000) });
          await res.arrayBuffer();
          return res.ok;
        } catch {
          return false;
        }
      },
      readyMs,
    );
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    await kill(this.proc, signal);
  }
}

/** A TCP proxy that can stop forwarding (both ways) while keeping its connections open. */
export class StallProxy {
  private server?: net.Server;
  private stalled = false;
  private readonly pending = new Set<() => void>();
  private readonly sockets = new Set<net.Socket>();
  port = 0;

  constructor(private readonly targetPort: number) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    this.server = net.createServer((client) => {
      const upstream = net.connect({ host: '127.0.0.1', port: this.targetPort });
      const relay = (from: net.Socket, to: net.Socket) => {
        from.on('data', (chunk: Buffer) => {
          if (!this.stalled) {
            to.write(chunk);
            return;
          }
          // Hold the bytes (and stop reading) until the stall ends.
          from.pause();
          const flush = () => {
            if (!to.destroyed) to.write(chunk);
            from.resume();
          };
          this.pending.add(flush);
        });
      };
      relay(client, upstream);
      relay(upstream, client);
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => {
          this.sockets.delete(s);
          client.destroy();
          upstream.destroy();
        });
        s.on('error', () => undefined);
      }
    });
    await new Promise<void>((res) => this.server!.listen(0, '127.0.0.1', () => res()));
    this.port = (this.server.address() as net.AddressInfo).port;
  }

  stall(): void {
    this.stalled = true;
  }

  heal(): void {
    this.stalled = false;
    const fns = [...this.pending];
    this.pending.clear();
    for (const f of fns) f();
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((res) => (this.server ? this.server.close(() => res()) : res()));
  }
}
