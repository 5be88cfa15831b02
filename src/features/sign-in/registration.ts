// Registration: a new account, its event and the mail that confirms its address; never says whether an address is taken.
import { randomUUID } from 'node:crypto';
import type { Clock } from '../../core/clock.js';
import { isUniqueViolation, type Prisma } from '../../core/db.js';
import { AppError } from '../../core/errors.js';
import type { SecurityEvents } from '../../kernel/events/security-events.js';
import type { ClientContext } from '../../kernel/identity/client-context.js';
import { DEFAULT_ROLE } from '../../kernel/identity/roles.js';
import { type PublicUser, toPublicUser } from '../../kernel/identity/user-schemas.js';
import type { PasswordHasher } from '../../kernel/passwords/passwords.js';

/** The mail registration sends: the link that confirms a new address, and a word to the owner of a taken one. */
export interface RegistrationMail {
  welcome(user: PublicUser): void;
  registrationAttempted(email: string): void;
}

export interface RegistrationDeps {
  prisma: Prisma;
  passwords: PasswordHasher;
  clock: Clock;
  events: SecurityEvents;
  mail: RegistrationMail;
}

export class Registration {
  constructor(private readonly deps: RegistrationDeps) {}

  /**
   * Creates an account, records it and mails the link that confirms its address. A taken address gets the same 201
   * and body shape (an id that names nothing), and its owner is told by email instead. Usernames are public handles,
   * so a taken one answers 409.
   */
  async register(input: { username: string; email: string; password: string }, client: ClientContext): Promise<PublicUser> {
    const { prisma, passwords, clock, events, mail } = this.deps;
    const email = input.email.toLowerCase();
    const passwordHash = await passwords.hashNew(input.password, { username: input.username, email });
    const now = new Date(clock.now());
    try {
      const user = await prisma.user.create({
        data: {
          username: input.username,
          usernameKey: input.username.toLowerCase(),
          email,
          passwordHash,
          createdAt: now,
          updatedAt: now,
          roles: { create: { roleName: DEFAULT_ROLE } },
        },
        include: { roles: true },
      });
      const created = toPublicUser(user);
      events.record({ type: 'user.registered', actorId: created.id, targetId: created.id }, client);
      mail.welcome(created);
      return created;
    } catch (err) {
      if (!isUniqueViolation(err)) throw err;
      const usernameTaken = (await prisma.user.count({ where: { usernameKey: input.username.toLowerCase() } })) > 0;
      if (usernameTaken) throw new AppError('username_taken', { details: [{ path: 'username', message: 'taken' }] });
      mail.registrationAttempted(email);
      return { id: randomUUID(), username: input.username, email, emailVerified: false, roles: [DEFAULT_ROLE], createdAt: now.toISOString() };
    }
  }
}
