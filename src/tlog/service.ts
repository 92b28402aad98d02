import type { FastifyBaseLogger } from 'fastify';
import { leafHash, proveRecord, proveTree, treeHash, type BinaryHash, type Hash } from '../domain/tlog/merkle';
import { hashFromTile, parseTilePath, tileForIndex, type Tile } from '../domain/tlog/tile';
import { SIG_COSIGNATURE_V1, formatVerifierKey, noteKey, openNote, type NoteSigner } from '../domain/tlog/note';
import { submitCheckpoint } from './witness';
import { jwkThumbprint } from '../domain/trust-store';
import type { LogEntry, RegionLog } from '../ports/region-log';
import type { AuditLog, AuditRecord } from '../ports/audit-log';
import type { StoredCheckpoint, TreeId, TreeStore } from '../ports/tree-store';
import { MAX_STEP, TileCache, integrate, storeHashReader, type FrontierMemo, type IntegrationResult, type LeafSource } from './integrator';
import { AUDIT_TREE, AuditLeafSource, RegionLeafSource } from './leaves';

export interface TransparencyLogOptions {
  regionLog: RegionLog;
  audit: AuditLog;
  store: TreeStore;
  signer: NoteSigner;
  /** CORDON_LOG_ORIGIN */
  originPrefix: string;
  regions: readonly string[];
  log: FastifyBaseLogger;
  /**
   * how long growth may wait for the next integration (batches appends); default 250 ms, so a
   * step, its tiles and its checkpoint signature serve hundreds of appends under load while every
   * leaf is still in a signed checkpoint well within a second.
   */
  delayMs?: number;
  /** how often every tree is checked for entries no hook announced (other nodes' appends); default 500 ms. */
  sweepMs?: number;
  /** Witnesses to submit each new checkpoint to (C2SP tlog-witness): the trust store's witness keys with a url. */
  witnesses?: () => ReadonlyArray<{ name?: string; url?: string; raw: Buffer }>;
}

interface Scheduled {
  source: LeafSource;
  /** the frontier the last step on this node left (integrate's memo) */
  memo: { last: FrontierMemo | null };
  timer: NodeJS.Timeout | null;
  running: Promise<void> | null;
  again: boolean;
}

/**
 * The audit trail as the rest of the node uses it: every record appended is handed to the
 * transparency log with its leaf hash, so the audit tree never reads this node's records back.
 */
export function auditFeedingTree(audit: AuditLog, tlog: TransparencyLog): AuditLog {
  return {
    append: (input) =>
      audit.append(input).then((record) => {
        tlog.audited(record);
        return record;
      }),
    read: (after, limit) => audit.read(after, limit),
    ping: () => audit.ping(),
    close: () => audit.close(),
  };
}

/** A tree's latest checkpoint as served: the log's note followed by its cosignatures. */
export function servedNote(c: StoredCheckpoint): string {
  return c.note + c.cosignatures.map((l) => `${l}\n`).join('');
}

/**
 * The transparency log of one node: keeps every region tree (current epoch) and the audit tree
 * integrated within about `delayMs` of growth, and answers checkpoint, tile and proof questions.
 */
export class TransparencyLog {
  private readonly trees = new Map<string, Scheduled>();
  private readonly regionSources = new Map<string, RegionLeafSource>();
  private readonly auditSource: AuditLeafSource;
  private readonly cache = new TileCache();
  private sweeper: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(private readonly opts: TransparencyLogOptions) {
    for (const region of opts.regions) {
      const source = new RegionLeafSource(opts.regionLog, region, opts.originPrefix);
      this.regionSources.set(region, source);
      this.trees.set(region, { source, timer: null, running: null, again: false, memo: { last: null } });
    }
    this.auditSource = new AuditLeafSource(opts.audit, opts.originPrefix);
    this.trees.set('audit', { source: this.auditSource, timer: null, running: null, again: false, memo: { last: null } });
  }

  /** The log key as GET /v1/trust publishes it: note name, vkey and JWK. */
  publicKey(): { name: string; vkey: string; kid: string; jwk: { kty: 'OKP'; crv: 'Ed25519'; x: string } } {
    const { signer } = this.opts;
    const jwk = { kty: 'OKP' as const, crv: 'Ed25519' as const, x: signer.publicKey.toString('base64url') };
    return { name: signer.name, vkey: formatVerifierKey(signer), kid: jwkThumbprint(jwk), jwk };
  }

