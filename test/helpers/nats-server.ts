import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

/**
 * A nats-server process of the test's own, with a configuration the test writes (authorization,
 * TLS), listening on a random loopback port. The shared NATS of the machine is not touched.
 */
export interface NatsServerProcess {
  /** `nats://127.0.0.1:<port>` */
  url: string;
  port: number;
  /** the temporary directory holding the configuration (and whatever files the test put there). */
  dir: string;
  /** SIGKILL: the server is gone at once, its clients see their connection drop. */
  kill(): Promise<void>;
  /** Kills the server if it runs and removes its directory. */
  close(): Promise<void>;
  logs(): string;
}

/** The nats-server executable (CORDON_TEST_NATS_SERVER, else /usr/sbin/nats-server, else the PATH's). */
export const NATS_SERVER_BINARY = process.env.CORDON_TEST_NATS_SERVER ?? (existsSync('/usr/sbin/nats-server') ? '/usr/sbin/nats-server' : 'nats-server');
const START_TIMEOUT_MS = 10_000;

const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const p of running) p.kill('SIGKILL');
});

/** A fresh temporary directory for a server's configuration and key material. */
export function natsTempDir(): string {
  return mkdtempSync(path.join(tmpdir(), 'cordon-nats-'));
}

/**
 * Starts nats-server with `body` (configuration text) after a loopback listen on a random port
 * (or `port`, e.g. to bring a killed server back where its clients reconnect).
 * `env` is the server's environment (the configuration may name `$VARIABLES` from it).
 */
export async function startNatsServer(body: string, opts: { env?: Record<string, string>; dir?: string; port?: number } = {}): Promise<NatsServerProcess> {
  const dir = opts.dir ?? natsTempDir();
  const conf = path.join(dir, 'nats.conf');
  for (const f of readdirSync(dir).filter((f) => f.endsWith('.ports'))) rmSync(path.join(dir, f));
  writeFileSync(conf, `listen: "127.0.0.1:${opts.port ?? -1}"\nports_file_dir: "${dir}"\n${body}\n`);
  let output = '';
  const proc = spawn(NATS_SERVER_BINARY, ['-c', conf], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(proc);
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  void exited.then(() => running.delete(proc));
  for (const stream of [proc.stdout, proc.stderr]) stream.on('data', (d: Buffer) => void (output = (output + d.toString()).slice(-20_000)));

  const kill = async () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    await exited;
  };
  let port: number | undefined;
  const until = Date.now() + START_TIMEOUT_MS;
  while (port === undefined) {
    if (proc.exitCode !== null) throw new Error(`nats-server exited with ${proc.exitCode}:\n${output}`);
    if (Date.now() > until) {
      await kill();
      throw new Error(`nats-server did not start:\n${output}`);
    }
    const file = readdirSync(dir).find((f) => f.endsWith('.ports'));
    if (file) {
      // {"nats":["nats://127.0.0.1:40123"], ...}; written once the client port listens.
      try {
        const ports = JSON.parse(readFileSync(path.join(dir, file), 'utf8')) as { nats: string[] };
        port = Number(new URL(ports.nats[0]).port);
      } catch {
        /* written but not complete yet */
      }
    }
    if (port === undefined) await new Promise((r) => setTimeout(r, 20));
  }
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    dir,
    kill,
    async close() {
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
    logs: () => output,
  };
}

/** The top-level `authorization { ... }` block of a NATS configuration file (braces matched, comments skipped). */
export function authorizationBlock(confText: string): string {
  const lines = confText.split('\n');
  const start = lines.findIndex((l) => /^authorization\s*\{/.test(l));
  if (start < 0) throw new Error('no top-level authorization block');
  let depth = 0;
  for (let i = start; i < lines.length; i++) {
    const code = lines[i].replace(/#.*$/, '');
    for (const ch of code) {
      if (ch === '{') depth++;
      else if (ch === '}') depth--;
    }
    if (depth === 0) return lines.slice(start, i + 1).join('\n');
  }
  throw new Error('unterminated authorization block');
}
