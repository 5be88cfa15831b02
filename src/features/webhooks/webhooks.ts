// Webhooks: administrators register endpoints for event types; each event is queued in PostgreSQL per endpoint and
// POSTed, signed as the Standard Webhooks specification says, with retries and backoff. Nothing here blocks a request.
import { createHmac, randomBytes } from 'node:crypto';
import type { Clock } from '../../core/clock.js';
import type { Prisma } from '../../core/db.js';
import { AppError } from '../../core/errors.js';
import type { Logger } from '../../core/logger.js';
import type { Metrics } from '../../core/metrics.js';
import type { Sealer } from '../../core/secret-box.js';
import { claimDue, failedAttempt, Kicker } from '../../core/work-queue.js';
import type { WrittenEventListener as EventListener, SecurityEventType } from '../../kernel/events/security-events.js';
import { DestinationPolicy, DestinationRefused } from './destination-policy.js';
import { postPinned } from './pinned-post.js';

/** Twelve tries over about five hours (30 s doubling to an hour), then the delivery is given up on. */
export const MAX_ATTEMPTS = 12;
const TIMEOUT_MS = 10_000;

/** The headers a receiver checks: webhook-id, webhook-timestamp and `v1,<base64 HMAC-SHA256 of id.timestamp.body>`. */
export function signatureHeaders(secret: string, id: string, timestampS: number, body: string): Record<string, string> {
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  const signature = createHmac('sha256', key).update(`${id}.${timestampS}.${body}`).digest('base64');
  return { 'webhook-id': id, 'webhook-timestamp': String(timestampS), 'webhook-signature': `v1,${signature}` };
}

interface Claimed {
  id: string;
  endpointId: string;
  eventType: string;
  payload: string;
  attempts: number;
}

export interface EndpointView {
  id: string;
  url: string;
  eventTypes: string[];
  createdAt: string;
}

export interface WebhookDeps {
  prisma: Prisma;
  /** Seals the signing secrets at rest (the webhook-signing purpose key). */
  box: Sealer;
  clock: Clock;
  metrics: Metrics;
  logger: Logger;
  /** Production accepts only https:// endpoints. */
  requireHttps: boolean;
  /** Which addresses an endpoint may be at; checked when it is registered and again before every delivery. */
  destinations?: DestinationPolicy;
}

export class Webhooks {
  private readonly kicker: Kicker;

  private readonly prisma: Prisma;
  private readonly box: Sealer;
  private readonly clock: Clock;
  private readonly metrics: Metrics;
  private readonly logger: Logger;
  private readonly requireHttps: boolean;
  private readonly destinations: DestinationPolicy;

  constructor(deps: WebhookDeps) {
    ({
      prisma: this.prisma,
      box: this.box,
      clock: this.clock,
      metrics: this.metrics,
      logger: this.logger,
      requireHttps: this.requireHttps,
      destinations: this.destinations = new DestinationPolicy(),
    } = deps);
    this.kicker = new Kicker(
      () => this.deliverDue(),
      (err) => this.logger.warn({ err }, 'webhook delivery pass failed; the next one retries'),
    );
  }

  /** Registers an endpoint; the answer holds its signing secret, the only time it is shown. */
  async create(createdBy: string, input: { url: string; eventTypes: SecurityEventType[] }): Promise<EndpointView & { secret: string }> {
    const url = new URL(input.url);
    if (this.requireHttps && url.protocol !== 'https:') throw new AppError('webhook_https_required', { details: [{ path: 'url', message: 'must use https' }] });
    await this.checkDestination(url);
    const secret = `whsec_${randomBytes(32).toString('base64')}`;
    const row = await this.prisma.webhookEndpoint.create({
      data: {
        url: url.toString(),
        eventTypes: [...new Set(input.eventTypes)],
        secretSealed: this.box.seal(secret),
        createdBy,
        createdAt: new Date(this.clock.now()),
      },
    });
    return { ...toView(row), secret };
  }

  private async checkDestination(url: URL): Promise<void> {
    try {
      await this.destinations.check(url);
    } catch (err) {
      if (!(err instanceof DestinationRefused)) throw err;
      throw new AppError(
        'webhook_destination_forbidden',
        `Webhooks may not reach this URL: ${err.reason}. WEBHOOK_INTERNAL_ALLOWLIST lets an operator permit internal receivers.`,
      );
    }
  }

  async list(): Promise<EndpointView[]> {
    return (await this.prisma.webhookEndpoint.findMany({ orderBy: { createdAt: 'asc' } })).map(toView);
  }

  async remove(id: string): Promise<void> {
    const { count } = await this.prisma.webhookEndpoint.deleteMany({ where: { id } });
    if (count === 0) throw new AppError('webhook_endpoint_not_found');
  }

