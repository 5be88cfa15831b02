// Request and response shapes of registration, login and step-up.
import { z } from 'zod';
import { Email, Password, PasswordAttempt, Username } from '../../kernel/identity/user-schemas.js';

export const RegisterBody = z.object({ username: Username, email: Email, password: Password }).strict().meta({ id: 'RegisterRequest' });

export const LoginBody = z
  .object({
    username: z.string().min(1).max(254).optional().meta({ description: 'A username, or an email address' }),
    email: z.string().min(1).max(254).optional(),
    password: PasswordAttempt,
  })
  .strict()
  .refine((body) => (body.username === undefined) !== (body.email === undefined), {
    message: 'give exactly one of username or email',
    path: ['username'],
  })
  .meta({ id: 'LoginRequest' });

/** Who the credential says the caller is: read from the token itself (or the API key), with no user lookup. */
export const CallerIdentity = z
  .object({
    id: z.uuid(),
    username: z.string().meta({ description: 'As it was when the access token was issued' }),
    roles: z.array(z.string()).meta({ description: 'The roles this credential carries (none for an API key)' }),
  })
  .meta({ id: 'CallerIdentity' });

export const ProtectedResponse = z.object({ message: z.string(), user: CallerIdentity }).meta({ id: 'ProtectedResponse' });

export const MfaLoginBody = z
  .object({
    mfa_token: z.string().min(1).max(2_048),
    code: z.string().trim().min(6).max(32).meta({ description: 'A 6-digit TOTP code, or a recovery code such as abcde-23456' }),
  })
  .strict()
  .meta({ id: 'MfaLoginRequest' });

export const ReauthenticateBody = z
  .object({
    password: PasswordAttempt,
    code: z.string().trim().min(6).max(32).optional().meta({ description: 'Needed when two-factor is on: a TOTP or recovery code' }),
  })
  .strict()
  .meta({ id: 'ReauthenticateRequest' });
