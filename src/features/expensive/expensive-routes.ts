// GET /expensive: a slow per-user computation served from the cache, saying whether it was a hit.
import type { Metrics } from '../../core/metrics.js';
import { setTimeout as sleep } from 'node:timers/promises';
import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import type { Cache } from '../../core/cache.js';
import type { Clock } from '../../core/clock.js';
import type { Prisma } from '../../core/db.js';
import { ApiRouter } from '../../core/http/api-router.js';
import { ErrorResponse } from '../../core/http/openapi.js';
import { type Authenticators, currentAuth } from '../../kernel/authenticate/authenticate.js';
import type { Budget } from '../../kernel/throttle/rate-limiter.js';

const AccountReport = z
  .object({
    userId: z.uuid(),
    activeSessions: z.number().int(),
    accountAgeDays: z.number().int(),
    computedAt: z.iso.datetime(),
  })
  .meta({ id: 'AccountReport' });

export interface ExpensiveDeps {
  prisma: Prisma;
  cache: Cache;
  metrics?: Metrics;
  clock: Clock;
  ttlS: number;
  /** Stands in for a computation that takes this long. */
  delayMs: number;
  authn: Authenticators;
  userLimit: Budget;
}

/** The "expensive" report: a few aggregates over the user's data, after a deliberate delay. */
async function computeReport(deps: ExpensiveDeps, userId: string): Promise<z.output<typeof AccountReport>> {
  await sleep(deps.delayMs);
  const now = new Date(deps.clock.now());
  const [activeSessions, user] = await Promise.all([
    deps.prisma.session.count({ where: { userId, revokedAt: null, expiresAt: { gt: now } } }),
    deps.prisma.user.findUniqueOrThrow({ where: { id: userId }, select: { createdAt: true } }),
  ]);
  const accountAgeDays = Math.floor((now.getTime() - user.createdAt.getTime()) / 86_400_000);
  return { userId, activeSessions, accountAgeDays, computedAt: now.toISOString() };
}

export function expensiveRoutes(registry: OpenAPIRegistry, deps: ExpensiveDeps): ApiRouter {
  const api = new ApiRouter(registry, { tags: ['cache'] });
  api.route({
    method: 'get',
    path: '/expensive',
    summary: "A slow report on the caller's account, cached per user for CACHE_TTL_S",
    description: 'X-Cache says HIT or MISS. Concurrent misses compute once; if the cache is down the report is computed every time.',
    security: ['bearer', 'apiKey'],
    middleware: [deps.authn.userOrKey('profile:read', deps.userLimit)],
    responses: {
      200: { description: 'The report', schema: AccountReport },
      401: { description: 'Not authenticated', schema: ErrorResponse },
      429: { description: 'Rate limited', schema: ErrorResponse },
    },
    handler: async (_input, req, res) => {
      const { userId } = currentAuth(req);
      const result = await deps.cache.getOrCompute(`expensive:${userId}`, deps.ttlS * 1000, () => computeReport(deps, userId));
      deps.metrics?.cache.inc({ result: result.hit ? 'hit' : 'miss' });
      res.set('X-Cache', result.hit ? 'HIT' : 'MISS').json(result.value);
    },
  });
  return api;
}
