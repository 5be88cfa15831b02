// Liveness and readiness: is the process up, and can it reach its database and shared store.
import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import type { Database } from '../../core/db.js';
import { AppError } from '../../core/errors.js';
import { ApiRouter } from '../../core/http/api-router.js';
import { ErrorResponse } from '../../core/http/openapi.js';
import { pingStore, type SharedStore } from '../../core/shared-store.js';

const CHECK_TIMEOUT_MS = 1_000;

const Health = z.object({ status: z.literal('ok') }).meta({ id: 'Health' });
const Readiness = z
  .object({
    status: z.literal('ready'),
    checks: z.object({ database: z.enum(['up', 'down']), redis: z.enum(['up', 'down', 'in-process']) }),
  })
  .meta({ id: 'Readiness' });

async function check(probe: () => Promise<void>): Promise<'up' | 'down'> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error('timed out')), CHECK_TIMEOUT_MS);
  });
  try {
    await Promise.race([probe(), timeout]);
    return 'up';
  } catch {
    return 'down';
  } finally {
    clearTimeout(timer);
  }
}

export function healthRoutes(registry: OpenAPIRegistry, deps: { db: Database; store: SharedStore }): ApiRouter {
  const api = new ApiRouter(registry, { tags: ['health'] });
  api.route({
    method: 'get',
    path: '/health',
    summary: 'Liveness: the process is up',
    responses: { 200: { description: 'Alive', schema: Health } },
    handler: (_input, _req, res) => {
      res.json({ status: 'ok' });
    },
  });
  api.route({
    method: 'get',
    path: '/ready',
    summary: 'Readiness: the database and Redis answer',
    responses: {
      200: { description: 'Ready to serve', schema: Readiness },
      503: { description: 'A dependency is down; details.checks says which', schema: ErrorResponse },
    },
    handler: async (_input, _req, res) => {
      const [database, redis] = await Promise.all([
        check(() => deps.db.ping()),
        deps.store.kind === 'memory' ? Promise.resolve('in-process' as const) : check(() => pingStore(deps.store)),
      ]);
      const checks = { database, redis };
      const down = Object.entries(checks)
        .filter(([, state]) => state === 'down')
        .map(([name]) => name);
      if (down.length > 0) {
        throw new AppError('not_ready', `Not ready: ${down.join(' and ')} unreachable.`, { details: { checks } });
      }
      res.json({ status: 'ready', checks });
    },
  });
  return api;
}
