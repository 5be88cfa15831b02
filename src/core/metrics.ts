// Prometheus metrics (prom-client): one registry per app, every label from a short fixed list (route templates,
// statuses, budget names, outcomes), never a user id, an address or a raw path.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { createHash, timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';
import type { PasswordHashPool } from './password-hash-pool.js';

export type LoginOutcome =
  | 'success'
  | 'wrong_password'
  | 'unknown_user'
  | 'invalid_passkey'
  | 'invalid_code'
  | 'disabled'
  | 'locked'
  | 'mfa_required'
  | 'mfa_failed'
  | 'email_not_verified';
export type RefreshOutcome = 'rotated' | 'grace_replay' | 'theft_detected' | 'invalid';
export type StoreFailure = { store: 'postgres' | 'redis'; kind: 'error' | 'timeout' };

/** Seconds; from a cached answer (under a millisecond) to a slow bcrypt login (a second and more). */
const DURATION_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export class Metrics {
  readonly registry = new Registry();
  readonly httpRequests = new Counter({
    name: 'authkit_http_requests_total',
    help: 'Requests answered, by method, route template and status',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [this.registry],
  });
  readonly httpDuration = new Histogram({
    name: 'authkit_http_request_duration_seconds',
    help: 'Time to answer, by method, route template and status',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: DURATION_BUCKETS,
    registers: [this.registry],
  });
  readonly rateLimited = new Counter({
    name: 'authkit_rate_limited_total',
    help: 'Requests refused with 429, by budget',
    labelNames: ['budget'] as const,
    registers: [this.registry],
  });
  readonly logins = new Counter({
    name: 'authkit_logins_total',
    help: 'Sign-in attempts (any method), by outcome',
    labelNames: ['method', 'outcome'] as const,
    registers: [this.registry],
  });
  readonly refreshes = new Counter({
    name: 'authkit_refreshes_total',
    help: 'Refresh-token exchanges, by outcome',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  readonly hashWait = new Histogram({
    name: 'authkit_password_hash_wait_seconds',
    help: 'Time a password hash waited for a thread',
    buckets: DURATION_BUCKETS,
    registers: [this.registry],
  });
  readonly storeFailures = new Counter({
    name: 'authkit_store_failures_total',
    help: 'PostgreSQL and Redis failures that reached a request (answered 503), by store and kind',
    labelNames: ['store', 'kind'] as const,
    registers: [this.registry],
  });
  readonly cache = new Counter({
    name: 'authkit_cache_requests_total',
    help: 'Cache lookups, by result',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  readonly uploads = new Counter({ name: 'authkit_uploads_total', help: 'Images stored', registers: [this.registry] });
  readonly uploadBytes = new Counter({ name: 'authkit_upload_bytes_total', help: 'Bytes of images stored', registers: [this.registry] });
  readonly auditWriteFailures = new Counter({
    name: 'authkit_audit_write_failures_total',
    help: 'Security events that could not be written to the audit log',
    registers: [this.registry],
  });
  readonly webhookDeliveries = new Counter({
    name: 'authkit_webhook_deliveries_total',
    help: 'Webhook delivery attempts, by outcome',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  readonly mailDeliveries = new Counter({
    name: 'authkit_mail_deliveries_total',
    help: 'Mail delivery attempts, by outcome',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  readonly orgInvitations = new Counter({
    name: 'authkit_org_invitations_total',
    help: 'Organization invitations, by event (sent, accepted)',
    labelNames: ['event'] as const,
    registers: [this.registry],
  });

  /** The process's own metrics (CPU, memory, event-loop lag, handles): once per process, by main. */
  collectProcessMetrics(): void {
    collectDefaultMetrics({ register: this.registry });
  }

  /** Follows the pool's queue (read at scrape time) and its waits; watching again follows the newer pool. */
  watchPasswordPool(pool: PasswordHashPool): void {
    pool.onWait = (seconds) => this.hashWait.observe(seconds);
    this.registry.removeSingleMetric('authkit_password_hash_queue_depth');
    this.registry.registerMetric(
      new Gauge({
        name: 'authkit_password_hash_queue_depth',
        help: 'Password hashes waiting for a thread',
        registers: [],
        collect() {
          this.set(pool.stats().queued);
        },
      }),
    );
  }

  /** Counts every answer by the route template the document names (`/images/{id}`), never the raw path. */
  requests(): RequestHandler {
    // One pair of labelled children per method, route and status, made once: prom-client hashes a label object on
    // every call otherwise, a visible share of a cheap request's cost.
    const children = new Map<string, { count: { inc(): void }; duration: { observe(value: number): void } }>();
    const childrenFor = (method: string, route: string, status: number) => {
      const key = `${method} ${route} ${status}`;
      let pair = children.get(key);
      if (!pair) {
        const labels = { method, route, status: String(status) };
        pair = { count: this.httpRequests.labels(labels), duration: this.httpDuration.labels(labels) };
        children.set(key, pair);
      }
      return pair;
    };
    return (req, res, next) => {
      const startedAt = performance.now();
      res.once('finish', () => {
        const operation = res.locals.operation as { path?: string } | undefined;
        // Outside the API (the page, its assets, unknown paths): one label each, whatever was asked for.
        const route = operation?.path ?? (res.statusCode === 404 ? 'unmatched' : 'other');
        const pair = childrenFor(req.method, route, res.statusCode);
        pair.count.inc();
        pair.duration.observe((performance.now() - startedAt) / 1000);
      });
      next();
    };
  }
}

/**
 * GET /metrics in Prometheus's text format. With `token`, only for `Authorization: Bearer <token>` (compared in
 * constant time); without, for anyone who can reach the listener (the metrics port, off the public one).
 */
export function metricsHandler(metrics: Metrics, token?: string): RequestHandler {
  const expected = token === undefined ? undefined : createHash('sha256').update(token).digest();
  return async (req, res) => {
    if (expected) {
      const given = createHash('sha256')
        .update(/^Bearer (.+)$/.exec(req.get('authorization') ?? '')?.[1] ?? '')
        .digest();
      if (!timingSafeEqual(given, expected)) {
        res
          .status(401)
          .set('WWW-Authenticate', 'Bearer realm="metrics"')
          .json({
            error: { code: 'unauthorized', reason: 'unauthorized', message: 'GET /metrics needs the METRICS_TOKEN as a Bearer token.', requestId: req.id },
          });
        return;
      }
    }
    res
      .set('Content-Type', metrics.registry.contentType)
      .set('Cache-Control', 'no-store')
      .end(await metrics.registry.metrics());
  };
}
