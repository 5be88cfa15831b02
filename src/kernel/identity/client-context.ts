// Who is asking, as far as a request tells: the browser, its address, its device cookie and the request's id.
import type { Request } from 'express';
import { DEVICE_COOKIE, readCookie } from '../throttle/login-throttle.js';

export interface ClientContext {
  userAgent?: string;
  ip?: string;
  /** The device cookie a browser that signed in before sends (see LoginThrottle). */
  deviceCookie?: string;
  /** The request's id, for the audit log. */
  requestId?: string;
  /** The thumbprint of the key a DPoP proof with this request was signed by (tokens issued now are bound to it). */
  dpopJkt?: string;
}

export function clientContext(req: Request): ClientContext {
  return { userAgent: req.get('user-agent'), ip: req.ip, deviceCookie: readCookie(req, DEVICE_COOKIE), requestId: req.id, dpopJkt: req.dpopJkt };
}