  start(): void {
    const every = this.opts.sweepMs ?? 500;
    this.sweeper = setInterval(() => {
      for (const key of this.trees.keys()) this.schedule(key);
    }, every);
    this.sweeper.unref();
    for (const key of this.trees.keys()) this.schedule(key);
  }

  /**
   * The ingest hook: an entry was appended (sequenced); integrate it soon. `leaf` gives its leaf
   * hash when the caller can make it cheaply (alertLeafHash); without it, it is computed from the entry.
   */
  appended(entry: LogEntry, leaf?: () => Hash | BinaryHash): void {
    try {
      this.regionSources.get(entry.region)?.remember(entry, leaf?.());
    } catch (err) {
      // Never into the append's answer: the integrator reads the entry back from the log instead.
      this.opts.log.warn({ err, region: entry.region, seq: entry.seq }, 'leaf hash not computed at append; read back later');
    }
    this.schedule(entry.region);
  }

  /** The audit trail grew by this record (appended by this node). */
  audited(record: AuditRecord): void {
    try {
      this.auditSource.remember(record);
    } catch (err) {
      this.opts.log.warn({ err, n: record.n }, 'audit leaf hash not computed at append; read back later');
    }
    this.schedule('audit');
  }

  private schedule(key: string): void {
    const s = this.trees.get(key);
    if (!s || this.closed) return;
    if (s.running) {
      s.again = true;
      return;
    }
    if (s.timer) return;
    s.timer = setTimeout(() => {
      s.timer = null;
      s.running = this.run(key, s).finally(() => {
        s.running = null;
        if (s.again) {
          s.again = false;
          this.schedule(key);
        }
      });
    }, this.opts.delayMs ?? 250);
  }

  private async run(key: string, s: Scheduled): Promise<void> {
    try {
      for (let steps = 0; steps < 64 && !this.closed; steps++) {
        const r = await integrate(this.opts.store, s.source, this.opts.signer, s.memo);
        if (!r) return;
        // Witnesses answer over the network: never hold up the next checkpoint for them.
        if (r.checkpoint) void this.stored(r).catch((err: unknown) => this.opts.log.warn({ err }, 'witness round failed'));
        if (s.source instanceof RegionLeafSource) s.source.forget(r.tree.name, r.to);
        else if (s.source instanceof AuditLeafSource) s.source.forget(r.to);
        if (r.to === r.from) {
          if (r.stalled) await this.behind(key, s, r);
          return;
        }
        // Caught up: what arrived during this step waits for the next batching delay, so that under
        // steady load a step (its round trips, tile rewrites and signature) serves a delay's worth of
        // appends, not the handful that came in while it ran. Only a full step (a backlog) goes on.
        if (r.to - r.from < MAX_STEP) return;
      }
    } catch (err) {
      this.opts.log.warn({ err, tree: key }, 'transparency log integration failed; retrying');
    }
  }

  /** No progress: either caught up, or another node won the race (retry), or entries are missing. */
  private async behind(key: string, s: Scheduled, r: IntegrationResult): Promise<void> {
    if (key === 'audit') return;
    const head = await s.source.head();
    if (head && head.tree.name === r.tree.name && head.size > r.to) {
      const cp = await this.opts.store.checkpoint(r.tree);
      if ((cp?.size ?? 0) === r.to) {
        this.opts.log.error(
          { tree: key, size: r.to, logSize: head.size },
          'transparency log cannot integrate: entries are no longer held (trimmed before integration)',
        );
      }
    }
  }

  private async stored(r: IntegrationResult): Promise<void> {
    this.opts.log.debug({ origin: r.origin, size: r.to }, 'checkpoint signed');
    const witnesses = (this.opts.witnesses?.() ?? []).filter((w) => w.url && w.name);
    if (!r.checkpoint || witnesses.length === 0) return;
    const cp = r.checkpoint;
    const lines = await Promise.all(witnesses.map((w) => this.cosignBy(w as { name: string; url: string; raw: Buffer }, r.tree, r.origin, cp)));
    const collected = lines.filter((l): l is string => l !== null);
    if (collected.length === 0) return;
    // Add them to the stored checkpoint while it is still this size (compare-and-set on the size).
    for (let attempt = 0; attempt < 3; attempt++) {
      const now = await this.opts.store.checkpoint(r.tree);
      if (!now || now.size !== cp.size || now.note !== cp.note) return;
      const cosignatures = [...new Set([...now.cosignatures, ...collected])];
      if (await this.opts.store.setCheckpoint(r.tree, cp.size, { ...now, cosignatures })) return;
    }
  }

  /** Last size each witness cosigned per origin, as far as this node knows (409 answers correct it). */
  private readonly witnessSizes = new Map<string, number>();

