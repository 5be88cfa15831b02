// Per-group request budgets on express-rate-limit, counted in a BudgetStore shared through Redis or kept in-process.
import type { Request, RequestHandler, Response } from 'express';
import { ipKeyGenerator, rateLimit, type Store } from 'express-rate-limit';
import { AppError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import type { SharedStore } from '../../core/shared-store.js';
import { REMEMBER_REFUSAL_MS, SpentBudgets } from './spent-budgets.js';
import { createBudgetStore } from './budget-store.js';
import type { Clock } from '../../core/clock.js';
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

/** The middleware that counts a request against one group's budget. */
export type Budget = RequestHandler & {
  /**
   * When this instance refused the caller within the last moment (see SpentBudgets), sets that refusal's headers on
   * `res` and returns its error: the answer needs neither a round trip nor express-rate-limit's work.
   */
  rememberedRefusal(req: Request, res: Response): AppError | undefined;
};

/** The headers express-rate-limit sets on a refusal, replayed with it. */
const REFUSAL_HEADERS = ['RateLimit', 'RateLimit-Policy', 'Retry-After'];

export interface RateLimiters {
  limit(group: BudgetGroup): Budget;
  /**
   * The same group's budget (the same counts), spent only by requests it lets through that are then refused (a 4xx):
   * a success gives its count back. A client whose budget is spent is refused before any work, as by `limit`.
   */
  refusals(group: BudgetGroup): Budget;
  /** Forgets a client's count in every group, on every instance sharing the store. */
  reset(clientKey: string): Promise<void>;
}

/** What a client is not charged for under `refusals`: a success, or our own fault (5xx). Any other 4xx counts. */
const NOT_REFUSED = (_req: Request, res: Response) => res.statusCode < 400 || res.statusCode >= 500;

/**
 * The same counts behind a second limiter: express-rate-limit refuses one store object in two limiters, but both
 * views of a group must count into one budget. The first limiter has already initialised the store.
 */
function sameCounts(store: Store): Store {
  return {
    prefix: store.prefix,
    localKeys: store.localKeys,
    increment: (key) => store.increment(key),
    decrement: (key) => store.decrement(key),
    resetKey: (key) => store.resetKey(key),
  };
}

/**
 * `validate` turns on express-rate-limit's own configuration checks (double counting, proxy set-up). They cost a
 * few allocations per request, so they run in development and tests, where a mistake would show, not in production.
 */
export function createRateLimiters(
  settings: RateLimitSettings,
  shared: SharedStore,
  logger: Logger,
  options: { validate: boolean; /** Windows end at deadlines by this clock (express-rate-limit's own headers read the wall clock). */ clock: Clock },
): RateLimiters {
  const resetters: Array<(key: string) => Promise<void>> = [];
  const metered = new Map<BudgetGroup, Budget>();
  const onRefusal = new Map<BudgetGroup, Budget>();
  const rememberMs = settings.rememberRefusalMs ?? REMEMBER_REFUSAL_MS;
  const { clock } = options;

  for (const [group, budget] of Object.entries(settings.budgets) as Array<[BudgetGroup, BudgetSettings]>) {
    const counts = createBudgetStore(shared, clock, `rl:${group}:`);
    // Only a shared count costs a round trip worth saving; this process's own counts are answered at once anyway.
    const spent = counts.localKeys ? undefined : new SpentBudgets(counts, rememberMs, clock);
    const store = spent ?? counts;

    const build = (limiterStore: Store, refusalsOnly: boolean): Budget => {
      const limiter = rateLimit({
        windowMs: budget.windowMs,
        limit: budget.limit,
        standardHeaders: 'draft-8',
        legacyHeaders: false,
        identifier: group,
        keyGenerator: (req) => clientKey(req, budget.keyBy),
        store: limiterStore,
        // Counted before the request runs, so a burst gets exactly the budget's number through; given back after.
        skipSuccessfulRequests: refusalsOnly,
        requestWasSuccessful: NOT_REFUSED,
        logger,
        validate: options.validate,
        handler: (req, res, next) => {
          const resetTime = (req as Request & { rateLimit?: { resetTime?: Date } }).rateLimit?.resetTime;
          const resetMs = resetTime?.getTime() ?? clock.now() + budget.windowMs;
          const retryAfterSeconds = Math.max(1, Math.ceil((resetMs - clock.now()) / 1000));
          const error = new AppError('rate_limited', `Too many requests. Try again in ${retryAfterSeconds} seconds.`, {
            details: { budget: group, limit: budget.limit, windowSeconds: budget.windowMs / 1000, retryAfterSeconds },
          });
          if (spent) {
            const headers = REFUSAL_HEADERS.flatMap((name): Array<[string, string]> => {
              const value = res.getHeader(name);
              return value === undefined ? [] : [[name, String(value)]];
            });
            spent.rememberAnswer(clientKey(req, budget.keyBy), { headers, error });
          }
          next(error);
        },
      });
      const budgetHandler: RequestHandler = (req, res, next) => {
        void limiter(req, res, (err?: unknown) => {
          if (err === undefined || err === 'route' || err instanceof AppError) {
            // A request let through spends nothing unless it is refused, so the budget's state would mislead here.
            if (refusalsOnly && err === undefined) for (const name of REFUSAL_HEADERS) res.removeHeader(name);
            next(err);
            return;
          }
          logger.error(
            { err, budget: group },
            settings.failOpen ? 'rate-limit store failed: letting the request through' : 'rate-limit store failed: refusing the request',
          );
          if (settings.failOpen) {
            next();
            return;
          }
          next(new AppError('rate_limiter_unavailable', { headers: { 'Retry-After': '1' }, cause: err }));
        });
      };
      const rememberedRefusal = (req: Request, res: Response): AppError | undefined => {
        const refusal = spent?.rememberedAnswer(clientKey(req, budget.keyBy));
        if (!refusal) return undefined;
        for (const [name, value] of refusal.headers) res.setHeader(name, value);
        return refusal.error;
      };
      return Object.assign(budgetHandler, { rememberedRefusal });
    };

    metered.set(group, build(store, false));
    onRefusal.set(group, build(sameCounts(store), true));
    resetters.push((key) => store.resetKey(key));
  }

  const named = (handlers: Map<BudgetGroup, Budget>, group: BudgetGroup): Budget => {
    const handler = handlers.get(group);
    if (!handler) throw new Error(`no budget named ${group}`);
    return handler;
  };
  return {
    limit: (group) => named(metered, group),
    refusals: (group) => named(onRefusal, group),
    async reset(key) {
      await Promise.all(resetters.map((reset) => reset(key)));
    },
  };
}
