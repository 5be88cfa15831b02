// Purpose-bound keys derived from the one configured secret, so no key ever serves two purposes.
import { hkdfSync } from 'node:crypto';

/** A 256-bit key for `purpose` (a label that names it and its version), derived with HKDF-SHA-256. */
export function deriveKey(secret: string, purpose: string): Buffer {
  return Buffer.from(hkdfSync('sha256', secret, Buffer.alloc(0), purpose, 32));
}
