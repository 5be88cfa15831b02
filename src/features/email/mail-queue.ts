// The durable outbox: messages are rows in PostgreSQL, sent by whichever instance claims them first, retried with
// backoff while the SMTP server is away, so a request never waits on SMTP and an outage loses nothing.
import type { Clock } from '../../core/clock.js';
import type { Prisma } from '../../core/db.js';
import type { Logger } from '../../core/logger.js';
import type { EmailSettings } from '../../core/config.js';
import type { Metrics } from '../../core/metrics.js';
import type { Sealer } from '../../core/secret-box.js';
import { type PurposeKeys, VersionedBox } from '../../kernel/keys/purpose-keys.js';
import { createTransport } from './transport.js';
import { claimDue, failedAttempt, Kicker } from '../../core/work-queue.js';
import type { RenderedMessage, TemplateName } from './templates.js';
import type { MailTransport } from './transport.js';

/** Ten tries over about three hours (see retryDelayMs), then it is given up on. */
export const MAX_ATTEMPTS = 10;
/** Sent and failed messages are kept this long (addresses and subjects only, and no subject holds a secret: see MailTemplates), for support. */
const RETENTION_MS = 7 * 24 * 60 * 60_000;

interface Claimed {
  id: string;
  recipient: string;
  subject: string;
  template: string;
  bodySealed: string;
  attempts: number;
}

export interface QueuedMessage extends RenderedMessage {
  to: string;
  template: TemplateName;
}

export class MailQueue {
  private readonly kicker: Kicker;

  constructor(
    private readonly prisma: Prisma,
    /** Seals bodies at rest: a reset link waiting in the queue is as good as a password. */
    private readonly box: Sealer,
    private readonly transport: MailTransport,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly metrics?: Metrics,
  ) {
    this.kicker = new Kicker(
      () => this.deliverDue(),
      (err) => this.logger.warn({ err }, 'mail delivery pass failed; the next one retries'),
    );
  }

  /** Stores the message and starts a delivery pass in the background; resolves once the message is stored. */
  async enqueue(message: QueuedMessage): Promise<void> {
    const now = new Date(this.clock.now());
    await this.prisma.outboundEmail.create({
      data: {
        recipient: message.to,
        subject: message.subject,
        template: message.template,
        bodySealed: this.box.seal(JSON.stringify({ text: message.text, html: message.html })),
        nextAttemptAt: now,
        createdAt: now,
      },
    });
    this.kick();
  }

  /** Starts delivery passes in the background until nothing is due; never rejects. */
  kick(): void {
    this.kicker.kick();
  }

  /** Resolves when the current delivery pass (if any) is over. */
  settled(): Promise<void> {
    return this.kicker.settled();
  }

  /**
   * Claims up to a batch of due messages (other instances skip the rows this one locked) and sends them.
   * Returns how many it claimed.
   */
  async deliverDue(): Promise<number> {
    const claimed = await claimDue<Claimed>(
      this.prisma,
      'outbound_emails',
      'sent_at',
      'id, recipient, subject, template, body_sealed AS "bodySealed", attempts',
      this.clock.now(),
    );
    for (const message of claimed) await this.deliver(message);
    return claimed.length;
  }

  private async deliver(message: Claimed): Promise<void> {
    try {
      const body = JSON.parse(this.box.open(message.bodySealed)) as { text: string; html: string };
      await this.transport.send({ id: message.id, to: message.recipient, subject: message.subject, ...body });
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      const { givingUp, data } = failedAttempt(message.attempts, MAX_ATTEMPTS, this.clock.now(), reason);
      // A message given up on keeps no body.
      await this.prisma.outboundEmail.update({ where: { id: message.id }, data: { ...data, ...(givingUp && { bodySealed: '' }) } });
      this.metrics?.mailDeliveries.inc({ outcome: givingUp ? 'given_up' : 'retry' });
      const log = { messageId: message.id, template: message.template, attempts: message.attempts, reason };
      if (givingUp) this.logger.error(log, 'gave up sending a message after the last retry');
      else this.logger.warn(log, 'could not send a message; it will be retried');
      return;
    }
    this.metrics?.mailDeliveries.inc({ outcome: 'sent' });
    await this.prisma.outboundEmail.update({ where: { id: message.id }, data: { sentAt: new Date(this.clock.now()), lockedUntil: null, bodySealed: '' } });
  }

  /** Deletes messages sent or given up on more than a week ago. Returns how many. */
  async prune(): Promise<number> {
    const cutoff = new Date(this.clock.now() - RETENTION_MS);
    const { count } = await this.prisma.outboundEmail.deleteMany({ where: { OR: [{ sentAt: { lt: cutoff } }, { failedAt: { lt: cutoff } }] } });
    return count;
  }

  /** Stops starting passes, waits for the current one, and closes the transport. */
  async close(): Promise<void> {
    await this.kicker.close();
    this.transport.close();
  }
}

/** The queue over SMTP_URL's server, or over the outbox directory (whose messages GET /dev/outbox shows in development). */
export function openMailQueue(
  settings: EmailSettings & { development: boolean },
  deps: { prisma: Prisma; purposeKeys: PurposeKeys; clock: Clock; logger: Logger; metrics?: Metrics },
): MailQueue {
  const viewUrl = settings.development ? (id: string) => `${settings.baseUrl}/dev/outbox/${id}` : undefined;
  const transport = createTransport(settings, deps, viewUrl);
  return new MailQueue(deps.prisma, new VersionedBox(deps.purposeKeys, 'outbound-mail'), transport, deps.clock, deps.logger, deps.metrics);
}
