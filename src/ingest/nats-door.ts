import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../context';
import { problemBody } from '../errors';

/**
 * The NATS door: gateways send the same submission as a request on cordon.ingest.<region> and get
 * the same receipt or problem body, with the HTTP status folded in as `status` (by the bus adapter).
 */
export async function natsIngestDoor(app: FastifyInstance, ctx: AppContext): Promise<void> {
  const subscription = await ctx.bus.serveIngest(async (region, payload) => {
    if (ctx.shuttingDown.value) {
      return { status: 503, body: { ...problemBody('SHUTTING_DOWN') } };
    }
    const raw = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
    const result = await ctx.ingest(raw, 'nats', { subjectRegion: region });
    return { status: result.status, body: { ...result.body } };
  });
  // Stop taking requests before the app's other resources go away.
  app.addHook('preClose', async () => {
    await subscription.unsubscribe();
  });
}
