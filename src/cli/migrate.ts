import Redis from 'ioredis';
import { MigrationError, migrateToRedis } from '../adapters/sqlite/migrate';
import { CliError, defineCommand, required } from './args';
import { openExisting, storeFileArg } from './backup';

/**
 * `cordon migrate`: copies every region log, the audit trail and the transparency log's trees of
 * the embedded store into Redis (same seqs, epochs, checkpoints and cosignatures), then verifies
 * counts and content hashes read back from both sides.
 */
export const migrate = defineCommand({
  name: 'migrate',
  summary: 'Copy the embedded store into Redis (same seqs and epochs), verified by count and hash',
  usage: `--redis-url URL [--prefix P] [--store FILE | --data-dir DIR]
  --redis-url  the Redis the production nodes will use (a single server or the primary)
  --prefix     their CORDON_REDIS_KEY_PREFIX (default cordon:)
  --store      the store file (default: CORDON_DATA_DIR/cordon.db, CORDON_DATA_DIR defaulting to .cordon)
  --data-dir   the node's CORDON_DATA_DIR (its store is cordon.db in it)
Stop the embedded node first (or migrate from a 'cordon backup' copy): alerts accepted after
the copy started are not in it. The target must hold none of the regions, no audit trail and
none of the transparency log's trees.`,
  options: {
    'redis-url': { type: 'string' },
    prefix: { type: 'string' },
    store: { type: 'string' },
    'data-dir': { type: 'string' },
  },
  async run(values, io) {
    const url = required(values['redis-url'], 'redis-url');
    const prefix = values.prefix ?? 'cordon:';
    const file = storeFileArg(values.store, values['data-dir'], io);
    const store = openExisting(file);
    const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 2, retryStrategy: () => null });
    let lastError: Error | undefined;
    redis.on('error', (err: Error) => void (lastError = err));
    try {
      try {
        await redis.connect();
      } catch (err) {
        const why = (lastError ?? (err as Error)).message;
        throw new CliError(`cannot reach Redis at ${redactUrl(url)}: ${why}`, { cause: err });
      }
      let report;
      try {
        report = await migrateToRedis(store, redis, prefix);
      } catch (err) {
        if (err instanceof MigrationError) throw new CliError(err.message, { cause: err });
        throw err;
      }
      let out = '';
      for (const r of report.regions) {
        out +=
          `region ${r.region}: epoch ${r.epoch}, seq ${r.earliest}..${r.latest}, ${r.entries} entries, ${r.alerts} alerts, ` +
          `sha256 ${r.sha256}: same in Redis\n`;
      }
      out += `audit trail: ${report.audit.records} records, sha256 ${report.audit.sha256}: same in Redis\n`;
      if (report.trees === null) out += 'transparency log: this store predates the tree tables; the nodes build the trees from the logs\n';
      for (const t of report.trees ?? []) {
        out +=
          `tree ${t.tree.tag}/${t.tree.name}: checkpoint size ${t.size}, ${t.cosignatures} cosignatures, ${t.tiles} tiles, ` +
          `sha256 ${t.sha256}: same in Redis\n`;
      }
      out += `migrated ${file} to ${redactUrl(url)} under prefix ${prefix}: verified\n`;
      io.stdout.write(out);
      return 0;
    } finally {
      redis.disconnect();
      await store.close();
    }
  },
});

function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url;
  }
}
