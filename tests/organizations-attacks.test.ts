// Attacks on organizations: escalation through roles, stale standings, organization tokens that outlive a change,
// invitations handled by someone who could not have sent them, organization keys and images across boundaries, the
// last-owner rule, and hostile input. A comment above a case names the bug it caught when it was written.
import type { Express } from 'express';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { bearer, type LoggedIn, proveAddress, registerAndLogin, uniqueName } from './support/accounts.js';
import { png } from './support/images.js';
import { claims, createOrg, invite, joined, switchTo } from './support/organizations.js';
import { buildApp, builtWith, useBackends } from './support/test-app.js';

type Agent = Express;
type Method = 'get' | 'post' | 'patch' | 'put' | 'delete';
const apiKey = (key: string): [string, string] => ['X-API-Key', key];

function call(app: Agent, method: Method, path: string, credential: [string, string], body?: object): request.Test {
  const agent = request(app);
  const req = agent[method](path).set(...credential);
  return body === undefined ? req : req.send(body);
}

function accept(app: Agent, account: LoggedIn, token: string): Promise<request.Response> {
  return call(app, 'post', '/invitations/accept', bearer(account.accessToken), { token });
}

async function defineRole(app: Agent, token: string, orgId: string, name: string, permissions: string[]): Promise<void> {
  const res = await call(app, 'post', `/orgs/${orgId}/roles`, bearer(token), { name, permissions });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
}

async function uploadImage(app: Agent, credential: [string, string], orgId?: string): Promise<{ id: string; size: number }> {
  const res = await request(app)
    .post(orgId === undefined ? '/images' : `/images?orgId=${orgId}`)
    .set(...credential)
    .attach('image', png(), 'picture.png');
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body as { id: string; size: number };
}

async function roleOf(app: Agent, orgId: string, userId: string): Promise<string | undefined> {
  return (await builtWith(app).db.prisma.orgMember.findUnique({ where: { orgId_userId: { orgId, userId } } }))?.role;
}

