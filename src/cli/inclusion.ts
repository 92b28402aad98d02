import { checkRecord, leafHash, type Hash } from '../domain/tlog/merkle';
import { RemoteTiles, TileFetchError, tileBytes } from './tiles';
import { openNote, parseCheckpoint, parseVerifierKey, SIG_ED25519, type NoteKey } from '../domain/tlog/note';
import type { DeliveredAlert } from '../domain/types';
import { deliveredLeafData } from '../tlog/leaves';

/**
 * Inclusion of delivered alerts in the region's transparency log (docs/transparency.md), for
 * `cordon tail` and `cordon verify`: the signed checkpoint (verified with the log key of
 * GET /v1/trust, cached per region and fetched again at most every `refetchMs` when an alert lies
 * beyond it), the alert's inclusion proof against that checkpoint's size, made here from the log's
 * hash tiles (RemoteTiles: about one tile request per checkpoint and 256 alerts, not a proof request
 * per alert), and the leaf recomputed from the alert as received. Hashing and the proof check are
 * src/domain/tlog's.
 */

export type InclusionState = 'included' | 'pending' | 'not-included' | 'unavailable';

export interface InclusionResult {
  state: InclusionState;
  /** why, for pending, not-included and unavailable */
  detail?: string;
  /** the checkpoint size the proof was checked against */
  size?: number;
}

interface CachedCheckpoint {
  epoch: string;
  origin: string;
  size: number;
  root: Hash;
}

/** What a log endpoint answered: a body, or a status with the problem's code. */
type Failure = { ok: false; status: number; code?: string; message: string };
type Answer = { ok: true; text: string } | Failure;

export interface LogInclusionOptions {
  /** the node's base URL (ending in a slash); a function for a desk that fails over between nodes */
  base: URL | (() => URL);
  token: string;
  /** the log's C2SP vkey (GET /v1/trust, `log.vkey`) */
  vkey: string;
  refetchMs?: number;
  now?: () => number;
}

export class LogInclusion {
  private readonly key: NoteKey;
  private readonly checkpoints = new Map<string, CachedCheckpoint>();
  private readonly fetchedAt = new Map<string, number>();
  private readonly inflight = new Map<string, Promise<CachedCheckpoint | InclusionResult>>();
  private readonly lastFailure = new Map<string, InclusionResult>();
  private readonly refetchMs: number;
  private readonly now: () => number;
  /** After a network error, timeout or 5xx: no request before this time (the caller keeps going). */
  private downUntil = 0;
  private readonly tiles = new RemoteTiles(async (path) => {
    const r = await this.request(path, 'application/octet-stream');
    if (!r.ok) throw new TileFetchError(r.status, r.code, r.message);
    return tileBytes(r.res);
  });

  constructor(private readonly opts: LogInclusionOptions) {
    this.key = parseVerifierKey(opts.vkey);
    if (this.key.type !== SIG_ED25519) throw new Error('the log key is not a note signing key');
    this.refetchMs = opts.refetchMs ?? 1000;
    this.now = opts.now ?? Date.now;
  }

  private base(): URL {
    return typeof this.opts.base === 'function' ? this.opts.base() : this.opts.base;
  }

  private async get(path: string): Promise<Answer> {
    const r = await this.request(path, 'application/json');
    if (!r.ok) return r;
    return { ok: true, text: await r.res.text().catch(() => '') };
  }

  /** A successful response, its body unread, or why not (the problem's code read from the body). */
  private async request(path: string, accept: string): Promise<{ ok: true; res: Response } | Failure> {
    if (this.now() < this.downUntil) return { ok: false, status: 0, message: 'the log did not answer a moment ago' };
    let res: Response;
    try {
      res = await fetch(new URL(path, this.base()), {
        headers: { accept, authorization: `Bearer ${this.opts.token}` },
        signal: AbortSignal.timeout(5000),
      });
    } catch (err) {
      const e = err as { message?: string; cause?: { code?: string } };
      this.downUntil = this.now() + 5000;
      return { ok: false, status: 0, message: e.cause?.code ?? e.message ?? String(err) };
    }
    if (res.ok) return { ok: true, res };
    if (res.status >= 500) this.downUntil = this.now() + 5000;
    const text = await res.text().catch(() => '');
    let code: string | undefined;
    try {
      code = (JSON.parse(text) as { code?: string }).code;
    } catch {
      /* not a problem body */
    }
    return { ok: false, status: res.status, code, message: `${res.status}${code ? ` ${code}` : ''}` };
  }

  /** The region's checkpoint, fetched again when older than refetchMs (or `force`d past that limit). */
  private async checkpoint(region: string, wantFresh: boolean): Promise<CachedCheckpoint | InclusionResult> {
    const held = this.checkpoints.get(region);
    const age = this.now() - (this.fetchedAt.get(region) ?? -Infinity);
    if (held && (!wantFresh || age < this.refetchMs)) return held;
    if (!held && age < this.refetchMs) return this.lastFailure.get(region) ?? { state: 'pending', detail: 'no checkpoint yet' };
    let p = this.inflight.get(region);
    if (!p) {
      p = this.fetchCheckpoint(region)
        .then((r) => {
          if ('state' in r) this.lastFailure.set(region, r);
          else this.lastFailure.delete(region);
          return r;
        })
        .finally(() => this.inflight.delete(region));
      this.inflight.set(region, p);
    }
    return p;
  }

