/*
 * bench/tlog: the transparency log's proofs on a tree of 1,000,000 leaves stored as hash tiles in
 * Redis, as one node serves them (tiles read from Redis through the node's cache of full tiles).
 * Prints the integration rate, inclusion and consistency proofs per second, and the Redis memory
 * the tree adds per leaf (MEMORY USAGE of every tile key).
 *
 *   npm run bench:tlog            (BENCH_LEAVES=1000000 BENCH_PROOFS=50000 by default)
 *
 * Targets: >= 10,000 inclusion proofs/s from one node; <= 80 bytes of Redis per leaf.
 * The proofs are measured in process (the service call the HTTP route makes), not over HTTP.
 */
import Redis from 'ioredis';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createRedisClient, deleteKeysWithPrefix } from '../src/adapters/redis/client';
import { RedisTreeStore } from '../src/adapters/redis/tree-store';
import { leafHash, checkRecord, type Hash } from '../src/domain/tlog/merkle';
import { SIG_ED25519, noteSigner, openNote, parseCheckpoint } from '../src/domain/tlog/note';
import { TileCache, integrate, storeHashReader, type LeafSource } from '../src/tlog/integrator';
import { proveRecord, proveTree, treeHash } from '../src/domain/tlog/merkle';

const LEAVES = Number(process.env.BENCH_LEAVES ?? 1_000_000);
const PROOFS = Number(process.env.BENCH_PROOFS ?? 50_000);
const CONCURRENCY = 64;
const REDIS_URL = process.env.CORDON_BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';

async function main(): Promise<void> {
  const prefix = `cordon-bench-tlog:${randomBytes(4).toString('hex')}:`;
  const redis = createRedisClient(REDIS_URL);
  const store = new RedisTreeStore(redis, { prefix });
  const signer = noteSigner('cordon.bench', SIG_ED25519, generateKeyPairSync('ed25519').privateKey);
  const tree = { tag: 'KG-CN-01', name: 'bench' };
  const hashes: Hash[] = new Array<Hash>(LEAVES);
  for (let i = 0; i < LEAVES; i++) hashes[i] = leafHash(`bench leaf ${i}`);
  const source: LeafSource = {
    async head() {
      return { tree, origin: 'cordon.bench/KG-CN-01/bench', size: LEAVES };
    },
    async leafHashes(_t, from, to) {
      return hashes.slice(from, to);
    },
  };
  try {
    let t0 = Date.now();
    let size = 0;
    while (size < LEAVES) {
      const r = await integrate(store, source, signer);
      size = r!.to;
    }
    const integrateS = (Date.now() - t0) / 1000;
    const cp = (await store.checkpoint(tree))!;
    const { root } = parseCheckpoint(openNote(cp.note, [signer]).text);
    console.log(
      `integrated ${LEAVES} leaves in ${integrateS.toFixed(1)} s (${Math.round(LEAVES / integrateS)} leaves/s, steps of 4096 with a signed checkpoint each)`,
    );

    // Redis memory the tree adds.
    let bytes = 0;
    let keys = 0;
    let cursor = '0';
    do {
      const [next, batch] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      for (const k of batch) {
        bytes += (await redis.memory('USAGE', k)) ?? 0;
        keys++;
      }
    } while (cursor !== '0');
    console.log(`redis: ${keys} keys, ${(bytes / 1e6).toFixed(1)} MB, ${(bytes / LEAVES).toFixed(1)} bytes per leaf (target <= 80)`);

    const cache = new TileCache();
    const reader = () => storeHashReader(store, tree, LEAVES, cache);
    if (!(await treeHash(LEAVES, reader())).equals(root)) throw new Error('root mismatch');
    for (const [label, one] of [
      [
        'inclusion',
        async () => {
          const n = Math.floor(Math.random() * LEAVES);
          const p = await proveRecord(LEAVES, n, reader());
          if (Math.random() < 0.01 && !checkRecord(p, LEAVES, root, n, hashes[n])) throw new Error('bad proof');
        },
      ],
      [
        'consistency',
        async () => {
          const m = 1 + Math.floor(Math.random() * (LEAVES - 1));
          await proveTree(LEAVES, m, reader());
        },
      ],
    ] as const) {
      for (const pass of ['cold', 'warm']) {
        let done = 0;
        t0 = Date.now();
        await Promise.all(
          Array.from({ length: CONCURRENCY }, async () => {
            while (done < PROOFS) {
              done++;
              await one();
            }
          }),
        );
        const s = (Date.now() - t0) / 1000;
        console.log(`${label} proofs (${pass} tile cache): ${Math.round(PROOFS / s)}/s over ${PROOFS}`);
      }
    }
  } finally {
    const admin = new Redis(REDIS_URL);
    await deleteKeysWithPrefix(admin, prefix);
    await admin.quit();
    await redis.quit();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
