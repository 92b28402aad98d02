import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import fastifyStatic from '@fastify/static';
import type { DevDesks } from '../dev/dev-desks';
import { CordonError } from '../errors';

/**
 * The desk and ops console (docs/console.md): static assets built by `npm run build` into
 * dist/console, served at /console/ with a strict Content-Security-Policy; `GET /` redirects there.
 * In embedded mode with the development trust store it also offers one-click development desks.
 */

/** dist/console, found from src/http (ts-jest) or dist/src/http (the built server). */
export function consoleAssetsDir(): string {
  const up = resolve(__dirname, '..', '..');
  return existsSync(join(up, 'package.json')) ? join(up, 'dist', 'console') : join(up, '..', 'dist', 'console');
}

/** esbuild names hashed assets `<name>.<8 base32 characters>.<ext>`: they never change. */
const HASHED_ASSET = /\.[A-Z0-9]{8}\.(?:js|css|woff2|svg|png)(?:\.gz|\.br)?$/;
/** A Host header fit to be written into the policy (anything else gets 'self' only). */
const SAFE_HOST = /^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

export function contentSecurityPolicy(host: string | undefined): string {
  // CSP 3 lets 'self' match ws(s) of the same host; older engines need the scheme spelled out.
  const ws = host && SAFE_HOST.test(host) ? ` ws://${host} wss://${host}` : '';
  return [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "font-src 'self'",
    `connect-src 'self'${ws}`,
    "media-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join('; ');
}

function securityHeaders(request: FastifyRequest, reply: FastifyReply): void {
  reply.header('Content-Security-Policy', contentSecurityPolicy(request.headers.host));
  reply.header('X-Content-Type-Options', 'nosniff');
  reply.header('Referrer-Policy', 'no-referrer');
  reply.header('X-Frame-Options', 'DENY');
  reply.header('Cross-Origin-Opener-Policy', 'same-origin');
  reply.header('Cross-Origin-Resource-Policy', 'same-origin');
}

export interface ConsoleRoutesOptions {
  /** One-click development desks (the development trust store only). */
  devDesks?: DevDesks;
  now: () => number;
  /** default: dist/console */
  assetsDir?: string;
}

/** Not part of the API: hidden from the OpenAPI document. */
const hide = { schema: { hide: true } };

export const consoleRoutes: FastifyPluginAsync<ConsoleRoutesOptions> = async (app, ctx) => {
  const root = ctx.assetsDir ?? consoleAssetsDir();
  await app.register(async (scope) => {
    scope.addHook('onRequest', async (request, reply) => securityHeaders(request, reply));

    scope.get('/', hide, async (_request, reply) => reply.redirect('/console/', 302));

    if (existsSync(join(root, 'index.html'))) {
      await scope.register(fastifyStatic, {
        root,
        prefix: '/console/',
        index: ['index.html'],
        redirect: true,
        preCompressed: true,
        cacheControl: false,
        etag: true,
        lastModified: true,
        setHeaders(res, path) {
          res.header('Cache-Control', HASHED_ASSET.test(path) ? 'public, max-age=31536000, immutable' : 'no-cache');
        },
      });
    } else {
      scope.log.warn({ root }, 'console assets not built (run npm run build); /console/ answers 404');
      scope.get('/console/', hide, async () => {
        throw new CordonError('ROUTE_NOT_FOUND', 'the console is not built on this node (npm run build)');
      });
    }

    const devDesks = ctx.devDesks;
    if (devDesks) {
      // Development trust store only (compose.ts): a real trust store never gets these routes.
      scope.get('/console/dev-desks', hide, async (_request, reply) => {
        reply.header('Cache-Control', 'no-store');
        return { desks: devDesks.list() };
      });
      scope.post<{ Params: { id: string } }>('/console/dev-desks/:id', hide, async (request, reply) => {
        const token = devDesks.mint(request.params.id, ctx.now());
        if (!token) throw new CordonError('ROUTE_NOT_FOUND', 'no such development desk');
        reply.header('Cache-Control', 'no-store');
        return { token };
      });
    }
  });
};
