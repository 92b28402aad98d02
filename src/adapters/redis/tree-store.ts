import type { Tile } from '../../domain/tlog/tile';
import type { StoredCheckpoint, TreeId, TreeStore } from '../../ports/tree-store';
import { logCall, quitClient, type RedisClient } from './client';

export interface RedisTreeStoreOptions {
  /** key prefix; default `cordon:`. */
  prefix?: string;
  ownsClient?: boolean;
}

/** SET the tile unless the stored one is at least as long (tiles only grow). */
const SET_LONGER_LUA = `
for i = 1, #KEYS do
  if redis.call('STRLEN', KEYS[i]) < string.len(ARGV[i]) then redis.call('SET', KEYS[i], ARGV[i]) end
end
return #KEYS`;

/** Compare-and-set of the checkpoint hash on its size field. */
const SET_CHECKPOINT_LUA = `
local size = tonumber(redis.call('HGET', KEYS[1], 'size') or '0')
if size ~= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'size', ARGV[2], 'note', ARGV[3], 'cosig', ARGV[4])
return 1`;

interface TreeScripts {
  cordonTlogSetLonger(...args: (string | Buffer | number)[]): Promise<number>;
  cordonTlogSetCheckpoint(...args: (string | number)[]): Promise<number>;
}

/**
 * The tree store on Redis: one string per hash tile, `<prefix>{<tag>}:tlog:<name>:t:<L>:<N>`
 * (8 KiB when full, about 32 bytes per leaf), and the checkpoint as the hash
 * `<prefix>{<tag>}:tlog:<name>:cp` (size, note, cosig). The region's hash tag keeps a tree's keys
 * beside its log, in one Cluster slot. Failures reject with LogUnavailableError.
 */
export class RedisTreeStore implements TreeStore {
  private readonly redis: RedisClient & TreeScripts;
  private readonly prefix: string;
  private readonly ownsClient: boolean;

  constructor(client: RedisClient, opts: RedisTreeStoreOptions = {}) {
    this.prefix = opts.prefix ?? 'cordon:';
    this.ownsClient = opts.ownsClient ?? false;
    client.defineCommand('cordonTlogSetLonger', { lua: SET_LONGER_LUA });
    client.defineCommand('cordonTlogSetCheckpoint', { numberOfKeys: 1, lua: SET_CHECKPOINT_LUA });
    this.redis = client as RedisClient & TreeScripts;
  }

  /** The key prefix of a tree (tests reach behind Cordon's back through it). */
  treeKey(tree: TreeId): string {
    return `${this.prefix}{${tree.tag}}:tlog:${tree.name}`;
  }

  tileKey(tree: TreeId, t: Tile): string {
    return `${this.treeKey(tree)}:t:${t.level}:${t.n}`;
  }

  async readTiles(tree: TreeId, tiles: readonly Tile[]): Promise<(Buffer | null)[]> {
    if (tiles.length === 0) return [];
    return logCall('tree store', () => this.redis.mgetBuffer(...tiles.map((t) => this.tileKey(tree, t))));
  }

  async writeTiles(tree: TreeId, tiles: readonly { tile: Tile; data: Buffer }[]): Promise<void> {
    if (tiles.length === 0) return;
    await logCall('tree store', () =>
      this.redis.cordonTlogSetLonger(tiles.length, ...tiles.map((t) => this.tileKey(tree, t.tile)), ...tiles.map((t) => t.data)),
    );
  }

  async checkpoint(tree: TreeId): Promise<StoredCheckpoint | null> {
    const h = await logCall('tree store', () => this.redis.hgetall(`${this.treeKey(tree)}:cp`));
    if (!h.size) return null;
    return { size: Number(h.size), note: h.note ?? '', cosignatures: h.cosig ? h.cosig.split('\n') : [] };
  }

  async setCheckpoint(tree: TreeId, expectedSize: number, next: StoredCheckpoint): Promise<boolean> {
    const ok = await logCall('tree store', () =>
      this.redis.cordonTlogSetCheckpoint(`${this.treeKey(tree)}:cp`, expectedSize, next.size, next.note, next.cosignatures.join('\n')),
    );
    return ok === 1;
  }

  async close(): Promise<void> {
    if (this.ownsClient) await quitClient(this.redis);
  }
}
