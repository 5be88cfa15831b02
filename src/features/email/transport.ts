// Where a message goes once it leaves the queue: an SMTP server, or (with no SMTP_URL) files in the outbox directory.
import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createTransport as smtpTransport, type Transporter } from 'nodemailer';
import type SMTPTransport from 'nodemailer/lib/smtp-transport/index.js';
import type { Clock } from '../../core/clock.js';
import type { Logger } from '../../core/logger.js';

export interface OutgoingMessage {
  id: string;
  to: string;
  subject: string;
  text: string;
  html: string;
}

export interface MailTransport {
  /** Resolves once the message is accepted (by the SMTP server, or on disk); rejects otherwise. */
  send(message: OutgoingMessage): Promise<void>;
  close(): void;
}

/** How long an SMTP server may take to answer before the attempt fails and is retried later. */
const SMTP_TIMEOUT_MS = 10_000;

class SmtpTransport implements MailTransport {
  private readonly transporter: Transporter;

  constructor(
    url: string,
    private readonly from: string,
  ) {
    // The URL carries host, port, TLS (smtps://) and credentials; the defaults bound every wait.
    const options: SMTPTransport.Options = { url, connectionTimeout: SMTP_TIMEOUT_MS, greetingTimeout: SMTP_TIMEOUT_MS, socketTimeout: SMTP_TIMEOUT_MS };
    this.transporter = smtpTransport(options);
  }

  async send(message: OutgoingMessage) {
    await this.transporter.sendMail({
      from: this.from,
      to: message.to,
      subject: message.subject,
      text: message.text,
      html: message.html,
      // Stable across retries, so a receiver can tell a resend of one message from two messages.
      messageId: `<${message.id}@authkit>`,
    });
  }

  close() {
    this.transporter.close();
  }
}

export interface OutboxEntry extends OutgoingMessage {
  createdAt: string;
}

/** Writes each message as a JSON file, for a newcomer without a mail server (read back by GET /dev/outbox). */
class OutboxTransport implements MailTransport {
  /** Orders the files of one instance when the clock stands still (a test's ManualClock): readOutbox sorts by name. */
  private written = 0;

  constructor(
    private readonly dir: string,
    private readonly clock: Clock,
    private readonly logger: Logger,
    /** Where the development server shows a message; the log names that page, never the message's own links. */
    private readonly viewUrl?: (id: string) => string,
  ) {}

  async send(message: OutgoingMessage) {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const entry: OutboxEntry = { ...message, createdAt: new Date(this.clock.now()).toISOString() };
    const sequence = String(this.written++).padStart(9, '0');
    const file = path.join(this.dir, `${entry.createdAt.replace(/[:.]/g, '-')}-${sequence}-${message.id}.json`);
    // Written aside and renamed into place: a reader (GET /dev/outbox) never sees half a message.
    await writeFile(`${file}.partial`, JSON.stringify(entry, null, 2), { mode: 0o600 });
    await rename(`${file}.partial`, file);
    if (this.viewUrl)
      this.logger.info({ messageId: message.id, subject: message.subject, view: this.viewUrl(message.id) }, 'mail written to the outbox (no SMTP_URL)');
  }

  close() {}
}

/** The newest `limit` messages in the outbox. */
export async function readOutbox(dir: string, limit = 50): Promise<OutboxEntry[]> {
  let names: string[];
  try {
    names = (await readdir(dir)).filter((name) => name.endsWith('.json'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const newest = names.sort().reverse().slice(0, limit);
  return Promise.all(newest.map(async (name) => JSON.parse(await readFile(path.join(dir, name), 'utf8')) as OutboxEntry));
}

export function createTransport(
  settings: { smtpUrl?: string; from: string; outboxDir: string },
  deps: { clock: Clock; logger: Logger },
  viewUrl?: (id: string) => string,
): MailTransport {
  return settings.smtpUrl ? new SmtpTransport(settings.smtpUrl, settings.from) : new OutboxTransport(settings.outboxDir, deps.clock, deps.logger, viewUrl);
}
