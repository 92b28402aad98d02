# syntax=docker/dockerfile:1
# Cordon node image: multi-stage, production dependencies only, runs as the unprivileged `node` user.
#   docker build -t cordon:local .
#   docker run --rm -p 8080:8080 cordon:local      # embedded mode (dev trust store, SQLite store in /var/lib/cordon)
# Production configuration comes from the environment (docs/configuration.md); the stack in
# docker-compose.yml shows it (docs/operations.md).

ARG NODE_IMAGE=node:20-bookworm-slim

# --- build: compile TypeScript with the dev dependencies ------------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY schemas ./schemas
COPY src ./src
COPY console ./console
RUN npm run build

# --- deps: production dependencies only -------------------------------------------------------
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# --- runtime ------------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    CORDON_HOST=0.0.0.0 \
    CORDON_PORT=8080 \
    CORDON_DATA_DIR=/var/lib/cordon
WORKDIR /app
# Code and dependencies stay owned by root: the service can read them, not change them.
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
# schemas/ is read at run time from the repository root, next to dist/ (src/domain/schemas.ts).
COPY schemas ./schemas
COPY --from=build /app/dist/src ./dist/src
COPY --from=build /app/dist/console ./dist/console
COPY bin ./bin
# The only writable place: the development trust store of embedded mode (production mounts its
# trust store and region registry read-only and writes nothing to disk).
RUN mkdir -p /var/lib/cordon && chown node:node /var/lib/cordon
USER node
EXPOSE 8080
# /metrics is not on 8080: it is on the operator listener, 127.0.0.1:9464 by default (contract
# §8); set CORDON_METRICS_HOST for a scraper on an internal network, and never publish that port.
# Liveness only (GET /healthz). Readiness (GET /readyz: Redis and NATS reachable, not shutting
# down) is what the load balancer checks; restarting a node because Redis is away would not help.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD node -e "require('http').get({host:'127.0.0.1',port:process.env.CORDON_PORT||8080,path:'/healthz',timeout:2000},r=>process.exit(r.statusCode===200?0:1)).on('error',()=>process.exit(1))"
# node runs as PID 1 and handles SIGTERM itself (src/server.ts: desks closed with 4001, NATS
# drained, Redis quit, all within CORDON_SHUTDOWN_GRACE_MS): give `docker stop` more time than that.
STOPSIGNAL SIGTERM
CMD ["node", "dist/src/server.js"]
