// Short-lived URLs for image bytes: an HMAC over the id and expiry, so an <img> tag needs no Authorization header.
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Clock } from '../../core/clock.js';
import type { PurposeKeys } from '../../kernel/keys/purpose-keys.js';

export type SignatureCheck = 'valid' | 'expired' | 'invalid';

/** Signs with the `image-urls` purpose key (a key of its own: a signature can never double as a token MAC). */
export class ImageUrlSigner {
  constructor(
    private readonly keys: PurposeKeys,
    private readonly clock: Clock,
    private readonly ttlS: number,
  ) {}

  private static mac(key: Buffer, id: string, expires: number): Buffer {
    return createHmac('sha256', key).update(`${id}.${expires}`).digest();
  }

  /** `/images/<id>/content?expires=<unix seconds>&k=<key generation>&sig=<base64url HMAC>` */
  sign(id: string): { url: string; expiresAt: Date } {
    const expires = Math.floor(this.clock.now() / 1000) + this.ttlS;
    const { generation, key } = this.keys.current('image-urls');
    const sig = ImageUrlSigner.mac(key, id, expires).toString('base64url');
    return { url: `/images/${id}/content?expires=${expires}&k=${generation}&sig=${sig}`, expiresAt: new Date(expires * 1000) };
  }

  /** `generation` is the link's `k`; links made before keys were stored have none and are generation 1. */
  check(id: string, expires: number, sig: string, generation = 1): SignatureCheck {
    const key = this.keys.byGeneration('image-urls', generation);
    if (!key) return 'invalid';
    const given = Buffer.from(sig, 'base64url');
    const expected = ImageUrlSigner.mac(key, id, expires);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return 'invalid';
    return expires * 1000 <= this.clock.now() ? 'expired' : 'valid';
  }

  secondsLeft(expires: number): number {
    return Math.max(0, expires - Math.floor(this.clock.now() / 1000));
  }
}
