// What every way of signing in answers (a token pair, the second step, a fresh access token), and the six-digit code.
import { z } from 'zod';
import { PublicUser } from '../identity/user-schemas.js';

/** A six-digit code: TOTP, and the emailed sign-in and step-up codes. */
export const SixDigitCode = z
  .string()
  .trim()
  .regex(/^\d{6}$/, 'six digits');

export const TokenResponse = z
  .object({
    access_token: z.string(),
    token_type: z.enum(['Bearer', 'DPoP']).meta({ description: 'DPoP when the sign-in sent a DPoP proof: the tokens are bound to its key' }),
    expires_in: z.number().int().meta({ description: 'Seconds until the access token expires' }),
    refresh_token: z.string(),
    user: PublicUser,
  })
  .meta({ id: 'TokenResponse' });

export const MfaChallenge = z
  .object({
    mfa_required: z.literal(true),
    mfa_token: z.string(),
    expires_in: z.number().int(),
    methods: z.array(z.enum(['totp', 'recovery_code', 'passkey'])).meta({ description: 'The second factors this account can answer with' }),
  })
  .meta({ id: 'MfaChallenge' });

export const AccessTokenResponse = z
  .object({
    access_token: z.string(),
    token_type: z.enum(['Bearer', 'DPoP']).meta({ description: 'DPoP when the sign-in sent a DPoP proof: the tokens are bound to its key' }),
    expires_in: z.number().int().meta({ description: 'Seconds until the access token expires' }),
  })
  .meta({ id: 'AccessTokenResponse' });