  /** Submits one checkpoint to one witness (C2SP add-checkpoint); its verified cosignature line, or null. */
  private async cosignBy(w: { name: string; url: string; raw: Buffer }, tree: TreeId, origin: string, cp: StoredCheckpoint): Promise<string | null> {
    const key = `${w.url} ${origin}`;
    let oldSize = this.witnessSizes.get(key) ?? 0;
    try {
      for (let attempt = 0; attempt < 2; attempt++) {
        const proof = oldSize > 0 && oldSize < cp.size ? await this.proveConsistency(tree, oldSize, cp.size) : [];
        const res = await submitCheckpoint(w.url, oldSize, proof, cp.note);
        if (res.status === 409 && /^(0|[1-9][0-9]*)\n$/.test(res.body) && Number(res.body) <= cp.size && attempt === 0) {
          oldSize = Number(res.body);
          continue;
        }
        if (res.status !== 200) {
          this.opts.log.error({ witness: w.name, origin, size: cp.size, status: res.status, answer: res.body.slice(0, 200) }, 'witness refused a checkpoint');
          return null;
        }
        const wk = noteKey(w.name, SIG_COSIGNATURE_V1, w.raw);
        const verified = openNote(cp.note + res.body, [wk]).verified;
        this.witnessSizes.set(key, cp.size);
        return verified[0]?.line ?? null;
      }
    } catch (err) {
      this.opts.log.warn({ err, witness: w.name, origin }, 'witness submission failed');
    }
    return null;
  }

  /** Waits until every tree has integrated what its log held when called (tests, benches). */
  async settle(timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (const [key, s] of this.trees) {
      for (;;) {
        const head = await s.source.head();
        if (!head) break;
        const cp = await this.opts.store.checkpoint(head.tree);
        const size = cp?.size ?? 0;
        if (key === 'audit' ? (await s.source.leafHashes(head.tree, size, size + 1)).length === 0 : size >= head.size) break;
        if (Date.now() > deadline) throw new Error(`transparency log ${key} did not settle`);
        this.schedule(key);
        await new Promise((r) => setTimeout(r, 20));
      }
    }
  }

  /** The tree a region's current epoch has (null while the region is empty). */
  async regionTree(region: string): Promise<TreeId | null> {
    const head = await this.regionSources.get(region)?.head();
    return head ? head.tree : null;
  }

  treeOf(key: string, epoch: string | null): TreeId | null {
    if (key === 'audit') return AUDIT_TREE;
    return epoch === null ? null : { tag: key, name: epoch };
  }

  async checkpoint(tree: TreeId): Promise<StoredCheckpoint | null> {
    return this.opts.store.checkpoint(tree);
  }

  /** Tile bytes for a C2SP path, or null when the path is malformed or the tree has not that tile. */
  async tile(tree: TreeId, path: string): Promise<Buffer | null> {
    const t = parseTilePath(path);
    if (!t) return null;
    const cp = await this.opts.store.checkpoint(tree);
    if (!cp) return null;
    // Only tiles of a tree size some checkpoint had: full tiles below the size, the partial edge.
    const atLevel = Math.floor(cp.size / 256 ** t.level);
    if (t.width === 256 ? (t.n + 1) * 256 > atLevel : t.n * 256 + t.width > atLevel) return null;
    const cached = this.cache.get(tree, t);
    const data = cached ?? (await this.opts.store.readTiles(tree, [t]))[0];
    if (!data || data.length < t.width * 32) return null;
    const exact = data.subarray(0, t.width * 32);
    if (!cached) this.cache.set(tree, t, exact);
    return exact;
  }

  /** Inclusion proof of leaf `index` in the tree of `size` (<= the checkpoint size). */
  async proveInclusion(tree: TreeId, index: number, size: number): Promise<Hash[]> {
    return proveRecord(size, index, storeHashReader(this.opts.store, tree, size, this.cache));
  }

  async proveConsistency(tree: TreeId, from: number, to: number): Promise<Hash[]> {
    if (from === 0) return [];
    return proveTree(to, from, storeHashReader(this.opts.store, tree, to, this.cache));
  }

  async rootAt(tree: TreeId, size: number): Promise<Hash> {
    return treeHash(size, storeHashReader(this.opts.store, tree, size, this.cache));
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.sweeper) clearInterval(this.sweeper);
    for (const s of this.trees.values()) {
      if (s.timer) clearTimeout(s.timer);
      s.timer = null;
      await s.running;
    }
  }
}

export { leafHash, hashFromTile, tileForIndex, type Tile };
