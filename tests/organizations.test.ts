// Organizations: members, roles (built-in and defined), invitations by email, the active organization in the token,
// organization API keys and images, and every boundary between them, on both backends and across two instances.
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import type { ManualClock } from '../src/core/clock.js';
import { SECURITY_EVENT_TYPES } from '../src/kernel/events/security-events.js';
import { bearer, createAdmin, login, type LoggedIn, proveAddress, register, registerAndLogin, uniqueName } from './support/accounts.js';
import { png } from './support/images.js';
import { claims, createOrg, invitationToken, invite, joined, outboxIds, switchTo } from './support/organizations.js';
import { buildApp, builtWith, testConfig, useBackends, usingRedis } from './support/test-app.js';

const apiKey = (key: string): [string, string] => ['X-API-Key', key];

/** The list under `key` of an answer's body, typed for reading. */
function listOf<T>(body: unknown, key: string): T[] {
  return (body as Record<string, T[]>)[key] ?? [];
}

describe('organizations', () => {
  const backends = useBackends();

  describe('creating and reading', () => {
    it('when a user creates an organization, then they own it, see it in their list, and the slug is theirs alone', async () => {
      const { app } = buildApp(backends);
      const owner = await registerAndLogin(app);
      const org = await createOrg(app, owner.accessToken);

      const mine = await request(app)
        .get('/orgs')
        .set(...bearer(owner.accessToken));
      const one = await request(app)
        .get(`/orgs/${org.id}`)
        .set(...bearer(owner.accessToken));
      const taken = await request(app)
        .post('/orgs')
        .set(...bearer((await registerAndLogin(app)).accessToken))
        .send({ name: 'Copy', slug: org.slug });

      expect(mine.body.organizations).toEqual([expect.objectContaining({ id: org.id, slug: org.slug, role: 'owner' })]);
      expect(one.body).toMatchObject({ id: org.id, role: 'owner', settings: {}, externalId: null });
      expect(one.body.permissions).toEqual(expect.arrayContaining(['org:delete', 'org:transfer', 'members:invite', 'images:read']));
      expect(taken.status).toBe(409);
      expect(taken.body.error.reason ?? taken.body.error.code).toMatch(/org_slug_taken|conflict/);
    });

    it('when the body is malformed, has extra fields, a bad slug or oversized settings, then 400 and nothing is created', async () => {
      const { app } = buildApp(backends);
      const owner = await registerAndLogin(app);
      const bodies = [
        {},
        { name: 'A', slug: 'ok-slug', extra: true },
        { name: 'A', slug: 'Not A Slug' },
        { name: 'A', slug: '-edge' },
        { name: '', slug: 'fine' },
        { name: 'A', slug: 'fine', settings: { blob: 'x'.repeat(5000) } },
        { name: 'A', slug: 'fine', settings: ['not', 'an', 'object'] },
        { name: 42, slug: 'fine' },
      ];
      for (const body of bodies) {
        const res = await request(app)
          .post('/orgs')
          .set(...bearer(owner.accessToken))
          .send(body);
        expect(res.status, JSON.stringify(body)).toBe(400);
        expect(res.body.error.code).toBe('validation_failed');
      }
      const mine = await request(app)
        .get('/orgs')
        .set(...bearer(owner.accessToken));
      expect(mine.body.organizations).toEqual([]);
    });

    it('when ORG_CREATION is admins, then a user is refused and an administrator may create one', async () => {
      const { app, deps } = buildApp(backends, { config: testConfig({ orgCreation: 'admins' }) });
      const user = await registerAndLogin(app);
      const name = uniqueName('admin');
      await createAdmin(deps, { email: `${name}@example.com`, username: name, password: 'admin password 123' });
      const admin = await login(app, { username: name, password: 'admin password 123' });

      const refused = await request(app)
        .post('/orgs')
        .set(...bearer(user.accessToken))
        .send({ name: 'Nope', slug: uniqueName('nope').replace(/_/g, '-') });

      expect(refused.status).toBe(403);
      expect(refused.body.error.reason).toBe('org_creation_not_allowed');
      await createOrg(app, admin.accessToken);
    });

    it('when a user reaches ORG_MAX_PER_USER, then creating and accepting another are refused', async () => {
      const { app } = buildApp(backends, { config: testConfig({ orgMaxPerUser: 1 }) });
      const user = await registerAndLogin(app);
      const other = await registerAndLogin(app);
      await createOrg(app, user.accessToken);
      const elsewhere = await createOrg(app, other.accessToken);
      const { token } = await invite(app, other.accessToken, elsewhere.id, user.email);

      const second = await request(app)
        .post('/orgs')
        .set(...bearer(user.accessToken))
        .send({ name: 'Two', slug: uniqueName('two').replace(/_/g, '-') });
      const accepted = await request(app)
        .post('/invitations/accept')
        .set(...bearer(user.accessToken))
        .send({ token });

      expect([second.status, second.body.error.reason]).toEqual([409, 'org_limit_reached']);
      expect([accepted.status, accepted.body.error.reason]).toEqual([409, 'org_limit_reached']);
      // The refusal spent nothing: the invitation is still pending.
      const pending = await request(app)
        .get(`/orgs/${elsewhere.id}/invitations`)
        .set(...bearer(other.accessToken));
      expect(pending.body.invitations).toHaveLength(1);
    });
  });

  describe('invitations', () => {
    it('when an address is invited, then the link accepts once, for that address only, and proves it', async () => {
      const { app } = buildApp(backends);
      const owner = await registerAndLogin(app);
      const org = await createOrg(app, owner.accessToken);
      const invitee = await registerAndLogin(app);
      const stranger = await registerAndLogin(app);
      const { token } = await invite(app, owner.accessToken, org.id, invitee.email.toUpperCase(), 'admin');

      const byStranger = await request(app)
        .post('/invitations/accept')
        .set(...bearer(stranger.accessToken))
        .send({ token });
      const accepted = await request(app)
        .post('/invitations/accept')
        .set(...bearer(invitee.accessToken))
        .send({ token });
      const again = await request(app)
        .post('/invitations/accept')
        .set(...bearer(invitee.accessToken))
        .send({ token });

      expect([byStranger.status, byStranger.body.error.reason]).toEqual([403, 'invitation_other_address']);
      expect(accepted.status).toBe(200);
      expect(accepted.body).toMatchObject({ id: org.id, role: 'admin' });
      expect([again.status, again.body.error.reason]).toEqual([409, 'invitation_used']);
      const user = await backends.db.prisma.user.findUniqueOrThrow({ where: { id: invitee.id } });
      expect(user.emailVerifiedAt).not.toBeNull();
      const members = await request(app)
        .get(`/orgs/${org.id}/members`)
        .set(...bearer(owner.accessToken));
      expect(listOf<{ userId: string; role: string }>(members.body, 'members').map((member) => [member.userId, member.role])).toEqual([
        [owner.id, 'owner'],
        [invitee.id, 'admin'],
      ]);
    });

    it('when inviting an address with an account and one without, then the answers are alike', async () => {
      const { app } = buildApp(backends);
      const owner = await registerAndLogin(app);
      const org = await createOrg(app, owner.accessToken);
      const existing = await register(app);

      const answers = [];
      for (const email of [existing.email, `${uniqueName('nobody')}@example.com`]) {
        const res = await request(app)
          .post(`/orgs/${org.id}/invitations`)
          .set(...bearer(owner.accessToken))
          .send({ email, role: 'member' });
        answers.push({ status: res.status, keys: Object.keys(res.body as object).sort() });
      }

      expect(answers[0]).toEqual(answers[1]);
      expect(answers[0]?.status).toBe(201);
    });

    it('when an invitation has expired, was withdrawn, was resent or is garbage, then accepting it is refused', async () => {
      const { app, deps } = buildApp(backends);
      const clock = deps.clock as ManualClock;
      const owner = await registerAndLogin(app);
      const org = await createOrg(app, owner.accessToken);
      const [late, withdrawn, resent] = [await registerAndLogin(app), await registerAndLogin(app), await registerAndLogin(app)];
      const lateInvite = await invite(app, owner.accessToken, org.id, late.email);
      const withdrawnInvite = await invite(app, owner.accessToken, org.id, withdrawn.email);
      const resentInvite = await invite(app, owner.accessToken, org.id, resent.email);
      const revoke = await request(app)
        .delete(`/orgs/${org.id}/invitations/${withdrawnInvite.invitation.id}`)
        .set(...bearer(owner.accessToken));
      const before = await outboxIds(app);
      const resend = await request(app)
        .post(`/orgs/${org.id}/invitations/${resentInvite.invitation.id}/resend`)
        .set(...bearer(owner.accessToken));
      const newToken = await invitationToken(app, resent.email, before);
      const accept = (account: LoggedIn, token: string) =>
        request(app)
          .post('/invitations/accept')
          .set(...bearer(account.accessToken))
          .send({ token });

      const withdrawnAnswer = await accept(withdrawn, withdrawnInvite.token);
      const oldLink = await accept(resent, resentInvite.token);
      const newLink = await accept(resent, newToken);
      const garbage = await accept(late, 'inv_nothing');
      clock.advance(builtWith(app).config.orgInvitationTtlS * 1000 + 1);
      const expired = await accept({ ...late, ...(await login(app, late)) }, lateInvite.token);

      expect(revoke.status).toBe(204);
      expect(resend.status).toBe(200);
      expect([withdrawnAnswer.status, withdrawnAnswer.body.error.reason]).toEqual([409, 'invitation_revoked']);
      expect([oldLink.status, oldLink.body.error.reason]).toEqual([404, 'invitation_invalid']);
      expect(newLink.status).toBe(200);
      expect([garbage.status, garbage.body.error.reason]).toEqual([404, 'invitation_invalid']);
      expect([expired.status, expired.body.error.reason]).toEqual([409, 'invitation_expired']);
    });

    it('when two requests accept one invitation at once, then exactly one joins', async () => {
      const { app } = buildApp(backends);
      const owner = await registerAndLogin(app);
      const org = await createOrg(app, owner.accessToken);
      const invitee = await registerAndLogin(app);
      const { token } = await invite(app, owner.accessToken, org.id, invitee.email);

      const answers = await Promise.all(
        [1, 2, 3].map(() =>
          request(app)
            .post('/invitations/accept')
            .set(...bearer(invitee.accessToken))
            .send({ token }),
        ),
      );

      expect(answers.map((res) => res.status).sort()).toEqual([200, 409, 409]);
      expect(await backends.db.prisma.orgMember.count({ where: { orgId: org.id } })).toBe(2);
    });

    it('when invitations are sent and accepted, then the metrics count them', async () => {
      const { app, deps } = buildApp(backends);
      const owner = await registerAndLogin(app);
      const org = await createOrg(app, owner.accessToken);
      await joined(app, owner, org.id);

      const text = await deps.metrics.registry.metrics();

      expect(text).toMatch(/authkit_org_invitations_total\{event="sent"\} 1/);
      expect(text).toMatch(/authkit_org_invitations_total\{event="accepted"\} 1/);
    });
  });

  describe('roles and boundaries', () => {
    it('when a member invites or changes roles, then 403; an admin cannot make or touch an owner', async () => {
      const { app } = buildApp(backends);
      const owner = await registerAndLogin(app);
      const org = await createOrg(app, owner.accessToken);
      const admin = await joined(app, owner, org.id, 'admin');
      const member = await joined(app, owner, org.id, 'member');

      const memberInvites = await request(app)
        .post(`/orgs/${org.id}/invitations`)
        .set(...bearer(member.accessToken))
        .send({ email: 'someone@example.com' });
      const memberPromotes = await request(app)
        .patch(`/orgs/${org.id}/members/${member.id}`)
        .set(...bearer(member.accessToken))
        .send({ role: 'admin' });
      const adminMakesOwner = await request(app)
        .patch(`/orgs/${org.id}/members/${member.id}`)
        .set(...bearer(admin.accessToken))
        .send({ role: 'owner' });
      const adminInvitesOwner = await request(app)
        .post(`/orgs/${org.id}/invitations`)
        .set(...bearer(admin.accessToken))
        .send({ email: 'boss@example.com', role: 'owner' });
      const adminDemotesOwner = await request(app)
        .patch(`/orgs/${org.id}/members/${owner.id}`)
        .set(...bearer(admin.accessToken))
        .send({ role: 'member' });
      const adminRemovesOwner = await request(app)
        .delete(`/orgs/${org.id}/members/${owner.id}`)
        .set(...bearer(admin.accessToken));
      const adminDeletes = await request(app)
        .delete(`/orgs/${org.id}`)
        .set(...bearer(admin.accessToken));
      const adminPromotes = await request(app)
        .patch(`/orgs/${org.id}/members/${member.id}`)
        .set(...bearer(admin.accessToken))
        .send({ role: 'admin' });

      expect([memberInvites.status, memberInvites.body.error.reason]).toEqual([403, 'org_permission_missing']);
      expect(memberInvites.body.error.details).toEqual({ permission: 'members:invite' });
      expect([memberPromotes.status, memberPromotes.body.error.reason]).toEqual([403, 'org_permission_missing']);
      expect([adminMakesOwner.status, adminMakesOwner.body.error.reason]).toEqual([403, 'org_owner_required']);
      expect([adminInvitesOwner.status, adminInvitesOwner.body.error.reason]).toEqual([403, 'org_owner_required']);
      expect([adminDemotesOwner.status, adminDemotesOwner.body.error.reason]).toEqual([403, 'org_owner_required']);
      expect([adminRemovesOwner.status, adminRemovesOwner.body.error.reason]).toEqual([403, 'org_owner_required']);
      expect([adminDeletes.status, adminDeletes.body.error.reason]).toEqual([403, 'org_permission_missing']);
      expect(adminPromotes.status).toBe(200);
    });

    it('when a member of organization A asks for anything of organization B, then 404 as if it did not exist', async () => {
      const { app } = buildApp(backends);
      const ownerA = await registerAndLogin(app);
      const ownerB = await registerAndLogin(app);
      await createOrg(app, ownerA.accessToken);
      const orgB = await createOrg(app, ownerB.accessToken);
      const memberB = await joined(app, ownerB, orgB.id);
      const { invitation } = await invite(app, ownerB.accessToken, orgB.id, 'pending@example.com');
      const b = `/orgs/${orgB.id}`;
      const calls: [string, string, object?][] = [
        ['get', b],
        ['patch', b, { name: 'Mine now' }],
        ['delete', b],
        ['post', `${b}/switch`],
        ['get', `${b}/members`],
        ['patch', `${b}/members/${memberB.id}`, { role: 'admin' }],
        ['delete', `${b}/members/${memberB.id}`],
        ['post', `${b}/transfer`, { userId: ownerA.id }],
        ['get', `${b}/roles`],
        ['post', `${b}/roles`, { name: 'spy', permissions: [] }],
        ['get', `${b}/invitations`],
        ['post', `${b}/invitations`, { email: 'x@example.com', role: 'member' }],
        ['post', `${b}/invitations/${invitation.id}/resend`],
        ['delete', `${b}/invitations/${invitation.id}`],
        ['get', `${b}/audit`],
        ['get', `${b}/api-keys`],
        ['get', `/images?orgId=${orgB.id}`],
      ];

      for (const [method, path, body] of calls) {
        const req = (request(app) as unknown as Record<string, (path: string) => request.Test>)[method]?.(path).set(...bearer(ownerA.accessToken));
        const res = await (body ? req?.send(body) : req);
        expect(res?.status, `${method} ${path}`).toBe(404);
        expect(res?.body.error.reason, `${method} ${path}`).toBe('org_not_found');
      }
      expect(await backends.db.prisma.orgMember.count({ where: { orgId: orgB.id } })).toBe(2);
      expect((await backends.db.prisma.organization.findUniqueOrThrow({ where: { id: orgB.id } })).name).toBe(`Team ${orgB.slug}`);
    });

    it('when an organization defines a role, then its holders get exactly its permissions and nobody grants more than they hold', async () => {
      const { app } = buildApp(backends);
      const owner = await registerAndLogin(app);
      const org = await createOrg(app, owner.accessToken);
      const defined = await request(app)
        .post(`/orgs/${org.id}/roles`)
        .set(...bearer(owner.accessToken))
        .send({ name: 'recruiter', permissions: ['members:read', 'members:invite', 'images:read', 'images:write'], description: 'Brings people in' });
      const recruiter = await joined(app, owner, org.id, 'recruiter');
      const token = await switchTo(app, recruiter.accessToken, org.id);

      const invitesMember = await request(app)
        .post(`/orgs/${org.id}/invitations`)
        .set(...bearer(recruiter.accessToken))
        .send({ email: `${uniqueName()}@example.com`, role: 'member' });
      const invitesAdmin = await request(app)
        .post(`/orgs/${org.id}/invitations`)
        .set(...bearer(recruiter.accessToken))
        .send({ email: `${uniqueName()}@example.com`, role: 'admin' });
      const definesBigger = await request(app)
        .post(`/orgs/${org.id}/roles`)
        .set(...bearer(recruiter.accessToken))
        .send({ name: 'bigger', permissions: ['audit:read'] });
      const ownerOnly = await request(app)
        .post(`/orgs/${org.id}/roles`)
        .set(...bearer(owner.accessToken))
        .send({ name: 'deleter', permissions: ['org:delete'] });
      const builtInName = await request(app)
        .post(`/orgs/${org.id}/roles`)
        .set(...bearer(owner.accessToken))
        .send({ name: 'admin', permissions: [] });
      const unknownRole = await request(app)
        .patch(`/orgs/${org.id}/members/${recruiter.id}`)
        .set(...bearer(owner.accessToken))
        .send({ role: 'ghost' });
      const inUse = await request(app)
        .delete(`/orgs/${org.id}/roles/recruiter`)
        .set(...bearer(owner.accessToken));

      expect(defined.status).toBe(201);
      expect(claims(token)).toMatchObject({
        org_id: org.id,
        org_role: 'recruiter',
        org_permissions: ['members:read', 'members:invite', 'images:read', 'images:write'],
      });
      expect(invitesMember.status).toBe(201);
      expect([invitesAdmin.status, invitesAdmin.body.error.reason]).toEqual([403, 'org_grant_exceeded']);
      // Defining roles needs roles:manage, which the recruiter lacks.
      expect([definesBigger.status, definesBigger.body.error.reason]).toEqual([403, 'org_permission_missing']);
      expect(ownerOnly.status).toBe(400);
      expect(builtInName.status).toBe(400);
      expect([unknownRole.status, unknownRole.body.error.reason]).toEqual([400, 'org_role_unknown']);
      expect([inUse.status, inUse.body.error.reason]).toEqual([409, 'org_role_in_use']);
    });

    it('when an admin defines a role, then it may hold only what an admin holds', async () => {
      const { app } = buildApp(backends);
      const owner = await registerAndLogin(app);
      const org = await createOrg(app, owner.accessToken);
      const admin = await joined(app, owner, org.id, 'admin');

      const fine = await request(app)
        .post(`/orgs/${org.id}/roles`)
        .set(...bearer(admin.accessToken))
        .send({ name: 'auditor', permissions: ['audit:read', 'members:read'] });
      const roles = await request(app)
        .get(`/orgs/${org.id}/roles`)
        .set(...bearer(admin.accessToken));

      expect(fine.status).toBe(201);
      expect(listOf<{ name: string }>(roles.body, 'roles').map((role) => role.name)).toEqual(['owner', 'admin', 'member', 'auditor']);
    });
  });

  describe('the active organization in the token', () => {
    /** An owner and a member of one organization, and two instances sharing the backends (one, embedded). */
    async function memberOnTwoInstances() {
      const config = testConfig();
      const one = buildApp(backends, { config }).app;
      // Two instances share revocations through Redis; the embedded store is one instance's own.
      const two = usingRedis ? buildApp(backends, { config }).app : one;
      const owner = await registerAndLogin(one);
      const org = await createOrg(one, owner.accessToken);
      return { one, two, owner, org, member: await joined(one, owner, org.id) };
    }
    it('when a member switches, then the token says which organization, role and permissions; a refresh keeps them and DELETE /me/active-org drops them', async () => {
      const { app } = buildApp(backends);
      const owner = await registerAndLogin(app);
      const org = await createOrg(app, owner.accessToken);
      const outsider = await registerAndLogin(app);

      const token = await switchTo(app, owner.accessToken, org.id);
      const refreshed = await request(app).post('/refresh').send({ refresh_token: owner.refreshToken });
      const cleared = await request(app)
        .delete('/me/active-org')
        .set(...bearer(token));
      const refreshedAfter = await request(app)
        .post('/refresh')
        .send({ refresh_token: refreshed.body.refresh_token as string });
      const outsiderSwitch = await request(app)
        .post(`/orgs/${org.id}/switch`)
        .set(...bearer(outsider.accessToken));

      expect(claims(token)).toMatchObject({ org_id: org.id, org_role: 'owner', sid: claims(owner.accessToken).sid });
      expect(claims(token).org_permissions).toContain('org:delete');
      expect(claims(refreshed.body.access_token as string)).toMatchObject({ org_id: org.id, org_role: 'owner' });
      expect(cleared.status).toBe(200);
      expect(claims(cleared.body.access_token as string).org_id).toBeUndefined();
      expect(claims(refreshedAfter.body.access_token as string).org_id).toBeUndefined();
      expect([outsiderSwitch.status, outsiderSwitch.body.error.reason]).toEqual([404, 'org_not_found']);
    });

    it('when a member is removed on one instance, then their organization token is refused on the other at the very next request', async () => {
      const { one, two, owner, org, member } = await memberOnTwoInstances();
      const orgToken = await switchTo(one, member.accessToken, org.id);
      const before = await request(two)
        .get('/me')
        .set(...bearer(orgToken));

      const removed = await request(one)
        .delete(`/orgs/${org.id}/members/${member.id}`)
        .set(...bearer(owner.accessToken));
      const after = await request(two)
        .get('/me')
        .set(...bearer(orgToken));
      const personal = await request(two)
        .get('/me')
        .set(...bearer(member.accessToken));
      const refreshed = await request(two).post('/refresh').send({ refresh_token: member.refreshToken });

      expect(before.status).toBe(200);
      expect(removed.status).toBe(204);
      expect([after.status, after.body.error.reason]).toEqual([401, 'access_token_revoked']);
      expect(personal.status).toBe(200);
      expect(refreshed.status).toBe(200);
      expect(claims(refreshed.body.access_token as string).org_id).toBeUndefined();
    });

    it("when a member's role changes, then their old organization token stops and a refresh carries the new role", async () => {
      const { one, two, owner, org, member } = await memberOnTwoInstances();
      const orgToken = await switchTo(one, member.accessToken, org.id);

      await request(one)
        .patch(`/orgs/${org.id}/members/${member.id}`)
        .set(...bearer(owner.accessToken))
        .send({ role: 'admin' })
        .expect(200);
      const old = await request(two)
        .get('/me')
        .set(...bearer(orgToken));
      const refreshed = await request(two).post('/refresh').send({ refresh_token: member.refreshToken });

      expect(old.status).toBe(401);
      expect(claims(refreshed.body.access_token as string)).toMatchObject({ org_id: org.id, org_role: 'admin' });
    });

    it("when an organization is deleted while a member's token is live, then the token is refused at once and the session lives on", async () => {
      const { one, two, owner, org, member } = await memberOnTwoInstances();
      const memberToken = await switchTo(one, member.accessToken, org.id);

      const tooLate = await request(one)
        .delete(`/orgs/${org.id}`)
        .set(...bearer(owner.accessToken));
      const refused = await request(two)
        .get('/me')
        .set(...bearer(memberToken));
      const refreshed = await request(two).post('/refresh').send({ refresh_token: member.refreshToken });
      const gone = await request(two)
        .get(`/orgs/${org.id}`)
        .set(...bearer(owner.accessToken));

      expect(tooLate.status).toBe(204);
      expect(refused.status).toBe(401);
      expect(refreshed.status).toBe(200);
      expect(claims(refreshed.body.access_token as string).org_id).toBeUndefined();
      expect(gone.status).toBe(404);
      expect(await backends.db.prisma.orgMember.count({ where: { orgId: org.id } })).toBe(0);
      await builtWith(one).graph.audit.settled();
      // The audit trail outlives the organization.
      expect(await backends.db.prisma.auditEvent.count({ where: { details: { path: ['orgId'], equals: org.id } } })).toBeGreaterThanOrEqual(4);
    });
  });

  describe('owners', () => {
    it('when two owners demote each other at once, then exactly one change wins and the organization keeps an owner', async () => {
      const { app } = buildApp(backends);
      const first = await registerAndLogin(app);
      const org = await createOrg(app, first.accessToken);
      const second = await joined(app, first, org.id, 'owner');

      const answers = await Promise.all([
        request(app)
          .patch(`/orgs/${org.id}/members/${second.id}`)
          .set(...bearer(first.accessToken))
          .send({ role: 'member' }),
        request(app)
          .patch(`/orgs/${org.id}/members/${first.id}`)
          .set(...bearer(second.accessToken))
          .send({ role: 'member' }),
      ]);

      expect(answers.map((res) => res.status).sort()).toEqual([200, 403].sort());
      expect(await backends.db.prisma.orgMember.count({ where: { orgId: org.id, role: 'owner' } })).toBe(1);
    });

    it('when two owners leave at once, then one stays; the last owner can neither leave nor step down', async () => {
      const { app } = buildApp(backends);
      const first = await registerAndLogin(app);
      const org = await createOrg(app, first.accessToken);
      const second = await joined(app, first, org.id, 'owner');

      const answers = await Promise.all(
        [first, second].map((owner) =>
          request(app)
            .delete(`/orgs/${org.id}/members/${owner.id}`)
            .set(...bearer(owner.accessToken)),
        ),
      );
      const stayer = answers[0]?.status === 204 ? second : first;
      const stepDown = await request(app)
        .patch(`/orgs/${org.id}/members/${stayer.id}`)
        .set(...bearer(stayer.accessToken))
        .send({ role: 'admin' });

      expect(answers.map((res) => res.status).sort()).toEqual([204, 409]);
      expect(answers.find((res) => res.status === 409)?.body.error.reason).toBe('org_last_owner');
      expect([stepDown.status, stepDown.body.error.reason]).toEqual([409, 'org_last_owner']);
      expect(await backends.db.prisma.orgMember.count({ where: { orgId: org.id, role: 'owner' } })).toBe(1);
    });

    it('when an owner hands over ownership, then the other member owns it and the former owner is an admin', async () => {
      const { app } = buildApp(backends);
      const owner = await registerAndLogin(app);
      const org = await createOrg(app, owner.accessToken);
      const heir = await joined(app, owner, org.id);

      const handed = await request(app)
        .post(`/orgs/${org.id}/transfer`)
        .set(...bearer(owner.accessToken))
        .send({ userId: heir.id });
      const again = await request(app)
        .post(`/orgs/${org.id}/transfer`)
        .set(...bearer(owner.accessToken))
        .send({ userId: heir.id });
      const members = await request(app)
        .get(`/orgs/${org.id}/members`)
        .set(...bearer(heir.accessToken));

      expect(handed.status).toBe(204);
      expect(again.status).toBe(403);
      expect(Object.fromEntries(listOf<{ userId: string; role: string }>(members.body, 'members').map((member) => [member.userId, member.role]))).toEqual({
        [owner.id]: 'admin',
        [heir.id]: 'owner',
      });
    });
  });

  describe('machine access and images', () => {
    it("when an organization's API key is used, then it acts in that organization only, within its scopes and its creator's standing", async () => {
      const { app } = buildApp(backends);
      const owner = await registerAndLogin(app);
      const org = await createOrg(app, owner.accessToken);
      const other = await createOrg(app, owner.accessToken);
      const admin = await joined(app, owner, org.id, 'admin');
      await proveAddress(app, admin);
      const created = await request(app)
        .post(`/orgs/${org.id}/api-keys`)
        .set(...bearer(admin.accessToken))
        .send({ name: 'sync', scopes: ['members:read', 'images:read'] });
      const key = created.body.key as string;
      const member = await joined(app, owner, org.id);
      const memberCreates = await request(app)
        .post(`/orgs/${org.id}/api-keys`)
        .set(...bearer(member.accessToken))
        .send({ name: 'mine', scopes: ['members:read'] });

      const members = await request(app)
        .get(`/orgs/${org.id}/members`)
        .set(...apiKey(key));
      const otherOrg = await request(app)
        .get(`/orgs/${other.id}/members`)
        .set(...apiKey(key));
      const upload = await request(app)
        .post('/images')
        .set(...apiKey(key))
        .attach('image', png(), 'x.png');
      const me = await request(app)
        .get('/me')
        .set(...apiKey(key));
      const listed = await request(app)
        .get(`/orgs/${org.id}/api-keys`)
        .set(...bearer(owner.accessToken));
      await request(app)
        .delete(`/orgs/${org.id}/members/${admin.id}`)
        .set(...bearer(owner.accessToken))
        .expect(204);
      const afterCreatorLeft = await request(app)
        .get(`/orgs/${org.id}/members`)
        .set(...apiKey(key));

      expect(created.status, JSON.stringify(created.body)).toBe(201);
      expect([memberCreates.status, memberCreates.body.error.reason]).toEqual([403, 'org_permission_missing']);
      expect(members.status).toBe(200);
      expect([otherOrg.status, otherOrg.body.error.reason]).toEqual([404, 'org_not_found']);
      expect([upload.status, upload.body.error.reason]).toEqual([403, 'api_key_scope_missing']);
      expect(me.status).toBe(403);
      expect(listed.body.keys).toEqual([expect.objectContaining({ id: created.body.id, scopes: ['members:read', 'images:read'], createdBy: admin.id })]);
      expect(afterCreatorLeft.status).toBe(401);
    });

    it("when a key's scopes exceed its creator's role, then it is refused at creation", async () => {
      const { app } = buildApp(backends);
      const owner = await registerAndLogin(app);
      const org = await createOrg(app, owner.accessToken);
      await request(app)
        .post(`/orgs/${org.id}/roles`)
        .set(...bearer(owner.accessToken))
        .send({ name: 'keymaker', permissions: ['api-keys:manage', 'images:read'] })
        .expect(201);
      const keymaker = await joined(app, owner, org.id, 'keymaker');
      // Keys need a proven address, as personal ones do (accepting the invitation proved the keymaker's).
      await proveAddress(app, owner);

      const tooMuch = await request(app)
        .post(`/orgs/${org.id}/api-keys`)
        .set(...bearer(keymaker.accessToken))
        .send({ name: 'k', scopes: ['images:read', 'members:invite'] });
      const ownerOnly = await request(app)
        .post(`/orgs/${org.id}/api-keys`)
        .set(...bearer(owner.accessToken))
        .send({ name: 'k', scopes: ['org:delete'] });

      expect([tooMuch.status, tooMuch.body.error.reason]).toEqual([403, 'org_grant_exceeded']);
      expect(ownerOnly.status).toBe(400);
    });

    it("when a member uploads to the organization, then members with images:read see it, outsiders do not, and the uploader's own images stay theirs", async () => {
      const { app } = buildApp(backends);
      const owner = await registerAndLogin(app);
      const org = await createOrg(app, owner.accessToken);
      const member = await joined(app, owner, org.id);
      const outsider = await registerAndLogin(app);
      await request(app)
        .post(`/orgs/${org.id}/roles`)
        .set(...bearer(owner.accessToken))
        .send({ name: 'blind', permissions: ['members:read'] })
        .expect(201);
      const blind = await joined(app, owner, org.id, 'blind');

      const shared = await request(app)
        .post(`/images?orgId=${org.id}`)
        .set(...bearer(member.accessToken))
        .attach('image', png(), 'team.png');
      const personal = await request(app)
        .post('/images')
        .set(...bearer(member.accessToken))
        .attach('image', png(), 'mine.png');
      const get = (account: LoggedIn, id: string) =>
        request(app)
          .get(`/images/${id}`)
          .set(...bearer(account.accessToken));

      const ownerList = await request(app)
        .get(`/images?orgId=${org.id}`)
        .set(...bearer(owner.accessToken));
      const memberOwnList = await request(app)
        .get('/images')
        .set(...bearer(member.accessToken));
      const blindList = await request(app)
        .get(`/images?orgId=${org.id}`)
        .set(...bearer(blind.accessToken));

      expect(shared.status).toBe(201);
      expect(shared.body).toMatchObject({ orgId: org.id, ownerId: member.id });
      expect(listOf<{ id: string }>(ownerList.body, 'images').map((image) => image.id)).toEqual([shared.body.id]);
      expect(listOf<{ id: string }>(memberOwnList.body, 'images').map((image) => image.id)).toEqual([personal.body.id]);
      expect((await get(owner, shared.body.id as string)).status).toBe(200);
      expect((await get(owner, personal.body.id as string)).status).toBe(404);
      expect((await get(outsider, shared.body.id as string)).status).toBe(404);
      expect((await get(blind, shared.body.id as string)).status).toBe(404);
      expect([blindList.status, blindList.body.error.reason]).toEqual([403, 'org_permission_missing']);
    });
  });

  describe('operations', () => {
    it('when things happen in an organization, then its admins read them in its audit log and members without audit:read cannot', async () => {
      const { app } = buildApp(backends);
      const owner = await registerAndLogin(app);
      const org = await createOrg(app, owner.accessToken);
      const member = await joined(app, owner, org.id);
      await builtWith(app).graph.audit.settled();

      const log = await request(app)
        .get(`/orgs/${org.id}/audit`)
        .set(...bearer(owner.accessToken));
      const refused = await request(app)
        .get(`/orgs/${org.id}/audit`)
        .set(...bearer(member.accessToken));

      expect(log.status).toBe(200);
      expect(
        listOf<{ type: string }>(log.body, 'events')
          .map((event) => event.type)
          .sort(),
      ).toEqual(['org.created', 'org.invitation_accepted', 'org.invitation_sent']);
      expect(refused.status).toBe(403);
    });

    it("when every kind of organization event happens, then each is in the organization's audit log, and nothing of another's", async () => {
      const { app } = buildApp(backends);
      const owner = await registerAndLogin(app);
      const org = await createOrg(app, owner.accessToken);
      const elsewhere = await createOrg(app, owner.accessToken);
      const member = await joined(app, owner, org.id);
      const as = (method: 'patch' | 'post' | 'put' | 'delete', path: string, body?: object) => {
        const agent = request(app);
        const req = agent[method](path).set(...bearer(owner.accessToken));
        return body ? req.send(body) : req;
      };
      await as('patch', `/orgs/${org.id}`, { name: 'Renamed' }).expect(200);
      await as('post', `/orgs/${org.id}/roles`, { name: 'viewer', permissions: ['members:read'] }).expect(201);
      await as('put', `/orgs/${org.id}/roles/viewer`, { permissions: ['members:read', 'images:read'] }).expect(200);
      await as('delete', `/orgs/${org.id}/roles/viewer`).expect(204);
      await as('patch', `/orgs/${org.id}/members/${member.id}`, { role: 'admin' }).expect(200);
      const { invitation } = await invite(app, owner.accessToken, org.id, 'later@example.com');
      await as('delete', `/orgs/${org.id}/invitations/${invitation.id}`).expect(204);
      await as('delete', `/orgs/${org.id}/members/${member.id}`).expect(204);
      const doomed = await createOrg(app, owner.accessToken);
      await as('delete', `/orgs/${doomed.id}`).expect(204);
      await builtWith(app).graph.audit.settled();

      const log = await request(app)
        .get(`/orgs/${org.id}/audit?pageSize=100`)
        .set(...bearer(owner.accessToken));
      const doomedTrail = await backends.db.prisma.auditEvent.findMany({ where: { details: { path: ['orgId'], equals: doomed.id } } });
      const seen = new Set([...(log.body.events as { type: string }[]), ...doomedTrail].map((event) => event.type));

      expect(SECURITY_EVENT_TYPES.filter((type) => type.startsWith('org.') && !seen.has(type))).toEqual([]);
      expect(JSON.stringify(log.body)).not.toContain(elsewhere.id);
    });

    it('when an administrator lists, inspects and deletes organizations, then they see every one and a user cannot', async () => {
      const { app, deps } = buildApp(backends);
      const owner = await registerAndLogin(app);
      const org = await createOrg(app, owner.accessToken);
      const name = uniqueName('admin');
      await createAdmin(deps, { email: `${name}@example.com`, username: name, password: 'admin password 123' });
      const admin = await login(app, { username: name, password: 'admin password 123' });

      const list = await request(app)
        .get(`/admin/orgs?search=${org.slug}`)
        .set(...bearer(admin.accessToken));
      const inspect = await request(app)
        .get(`/admin/orgs/${org.id}`)
        .set(...bearer(admin.accessToken));
      const byUser = await request(app)
        .get('/admin/orgs')
        .set(...bearer(owner.accessToken));
      const deleted = await request(app)
        .delete(`/admin/orgs/${org.id}`)
        .set(...bearer(admin.accessToken));

      expect(list.body).toMatchObject({ total: 1, organizations: [{ id: org.id, members: 1 }] });
      expect(inspect.body.members).toEqual([expect.objectContaining({ userId: owner.id, role: 'owner' })]);
      expect(byUser.status).toBe(403);
      expect(deleted.status).toBe(204);
      expect(await backends.db.prisma.organization.count({ where: { id: org.id } })).toBe(0);
    });
  });
});
