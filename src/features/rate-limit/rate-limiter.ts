// Per-group request budgets on express-rate-limit, shared through Redis or kept in-process.
import type { Request, RequestHandler, Response } from 'express';
import { ipKeyGenerator, rateLimit } from 'express-rate-limit';
import { RedisStore } from 'rate-limit-redis';
import { AppError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import type { SharedStore } from '../../core/shared-store.js';
import { REMEMBER_REFUSAL_MS, SpentBudgets } from './spent-budgets.js';
import { systemClock } from '../../core/clock.js';
import { ExpiringMap } from '../../core/expiring-map.js';
import type { BudgetGroup, BudgetSettings, RateLimitSettings } from '../../core/config.js';

export type { BudgetGroup, BudgetSettings, RateLimitSettings };

const IPV6_SUBNET = 56;

/**
 * The client's budget key: its address (IPv6 grouped by /56), or the user it authenticated as. A user's API keys
 * share one budget apart from their sessions', so minting more keys never multiplies it.
 */
export function clientKey(req: Request, keyBy: BudgetSettings['keyBy']): string {
  if (keyBy === 'principal' && req.auth) {
    return req.auth.apiKeyId ? `apikeys:${req.auth.userId}` : `user:${req.auth.userId}`;
  }
  return `ip:${ipKeyGenerator(req.ip ?? 'unknown', IPV6_SUBNET)}`;
}

/**
 * rate-limit-redis loads its Lua script once, at start. If Redis was unreachable then, the rejected load would
 * poison every later call; this reloads it on the first call after a failure, so the limiter heals by itself.
 */
class SelfHealingRedisStore extends RedisStore {
  private reloadScripts = false;

  override async increment(key: string) {
    if (this.reloadScripts) {
      this.reloadScripts = false;
      this.incrementScriptSha = this.loadIncrementScript();
      this.getScriptSha = this.loadGetScript();
      this.getScriptSha.catch(() => {
        this.reloadScripts = true;
      });
    }
    try {
      return await super.increment(key);
    } catch (err) {
      this.reloadScripts = true;
      throw err;
    }
  }
}

/** The middleware that counts a request against one group's budget. */
export type Budget = RequestHandler & {
  /**
   * When this instance refused the caller within the last moment (see SpentBudgets), sets that refusal's headers on
   * `res` and returns its error: the answer needs neither a round trip nor express-rate-limit's work.
   */
  rememberedRefusal(req: Request, res: Response): AppError | undefined;
};

interface RememberedRefusal {
  headers: Array<[string, string]>;
  error: AppError;
}

/** The headers express-rate-limit sets on a refusal, replayed with it. */
const REFUSAL_HEADERS = ['RateLimit', 'RateLimit-Policy', 'Retry-After'];

export interface RateLimiters {
  limit(group: BudgetGroup): Budget;
  /** Forgets a client's count in every group, on every instance sharing the store. */
  reset(clientKey: string): Promise<void>;
}

/**
 * `validate` turns on express-rate-limit's own configuration checks (double counting, proxy set-up). They cost a
 * few allocations per request, so they run in development and tests, where a mistake would show, not in production.
 */
export function createRateLimiters(settings: RateLimitSettings, shared: SharedStore, logger: Logger, options: { validate: boolean }): RateLimiters {
  const resetters: Array<(key: string) => Promise<void>> = [];
  const middleware = new Map<BudgetGroup, Budget>();
  const rememberMs = settings.rememberRefusalMs ?? REMEMBER_REFUSAL_MS;

  for (const [group, budget] of Object.entries(settings.budgets) as Array<[BudgetGroup, BudgetSettings]>) {
    const store =
      shared.kind === 'redis'
        ? new SpentBudgets(
            new SelfHealingRedisStore({
              sendCommand: (command: string, ...args: string[]) => shared.redis.call(command, ...args) as never,
              prefix: `${shared.prefix}rl:${group}:`,
            }),
            rememberMs,
          )
        : undefined;
    const refusals = new ExpiringMap<RememberedRefusal>(systemClock);
    const limiter = rateLimit({
      windowMs: budget.windowMs,
      limit: budget.limit,
      standardHeaders: 'draft-8',
      legacyHeaders: false,
      identifier: group,
      keyGenerator: (req) => clientKey(req, budget.keyBy),
      store,
      logger,
      validate: options.validate,
      handler: (req, res, next) => {
        const resetTime = (req as Request & { rateLimit?: { resetTime?: Date } }).rateLimit?.resetTime;
        const resetMs = resetTime?.getTime() ?? Date.now() + budget.windowMs;
        const retryAfterSeconds = Math.max(1, Math.ceil((resetMs - Date.now()) / 1000));
        const error = new AppError('rate_limited', `Too many requests. Try again in ${retryAfterSeconds} seconds.`, {
          details: { budget: group, limit: budget.limit, windowSeconds: budget.windowMs / 1000, retryAfterSeconds },
        });
        if (store) {
          // Within the moment a refusal is remembered its answer cannot change (the budget stays spent), so it is
          // replayed as it is; at worst Retry-After says a second more than needed.
          const headers = REFUSAL_HEADERS.flatMap((name): Array<[string, string]> => {
            const value = res.getHeader(name);
            return value === undefined ? [] : [[name, String(value)]];
          });
          refusals.set(clientKey(req, budget.keyBy), { headers, error }, Math.min(rememberMs, resetMs - Date.now()));
        }
        next(error);
      },
    });
    const budgetHandler: RequestHandler = (req, res, next) => {
      void limiter(req, res, (err?: unknown) => {
        if (err === undefined || err === 'route' || err instanceof AppError) {
          next(err);
          return;
        }
        logger.error({ err, budget: group }, settings.failOpen ? 'rate-limit store failed: letting the request through' : 'rate-limit store failed: refusing the request');
        if (settings.failOpen) {
          next();
          return;
        }
        next(new AppError('service_unavailable', 'Rate limiting is unavailable; try again shortly.', { headers: { 'Retry-After': '1' }, cause: err }));
      });
    };
    const rememberedRefusal = (req: Request, res: Response): AppError | undefined => {
      const refusal = refusals.get(clientKey(req, budget.keyBy));
      if (!refusal) return undefined;
      for (const [name, value] of refusal.headers) res.setHeader(name, value);
      return refusal.error;
    };
    middleware.set(group, Object.assign(budgetHandler, { rememberedRefusal }));
    // The Redis store's reset can be awaited; the in-process one is synchronous.
    resetters.push(async (key) => {
      refusals.delete(key);
      await (store ? store.resetKey(key) : limiter.resetKey(key));
    });
  }

  return {
    limit(group) {
      const handler = middleware.get(group);
      if (!handler) throw new Error(`no budget named ${group}`);
      return handler;
    },
    async reset(key) {
      await Promise.all(resetters.map((reset) => reset(key)));
    },
  };
}
