// Short-lived URLs for image bytes: an HMAC over the id and expiry, so an <img> tag needs no Authorization header.
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Clock } from '../../core/clock.js';
import { deriveKey } from '../../core/derived-keys.js';

export type SignatureCheck = 'valid' | 'expired' | 'invalid';

export class ImageUrlSigner {
  private readonly key: Buffer;

  constructor(
    jwtSecret: string,
    private readonly clock: Clock,
    private readonly ttlS: number,
  ) {
    // A key of its own, derived from the one secret: a signature can never double as a token MAC.
    this.key = deriveKey(jwtSecret, 'authkit signed image urls v1');
  }

  private mac(id: string, expires: number): Buffer {
    return createHmac('sha256', this.key).update(`${id}.${expires}`).digest();
  }

  /** `/images/<id>/content?expires=<unix seconds>&sig=<base64url HMAC>` */
  sign(id: string): { url: string; expiresAt: Date } {
    const expires = Math.floor(this.clock.now() / 1000) + this.ttlS;
    const sig = this.mac(id, expires).toString('base64url');
    return { url: `/images/${id}/content?expires=${expires}&sig=${sig}`, expiresAt: new Date(expires * 1000) };
  }

  check(id: string, expires: number, sig: string): SignatureCheck {
    const given = Buffer.from(sig, 'base64url');
    const expected = this.mac(id, expires);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return 'invalid';
    return expires * 1000 <= this.clock.now() ? 'expired' : 'valid';
  }

  secondsLeft(expires: number): number {
    return Math.max(0, expires - Math.floor(this.clock.now() / 1000));
  }
}