  /** The endpoint's newest deliveries, with each one's attempts and last outcome. */
  async deliveries(endpointId: string, limit = 50) {
    if (!(await this.prisma.webhookEndpoint.findUnique({ where: { id: endpointId }, select: { id: true } }))) throw new AppError('webhook_endpoint_not_found');
    const rows = await this.prisma.webhookDelivery.findMany({ where: { endpointId }, orderBy: { createdAt: 'desc' }, take: limit });
    return rows.map((row) => ({
      id: row.id,
      eventType: row.eventType,
      attempts: row.attempts,
      lastStatus: row.lastStatus,
      lastError: row.lastError,
      nextAttemptAt: row.deliveredAt || row.failedAt ? null : row.nextAttemptAt.toISOString(),
      deliveredAt: row.deliveredAt?.toISOString() ?? null,
      failedAt: row.failedAt?.toISOString() ?? null,
      createdAt: row.createdAt.toISOString(),
    }));
  }

  /** Queues the event for every endpoint that asked for its type (the audit log calls this once the event is written). */
  readonly enqueue: EventListener = async (event) => {
    const endpoints = await this.prisma.webhookEndpoint.findMany({ where: { eventTypes: { has: event.type } }, select: { id: true } });
    if (endpoints.length === 0) return;
    const payload = JSON.stringify({
      type: event.type,
      timestamp: event.createdAt.toISOString(),
      data: { eventId: event.id, actorId: event.actorId, targetId: event.targetId, details: event.details },
    });
    const now = new Date(this.clock.now());
    await this.prisma.webhookDelivery.createMany({
      data: endpoints.map((endpoint) => ({ endpointId: endpoint.id, eventType: event.type, payload, nextAttemptAt: now, createdAt: now })),
    });
    this.kicker.kick();
  };

  settled(): Promise<void> {
    return this.kicker.settled();
  }

  async close(): Promise<void> {
    await this.kicker.close();
  }

  /** Claims due deliveries (other instances skip the ones this one holds) and sends them. Returns how many. */
  async deliverDue(): Promise<number> {
    const claimed = await claimDue<Claimed>(
      this.prisma,
      'webhook_deliveries',
      'delivered_at',
      'id, endpoint_id AS "endpointId", event_type AS "eventType", payload, attempts',
      this.clock.now(),
    );
    for (const delivery of claimed) await this.deliver(delivery);
    return claimed.length;
  }

  private async deliver(delivery: Claimed): Promise<void> {
    const endpoint = await this.prisma.webhookEndpoint.findUnique({ where: { id: delivery.endpointId } });
    if (!endpoint) return; // deleted meanwhile; its deliveries went with it
    const timestampS = Math.floor(this.clock.now() / 1000);
    let status: number | null = null;
    let error: string | null = null;
    try {
      // Checked again now (DNS and the allowlist may have changed since it was registered), and the connection goes to
      // the very address checked; a refusal never connects.
      const destination = await this.destinations.check(endpoint.url);
      const headers = {
        'Content-Type': 'application/json',
        'User-Agent': 'authkit-webhooks',
        ...signatureHeaders(this.box.open(endpoint.secretSealed), delivery.id, timestampS, delivery.payload),
      };
      status = await postPinned(destination, headers, delivery.payload, AbortSignal.timeout(TIMEOUT_MS));
      if (status < 200 || status >= 300) error = `answered ${status}`;
    } catch (err) {
      error = err instanceof Error ? err.message : String(err);
    }
    const now = this.clock.now();
    if (error === null) {
      this.metrics.webhookDeliveries.inc({ outcome: 'delivered' });
      await this.prisma.webhookDelivery.update({
        where: { id: delivery.id },
        data: { deliveredAt: new Date(now), lockedUntil: null, lastStatus: status, lastError: null },
      });
      return;
    }
    const { givingUp, data } = failedAttempt(delivery.attempts, MAX_ATTEMPTS, now, error);
    this.metrics.webhookDeliveries.inc({ outcome: givingUp ? 'given_up' : 'retry' });
    await this.prisma.webhookDelivery.update({ where: { id: delivery.id }, data: { ...data, lastStatus: status } });
    const log = { deliveryId: delivery.id, endpointId: endpoint.id, attempts: delivery.attempts, error };
    if (givingUp) this.logger.error(log, 'gave up delivering a webhook after the last retry');
    else this.logger.warn(log, 'a webhook delivery failed; it will be retried');
  }
}

function toView(row: { id: string; url: string; eventTypes: string[]; createdAt: Date }): EndpointView {
  return { id: row.id, url: row.url, eventTypes: row.eventTypes, createdAt: row.createdAt.toISOString() };
}

/** Deletes deliveries finished (delivered or given up on) more than a week ago. Returns how many. */
export async function pruneWebhookDeliveries(prisma: Prisma, clock: Clock): Promise<number> {
  const cutoff = new Date(clock.now() - 7 * 24 * 60 * 60_000);
  const { count } = await prisma.webhookDelivery.deleteMany({ where: { OR: [{ deliveredAt: { lt: cutoff } }, { failedAt: { lt: cutoff } }] } });
  return count;
}
