// A real SMTP server for tests (the smtp-server package), keeping what it receives, decoded enough to read.
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { expect } from 'vitest';

export interface ReceivedMail {
  to: string[];
  subject: string;
  text: string;
  html: string;
  raw: string;
}

function unfoldHeaders(block: string): Map<string, string> {
  const headers = new Map<string, string>();
  for (const line of block.replace(/\r\n[ \t]+/g, ' ').split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) headers.set(line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim());
  }
  return headers;
}

function decodeBody(body: string, encoding: string | undefined): string {
  if (encoding === 'base64') return Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8');
  if (encoding === 'quoted-printable') {
    const bytes = body.replace(/=\r\n/g, '').replace(/=([0-9A-F]{2})/gi, (_match, hex: string) => String.fromCharCode(parseInt(hex, 16)));
    return Buffer.from(bytes, 'latin1').toString('utf8');
  }
  return body;
}

/** Splits a message (or a part) into its decoded text/plain and text/html bodies. */
function bodiesOf(raw: string): { text: string; html: string } {
  const split = raw.indexOf('\r\n\r\n');
  const headers = unfoldHeaders(raw.slice(0, split));
  const body = raw.slice(split + 4);
  const type = headers.get('content-type') ?? 'text/plain';
  const boundary = /boundary="?([^";]+)"?/i.exec(type)?.[1];
  if (type.startsWith('multipart/') && boundary) {
    const parts = body
      .split(`--${boundary}`)
      .slice(1, -1)
      .map((part) => bodiesOf(part.replace(/^\r\n/, '')));
    return { text: parts.map((part) => part.text).join(''), html: parts.map((part) => part.html).join('') };
  }
  const decoded = decodeBody(body.replace(/\r\n$/, ''), headers.get('content-transfer-encoding')?.toLowerCase());
  return type.startsWith('text/html') ? { text: '', html: decoded } : { text: decoded.replace(/\r\n/g, '\n'), html: '' };
}

export class MailServer {
  readonly received: ReceivedMail[] = [];
  private server: SMTPServer;
  private port = 0;

  private constructor() {
    this.server = this.create();
  }

  private create(): SMTPServer {
    return new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS', 'AUTH'],
      logger: false,
      onData: (stream, session, callback) => {
        const chunks: Buffer[] = [];
        stream.on('data', (chunk: Buffer) => chunks.push(chunk));
        stream.on('end', () => {
          const raw = Buffer.concat(chunks).toString('utf8');
          const headers = unfoldHeaders(raw.slice(0, raw.indexOf('\r\n\r\n')));
          this.received.push({ to: session.envelope.rcptTo.map((rcpt) => rcpt.address), subject: headers.get('subject') ?? '', ...bodiesOf(raw), raw });
          callback();
        });
      },
    });
  }

  static async start(): Promise<MailServer> {
    const mail = new MailServer();
    await mail.listen(0);
    return mail;
  }

  private async listen(port: number): Promise<void> {
    this.server.listen(port, '127.0.0.1');
    await once(this.server.server, 'listening');
    this.port = (this.server.server.address() as AddressInfo).port;
  }

  get url(): string {
    return `smtp://127.0.0.1:${this.port}`;
  }

  /** Goes away (connections are refused) until `restart`, on the same port. */
  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  async restart(): Promise<void> {
    this.server = this.create();
    await this.listen(this.port);
  }

  /** The messages to `address` so far. */
  to(address: string): ReceivedMail[] {
    return this.received.filter((mail) => mail.to.includes(address.toLowerCase()));
  }

  /** Waits (up to 5 s) for the `nth` message to `address`, counting from 1. */
  async waitFor(address: string, nth = 1): Promise<ReceivedMail> {
    await expect.poll(() => this.to(address).length, { timeout: 5_000, interval: 20 }).toBeGreaterThanOrEqual(nth);
    return this.to(address)[nth - 1] as ReceivedMail;
  }
}

/** The token of the first link in a message (…/#verify-email=TOKEN or …/#reset-password=TOKEN). */
export function linkToken(mail: ReceivedMail, action: 'verify-email' | 'reset-password'): string {
  const match = new RegExp(`#${action}=([A-Za-z0-9_-]+)`).exec(mail.text);
  if (!match?.[1]) throw new Error(`no ${action} link in: ${mail.text}`);
  return match[1];
}

/** The six-digit code in a sign-in message. */
export function signInCode(mail: ReceivedMail): string {
  const match = /^\s+(\d{6})$/m.exec(mail.text);
  if (!match?.[1]) throw new Error(`no code in: ${mail.text}`);
  return match[1];
}
