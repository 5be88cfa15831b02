// Authenticated encryption (AES-256-GCM) of small secrets at rest under one key: signing keys' private halves, and
// (through VersionedBox, one key per purpose and generation) TOTP secrets, webhook secrets and queued mail.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

/** Seals under one 256-bit key; `open` throws on anything not sealed by the same key, unaltered. */
export class SecretBox {
  constructor(private readonly key: Buffer) {}

  seal(plain: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    const body = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
    return [iv, cipher.getAuthTag(), body].map((part) => part.toString('base64url')).join('.');
  }

  open(sealed: string): string {
    const [iv, tag, body] = sealed.split('.').map((part) => Buffer.from(part, 'base64url'));
    if (!iv || !tag || !body) throw new Error('malformed sealed secret');
    const decipher = createDecipheriv('aes-256-gcm', this.key, iv);
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(body), decipher.final()]).toString('utf8');
  }
}

/** Anything that seals and opens small secrets (a SecretBox, or one that picks its key by generation). */
export interface Sealer {
  seal(plain: string): string;
  open(sealed: string): string;
}
