import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';

/**
 * End-to-end helpers: start real Cordon server processes (`node dist/src/server.js`, built by
 * test/helpers/global-setup.js) on free ports, wait until they are ready, stop or kill them.
 */

export interface CordonNode {
  /** `http://127.0.0.1:<port>` */
  url: string;
  port: number;
  proc: ChildProcess;
  /** Sends `signal` (default SIGTERM) and resolves with the exit code (null when ended by a signal). */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number | null>;
  /** SIGKILL: a crash, no shutdown; resolves once the process is gone. */
  kill(): Promise<void>;
  /** Everything the process wrote so far, stdout and stderr interleaved. */
  logs(): string;
}

export interface StartNodeOptions {
  /** How long to wait for GET /readyz to answer 200. */
  readyTimeoutMs?: number;
}

const ROOT = path.resolve(__dirname, '..', '..');
const SERVER = path.join(ROOT, 'dist', 'src', 'server.js');
const READY_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 15_000;
const LOG_TAIL_CHARS = 8_000;

const running = new Set<ChildProcess>();
// A crashed or interrupted test run must not leave servers behind.
process.once('exit', () => {
  for (const p of running) p.kill('SIGKILL');
});

/** A port that was free a moment ago (bind to 0, read it, release it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Starts one node with CORDON_PORT (a free port), CORDON_HOST=127.0.0.1, CORDON_LOG_LEVEL=warn and
 * `env` on top (so `env` may override them). CORDON_* variables of the test process are not
 * inherited, so a node sees only what the test gives it. Resolves once GET /readyz answers 200;
 * rejects with the captured output if the process exits first or is not ready in time.
 */
export async function startNode(env: Record<string, string> = {}, opts: StartNodeOptions = {}): Promise<CordonNode> {
  if (!existsSync(SERVER)) {
    throw new Error(`${SERVER} is missing: it is built by test/helpers/global-setup.js (npm run build)`);
  }
  // The port can be taken between freePort() and the server's listen: then try another.
  for (let attempt = 1; ; attempt++) {
    try {
      // A CORDON_PORT in `env` (a restart on the same address) is used as is.
      const port = env.CORDON_PORT ? Number(env.CORDON_PORT) : await freePort();
      return await startOnce(port, env, opts.readyTimeoutMs ?? READY_TIMEOUT_MS);
    } catch (err) {
      if (attempt >= 3 || !(err instanceof PortTakenError)) throw err;
    }
  }
}

/** Kills every node started by this test file that is still running. */
export async function killAllNodes(): Promise<void> {
  await Promise.all(
    [...running].map(
      (p) =>
        new Promise<void>((resolve) => {
          p.once('exit', () => resolve());
          if (!p.kill('SIGKILL')) resolve();
        }),
    ),
  );
}

class PortTakenError extends Error {}

async function startOnce(port: number, env: Record<string, string>, readyTimeoutMs: number): Promise<CordonNode> {
  const childEnv: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v !== undefined && !k.startsWith('CORDON_')) childEnv[k] = v;
  }
  // CORDON_METRICS_PORT 0: several nodes on one machine must not race for the operator port.
  Object.assign(childEnv, { CORDON_PORT: String(port), CORDON_HOST: '127.0.0.1', CORDON_LOG_LEVEL: 'warn', CORDON_METRICS_PORT: '0' }, env);

  const proc = spawn(process.execPath, [SERVER], { cwd: ROOT, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(proc);
  let output = '';
  proc.stdout.setEncoding('utf8').on('data', (chunk: string) => void (output += chunk));
  proc.stderr.setEncoding('utf8').on('data', (chunk: string) => void (output += chunk));

  let exitCode: number | null | undefined;
  const exited = new Promise<number | null>((resolve) => {
    // 'close' (not 'exit'): by then stdout and stderr are fully read, so logs() is complete.
    proc.once('close', (code) => {
      running.delete(proc);
      exitCode = code;
      resolve(code);
    });
    proc.once('error', (err) => {
      output += `\n[spawn error] ${String(err)}\n`;
      running.delete(proc);
      exitCode = null;
      resolve(null);
    });
  });

  const url = `http://127.0.0.1:${port}`;
  const node: CordonNode = {
    url,
    port,
    proc,
    logs: () => output,
    async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = STOP_TIMEOUT_MS) {
      if (exitCode !== undefined) return exitCode;
      proc.kill(signal);
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), timeoutMs);
      });
      const outcome = await Promise.race([exited, timeout]);
      clearTimeout(timer);
      if (outcome === 'timeout') {
        proc.kill('SIGKILL');
        await exited;
        throw new Error(`node ${url} did not exit within ${timeoutMs} ms of ${signal}; killed\n${tail(output)}`);
      }
      return outcome;
    },
    async kill() {
      if (exitCode !== undefined) return;
      proc.kill('SIGKILL');
      await exited;
    },
  };

  const until = Date.now() + readyTimeoutMs;
  for (;;) {
    if (exitCode !== undefined) {
      await exited;
      const message = `node ${url} exited (code ${exitCode}) before it was ready\n${tail(output)}`;
      throw output.includes('EADDRINUSE') ? new PortTakenError(message) : new Error(message);
    }
    if (await isReady(url)) return node;
    if (Date.now() > until) {
      await node.kill();
      throw new Error(`node ${url} was not ready within ${readyTimeoutMs} ms; killed\n${tail(output)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function isReady(url: string): Promise<boolean> {
  try {
    const res = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(1000) });
    await res.arrayBuffer();
    return res.status === 200;
  } catch {
    return false; // not listening yet
  }
}

function tail(text: string): string {
  const t = text.length > LOG_TAIL_CHARS ? `...${text.slice(-LOG_TAIL_CHARS)}` : text;
  return `--- output ---\n${t || '(none)'}\n--------------`;
}
