// How every route that signs someone in answers: the body, and the device cookie a session's browser keeps.
import type { Request, Response } from 'express';
import { ErrorResponse } from '../../core/http/openapi.js';
import { DEVICE_COOKIE, DEVICE_COOKIE_MAX_AGE_MS } from '../throttle/login-throttle.js';
import type { LoginResult } from './sign-in.js';

/** With REQUIRE_EMAIL_VERIFICATION, every way of signing in may answer this. */
export const NOT_VERIFIED = {
  description: 'REQUIRE_EMAIL_VERIFICATION is on and the address is not confirmed yet (email_not_verified)',
  schema: ErrorResponse,
};

/** Answers a sign-in; a session opened also sets its device cookie: script-proof, same-site only, Secure over TLS. */
export function answerSignIn(req: Request, res: Response, result: LoginResult): void {
  if ('deviceCookie' in result) {
    res.cookie(DEVICE_COOKIE, result.deviceCookie, { httpOnly: true, sameSite: 'strict', secure: req.secure, path: '/', maxAge: DEVICE_COOKIE_MAX_AGE_MS });
  }
  res.json(result.body);
}
