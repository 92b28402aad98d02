import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyBaseLogger } from 'fastify';
import pino from 'pino';
import { buildApp } from '../../src/app';
import { compose } from '../../src/compose';
import { loadConfig } from '../../src/config';
import { parseJson } from '../../src/domain/json';
import { makeTestTrust } from '../helpers/keys';
import { TEST_NATS_URL, uniqueKeyPrefix, uniqueSubjectPrefix } from '../helpers/env';

/**
 * Every log line is a JSON object without a repeated key: the composition root used to hand the
 * adapters child loggers that they nested again with the same key, so lines read
 * `"component":"nats","component":"bus"` (issue 8 item 9), which JSON tools read differently.
 */

function capture(): { log: FastifyBaseLogger; lines: string[] } {
  const lines: string[] = [];
  const log = pino({ level: 'debug' }, { write: (s: string) => void lines.push(...s.split('\n').filter(Boolean)) });
  return { log: log, lines };
}

/** Fails with the line when a key repeats at any depth (the hostile-input parser refuses duplicates). */
function expectNoRepeatedKey(lines: string[]): void {
  for (const line of lines) {
    let problem: string | undefined;
    try {
      parseJson(line, { maxBytes: 1 << 20, maxDepth: 64 });
    } catch (err) {
      problem = `${(err as Error).message}: ${line}`;
    }
    expect(problem).toBeUndefined();
  }
}

async function until(cond: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

const componentOf = (lines: string[], msg: string) =>
  lines.map((l) => JSON.parse(l) as { msg?: string; component?: string }).find((o) => o.msg === msg)?.component;

describe('log lines never repeat a key', () => {
  let dir: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'cordon-log-keys-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('production composition: the NATS bus and the Redis client name themselves once', async () => {
    const trustPath = join(dir, 'trust.json');
    writeFileSync(trustPath, JSON.stringify(makeTestTrust().storeJson));
    const { log, lines } = capture();
    const config = loadConfig({
      CORDON_NATS_URL: TEST_NATS_URL,
      // Nothing listens there: the client logs its connection error.
      CORDON_REDIS_URL: 'redis://127.0.0.1:1',
      CORDON_TRUST_STORE: trustPath,
      CORDON_REDIS_KEY_PREFIX: uniqueKeyPrefix(),
      CORDON_NATS_SUBJECT_PREFIX: uniqueSubjectPrefix(),
      CORDON_VERIFY_THREADS: '0',
    });
    const comp = await compose(config, log);
    try {
      await until(() => lines.some((l) => l.includes('"bus connected"')) && lines.some((l) => l.includes('"redis error"')));
      expect(componentOf(lines, 'bus connected')).toBe('bus');
      expect(componentOf(lines, 'redis error')).toBe('redis');
      expectNoRepeatedKey(lines);
    } finally {
      await comp.close();
    }
    expectNoRepeatedKey(lines);
  }, 30_000);

  test('embedded composition and the app built on it', async () => {
    const { log, lines } = capture();
    const config = loadConfig({ CORDON_DATA_DIR: join(dir, 'data'), CORDON_VERIFY_THREADS: '0', CORDON_LOG_LEVEL: 'debug' });
    const comp = await compose(config, log);
    const app = await buildApp(comp.deps, { logger: log });
    try {
      await app.ready();
      // A few requests that log through the app's child loggers.
      await app.inject({ method: 'POST', url: '/v1/alerts', payload: '{"content":', headers: { 'content-type': 'application/json' } });
      await app.inject({ method: 'GET', url: '/v1/regions', headers: { authorization: 'Bearer x' } });
      expect(lines.length).toBeGreaterThan(0);
      expectNoRepeatedKey(lines);
    } finally {
      await app.close();
      await comp.close();
    }
    expectNoRepeatedKey(lines);
  }, 30_000);
});
