// Invitations by email: a single-use link bound to the invited address, sent through the mail queue; accepting it
// makes the account with that address a member (and proves the address).
import { randomBytes } from 'node:crypto';
import type { Clock } from '../../core/clock.js';
import type { Prisma } from '../../core/db.js';
import { AppError } from '../../core/errors.js';
import type { Metrics } from '../../core/metrics.js';
import type { OrgStanding } from '../../kernel/authenticate/org-access.js';
import type { ClientContext } from '../../kernel/identity/client-context.js';
import type { SecurityEvents } from '../../kernel/events/security-events.js';
import { hashToken } from '../../kernel/tokens/tokens.js';
import { actorUnderLock, checkRoleChange, isBuiltInRoleOrDefined, lockUserMemberships, type OrgView, toOrgView, withOrgLocked } from './org-store.js';

const INVITATION_PREFIX = 'inv_';
const INVITATION_FORMAT = /^inv_[A-Za-z0-9_-]{43}$/;

/** What the invitation message says; the organization feature names it, the mail feature sends it. */
export interface InvitationMessage {
  to: string;
  orgName: string;
  inviter: string;
  role: string;
  /** The page, with the token in the fragment (never sent to a server, so never in a log). */
  link: string;
  expiresAt: Date;
}

export interface InvitationView {
  id: string;
  email: string;
  role: string;
  invitedBy: string | null;
  createdAt: string;
  expiresAt: string;
}

export interface InvitationsDeps {
  prisma: Prisma;
  clock: Clock;
  events: SecurityEvents;
  metrics: Metrics;
  /** Queues the message; counted against the address's share of mail, and quietly dropped past it. */
  send: (message: InvitationMessage) => Promise<void>;
  siteUrl: string;
  settings: { ttlS: number; maxMembers: number; maxPerUser: number };
}

function toView(row: { id: string; email: string; role: string; invitedById: string | null; createdAt: Date; expiresAt: Date }): InvitationView {
  return {
    id: row.id,
    email: row.email,
    role: row.role,
    invitedBy: row.invitedById,
    createdAt: row.createdAt.toISOString(),
    expiresAt: row.expiresAt.toISOString(),
  };
}

function newInvitationToken(): { token: string; hash: string } {
  const token = `${INVITATION_PREFIX}${randomBytes(32).toString('base64url')}`;
  return { token, hash: hashToken(token) };
}

export class Invitations {
  constructor(private readonly deps: InvitationsDeps) {}

  /**
   * Invites an address with a role the inviter may grant. The answer is the same whether the address has an account
   * or not; an earlier pending invitation of the same address is replaced.
   */
  async invite(actor: OrgStanding & { userId: string }, input: { email: string; role: string }, client: ClientContext): Promise<InvitationView> {
    const { prisma, clock, settings } = this.deps;
    const email = input.email.toLowerCase();
    const now = new Date(clock.now());
    const issued = newInvitationToken();
    const { row, orgName, inviter } = await withOrgLocked(prisma, actor.orgId, async (tx) => {
      const inviter = await actorUnderLock(tx, actor, 'members:invite');
      await checkRoleChange(tx, inviter, { from: null, to: input.role });
      // A pending invitation of the address is replaced, which the inviter could not do to one they could not send.
      const replaced = await tx.orgInvitation.findMany({ where: { orgId: actor.orgId, email, acceptedAt: null, revokedAt: null }, select: { role: true } });
      for (const earlier of replaced) await checkRoleChange(tx, inviter, { from: null, to: earlier.role });
      await tx.orgInvitation.updateMany({ where: { orgId: actor.orgId, email, acceptedAt: null, revokedAt: null }, data: { revokedAt: now } });
      const [members, pending] = await Promise.all([
        tx.orgMember.count({ where: { orgId: actor.orgId } }),
        tx.orgInvitation.count({ where: { orgId: actor.orgId, acceptedAt: null, revokedAt: null, expiresAt: { gt: now } } }),
      ]);
      if (members + pending >= settings.maxMembers) throw new AppError('org_member_limit_reached');
      const created = await tx.orgInvitation.create({
        data: {
          orgId: actor.orgId,
          email,
          role: input.role,
          tokenHash: issued.hash,
          invitedById: actor.userId,
          createdAt: now,
          expiresAt: new Date(now.getTime() + settings.ttlS * 1000),
        },
        include: { org: { select: { name: true } } },
      });
      const user = await tx.user.findUnique({ where: { id: actor.userId }, select: { username: true } });
      return { row: created, orgName: created.org.name, inviter: user?.username ?? 'A member' };
    });
    await this.deliver(row, issued.token, orgName, inviter);
    this.deps.events.record(
      { type: 'org.invitation_sent', actorId: actor.userId, details: { orgId: actor.orgId, invitationId: row.id, email, role: row.role } },
      client,
    );
    return toView(row);
  }