  private async fetchCheckpoint(region: string): Promise<CachedCheckpoint | InclusionResult> {
    this.fetchedAt.set(region, this.now());
    const a = await this.get(`v1/regions/${encodeURIComponent(region)}/log/checkpoint`);
    if (!a.ok) {
      if (a.code === 'LOG_TREE_NOT_FOUND') return this.checkpoints.get(region) ?? { state: 'pending', detail: 'no checkpoint signed yet' };
      return { state: 'unavailable', detail: `checkpoint: ${a.message}` };
    }
    let cp;
    try {
      cp = parseCheckpoint(openNote(a.text, [this.key]).text);
    } catch (err) {
      // A checkpoint the log key did not sign is not "unavailable": it is an attack or a broken node.
      return { state: 'not-included', detail: `the checkpoint does not verify with the log key: ${(err as Error).message}` };
    }
    const epoch = cp.origin.split('/').pop() ?? '';
    const held = this.checkpoints.get(region);
    // Never go back to a smaller tree of the same epoch (a lagging node): keep the larger one.
    if (held && held.epoch === epoch && held.size > cp.size) return held;
    const c = { epoch, origin: cp.origin, size: cp.size, root: cp.root };
    this.checkpoints.set(region, c);
    return c;
  }

  /**
   * Checks one delivered alert. `pending` when the latest checkpoint does not reach it yet (or is
   * of another epoch); the caller retries later, and this refetches at most every refetchMs.
   */
  async check(a: DeliveredAlert): Promise<InclusionResult> {
    const held = this.checkpoints.get(a.region);
    const beyond = !held || held.epoch !== a.epoch || a.seq > held.size;
    const cp = await this.checkpoint(a.region, beyond);
    if ('state' in cp) return cp;
    if (cp.epoch !== a.epoch) return { state: 'pending', detail: `the latest checkpoint is of epoch ${cp.epoch}` };
    if (a.seq > cp.size) return { state: 'pending', detail: `the latest checkpoint holds ${cp.size} leaves`, size: cp.size };
    let proof: Hash[];
    try {
      proof = await this.tiles.prove({ path: `v1/regions/${encodeURIComponent(a.region)}/log/`, key: `${a.region}/${cp.epoch}` }, cp.size, a.seq - 1);
    } catch (err) {
      if (err instanceof TileFetchError) {
        const moved = await this.moved(a);
        if (moved) return moved;
        // A node behind the checkpoint (another node signed it) does not serve its tiles yet.
        if (err.code === 'LOG_TREE_RANGE' || err.code === 'LOG_TREE_NOT_FOUND') return { state: 'pending', detail: `tile: ${err.message}` };
        return { state: 'unavailable', detail: `tile: ${err.message}` };
      }
      return { state: 'not-included', detail: `the tiles the node serves are malformed: ${(err as Error).message}`, size: cp.size };
    }
    if (checkRecord(proof, cp.size, cp.root, a.seq - 1, leafHash(deliveredLeafData(a)))) return { state: 'included', size: cp.size };
    // The tiles of another tree answered: the region's log may have moved to a new epoch since the
    // checkpoint (then this alert's tree is no longer served), or the node forked it (the check fails).
    return (await this.moved(a)) ?? { state: 'not-included', detail: `the inclusion proof against the signed tree of size ${cp.size} fails`, size: cp.size };
  }

  /** When the region's log has moved to another epoch than the alert's, why its tree cannot be checked now. */
  private async moved(a: DeliveredAlert): Promise<InclusionResult | null> {
    const now = await this.fetchCheckpoint(a.region);
    if ('state' in now || now.epoch === a.epoch) return null;
    return { state: 'unavailable', detail: `the region's log moved to epoch ${now.epoch}; the tree of this alert is no longer served` };
  }
}

/** The log's vkey from a GET /v1/trust document, if it publishes one. */
export function logVkeyOf(trust: unknown): string | undefined {
  const log = (trust as { log?: { vkey?: unknown } } | null)?.log;
  return typeof log?.vkey === 'string' ? log.vkey : undefined;
}

/** GET /v1/trust without its `log` member: the trust store proper (which does not allow one). */
export function withoutLog(trust: unknown): unknown {
  if (!trust || typeof trust !== 'object' || Array.isArray(trust)) return trust;
  const { log: _log, ...rest } = trust as Record<string, unknown>;
  return rest;
}

/** The short words shown beside an alert. */
export function inclusionWords(r: InclusionResult): string {
  switch (r.state) {
    case 'included':
      return 'in log';
    case 'pending':
      return 'not yet in log (pending)';
    case 'not-included':
      return 'NOT IN LOG';
    case 'unavailable':
      return 'log unavailable';
  }
}
