/*
 * The ingest ceiling: a bare Fastify route that only parses the body and verifies the Ed25519
 * signature (cached KeyObject, synchronous verify on the event loop), nothing else.
 */
import Fastify from 'fastify';
import { createPublicKey, verify } from 'node:crypto';
import { canonicalize } from '../../src/domain/jcs';

const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: process.env.BENCH_PUBLIC_X ?? '' }, format: 'jwk' });
const app = Fastify({ logger: false });
app.get('/readyz', async () => ({ status: 'ready' }));
app.post('/v1/alerts', async (request, reply) => {
  const body = request.body as { content: unknown; sig: { protected: string; signature: string } };
  const input = Buffer.from(body.sig.protected + '.' + Buffer.from(canonicalize(body.content)).toString('base64url'));
  const ok = verify(null, input, key, Buffer.from(body.sig.signature, 'base64url'));
  return reply.code(ok ? 201 : 401).send({ ok });
});
app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' }).catch((err) => {
  process.stderr.write(String(err) + '\n');
  process.exit(1);
});
