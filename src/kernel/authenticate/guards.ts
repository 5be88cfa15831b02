// Route guards beyond "who is calling": the admin role, and a second factor for administrators who must have one.
import type { RequestHandler } from 'express';
import { AppError } from '../../core/errors.js';
import { ADMIN_ROLE } from '../identity/roles.js';
import type { Budget } from '../throttle/rate-limiter.js';
import { type Authenticators, currentAuth, requireRole } from './authenticate.js';
import { isMultiFactor } from './enrolment-guards.js';

export interface AdminGuardDeps {
  authn: Authenticators;
  userLimit: Budget;
  /** Extra checks for every admin route (a second factor, with ADMIN_REQUIRE_MFA). */
  adminGuards?: RequestHandler[];
}

/** What every admin route runs first: a signed-in user, within budget, with the admin role (and the extra guards). */
export function adminOnly(deps: AdminGuardDeps): RequestHandler[] {
  return [deps.authn.user(deps.userLimit), requireRole(ADMIN_ROLE), ...(deps.adminGuards ?? [])];
}

/** With ADMIN_REQUIRE_MFA, admin routes need an access token earned with two factors. */
export function requireSecondFactor(): RequestHandler {
  return (req, _res, next) => {
    if (!isMultiFactor(currentAuth(req).amr)) {
      throw new AppError('mfa_required');
    }
    next();
  };
}
