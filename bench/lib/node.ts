import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { resolve } from 'node:path';

/** The repository root from dist/bench/lib (compiled) or bench/lib (ts). */
export const ROOT = resolve(__dirname, __dirname.includes(`${'/'}dist${'/'}`) ? '../../..' : '../..');

export async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => res(port));
    });
    srv.on('error', rej);
  });
}

export interface RunningProcess {
  url: string;
  port: number;
  proc: ChildProcess;
  stop(): Promise<void>;
}

async function waitReady(url: string, proc: ChildProcess, output: () => string, timeoutMs = 20000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) throw new Error(`process exited (${proc.exitCode}):\n${output()}`);
    try {
      const res = await fetch(url);
      if (res.ok) return;
    } catch {
      /* not listening yet */
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`not ready after ${timeoutMs} ms:\n${output()}`);
}

/** Starts a compiled script (relative to the repository root) with env; resolves when `readyPath` answers 200. */
export async function startScript(script: string, env: Record<string, string>, readyPath = '/readyz'): Promise<RunningProcess> {
  const port = await freePort();
  let out = '';
  const proc = spawn(process.execPath, [resolve(ROOT, script)], {
    cwd: ROOT,
    // CORDON_METRICS_PORT 0: several nodes on one machine must not race for the operator port.
    env: { ...process.env, CORDON_PORT: String(port), CORDON_HOST: '127.0.0.1', PORT: String(port), CORDON_METRICS_PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const keep = (chunk: Buffer) => {
    out = (out + chunk.toString()).slice(-20000);
  };
  proc.stdout?.on('data', keep);
  proc.stderr?.on('data', keep);
  const url = `http://127.0.0.1:${port}`;
  await waitReady(url + readyPath, proc, () => out);
  return {
    url,
    port,
    proc,
    stop: () =>
      new Promise<void>((res) => {
        if (proc.exitCode !== null) return res();
        proc.once('exit', () => res());
        proc.kill('SIGTERM');
        setTimeout(() => proc.kill('SIGKILL'), 15000).unref();
      }),
  };
}

/** CPU time (user + system, all threads) a process has used so far, in ms (Linux /proc). */
export async function cpuMsOf(pid: number): Promise<number> {
  const { readFile } = await import('node:fs/promises');
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces) start after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime
  return (ticks * 1000) / 100; // USER_HZ is 100 on Linux
}

/**
 * CPU time of a process split into its main thread (the event loop) and all its other threads
 * (worker threads, V8's garbage-collection helpers, libuv's pool), in ms (Linux /proc/<pid>/task).
 */
export async function threadCpuMsOf(pid: number): Promise<{ main: number; others: number }> {
  const { readFile, readdir } = await import('node:fs/promises');
  const out = { main: 0, others: 0 };
  for (const tid of await readdir(`/proc/${pid}/task`).catch(() => [] as string[])) {
    const stat = await readFile(`/proc/${pid}/task/${tid}/stat`, 'utf8').catch(() => '');
    if (!stat) continue;
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ms = ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
    if (tid === String(pid)) out.main += ms;
    else out.others += ms;
  }
  return out;
}

/** Resident set size of a process in bytes (Linux /proc). */
export async function rssOf(pid: number): Promise<number> {
  const { readFile } = await import('node:fs/promises');
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const m = /VmRSS:\s+(\d+) kB/.exec(status);
  return m ? Number(m[1]) * 1024 : 0;
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}
