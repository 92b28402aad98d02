'use strict';
/*
 * Runs once before the suite: builds dist/ (end-to-end tests start real server processes), then
 * makes sure NATS and Redis answer. They are found through CORDON_TEST_NATS_URL and
 * CORDON_TEST_REDIS_URL (default: the local servers); only where neither answers and a Docker
 * engine exists are they started with testcontainers.
 */
const { execFileSync } = require('node:child_process');
const net = require('node:net');
const path = require('node:path');

function reachable(url) {
  const u = new URL(url);
  return new Promise((resolve) => {
    const s = net.connect({ host: u.hostname, port: Number(u.port) }, () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
    s.setTimeout(1000, () => {
      s.destroy();
      resolve(false);
    });
  });
}

module.exports = async function globalSetup() {
  const root = path.resolve(__dirname, '..', '..');
  try {
    // Type errors are reported by `npm run typecheck`; emit what compiles so process tests can run.
    execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.build.json'], {
      cwd: root,
      stdio: 'pipe',
    });
  } catch (err) {
    process.stderr.write(`global-setup: tsc reported errors (dist/ may be partial)\n${err.stdout ?? ''}`);
  }
  const redisUrl = process.env.CORDON_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
  const natsUrl = process.env.CORDON_TEST_NATS_URL ?? 'nats://127.0.0.1:4222';
  const [redisUp, natsUp] = await Promise.all([reachable(redisUrl), reachable(natsUrl)]);
  if (redisUp && natsUp) return;
  // Fall back to containers where a Docker engine exists.
  const { GenericContainer } = require('testcontainers');
  if (!redisUp) {
    const c = await new GenericContainer('redis:7-alpine').withExposedPorts(6379).start();
    process.env.CORDON_TEST_REDIS_URL = `redis://${c.getHost()}:${c.getMappedPort(6379)}`;
    globalThis.__cordonContainers = [...(globalThis.__cordonContainers ?? []), c];
  }
  if (!natsUp) {
    const c = await new GenericContainer('nats:2-alpine').withCommand(['-js']).withExposedPorts(4222).start();
    process.env.CORDON_TEST_NATS_URL = `nats://${c.getHost()}:${c.getMappedPort(4222)}`;
    globalThis.__cordonContainers = [...(globalThis.__cordonContainers ?? []), c];
  }
};
