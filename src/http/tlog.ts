import type { FastifyPluginAsync, FastifyReply, FastifyRequest, FastifySchema } from 'fastify';
import { CordonError } from '../errors';
import type { RegionRegistry } from '../domain/regions';
import { mayWatch } from '../domain/entitlement';
import type { TreeId } from '../ports/tree-store';
import { servedNote, type TransparencyLog } from '../tlog/service';
import { AUDIT_TREE } from '../tlog/leaves';
import { authHook, requireOps, tokenOf, type Authenticator } from './auth';
import { bearer, ref } from './schema';

export interface TlogRoutesOptions {
  auth: Authenticator;
  /** The region registry in force. */
  regions: () => RegionRegistry;
  /** unset when the transparency log is off: every route answers 404 LOG_TREE_NOT_FOUND. */
  tlog?: TransparencyLog;
}

interface ProofQuery {
  seq?: number;
  n?: number;
  size?: number;
}

interface ConsistencyQuery {
  from: number;
  to?: number;
}

/**
 * The transparency log's read side (contract §12): checkpoints, C2SP tlog-tiles hash tiles and
 * proofs of the region trees (desk or ops token) and of the audit tree (ops). They reveal sizes and
 * hashes only. Hashes are standard base64.
 */
export const tlogRoutes: FastifyPluginAsync<TlogRoutesOptions> = async (app, ctx) => {
  app.addHook('onRequest', authHook(app, ctx.auth));
  /** The tree each request reads, found before its query string is validated (as before). */
  const trees = new WeakMap<FastifyRequest, TreeId>();
  app.addHook('preValidation', async (request) => {
    trees.set(request, await treeFor(request));
  });
  const treeOf = (request: FastifyRequest): TreeId => trees.get(request)!;
  const notFound = (detail: string): CordonError => new CordonError('LOG_TREE_NOT_FOUND', detail);

  /** The caller's tree: the region's current epoch, or the audit tree for ops. */
  async function treeFor(request: FastifyRequest): Promise<TreeId> {
    const token = tokenOf(request);
    const { region } = request.params as { region?: string };
    if (region === undefined) {
      requireOps(token);
      if (!ctx.tlog) throw notFound('the transparency log is off');
      return AUDIT_TREE;
    }
    const r = ctx.regions().get(region);
    if (!r) throw new CordonError('REGION_NOT_FOUND', `${region} is not in the registry`);
    if (!mayWatch(token, r)) throw new CordonError('ROLE_FORBIDDEN', `this token may not watch ${region}`);
    if (!ctx.tlog) throw notFound('the transparency log is off');
    const tree = await ctx.tlog.regionTree(region);
    if (!tree) throw notFound(`${region} has no entries yet`);
    return tree;
  }

  async function latest(tree: TreeId) {
    const cp = await ctx.tlog!.checkpoint(tree);
    if (!cp) throw notFound('no checkpoint has been signed yet');
    return cp;
  }

  async function checkpoint(request: FastifyRequest, reply: FastifyReply) {
    const cp = await latest(treeOf(request));
    return reply.type('text/plain; charset=utf-8').header('cache-control', 'no-cache').send(servedNote(cp));
  }

  async function tile(request: FastifyRequest, reply: FastifyReply) {
    const tree = treeOf(request);
    const path = `tile/${(request.params as { '*': string })['*']}`;
    const data = await ctx.tlog!.tile(tree, path);
    if (!data) throw notFound(`${path} is not a tile of this tree`);
    return reply.type('application/octet-stream').header('cache-control', 'public, max-age=31536000, immutable').send(data);
  }

  async function proof(request: FastifyRequest, reply: FastifyReply) {
    const tree = treeOf(request);
    const q = request.query as ProofQuery;
    const audit = tree === AUDIT_TREE;
    const position = audit ? q.n : q.seq;
    if (position === undefined || (audit ? q.seq : q.n) !== undefined) {
      throw new CordonError('QUERY_INVALID', audit ? 'give n (the audit record)' : 'give seq (the alert)');
    }
    const cp = await latest(tree);
    const size = q.size ?? cp.size;
    if (size > cp.size) throw new CordonError('LOG_TREE_RANGE', `size ${size} is beyond the latest checkpoint (${cp.size})`);
    const index = position - 1;
    if (index >= size) throw new CordonError('LOG_TREE_RANGE', `leaf ${index} is not in the tree of size ${size}`);
    const [root, hashes] = await Promise.all([ctx.tlog!.rootAt(tree, size), ctx.tlog!.proveInclusion(tree, index, size)]);
    return reply.send({ index, size, root: root.toString('base64'), proof: hashes.map((h) => h.toString('base64')) });
  }

  async function consistency(request: FastifyRequest, reply: FastifyReply) {
    const tree = treeOf(request);
    const q = request.query as ConsistencyQuery;
    const cp = await latest(tree);
    const to = q.to ?? cp.size;
    if (to > cp.size) throw new CordonError('LOG_TREE_RANGE', `to ${to} is beyond the latest checkpoint (${cp.size})`);
    if (q.from > to) throw new CordonError('LOG_TREE_RANGE', `from ${q.from} is greater than to ${to}`);
    const hashes = await ctx.tlog!.proveConsistency(tree, q.from, to);
    return reply.send({ from: q.from, to, proof: hashes.map((h) => h.toString('base64')) });
  }

  for (const base of ['/v1/regions/:region/log', '/v1/audit/log']) {
    const audit = base === '/v1/audit/log';
    const tree = audit ? 'the audit tree (ops tokens)' : "the region's tree (its current epoch)";
    const params = (extra: Record<string, object> = {}): Pick<FastifySchema, 'params'> => {
      const properties: Record<string, object> = audit ? {} : { region: { type: 'string', description: 'a region code of the registry' } };
      Object.assign(properties, extra);
      return Object.keys(properties).length === 0 ? {} : { params: { type: 'object', required: Object.keys(properties), properties } };
    };
    app.get(
      `${base}/checkpoint`,
      {
        schema: {
          summary: `The latest signed checkpoint of ${tree} (a C2SP signed note, text/plain)`,
          ...bearer,
          ...params(),
          response: { 200: { description: 'the checkpoint note', content: { 'text/plain': { schema: { type: 'string' } } } } },
        },
      },
      checkpoint,
    );
    app.get(
      `${base}/tile/*`,
      {
        schema: {
          summary: `A C2SP tlog-tiles hash tile of ${tree} (application/octet-stream)`,
          ...bearer,
          ...params({ '*': { type: 'string', description: 'the tile path below tile/, e.g. 0/000 or 0/000.p/5' } }),
          response: {
            200: {
              description: 'the tile: hashes of 32 bytes each',
              content: { 'application/octet-stream': { schema: { type: 'string', contentEncoding: 'binary' } } },
            },
          },
        },
      },
      tile,
    );
    app.get(
      `${base}/proof`,
      {
        schema: {
          summary: `An inclusion proof in ${tree}`,
          ...bearer,
          ...params(),
          querystring: ref('log-proof-query'),
          response: { 200: ref('log-proof', 'inclusion') },
        },
      },
      proof,
    );
    app.get(
      `${base}/consistency`,
      {
        schema: {
          summary: `A consistency proof between two sizes of ${tree}`,
          ...bearer,
          ...params(),
          querystring: ref('log-consistency-query'),
          response: { 200: ref('log-proof', 'consistency') },
        },
      },
      consistency,
    );
  }
};
