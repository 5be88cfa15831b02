// The shapes of a user on the wire, and the rules every username, email and password follows.
import { z } from 'zod';
import { MAX_PASSWORD_BYTES } from '../passwords/passwords.js';

export const Username = z
  .string()
  .min(3)
  .max(32)
  .regex(/^[A-Za-z0-9_.-]+$/, 'letters, digits, underscore, dot and hyphen only')
  .meta({ example: 'ada_l' });

export const Email = z
  .email()
  .max(254)
  .transform((email) => email.toLowerCase())
  .meta({ example: 'ada@example.com' });

const withinBcryptBytes = [
  (password: string) => Buffer.byteLength(password, 'utf8') <= MAX_PASSWORD_BYTES,
  { message: `must be at most ${MAX_PASSWORD_BYTES} bytes (bcrypt ignores the rest)` },
] as const;

/**
 * A new password. Its length and strength are the password policy's one rule (PASSWORD_MIN_LENGTH, 8 by default;
 * GET /password-policy says what it is), checked after parsing so a short one answers weak_password like a weak one.
 */
export const Password = z
  .string()
  .min(1)
  .refine(...withinBcryptBytes)
  .meta({
    example: 'correct horse battery staple',
    description: 'At least PASSWORD_MIN_LENGTH characters (GET /password-policy), and not guessable (400 weak_password says why)',
  });

/**
 * Any password offered to be checked (login, confirmation): no rules beyond bcrypt's 72 bytes, which are refused
 * here as at registration, since bcrypt would compare only their first 72 and a longer guess could pass.
 */
export const PasswordAttempt = z
  .string()
  .min(1)
  .max(1_024)
  .refine(...withinBcryptBytes);

export const PublicUser = z
  .object({
    id: z.uuid(),
    username: z.string(),
    email: z.string(),
    emailVerified: z.boolean().meta({ description: 'Whether the address was confirmed through a link or code sent to it' }),
    roles: z.array(z.string()),
    createdAt: z.iso.datetime(),
  })
  .meta({ id: 'User' });

export type PublicUser = z.output<typeof PublicUser>;

export interface UserWithRoles {
  id: string;
  username: string;
  email: string;
  emailVerifiedAt: Date | null;
  createdAt: Date;
  roles: Array<{ roleName: string }>;
}

export function toPublicUser(user: UserWithRoles): PublicUser {
  return {
    id: user.id,
    username: user.username,
    email: user.email,
    emailVerified: user.emailVerifiedAt !== null,
    roles: user.roles.map((role) => role.roleName).sort(),
    createdAt: user.createdAt.toISOString(),
  };
}
