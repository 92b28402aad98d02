import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../app';
import type { AuditPage } from '../ports/audit-log';
import { authenticate, requireOps } from './auth';
import { parseQuery, purposeOf, recordReplay, unavailable } from './ops';

interface AuditQuery {
  after: number;
  limit: number;
  purpose?: string;
}

/**
 * GET /v1/audit (contract §8): the audit trail oldest first, for ops only, with a purpose. Reading
 * the trail is itself recorded (target `audit`), so who looked at it can be seen too.
 */
export async function auditRoutes(app: FastifyInstance, ctx: AppContext): Promise<void> {
  app.get('/v1/audit', async (request, reply) => {
    const token = authenticate(request, ctx.trust, ctx.now());
    requireOps(token);
    const q = parseQuery<AuditQuery>('audit-query', request.query);
    const purpose = purposeOf(token, q.purpose) as string;
    let page: AuditPage;
    try {
      page = await ctx.audit.read(q.after, q.limit);
    } catch (err) {
      return unavailable(err, 'audit trail');
    }
    const to = page.items.length > 0 ? page.items[page.items.length - 1].n : q.after;
    await recordReplay(ctx.audit, token, purpose, { target: 'audit', from: q.after + 1, to, count: page.items.length });
    return reply.type('application/json; charset=utf-8').send(JSON.stringify(page));
  });
}
