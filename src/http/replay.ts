import type { FastifyPluginAsync } from 'fastify';
import type { Config } from '../config';
import { CordonError } from '../errors';
import type { RegionRegistry } from '../domain/regions';
import { mayWatch } from '../domain/entitlement';
import { visibleEntry } from '../domain/entitlement-view';
import type { Token } from '../domain/types';
import { deliveredJson, type RegionLog } from '../ports/region-log';
import type { AuditLog } from '../ports/audit-log';
import type * as S from '../types/generated/schemas';
import { authHook, tokenOf, type Authenticator } from './auth';
import { negotiate, purposeOf, recordReplay } from './ops';
import { bearer, ref } from './schema';
import { NDJSON_TYPE, streamExport } from './replay-export';
import { effectiveEarliest, startOf, type LogReader, type ReplayQuery } from './replay-log-reader';
import { tokenRateLimit, tokenRateLimitHook } from './token-rate-limit';

// The parts of history that live in their own files, importable from here as before.
export { entitlementView, RawVisibility } from '../domain/entitlement-view';
export { DeliveredLines, NDJSON_TYPE } from './replay-export';
export { effectiveEarliest } from './replay-log-reader';

/**
 * History for desks and ops (contract §8): keyset pages of a region log, an NDJSON export of it,
 * and one alert's versions. Items are delivered alerts built around the stored body (never
 * re-serialised). Entitlement is decided from the visibility key stored beside each body; only
 * entries without one (written before it existed) have the needed members parsed from the body.
 */

/** The query schema's defaults are filled in by the validator (parseQuery). */
type AlertQuery = S.AlertQuery & Required<Pick<S.AlertQuery, 'versions'>>;

const JSON_TYPE = 'application/json; charset=utf-8';
const ALERT_ID = /^alert--[0-9a-f]{8}-[0-9a-f]{4}-[47][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** The JSON page (contract §8), concatenated from the stored bodies. */
async function readPage(
  reader: LogReader,
  token: Token,
  limit: number,
  batch: number,
  maxExamined: number,
): Promise<{ body: string; from: number; to: number; count: number; epoch: string | null }> {
  // A page examines at most `budget` entries, even short of `limit`, so one request over a long
  // run of alerts the caller may not see stays cheap (issue 8); `next` lets the caller carry on.
  let budget = Math.max(limit, maxExamined);
  let r = await reader.first(Math.min(limit, batch, budget));
  const epoch = r.epoch;
  let examined = reader.start;
  const items: string[] = [];
  for (;;) {
    budget -= r.entries.length;
    for (const e of r.entries) {
      examined = e.seq;
      if (visibleEntry(token, e)) {
        items.push(deliveredJson(e));
        if (items.length === limit) break;
      }
    }
    if (items.length === limit || examined >= r.latest || budget <= 0 || r.entries.length === 0) break;
    r = await reader.read(Math.min(batch, budget));
  }
  const next = examined >= r.latest ? null : examined;
  const body =
    `{"region":${JSON.stringify(r.region)},"epoch":${JSON.stringify(epoch)},"items":[${items.join(',')}],` +
    `"next":${next},"earliest":${effectiveEarliest(r)},"latest":${r.latest}}`;
  return { body, from: reader.start + 1, to: examined, count: items.length, epoch };
}

export interface ReplayRoutesOptions {
  auth: Authenticator;
  /** The region registry in force. */
  regions: () => RegionRegistry;
  regionLog: RegionLog;
  audit: Pick<AuditLog, 'append'>;
  shuttingDown: { readonly value: boolean };
  config: Pick<Config, 'replayBatch' | 'pageMaxExamined' | 'readRateLimitMax' | 'tokenRateLimitWindowMs'>;
}

const regionParams = {
  type: 'object',
  required: ['region'],
  properties: { region: { type: 'string', description: 'a region code of the registry (GET /v1/regions)' } },
};

const alertParams = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', description: 'alert--<UUID v4 or v7>; anything else answers 404 ALERT_NOT_FOUND' } },
};

/**
 * GET /v1/regions/{region}/alerts and GET /v1/alerts/{id}. In order: the token (onRequest: 401,
 * then the per-token read limit, 429), the Accept header (406), the query string (the route
 * schema, 400 QUERY_INVALID), then the handler.
 */