  /** Sends a pending invitation again with a new link (the old one stops working) and a new expiry. */
  async resend(actor: OrgStanding & { userId: string }, invitationId: string, client: ClientContext): Promise<InvitationView> {
    const { prisma, clock, settings } = this.deps;
    const now = new Date(clock.now());
    const issued = newInvitationToken();
    const { row, orgName, inviter } = await withOrgLocked(prisma, actor.orgId, async (tx) => {
      const current = await tx.orgInvitation.findFirst({ where: { id: invitationId, orgId: actor.orgId, acceptedAt: null, revokedAt: null } });
      if (!current) throw new AppError('invitation_not_found');
      await checkRoleChange(tx, await actorUnderLock(tx, actor, 'members:invite'), { from: null, to: current.role });
      const updated = await tx.orgInvitation.update({
        where: { id: invitationId },
        data: { tokenHash: issued.hash, expiresAt: new Date(now.getTime() + settings.ttlS * 1000), invitedById: actor.userId },
        include: { org: { select: { name: true } } },
      });
      const user = await tx.user.findUnique({ where: { id: actor.userId }, select: { username: true } });
      return { row: updated, orgName: updated.org.name, inviter: user?.username ?? 'A member' };
    });
    await this.deliver(row, issued.token, orgName, inviter);
    this.deps.events.record(
      {
        type: 'org.invitation_sent',
        actorId: actor.userId,
        details: { orgId: actor.orgId, invitationId: row.id, email: row.email, role: row.role, resent: true },
      },
      client,
    );
    return toView(row);
  }

  private async deliver(row: { email: string; role: string; expiresAt: Date }, token: string, orgName: string, inviter: string): Promise<void> {
    await this.deps.send({ to: row.email, orgName, inviter, role: row.role, link: `${this.deps.siteUrl}/#invitation=${token}`, expiresAt: row.expiresAt });
    this.deps.metrics.orgInvitations.inc({ event: 'sent' });
  }

  /** Pending invitations (neither accepted nor withdrawn; expired ones too, so they can be resent), newest first. */
  async pending(orgId: string): Promise<InvitationView[]> {
    const rows = await this.deps.prisma.orgInvitation.findMany({ where: { orgId, acceptedAt: null, revokedAt: null }, orderBy: { createdAt: 'desc' } });
    return rows.map(toView);
  }

  /** Withdraws a pending invitation; only someone who could have sent it (its role within theirs) may. */
  async revoke(actor: OrgStanding & { userId: string }, invitationId: string, client: ClientContext): Promise<void> {
    await withOrgLocked(this.deps.prisma, actor.orgId, async (tx) => {
      const current = await tx.orgInvitation.findFirst({ where: { id: invitationId, orgId: actor.orgId, acceptedAt: null, revokedAt: null } });
      if (!current) throw new AppError('invitation_not_found');
      await checkRoleChange(tx, await actorUnderLock(tx, actor, 'members:invite'), { from: null, to: current.role });
      await tx.orgInvitation.update({ where: { id: invitationId }, data: { revokedAt: new Date(this.deps.clock.now()) } });
    });
    this.deps.events.record({ type: 'org.invitation_revoked', actorId: actor.userId, details: { orgId: actor.orgId, invitationId } }, client);
  }

  /**
   * Accepts an invitation for the signed-in account, whose address must be the invited one: the link came to that
   * mailbox, so accepting also proves the address. Single use, also under concurrent attempts.
   */
  async accept(userId: string, token: string, client: ClientContext): Promise<OrgView & { role: string }> {
    const { prisma, clock, settings } = this.deps;
    const found = INVITATION_FORMAT.test(token) ? await prisma.orgInvitation.findUnique({ where: { tokenHash: hashToken(token) } }) : null;
    if (!found) throw new AppError('invitation_invalid');
    const now = new Date(clock.now());
    if (found.revokedAt) throw new AppError('invitation_revoked');
    if (found.acceptedAt) throw new AppError('invitation_used');
    if (found.expiresAt.getTime() <= now.getTime()) throw new AppError('invitation_expired');
    const user = await prisma.user.findUnique({ where: { id: userId }, select: { email: true, disabledAt: true } });
    if (!user || user.disabledAt) throw new AppError('unauthorized');
    if (user.email.toLowerCase() !== found.email) throw new AppError('invitation_other_address');

    const { org, role, joined } = await withOrgLocked(prisma, found.orgId, async (tx) => {
      const claimed = await tx.orgInvitation.updateMany({
        where: { id: found.id, acceptedAt: null, revokedAt: null, expiresAt: { gt: now } },
        data: { acceptedAt: now, acceptedById: userId },
      });
      if (claimed.count === 0) throw new AppError('invitation_used');
      const existing = await tx.orgMember.findUnique({ where: { orgId_userId: { orgId: found.orgId, userId } } });
      const organization = await tx.organization.findUniqueOrThrow({ where: { id: found.orgId } });
      // Already a member: the invitation is spent and the role they hold stays (an invitation never demotes).
      if (existing) return { org: organization, role: existing.role, joined: false };
      await lockUserMemberships(tx, userId);
      if ((await tx.orgMember.count({ where: { userId } })) >= settings.maxPerUser) throw new AppError('org_limit_reached');
      if ((await tx.orgMember.count({ where: { orgId: found.orgId } })) >= settings.maxMembers) throw new AppError('org_member_limit_reached');
      // A role the organization deleted since is no longer there to give.
      const granted = (await isBuiltInRoleOrDefined(tx, found.orgId, found.role)) ? found.role : 'member';
      await tx.orgMember.create({ data: { orgId: found.orgId, userId, role: granted, createdAt: now } });
      await tx.user.updateMany({ where: { id: userId, emailVerifiedAt: null }, data: { emailVerifiedAt: now } });
      return { org: organization, role: granted, joined: true };
    });
    this.deps.metrics.orgInvitations.inc({ event: 'accepted' });
    this.deps.events.record(
      { type: 'org.invitation_accepted', actorId: userId, targetId: userId, details: { orgId: found.orgId, invitationId: found.id, role, joined } },
      client,
    );
    return { ...toOrgView(org), role };
  }
}
