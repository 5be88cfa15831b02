# Multi-stage build: compile with dev dependencies, run with production dependencies only, as a non-root user.
# `npm run docker:smoke` builds this file and checks the image end to end (CI does too).

FROM node:20.20-bookworm-slim AS build
WORKDIR /app
# Everything the install scripts read (they generate the Prisma client and compile the server) comes first.
COPY package.json package-lock.json tsconfig.json tsconfig.build.json prisma.config.ts ./
COPY prisma ./prisma
COPY scripts ./scripts
COPY src ./src
COPY packages ./packages
RUN npm ci --no-audit --no-fund

FROM node:20.20-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# Production dependencies only: no dev tools, and none of the optional peers @prisma/client would pull in (the
# Prisma CLI, TypeScript). The generated client comes compiled from the build stage, so no install scripts run.
# Then what never runs: Prisma's query compilers for other databases, source maps, type declarations, TypeScript
# sources and docs, and the swagger-ui-dist files other than the two /docs serves.
RUN npm ci --omit=dev --omit=peer --omit=optional --ignore-scripts --no-audit --no-fund \
 && find node_modules/@prisma/client/runtime -type f -name 'query_compiler_*' ! -name 'query_compiler_fast_bg.postgresql.*' -delete \
 && find node_modules -type f \( -name '*.map' -o -name '*.ts' -o -name '*.d.cts' -o -name '*.d.mts' -o -name '*.md' \) -delete \
 && find node_modules/swagger-ui-dist -maxdepth 1 -type f \( -name '*.js' -o -name '*.css' -o -name '*.html' \) \
      ! -name swagger-ui-bundle.js ! -name swagger-ui.css ! -name index.js ! -name absolute-path.js -delete
# sharp's prebuilt binary and libvips come as optional packages for this platform (left out above): take the ones
# the build stage installed on the same base image.
COPY --from=build /app/node_modules/@img ./node_modules/@img
# The same for Argon2 (imported users' hashes): @node-rs/argon2's binary is its optional package for this platform.
COPY --from=build /app/node_modules/@node-rs ./node_modules/@node-rs

# The runtime: the base image without what only building needs (npm, yarn, C headers) or nobody reads (translated
# messages of system tools: Debian's slim images already leave them out), flattened below so that what is removed
# here is really gone from the image.
FROM node:20.20-bookworm-slim AS runtime
RUN rm -rf /usr/local/lib/node_modules /usr/local/bin/npm /usr/local/bin/npx /usr/local/bin/yarn /usr/local/bin/yarnpkg \
      /opt/yarn-* /usr/local/include /usr/local/share/doc /usr/local/share/man /usr/share/locale /root/.npm /tmp/* \
 && mkdir -p /app/data && chown node:node /app/data
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/packages/client/dist ./packages/client/dist
COPY package.json ./
COPY prisma ./prisma
COPY public ./public
COPY src/features/email/templates ./src/features/email/templates

FROM scratch
COPY --from=runtime / /
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    NODE_ENV=production \
    PORT=3000 \
    DATA_DIR=/app/data \
    METRICS_HOST=0.0.0.0
WORKDIR /app
USER node
# 3000: the API; 9464: GET /metrics for Prometheus (publish it only to the scraper's network).
EXPOSE 3000 9464
VOLUME ["/app/data"]
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+process.env.PORT+'/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# Migrate, then replace the shell with the server so it receives SIGTERM directly.
CMD ["sh", "-c", "node dist/scripts/db-migrate.js && exec node dist/src/main.js"]