export const replayRoutes: FastifyPluginAsync<ReplayRoutesOptions> = async (app, ctx) => {
  const batch = ctx.config.replayBatch;
  const limitReads = await tokenRateLimit(app, 'history', ctx.config.readRateLimitMax, ctx.config.tokenRateLimitWindowMs);
  app.addHook('onRequest', authHook(app, ctx.auth));
  app.addHook('onRequest', tokenRateLimitHook(limitReads));

  app.get<{ Params: { region: string }; Querystring: ReplayQuery }>(
    '/v1/regions/:region/alerts',
    {
      schema: {
        summary: 'A page of a region log (JSON) or its export (Accept: application/x-ndjson)',
        ...bearer,
        params: regionParams,
        querystring: ref('replay-query'),
        response: { 200: ref('replay-page') },
      },
      // Before the query string is looked at, as the handler did.
      preValidation: async (request) => {
        negotiate(request.headers.accept);
      },
    },
    async (request, reply) => {
      const token = tokenOf(request);
      const format = negotiate(request.headers.accept);
      const q = request.query;
      if (q.after !== undefined && q.since !== undefined) {
        throw new CordonError('QUERY_INVALID', 'after and since exclude each other', {
          errors: [{ path: '/querystring/since', message: 'cannot be combined with after' }],
        });
      }
      if (q.since !== undefined && !Number.isFinite(Date.parse(q.since))) {
        throw new CordonError('QUERY_INVALID', 'since is not an instant', {
          errors: [{ path: '/querystring/since', message: 'must be an RFC 3339 date-time' }],
        });
      }
      const purpose = purposeOf(token, q.purpose);
      // A region outside the token's `regions` answers exactly as one that does not exist.
      const region = ctx.regions().get(request.params.region);
      if (!region || !mayWatch(token, region)) throw new CordonError('REGION_NOT_FOUND');

      const log = ctx.regionLog;
      const reader = await startOf(log, region.code, q);
      if (format === 'json') {
        const page = await readPage(reader, token, q.limit, batch, ctx.config.pageMaxExamined);
        if (purpose !== undefined) {
          await recordReplay(ctx.audit, token, purpose, {
            target: 'region',
            mode: 'page',
            region: region.code,
            epoch: page.epoch,
            from: page.from,
            to: page.to,
            count: page.count,
          });
        }
        return reply.type(JSON_TYPE).send(page.body);
      }

      // Errors up to the first read still answer as problems; the top is fixed now.
      const first = await reader.first(1);
      const top = Math.max(first.latest, reader.start);
      if (purpose !== undefined) {
        await recordReplay(ctx.audit, token, purpose, {
          target: 'region',
          mode: 'stream',
          region: region.code,
          epoch: first.epoch,
          from: reader.start + 1,
          to: top,
        });
      }
      // Written by hand: the body is streamed under the socket's own backpressure, in reused chunks.
      reply.hijack();
      reply.raw.writeHead(200, {
        'content-type': NDJSON_TYPE,
        'cache-control': 'no-store',
        'cordon-epoch': first.epoch ?? '',
        'cordon-earliest': String(effectiveEarliest(first)),
        'cordon-latest': String(top),
        'cordon-after': String(reader.start),
      });
      await streamExport(reply.raw, log, reader, first, top, token, batch, ctx.shuttingDown, request.log);
      return reply;
    },
  );

  app.get<{ Params: { id: string }; Querystring: AlertQuery }>(
    '/v1/alerts/:id',
    {
      schema: {
        summary: "One alert's newest visible version, or all of them (versions=all)",
        ...bearer,
        params: alertParams,
        querystring: ref('alert-query'),
        response: { 200: { oneOf: [ref('delivered-alert'), ref('alert-versions')] } },
      },
    },
    async (request, reply) => {
      const token = tokenOf(request);
      const q = request.query;
      const purpose = purposeOf(token, q.purpose);
      const id = request.params.id;
      // Unknown, malformed and out of scope all answer the same bare 404.
      if (!ALERT_ID.test(id)) throw new CordonError('ALERT_NOT_FOUND');
      const versions = await ctx.regionLog.versions(id);
      const shown = versions.filter((e) => {
        const region = ctx.regions().get(e.region);
        return region !== undefined && mayWatch(token, region) && visibleEntry(token, e);
      });
      if (purpose !== undefined) {
        await recordReplay(ctx.audit, token, purpose, {
          target: 'alert',
          id,
          versions: q.versions,
          count: q.versions === 'all' ? shown.length : Math.min(1, shown.length),
          ...(shown.length > 0 ? { region: shown[0].region } : {}),
        });
      }
      if (shown.length === 0) throw new CordonError('ALERT_NOT_FOUND');
      const body =
        q.versions === 'all' ? `{"id":${JSON.stringify(id)},"items":[${shown.map(deliveredJson).join(',')}]}` : deliveredJson(shown[shown.length - 1]);
      return reply.type(JSON_TYPE).send(body);
    },
  );
};
