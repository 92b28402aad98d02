import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { listenFailure, startupBanner } from '../../src/startup-banner';
import { killAllNodes, startNode } from '../helpers/procs';

/** What a person sees when a node starts (`node dist/src/server.js`, built by the global setup). */
const ROOT = resolve(__dirname, '../..');
let dataDir: string;
beforeEach(() => {
  dataDir = mkdtempSync(join(tmpdir(), 'cordon-startup-'));
});
afterEach(async () => {
  await killAllNodes();
  rmSync(dataDir, { recursive: true, force: true });
});

test('the banner names the console, the health URL and the mode', () => {
  expect(startupBanner({ host: '127.0.0.1', port: 8080, log: 'memory', bus: 'memory' })).toBe(
    'cordon is up (embedded mode: in-memory log and bus, nothing kept across restarts). ' +
      'Console: http://127.0.0.1:8080/console/  Health: http://127.0.0.1:8080/readyz  API: http://127.0.0.1:8080/v1/',
  );
  expect(startupBanner({ host: '127.0.0.1', port: 8080, log: 'sqlite', bus: 'memory', file: '.cordon/cordon.db' })).toContain(
    '(embedded mode: alerts and audit trail kept in .cordon/cordon.db). Console:',
  );
  expect(startupBanner({ host: '0.0.0.0', port: 80, log: 'redis', bus: 'nats' })).toContain(
    '(production mode: redis log, nats bus). Console: http://localhost:80/console/',
  );
  expect(listenFailure(Object.assign(new Error('x'), { code: 'EADDRINUSE' }), 'CORDON_PORT', '127.0.0.1', 8080).message).toBe(
    '127.0.0.1:8080 is already in use (EADDRINUSE): another process listens there; choose a free port with CORDON_PORT',
  );
});

test('a started node prints the human line with where to go next, beside its JSON log', async () => {
  const node = await startNode({ CORDON_DATA_DIR: dataDir, CORDON_LOG_LEVEL: 'info' });
  const deadline = Date.now() + 10_000;
  while (!node.logs().includes('cordon is up') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  expect(node.logs()).toContain(
    `cordon is up (embedded mode: alerts and audit trail kept in ${join(dataDir, 'cordon.db')}). Console: ${node.url}/console/  Health: ${node.url}/readyz`,
  );
  expect(node.logs()).toMatch(/"msg":"cordon started \(embedded mode, SQLite store/);
  expect(await node.stop()).toBe(0);
}, 60_000);

test('a busy port stops the node with exit 1 and a message naming CORDON_PORT', async () => {
  const blocker = net.createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
  const port = (blocker.address() as net.AddressInfo).port;
  try {
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('CORDON_')) env[k] = v;
    Object.assign(env, { CORDON_PORT: String(port), CORDON_HOST: '127.0.0.1', CORDON_METRICS_PORT: '0', CORDON_LOG_LEVEL: 'warn', CORDON_DATA_DIR: dataDir });
    const proc = spawn(process.execPath, [join(ROOT, 'dist/src/server.js')], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    proc.stdout.setEncoding('utf8').on('data', (c: string) => void (output += c));
    proc.stderr.setEncoding('utf8').on('data', (c: string) => void (output += c));
    const code = await new Promise<number | null>((r) => proc.once('close', r));
    expect(code).toBe(1);
    expect(output).toContain(
      `cordon failed to start: 127.0.0.1:${port} is already in use (EADDRINUSE): another process listens there; choose a free port with CORDON_PORT`,
    );
  } finally {
    await new Promise((r) => blocker.close(r));
  }
}, 60_000);
