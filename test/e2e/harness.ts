import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Redis from 'ioredis';
import { DeskStream, type DeskEvent } from '../../src/cli/tail';
import { TEST_NATS_URL, TEST_REDIS_URL, uniqueKeyPrefix, uniqueRegion, uniqueSubjectPrefix } from '../helpers/env';
import { makeTestTrust } from '../helpers/keys';
import { deleteKeysWithPrefix } from '../../src/adapters/redis/client';

/** Shared by the end-to-end tests: production-mode config files, recording desks, clean-up. */

export interface Watcher {
  stream: DeskStream;
  seqs: number[];
  closes: number[];
  /** the node of every connection opened, in order */
  urls: string[];
  /** `recovered` of every subscribed frame, in order */
  recovered: boolean[];
}

/** A desk that records every alert seq and every close code it sees. */
export function watch(urls: string[], token: string, region: string, backoffMs = 50): Watcher {
  const w: Watcher = { stream: undefined as unknown as DeskStream, seqs: [], closes: [], urls: [], recovered: [] };
  w.stream = new DeskStream({
    urls,
    token,
    regions: [region],
    backoff: { initialMs: backoffMs, maxMs: 500 },
    onEvent(e: DeskEvent) {
      if (e.type === 'alert') w.seqs.push(e.alert.seq);
      else if (e.type === 'closed') w.closes.push(e.code);
      else if (e.type === 'open') w.urls.push(e.url);
      else if (e.type === 'subscribed') w.recovered.push(e.frame.recovered);
    },
  }).start();
  return w;
}

export async function until(cond: () => boolean, what: string, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export async function removeKeys(prefix: string): Promise<void> {
  const redis = new Redis(TEST_REDIS_URL);
  try {
    await deleteKeysWithPrefix(redis, prefix);
  } finally {
    await redis.quit();
  }
}

/** Trust store and region registry files for production-mode nodes, in a temp directory. */
export function writeConfigFiles(region: string): { dir: string; trust: ReturnType<typeof makeTestTrust>; env: Record<string, string>; prefix: string } {
  // The second region makes KZ a member state (validContent's audience names it).
  const regions = [
    { code: region, name: 'Torugart pass (e2e)', states: ['KG', 'CN'] },
    { code: uniqueRegion('KZ', 'KG'), name: 'Korday (e2e)', states: ['KZ', 'KG'] },
  ];
  const trust = makeTestTrust(['KG', 'KZ', 'CN'], regions);
  const dir = mkdtempSync(join(tmpdir(), 'cordon-e2e-'));
  writeFileSync(join(dir, 'trust.json'), JSON.stringify(trust.storeJson));
  writeFileSync(join(dir, 'regions.json'), JSON.stringify({ regions }));
  const prefix = uniqueKeyPrefix();
  return {
    dir,
    trust,
    prefix,
    env: {
      CORDON_REDIS_URL: TEST_REDIS_URL,
      CORDON_NATS_URL: TEST_NATS_URL,
      CORDON_TRUST_STORE: join(dir, 'trust.json'),
      CORDON_REGIONS: join(dir, 'regions.json'),
      CORDON_REDIS_KEY_PREFIX: prefix,
      CORDON_NATS_SUBJECT_PREFIX: uniqueSubjectPrefix(),
      CORDON_RATE_LIMIT_MAX: '0',
      CORDON_POSITION_CHECK_MS: '200',
    },
  };
}