describe('attacks on organizations', () => {
  const backends = useBackends();

  describe('escalation through roles', () => {
    it('when a holder of roles:manage and members:update reaches past their own role, then every attempt is refused and nothing changes', async () => {
      const { app } = buildApp(backends);
      const owner = await registerAndLogin(app);
      const org = await createOrg(app, owner.accessToken);
      await defineRole(app, owner.accessToken, org.id, 'steward', ['roles:manage', 'members:read', 'members:update']);
      await defineRole(app, owner.accessToken, org.id, 'viewer', ['members:read', 'images:read']);
      const steward = await joined(app, owner, org.id, 'steward');
      const member = await joined(app, owner, org.id, 'member');
      const as = (method: Method, path: string, body?: object) => call(app, method, `/orgs/${org.id}${path}`, bearer(steward.accessToken), body);

      const attempts = {
        defineWider: await as('post', '/roles', { name: 'wider', permissions: ['members:read', 'audit:read'] }),
        widenOwnRole: await as('put', '/roles/steward', { permissions: ['roles:manage', 'members:read', 'members:update', 'members:invite'] }),
        emptyRoleItLacks: await as('put', '/roles/viewer', { permissions: [] }),
        deleteRoleItLacks: await as('delete', '/roles/viewer'),
        promoteSelf: await as('patch', `/members/${steward.id}`, { role: 'admin' }),
        demoteMemberWithMore: await as('patch', `/members/${member.id}`, { role: 'steward' }),
        giveSelfViewer: await as('patch', `/members/${steward.id}`, { role: 'viewer' }),
      };

      for (const [name, res] of Object.entries(attempts)) expect([name, res.status, res.body.error?.reason]).toEqual([name, 403, 'org_grant_exceeded']);
      const roles = await backends.db.prisma.orgRole.findMany({ where: { orgId: org.id }, orderBy: { name: 'asc' } });
      expect(roles.map((role) => [role.name, role.permissions])).toEqual([
        ['steward', ['members:read', 'members:update', 'roles:manage']],
        ['viewer', ['members:read', 'images:read']],
      ]);
      expect([await roleOf(app, org.id, steward.id), await roleOf(app, org.id, member.id)]).toEqual(['steward', 'member']);
    });

    it('when an admin tries to make themselves owner, hand over ownership or invite an owner, then each is refused', async () => {
      const { app } = buildApp(backends);
      const owner = await registerAndLogin(app);
      const org = await createOrg(app, owner.accessToken);
      const admin = await joined(app, owner, org.id, 'admin');
      const as = (method: Method, path: string, body?: object) => call(app, method, `/orgs/${org.id}${path}`, bearer(admin.accessToken), body);

      const selfOwner = await as('patch', `/members/${admin.id}`, { role: 'owner' });
      const transferToSelf = await as('post', '/transfer', { userId: admin.id });
      const inviteSelfAgainAsOwner = await as('post', '/invitations', { email: admin.email, role: 'owner' });

      expect([selfOwner.status, selfOwner.body.error.reason]).toEqual([403, 'org_owner_required']);
      expect([transferToSelf.status, transferToSelf.body.error.reason]).toEqual([403, 'org_permission_missing']);
      expect([inviteSelfAgainAsOwner.status, inviteSelfAgainAsOwner.body.error.reason]).toEqual([403, 'org_owner_required']);
      expect(await roleOf(app, org.id, admin.id)).toBe('admin');
    });

    it('when an admin is demoted between the guard and the change, then the change, re-read under the lock, grants no more than the new role', async () => {
      const { app } = buildApp(backends);
      const { graph } = builtWith(app);
      const owner = await registerAndLogin(app);
      const org = await createOrg(app, owner.accessToken);
      const admin = await joined(app, owner, org.id, 'admin');
      const member = await joined(app, owner, org.id, 'member');
      // What the guard read for the admin's request, just before the owner's demotion committed.
      const stale = { ...(await graph.orgAccess.standing(org.id, admin.id))!, userId: admin.id };
      await call(app, 'patch', `/orgs/${org.id}/members/${admin.id}`, bearer(owner.accessToken), { role: 'member' }).expect(200);

      const promotion = graph.members.changeRole(stale, member.id, 'admin', {});

      // The role read under the lock no longer holds members:update at all.
      await expect(promotion).rejects.toMatchObject({ reason: 'org_permission_missing' });
      expect(await roleOf(app, org.id, member.id)).toBe('member');
    });

    // Was a bug, found by the attack review and fixed (src/features/organizations/org-store.ts, actorUnderLock): the re-read under the lock checks only that the
    // actor may grant the roles involved, never that their role still holds the route's own permission
    // (members:remove here; members:update, members:invite and roles:manage elsewhere). An admin demoted to member
    // while their request is between the guard and the lock still removes a member.
    it('when an admin is demoted between the guard and a removal, then the removal is refused', async () => {
      const { app } = buildApp(backends);
      const { graph } = builtWith(app);
      const owner = await registerAndLogin(app);
      const org = await createOrg(app, owner.accessToken);
      const admin = await joined(app, owner, org.id, 'admin');
      const member = await joined(app, owner, org.id, 'member');
      const stale = { ...(await graph.orgAccess.standing(org.id, admin.id))!, userId: admin.id };
      await call(app, 'patch', `/orgs/${org.id}/members/${admin.id}`, bearer(owner.accessToken), { role: 'member' }).expect(200);

      const removal = graph.members.remove(stale, member.id, {});

      await expect(removal).rejects.toMatchObject({ status: 403 });
      expect(await roleOf(app, org.id, member.id)).toBe('member');
    });

    // Was a bug, found by the attack review and fixed (src/features/organizations/org-schemas.ts RoleName/CustomRoleName + org-store.ts actorUnderLock): an
    // organization may define a role named `api-key`, the string actorUnderLock takes for an organization API key's
    // standing; a member holding that role is never re-read under the lock, so even once removed, a request of theirs
    // that passed the guard changes roles with the permissions they had.
    it('when a role is named api-key, then it is refused, or its holder, removed between the guard and a change, cannot make the change', async () => {
      const { app } = buildApp(backends);
      const { graph } = builtWith(app);
      const owner = await registerAndLogin(app);
      const org = await createOrg(app, owner.accessToken);
      const defined = await call(app, 'post', `/orgs/${org.id}/roles`, bearer(owner.accessToken), {
        name: 'api-key',
        permissions: ['members:read', 'members:update', 'images:read', 'images:write'],
      });
      // Refusing the name (a fix) ends the attack here.
      if (defined.status !== 201) return expect(defined.status).toBe(400);
      const impostor = await joined(app, owner, org.id, 'api-key');
      const member = await joined(app, owner, org.id, 'member');
      const stale = { ...(await graph.orgAccess.standing(org.id, impostor.id))!, userId: impostor.id };
      await call(app, 'delete', `/orgs/${org.id}/members/${impostor.id}`, bearer(owner.accessToken)).expect(204);

      const change = graph.members.changeRole(stale, member.id, 'api-key', {});

      await expect(change).rejects.toMatchObject({ status: 404 });
      expect(await roleOf(app, org.id, member.id)).toBe('member');
    });
  });

  describe('organization tokens', () => {
    // Was a bug, found by the attack review and fixed (src/kernel/revocation/revocation-store.ts keys.member, fed by src/features/organizations/org-schemas.ts
    // OrgIdParams): organization ids are compared as strings but accepted in any case. A member who switches through
    // /orgs/<ID IN UPPER CASE>/switch holds a token whose org_id no revocation (written with the lower-case id) matches:
    // removed, they keep a token that tells every product they are still a member, until it expires.
    it('when a member switches with the organization id in upper case and is then removed, then that token is refused', async () => {
      const { app } = buildApp(backends);
      const owner = await registerAndLogin(app);
      const org = await createOrg(app, owner.accessToken);
      const member = await joined(app, owner, org.id, 'admin');
      const switched = await call(app, 'post', `/orgs/${org.id.toUpperCase()}/switch`, bearer(member.accessToken));
      // Refusing the spelling (a fix) ends the attack here.
      if (switched.status !== 200) return expect(switched.status).toBe(404);
      const shouted = switched.body.access_token as string;

      await call(app, 'delete', `/orgs/${org.id}/members/${member.id}`, bearer(owner.accessToken)).expect(204);
      const after = await call(app, 'get', '/me', bearer(shouted));

      expect(claims(shouted)).toMatchObject({ org_role: 'admin' });
      expect([after.status, after.body.error?.reason]).toEqual([401, 'access_token_revoked']);
    });

    // Was a bug, found by the attack review and fixed (same cause, src/features/organizations/members.ts remove/changeRole → Sessions.revokeOrgAccess): a removal
    // or role change sent with the organization or member id in upper case writes its revocation under that spelling,
    // so the member's token (lower-case org_id and sub) lives on.
    it('when an owner removes a member through a URL in upper case, then the member’s organization token is refused', async () => {
      const { app } = buildApp(backends);
      const owner = await registerAndLogin(app);
      const org = await createOrg(app, owner.accessToken);
      const member = await joined(app, owner, org.id, 'admin');
      const orgToken = await switchTo(app, member.accessToken, org.id);

      const removed = await call(app, 'delete', `/orgs/${org.id.toUpperCase()}/members/${member.id.toUpperCase()}`, bearer(owner.accessToken));
      const after = await call(app, 'get', '/me', bearer(orgToken));

      // Refusing the spelling (a fix) leaves the member, and their token, as they were.
      const stillMember = (await roleOf(app, org.id, member.id)) !== undefined;
      expect([removed.status, stillMember, after.status]).toEqual(removed.status === 204 ? [204, false, 401] : [removed.status, true, 200]);
    });

    // Was a bug, found by the attack review and fixed (same cause: events record actor.orgId as the URL spelled it, and GET /orgs/:orgId/audit matches
    // details.orgId exactly): an admin who sends their changes to /orgs/<ID IN UPPER CASE>/... keeps them out of the
    // organization's audit log as its owners read it.
    it("when an admin acts through the organization id in upper case, then the organization's audit log still shows it", async () => {
      const { app } = buildApp(backends);
      const owner = await registerAndLogin(app);
      const org = await createOrg(app, owner.accessToken);
      const admin = await joined(app, owner, org.id, 'admin');
      const member = await joined(app, owner, org.id, 'member');

      const promoted = await call(app, 'patch', `/orgs/${org.id.toUpperCase()}/members/${member.id}`, bearer(admin.accessToken), { role: 'admin' });
      await builtWith(app).graph.audit.settled();
      const log = await call(app, 'get', `/orgs/${org.id}/audit?type=org.member_role_changed`, bearer(owner.accessToken));

      // Refusing the spelling (a fix) leaves nothing to log.
      if (promoted.status !== 200) return expect(await roleOf(app, org.id, member.id)).toBe('member');
      expect(log.status).toBe(200);
      expect((log.body.events as { targetId: string | null }[]).map((event) => event.targetId)).toContain(member.id);
    });

    it('when a removed member still holds a personal token, then switching back is refused and no refresh or re-authentication brings the organization back', async () => {
      const { app } = buildApp(backends);
      const owner = await registerAndLogin(app);
      const org = await createOrg(app, owner.accessToken);
      const member = await joined(app, owner, org.id, 'admin');
      await switchTo(app, member.accessToken, org.id);
      await call(app, 'delete', `/orgs/${org.id}/members/${member.id}`, bearer(owner.accessToken)).expect(204);

      const switchBack = await call(app, 'post', `/orgs/${org.id}/switch`, bearer(member.accessToken));
      const refreshed = await request(app).post('/refresh').send({ refresh_token: member.refreshToken });
      // A replay of the same refresh token within the grace interval is answered from the state as it is now, too.
      const replayed = await request(app).post('/refresh').send({ refresh_token: member.refreshToken });
      const reauthenticated = await call(app, 'post', '/reauthenticate', bearer(member.accessToken), { password: member.password });
      const orgRoute = await call(app, 'get', `/orgs/${org.id}/members`, bearer(refreshed.body.access_token as string));

      expect([switchBack.status, switchBack.body.error.reason]).toEqual([404, 'org_not_found']);
      expect([refreshed.status, replayed.status, reauthenticated.status]).toEqual([200, 200, 200]);
      for (const token of [refreshed.body.access_token, replayed.body.access_token, reauthenticated.body.access_token] as string[])
        expect(claims(token).org_id).toBeUndefined();
      expect([orgRoute.status, orgRoute.body.error.reason]).toEqual([404, 'org_not_found']);
      expect((await backends.db.prisma.session.findMany({ where: { userId: member.id } })).map((session) => session.orgId)).toEqual([null]);
    });

    it('when a token carries org claims the service did not sign, then it is refused before any route reads them', async () => {
      const { app } = buildApp(backends);
      const owner = await registerAndLogin(app);
      const org = await createOrg(app, owner.accessToken);
      const outsider = await registerAndLogin(app);
      const [header, , signature] = outsider.accessToken.split('.') as [string, string, string];
      const payload = { ...claims(outsider.accessToken), org_id: org.id, org_role: 'owner', org_permissions: ['org:delete', 'members:read'] };
      const forged = `${header}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.${signature}`;

      const members = await call(app, 'get', `/orgs/${org.id}/members`, bearer(forged));
      const images = await call(app, 'get', '/images', bearer(forged));

      expect(members.status).toBe(401);
      expect(images.status).toBe(401);
    });
  });

  describe('invitations', () => {
    it('when someone resends an invitation with a role they could not grant, then it is refused and the link sent before still works', async () => {
      const { app } = buildApp(backends);
      const owner = await registerAndLogin(app);
      const org = await createOrg(app, owner.accessToken);
      const admin = await joined(app, owner, org.id, 'admin');
      await defineRole(app, owner.accessToken, org.id, 'recruiter', ['members:read', 'members:invite']);
      const recruiter = await joined(app, owner, org.id, 'recruiter');
      const heir = await registerAndLogin(app);
      const deputy = await registerAndLogin(app);
      const ownerInvite = await invite(app, owner.accessToken, org.id, heir.email, 'owner');
      const adminInvite = await invite(app, owner.accessToken, org.id, deputy.email, 'admin');

      const adminResends = await call(app, 'post', `/orgs/${org.id}/invitations/${ownerInvite.invitation.id}/resend`, bearer(admin.accessToken));
      const recruiterResends = await call(app, 'post', `/orgs/${org.id}/invitations/${adminInvite.invitation.id}/resend`, bearer(recruiter.accessToken));
      const memberResends = await call(
        app,
        'post',
        `/orgs/${org.id}/invitations/${adminInvite.invitation.id}/resend`,
        bearer((await joined(app, owner, org.id)).accessToken),
      );
      const accepted = await accept(app, heir, ownerInvite.token);

      expect([adminResends.status, adminResends.body.error.reason]).toEqual([403, 'org_owner_required']);
      expect([recruiterResends.status, recruiterResends.body.error.reason]).toEqual([403, 'org_grant_exceeded']);
      expect([memberResends.status, memberResends.body.error.reason]).toEqual([403, 'org_permission_missing']);
      expect([accepted.status, accepted.body.role]).toEqual([200, 'owner']);
    });

    // Was a bug, found by the attack review and fixed (src/features/organizations/invitations.ts revoke, and invite's updateMany of the address's pending
    // invitations): withdrawing or replacing a pending invitation checks nothing of its role, while resending it does
    // (checkRoleChange). Whoever holds members:invite, even with a role that grants next to nothing, can withdraw an
    // owner's invitation of a future owner, or replace it with one to a lesser role.
    it('when an inviter who could not grant a pending invitation’s role withdraws or replaces it, then it is refused', async () => {
      const { app } = buildApp(backends);
      const owner = await registerAndLogin(app);
      const org = await createOrg(app, owner.accessToken);
      await defineRole(app, owner.accessToken, org.id, 'recruiter', ['members:read', 'members:invite']);
      await defineRole(app, owner.accessToken, org.id, 'guest', ['members:read']);
      const recruiter = await joined(app, owner, org.id, 'recruiter');
      const heir = `${uniqueName('heir')}@example.com`;
      const deputy = `${uniqueName('deputy')}@example.com`;
      const heirInvite = await invite(app, owner.accessToken, org.id, heir, 'owner');
      await invite(app, owner.accessToken, org.id, deputy, 'admin');

      const withdraw = await call(app, 'delete', `/orgs/${org.id}/invitations/${heirInvite.invitation.id}`, bearer(recruiter.accessToken));
      const replace = await call(app, 'post', `/orgs/${org.id}/invitations`, bearer(recruiter.accessToken), { email: deputy, role: 'guest' });

      const pending = await backends.db.prisma.orgInvitation.findMany({ where: { orgId: org.id, acceptedAt: null, revokedAt: null } });
      expect(withdraw.status).toBe(403);
      expect(replace.status).toBeLessThan(500);
      expect(pending.map((row) => [row.email, row.role])).toEqual(
        expect.arrayContaining([
          [deputy, 'admin'],
          [heir, 'owner'],
        ]),
      );
    });

    it('when the invited role is deleted or the organization is gone before acceptance, then the link grants nothing', async () => {
      const { app } = buildApp(backends);
      const owner = await registerAndLogin(app);
      const org = await createOrg(app, owner.accessToken);
      const doomed = await createOrg(app, owner.accessToken);
      await defineRole(app, owner.accessToken, org.id, 'auditor', ['audit:read']);
      const [first, second] = [await registerAndLogin(app), await registerAndLogin(app)];
      const roleInvite = await invite(app, owner.accessToken, org.id, first.email, 'auditor');
      const orgInvite = await invite(app, owner.accessToken, doomed.id, second.email, 'admin');
      await call(app, 'delete', `/orgs/${org.id}/roles/auditor`, bearer(owner.accessToken)).expect(204);
      await call(app, 'delete', `/orgs/${doomed.id}`, bearer(owner.accessToken)).expect(204);

      const roleGone = await accept(app, first, roleInvite.token);
      const orgGone = await accept(app, second, orgInvite.token);

      expect([roleGone.status, roleGone.body.error.reason]).toEqual([409, 'invitation_revoked']);
      expect([orgGone.status, orgGone.body.error.reason]).toEqual([404, 'invitation_invalid']);
      expect(await backends.db.prisma.orgMember.count({ where: { userId: { in: [first.id, second.id] } } })).toBe(0);
    });
  });

  describe('across organizations', () => {
    it("when another organization's member, invitation or key ids are used under one's own organization, then 404 and nothing of theirs changes", async () => {
      const { app } = buildApp(backends);
      const ownerA = await registerAndLogin(app);
      const ownerB = await registerAndLogin(app);
      await proveAddress(app, ownerB);
      const orgA = await createOrg(app, ownerA.accessToken);
      const orgB = await createOrg(app, ownerB.accessToken);
      const memberB = await joined(app, ownerB, orgB.id);
      const { invitation } = await invite(app, ownerB.accessToken, orgB.id, `${uniqueName('pending')}@example.com`);
      const keyB = await call(app, 'post', `/orgs/${orgB.id}/api-keys`, bearer(ownerB.accessToken), { name: 'b', scopes: ['members:read'] });
      const a = `/orgs/${orgA.id}`;

      const answers = [
        await call(app, 'patch', `${a}/members/${memberB.id}`, bearer(ownerA.accessToken), { role: 'admin' }),
        await call(app, 'delete', `${a}/members/${memberB.id}`, bearer(ownerA.accessToken)),
        await call(app, 'post', `${a}/transfer`, bearer(ownerA.accessToken), { userId: memberB.id }),
        await call(app, 'post', `${a}/invitations/${invitation.id}/resend`, bearer(ownerA.accessToken)),
        await call(app, 'delete', `${a}/invitations/${invitation.id}`, bearer(ownerA.accessToken)),
        await call(app, 'delete', `${a}/api-keys/${keyB.body.id as string}`, bearer(ownerA.accessToken)),
        await call(app, 'delete', `/api-keys/${keyB.body.id as string}`, bearer(ownerB.accessToken)),
      ];

      expect(keyB.status).toBe(201);
      expect(answers.map((res) => [res.status, (res.body as { error: { reason: string } }).error.reason])).toEqual([
        [404, 'org_member_not_found'],
        [404, 'org_member_not_found'],
        [404, 'org_member_not_found'],
        [404, 'invitation_not_found'],
        [404, 'invitation_not_found'],
        [404, 'api_key_not_found'],
        [404, 'api_key_not_found'],
      ]);
      expect(await roleOf(app, orgB.id, memberB.id)).toBe('member');
      expect(await roleOf(app, orgA.id, memberB.id)).toBeUndefined();
      expect(await backends.db.prisma.orgInvitation.count({ where: { id: invitation.id, revokedAt: null } })).toBe(1);
      expect((await call(app, 'get', `/orgs/${orgB.id}/members`, apiKey(keyB.body.key as string))).status).toBe(200);
    });

    it("when an organization's key reaches for another organization's images, its creator's own, or keeps going after its creator's role shrinks, then it is refused", async () => {
      const { app } = buildApp(backends);
      const owner = await registerAndLogin(app);
      await proveAddress(app, owner);
      const org = await createOrg(app, owner.accessToken);
      const other = await createOrg(app, owner.accessToken);
      await defineRole(app, owner.accessToken, org.id, 'uploader', ['images:read', 'images:write']);
      const creator = await joined(app, owner, org.id, 'admin');
      await proveAddress(app, creator);
      const created = await call(app, 'post', `/orgs/${org.id}/api-keys`, bearer(creator.accessToken), {
        name: 'ci',
        scopes: ['members:read', 'images:read', 'images:write'],
      });
      const key = apiKey(created.body.key as string);
      const creatorsOwn = await uploadImage(app, bearer(creator.accessToken));
      const othersImage = await uploadImage(app, bearer(owner.accessToken), other.id);
      const orgImage = await uploadImage(app, key);

      const otherList = await call(app, 'get', `/images?orgId=${other.id}`, key);
      const otherGet = await call(app, 'get', `/images/${othersImage.id}`, key);
      const ownGet = await call(app, 'get', `/images/${creatorsOwn.id}`, key);
      const ownDelete = await call(app, 'delete', `/images/${creatorsOwn.id}`, key);
      const listed = await call(app, 'get', '/images', key);
      await call(app, 'patch', `/orgs/${org.id}/members/${creator.id}`, bearer(owner.accessToken), { role: 'uploader' }).expect(200);
      const membersAfterDemotion = await call(app, 'get', `/orgs/${org.id}/members`, key);
      const imagesAfterDemotion = await call(app, 'get', '/images', key);

      expect(created.status, JSON.stringify(created.body)).toBe(201);
      expect([otherList.status, otherList.body.error.reason]).toEqual([404, 'org_not_found']);
      expect([otherGet.status, ownGet.status, ownDelete.status]).toEqual([404, 404, 404]);
      expect((listed.body.images as { id: string }[]).map((image) => image.id)).toEqual([orgImage.id]);
      expect([membersAfterDemotion.status, membersAfterDemotion.body.error.reason]).toEqual([403, 'api_key_scope_missing']);
      expect(imagesAfterDemotion.status).toBe(200);
      expect(await backends.db.prisma.image.count({ where: { id: creatorsOwn.id } })).toBe(1);
    });

    // Was a bug, found by the attack review and fixed (src/features/images/image-routes.ts, GET /images: `deps.images.usage(auth.userId)`): an organization's key
    // lists the organization's images, but the answer's usedBytes is its creator's personal storage, which the key's
    // holder (a CI job, a partner) has no business knowing.
    it("when an organization's key lists images, then the answer says nothing of its creator's personal storage", async () => {
      const { app } = buildApp(backends);
      const owner = await registerAndLogin(app);
      await proveAddress(app, owner);
      const org = await createOrg(app, owner.accessToken);
      const created = await call(app, 'post', `/orgs/${org.id}/api-keys`, bearer(owner.accessToken), { name: 'ci', scopes: ['images:read'] });
      await uploadImage(app, bearer(owner.accessToken));

      const listed = await call(app, 'get', '/images', apiKey(created.body.key as string));

      expect(listed.status).toBe(200);
      expect(listed.body.images).toEqual([]);
      expect(listed.body.usedBytes ?? 0).toBe(0);
    });

    it('when members without images:read or images:write, or a former uploader, reach for an organization image, then they cannot see or delete it', async () => {
      const { app } = buildApp(backends);
      const owner = await registerAndLogin(app);
      const org = await createOrg(app, owner.accessToken);
      await defineRole(app, owner.accessToken, org.id, 'reader', ['images:read']);
      await defineRole(app, owner.accessToken, org.id, 'writer', ['images:write']);
      const uploader = await joined(app, owner, org.id);
      const reader = await joined(app, owner, org.id, 'reader');
      const writer = await joined(app, owner, org.id, 'writer');
      const image = await uploadImage(app, bearer(uploader.accessToken), org.id);
      await call(app, 'delete', `/orgs/${org.id}/members/${uploader.id}`, bearer(owner.accessToken)).expect(204);

      const readerGets = await call(app, 'get', `/images/${image.id}`, bearer(reader.accessToken));
      const readerDeletes = await call(app, 'delete', `/images/${image.id}`, bearer(reader.accessToken));
      const writerGets = await call(app, 'get', `/images/${image.id}`, bearer(writer.accessToken));
      const writerDeletes = await call(app, 'delete', `/images/${image.id}`, bearer(writer.accessToken));
      const formerGets = await call(app, 'get', `/images/${image.id}`, bearer(uploader.accessToken));
      const formerDeletes = await call(app, 'delete', `/images/${image.id}`, bearer(uploader.accessToken));
      const formerLists = await call(app, 'get', `/images?orgId=${org.id}`, bearer(uploader.accessToken));

      expect(readerGets.status).toBe(200);
      expect([readerDeletes.status, readerDeletes.body.error.reason]).toEqual([403, 'not_owner']);
      expect([writerGets.status, writerDeletes.status]).toEqual([404, 404]);
      expect([formerGets.status, formerDeletes.status, formerLists.status]).toEqual([404, 404, 404]);
      expect(await backends.db.prisma.image.count({ where: { id: image.id } })).toBe(1);
    });

    // Was a bug, found by the attack review and fixed (src/features/images/image-service.ts recordWithinQuota/usage: `where: { ownerId }`): an organization's
    // images count against their uploader's own quota for good. Once removed from the organization the uploader can
    // neither see nor delete them, yet they fill the uploader's quota until the organization deletes them.
    it("when an uploader leaves an organization, then its images no longer take the uploader's storage quota", async () => {
      const { app } = buildApp(backends);
      const owner = await registerAndLogin(app);
      const org = await createOrg(app, owner.accessToken);
      const uploader = await joined(app, owner, org.id);
      await uploadImage(app, bearer(uploader.accessToken), org.id);
      await call(app, 'delete', `/orgs/${org.id}/members/${uploader.id}`, bearer(owner.accessToken)).expect(204);

      const own = await call(app, 'get', '/images', bearer(uploader.accessToken));

      expect(own.body.images).toEqual([]);
      expect(own.body.usedBytes).toBe(0);
    });

    // Was a bug, found by the attack review and fixed (prisma/schema.prisma Image.owner onDelete: Cascade, and ImageService.prepareOwnerRemoval): deleting an
    // account deletes every image it uploaded, the organizations' included, whose other members lose them.
    it("when a member who uploaded to an organization deletes their account, then the organization's image stays", async () => {
      const { app } = buildApp(backends);
      const owner = await registerAndLogin(app);
      const org = await createOrg(app, owner.accessToken);
      const uploader = await joined(app, owner, org.id);
      const image = await uploadImage(app, bearer(uploader.accessToken), org.id);

      await call(app, 'delete', '/me', bearer(uploader.accessToken), { password: uploader.password }).expect(204);
      const listed = await call(app, 'get', `/images?orgId=${org.id}`, bearer(owner.accessToken));

      expect((listed.body.images as { id: string }[]).map((row) => row.id)).toEqual([image.id]);
    });
  });

  describe('the last owner', () => {
    // Was a bug, found by the attack review and fixed (src/features/users/user-service.ts delete; org_members.user_id ON DELETE CASCADE): deleting an account
    // removes its memberships without keepAnOwner, so the last owner's leaving by deletion leaves the organization
    // with admins and members but no owner: nobody can delete it, hand it over or make an owner again.
    it('when the last owner deletes their account while others are members, then it is refused and the organization keeps an owner', async () => {
      const { app } = buildApp(backends);
      const owner = await registerAndLogin(app);
      const org = await createOrg(app, owner.accessToken);
      await joined(app, owner, org.id, 'admin');

      await call(app, 'delete', '/me', bearer(owner.accessToken), { password: owner.password });

      expect(await backends.db.prisma.orgMember.count({ where: { orgId: org.id, role: 'owner' } })).toBe(1);
    });

    it('when two owners remove each other at once, then exactly one removal wins and one owner stays', async () => {
      const { app } = buildApp(backends);
      const first = await registerAndLogin(app);
      const org = await createOrg(app, first.accessToken);
      const second = await joined(app, first, org.id, 'owner');

      const answers = await Promise.all([
        call(app, 'delete', `/orgs/${org.id}/members/${second.id}`, bearer(first.accessToken)),
        call(app, 'delete', `/orgs/${org.id}/members/${first.id}`, bearer(second.accessToken)),
      ]);

      expect(answers.map((res) => res.status).sort()).toEqual([204, 404]);
      expect(answers.find((res) => res.status === 404)?.body.error.reason).toBe('org_not_found');
      expect(await backends.db.prisma.orgMember.count({ where: { orgId: org.id } })).toBe(1);
      expect(await backends.db.prisma.orgMember.count({ where: { orgId: org.id, role: 'owner' } })).toBe(1);
    });

    it('when the sole owner hands over ownership while the heir leaves, then the organization ends with exactly one owner', async () => {
      const { app } = buildApp(backends);
      const owner = await registerAndLogin(app);
      const org = await createOrg(app, owner.accessToken);
      const heir = await joined(app, owner, org.id);

      const [handOver, leave] = await Promise.all([
        call(app, 'post', `/orgs/${org.id}/transfer`, bearer(owner.accessToken), { userId: heir.id }),
        call(app, 'delete', `/orgs/${org.id}/members/${heir.id}`, bearer(heir.accessToken)),
      ]);

      const owners = await backends.db.prisma.orgMember.findMany({ where: { orgId: org.id, role: 'owner' } });
      expect(owners).toHaveLength(1);
      // Either the heir left first (the hand-over finds nobody) or took over first (and, now the last owner, cannot leave).
      expect([
        [204, 409],
        [404, 204],
      ]).toContainEqual([handOver.status, leave.status]);
      expect(owners[0]?.userId).toBe(handOver.status === 204 ? heir.id : owner.id);
    });
  });

  describe('hostile input', () => {
    it('when ids are not uuids, in any organization route or query, then 4xx and never 5xx', async () => {
      const { app } = buildApp(backends);
      const owner = await registerAndLogin(app);
      const org = await createOrg(app, owner.accessToken);
      const bad = ['not-a-uuid', '00000000-0000-0000-0000-00000000000g', "1' OR '1'='1", '%00', '..%2F..%2Fadmin', 'x'.repeat(2_000)];
      const paths = (id: string): [Method, string, object?][] => [
        ['get', `/orgs/${id}`],
        ['post', `/orgs/${id}/switch`],
        ['get', `/orgs/${id}/members`],
        ['patch', `/orgs/${org.id}/members/${id}`, { role: 'member' }],
        ['delete', `/orgs/${org.id}/members/${id}`],
        ['post', `/orgs/${org.id}/transfer`, { userId: id }],
        ['post', `/orgs/${org.id}/invitations/${id}/resend`],
        ['delete', `/orgs/${org.id}/invitations/${id}`],
        ['delete', `/orgs/${org.id}/api-keys/${id}`],
        ['get', `/orgs/${id}/audit`],
        ['get', `/images?orgId=${id}`],
        ['get', `/images?orgId=${org.id}&orgId=${id}`],
        ['put', `/orgs/${org.id}/roles/${id}`, { permissions: [] }],
        ['delete', `/orgs/${org.id}/roles/${id}`],
        ['get', `/admin/orgs/${id}`],
      ];

      for (const id of bad) {
        for (const [method, path, body] of paths(id)) {
          const res = await call(app, method, path, bearer(owner.accessToken), body);
          expect(res.status, `${method} ${path}`).toBeGreaterThanOrEqual(400);
          expect(res.status, `${method} ${path}`).toBeLessThan(500);
        }
      }
      expect(await backends.db.prisma.orgMember.count({ where: { orgId: org.id } })).toBe(1);
    });

    it('when bodies carry unicode slugs, huge or repeated permission lists, deep or prototype-shaped settings, then 4xx or a clean success, never 5xx', async () => {
      const { app } = buildApp(backends);
      const owner = await registerAndLogin(app);
      const org = await createOrg(app, owner.accessToken);
      let nested: Record<string, unknown> = { leaf: true };
      for (let depth = 0; depth < 500; depth++) nested = { n: nested };
      const attempts: [Method, string, object][] = [
        ['post', '/orgs', { name: 'Unicode', slug: 'ﬁrm' }],
        ['post', '/orgs', { name: 'Unicode', slug: 'caf\u00e9' }],
        ['post', '/orgs', { name: 'Homoglyph', slug: 'аcme' }],
        ['patch', `/orgs/${org.id}`, { slug: 'x'.repeat(51) }],
        ['patch', `/orgs/${org.id}`, { settings: nested }],
        ['patch', `/orgs/${org.id}`, { settings: JSON.parse('{"__proto__": {"polluted": true}, "constructor": {"prototype": {"polluted": true}}}') as object }],
        ['patch', `/orgs/${org.id}`, { settings: { big: '\u00e9'.repeat(2_100) } }],
        ['post', `/orgs/${org.id}/roles`, { name: 'huge', permissions: Array.from({ length: 10_000 }, () => 'members:read') }],
        ['post', `/orgs/${org.id}/roles`, { name: 'unknown', permissions: ['members:read', 'superuser'] }],
        ['post', `/orgs/${org.id}/roles`, { name: 'Caps', permissions: [] }],
        ['post', `/orgs/${org.id}/roles`, { name: 'x'.repeat(33), permissions: [] }],
        ['post', `/orgs/${org.id}/invitations`, { email: 'ünïcode@exämple.com', role: 'member' }],
        ['post', `/orgs/${org.id}/invitations`, { email: `${'a'.repeat(250)}@example.com`, role: 'member' }],
        ['post', '/invitations/accept', { token: `inv_${'A'.repeat(43)}\u0000` }],
      ];

      for (const [method, path, body] of attempts) {
        const res = await call(app, method, path, bearer(owner.accessToken), body);
        expect(res.status, `${method} ${path} ${JSON.stringify(body).slice(0, 80)}`).toBeLessThan(500);
      }
      const repeated = await call(app, 'post', `/orgs/${org.id}/roles`, bearer(owner.accessToken), {
        name: 'repeated',
        permissions: ['members:read', 'members:read', 'images:read', 'members:read'],
      });
      expect([repeated.status, repeated.body.permissions]).toEqual([201, ['members:read', 'images:read']]);
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
      expect(await backends.db.prisma.orgRole.count({ where: { orgId: org.id } })).toBe(1);
    });

    // Was a bug, found by the attack review and fixed (src/features/organizations/org-schemas.ts Name/Settings and the role description): PostgreSQL text and
    // jsonb refuse the NUL character, and nothing refuses it before the write: a name, settings value or role
    // description holding \u0000 is a 500 instead of a 400.
    it('when a name, a settings value or a role description holds a NUL character, then a 4xx or a clean success, never 500', async () => {
      const { app } = buildApp(backends);
      const owner = await registerAndLogin(app);
      const org = await createOrg(app, owner.accessToken);

      const answers = [
        await call(app, 'post', '/orgs', bearer(owner.accessToken), { name: 'Nul\u0000Corp', slug: uniqueName('nul').replace(/_/g, '-') }),
        await call(app, 'patch', `/orgs/${org.id}`, bearer(owner.accessToken), { settings: { note: 'a\u0000b' } }),
        await call(app, 'post', `/orgs/${org.id}/roles`, bearer(owner.accessToken), { name: 'nul', permissions: [], description: 'a\u0000b' }),
      ];

      expect(answers.map((res) => res.status < 500)).toEqual([true, true, true]);
    });
  });
});
