import type { FastifyPluginAsync } from 'fastify';
import type { Config } from '../config';
import { auditVisible } from '../domain/audit-visibility';
import type { Token } from '../domain/types';
import type * as S from '../types/generated/schemas';
import type { AuditLog, AuditRecord } from '../ports/audit-log';
import { authHook, tokenOf, type Authenticator } from './auth';
import { purposeOf, recordReplay } from './ops';
import { bearer, ref } from './schema';
import { tokenRateLimit, tokenRateLimitHook } from './token-rate-limit';

/** The query schema's defaults are filled in by the validator (parseQuery). */
type AuditQuery = S.AuditQuery & Required<Pick<S.AuditQuery, 'after' | 'limit'>>;

/** Records read from the trail per batch while a page is filled. */
const AUDIT_BATCH = 500;

/**
 * One page of the records `token` may read (contract §7 v1.1 audit visibility): the trail is read
 * forward in batches until `limit` visible records, the top, or `maxExamined` records examined
 * (or `limit`, when larger). Records keep their own `n`; `next` is the last `n` examined, so a
 * page of records the caller may not see can be empty and still move on; `null` at the top.
 */
export async function readVisibleAudit(
  audit: AuditLog,
  token: Token,
  after: number,
  limit: number,
  maxExamined: number,
): Promise<{ items: AuditRecord[]; next: number | null; examined: number }> {
  let budget = Math.max(limit, maxExamined);
  const items: AuditRecord[] = [];
  let examined = after;
  // The first read is sized to the page (a caller who may read most records needs no more).
  let size = Math.min(limit, budget);
  for (;;) {
    const page = await audit.read(examined, size);
    budget -= page.items.length;
    size = Math.min(AUDIT_BATCH, budget);
    let full = false;
    for (const rec of page.items) {
      examined = rec.n;
      if (auditVisible(token, rec)) {
        items.push(rec);
        if (items.length === limit) {
          full = true;
          break;
        }
      }
    }
    const last = page.items.length > 0 ? page.items[page.items.length - 1].n : examined;
    // The top: the batch was read to its end and the trail said nothing follows.
    const atTop = page.next === null && (page.items.length === 0 || examined === last);
    if (atTop) return { items, next: null, examined };
    if (full || budget <= 0) return { items, next: examined, examined };
  }
}

/**
 * GET /v1/audit (contract §8): the audit trail oldest first, for ops only, with a purpose, scoped
 * to what the caller's state may read (contract §7 v1.1). Reading the trail is itself recorded
 * (target `audit`), so who looked at it can be seen too.
 */
export interface AuditRoutesOptions {
  auth: Authenticator;
  audit: AuditLog;
  config: Pick<Config, 'pageMaxExamined' | 'auditRateLimitMax' | 'tokenRateLimitWindowMs'>;
}

export const auditRoutes: FastifyPluginAsync<AuditRoutesOptions> = async (app, ctx) => {
  const limitCalls = await tokenRateLimit(app, 'audit', ctx.config.auditRateLimitMax, ctx.config.tokenRateLimitWindowMs);
  // In order: the token (401), its role (403), the per-token limit (429), the query (400).
  app.addHook('onRequest', authHook(app, ctx.auth, 'ops'));
  app.addHook('onRequest', tokenRateLimitHook(limitCalls));

  app.get<{ Querystring: AuditQuery }>(
    '/v1/audit',
    {
      schema: {
        summary: 'The audit trail (ops, with a purpose)',
        ...bearer,
        querystring: ref('audit-query'),
        response: { 200: ref('audit-page') },
      },
    },
    async (request, reply) => {
      const token = tokenOf(request);
      const q = request.query;
      const purpose = purposeOf(token, q.purpose) as string;
      const page = await readVisibleAudit(ctx.audit, token, q.after, q.limit, ctx.config.pageMaxExamined);
      await recordReplay(ctx.audit, token, purpose, {
        target: 'audit',
        from: q.after + 1,
        to: Math.max(page.examined, q.after),
        count: page.items.length,
      });
      return reply.type('application/json; charset=utf-8').send(JSON.stringify({ items: page.items, next: page.next }));
    },
  );
};
