// HTTP routes of invitations (invite, list, resend, withdraw, accept) and the administrators' view of organizations.
import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import { z } from 'zod';
import { ApiRouter } from '../../core/http/api-router.js';
import { ErrorResponse, errorResponses } from '../../core/http/openapi.js';
import { pageEnvelope, pageQueryFields } from '../../core/pagination.js';
import { type Authenticators, currentAuth } from '../../kernel/authenticate/authenticate.js';
import { type AdminGuardDeps, adminOnly } from '../../kernel/authenticate/guards.js';
import { currentOrg, type OrgAccess } from '../../kernel/authenticate/org-access.js';
import { clientContext } from '../../kernel/identity/client-context.js';
import type { Budget } from '../../kernel/throttle/rate-limiter.js';
import type { Invitations } from './invitations.js';
import { AcceptBody, Invitation, InvitationParams, InviteBody, Member, MyOrg, OrgIdParams, OrgView } from './org-schemas.js';
import type { Organizations } from './organizations.js';

export interface InvitationRouteDeps {
  invitations: Invitations;
  organizations: Organizations;
  orgAccess: OrgAccess;
  authn: Authenticators;
  readLimit: Budget;
  userLimit: Budget;
  admin: AdminGuardDeps;
}

const orgNotFound = { 404: { description: 'No such organization, or you are not a member (org_not_found)', schema: ErrorResponse } };

export function invitationRoutes(registry: OpenAPIRegistry, deps: InvitationRouteDeps): ApiRouter {
  const api = new ApiRouter(registry, { tags: ['organizations'] });
  const errors = errorResponses({ 403: 'Your role does not grant this (org_permission_missing), or it grants less than the invitation would' });
  const inviter = [deps.authn.user(deps.userLimit), deps.orgAccess.require('members:invite')];
  const actor = (req: Parameters<typeof currentAuth>[0]) => ({ ...currentOrg(req), userId: currentAuth(req).userId });
  const invitationNotFound = { 404: { description: 'invitation_not_found or org_not_found', schema: ErrorResponse } };

  api.route({
    method: 'post',
    path: '/orgs/:orgId/invitations',
    summary: 'Invite an email address with a role you may grant (members:invite); the link goes through the mail queue',
    description:
      'The answer is the same whether the address has an account or not. An earlier pending invitation of the address is replaced. ' +
      "Messages count against the address's share (EMAIL_PER_ADDRESS_MAX); past it one is quietly not sent. ORG_MAX_MEMBERS counts pending invitations.",
    security: ['bearer'],
    params: OrgIdParams,
    body: InviteBody,
    middleware: inviter,
    responses: {
      201: { description: 'Invited', schema: Invitation },
      409: { description: 'org_member_limit_reached', schema: ErrorResponse },
      ...orgNotFound,
      ...errors,
    },
    handler: async ({ body }, req, res) => {
      res.status(201).json(await deps.invitations.invite(actor(req), body, clientContext(req)));
    },
  });
  api.route({
    method: 'get',
    path: '/orgs/:orgId/invitations',
    summary: 'Pending invitations, newest first (members:invite); expired ones stay until resent or withdrawn',
    security: ['bearer'],
    params: OrgIdParams,
    middleware: [deps.authn.user(deps.readLimit), deps.orgAccess.require('members:invite')],
    responses: { 200: { description: 'The invitations', schema: z.object({ invitations: z.array(Invitation) }) }, ...orgNotFound, ...errors },
    handler: async (_input, req, res) => {
      res.json({ invitations: await deps.invitations.pending(currentOrg(req).orgId) });
    },
  });
  api.route({
    method: 'post',
    path: '/orgs/:orgId/invitations/:invitationId/resend',
    summary: 'Send a pending invitation again: a new link (the old one stops working) and a new expiry (members:invite)',
    security: ['bearer'],
    params: InvitationParams,
    middleware: inviter,
    responses: { 200: { description: 'Sent again', schema: Invitation }, ...invitationNotFound, ...errors },
    handler: async ({ params }, req, res) => {
      res.json(await deps.invitations.resend(actor(req), params.invitationId, clientContext(req)));
    },
  });
  api.route({
    method: 'delete',
    path: '/orgs/:orgId/invitations/:invitationId',
    summary: 'Withdraw a pending invitation; its link stops working (members:invite)',
    security: ['bearer'],
    params: InvitationParams,
    middleware: inviter,
    responses: { 204: { description: 'Withdrawn' }, ...invitationNotFound, ...errors },
    handler: async ({ params }, req, res) => {
      await deps.invitations.revoke(actor(req), params.invitationId, clientContext(req));
      res.status(204).end();
    },
  });
  api.route({
    method: 'post',
    path: '/invitations/accept',
    summary: 'Accept an invitation with the account whose address it was sent to; that also confirms the address',
    description:
      'The token comes from the emailed link (/#invitation=<token>). Single use. 403 invitation_other_address for another account; ' +
      '409 invitation_expired, invitation_used or invitation_revoked; 404 invitation_invalid for anything else.',
    security: ['bearer'],
    body: AcceptBody,
    middleware: [deps.authn.user(deps.userLimit)],
    responses: {
      200: { description: 'You are a member: the organization and your role', schema: MyOrg },
      404: { description: 'invitation_invalid', schema: ErrorResponse },
      409: { description: 'invitation_expired, invitation_used, invitation_revoked, org_limit_reached or org_member_limit_reached', schema: ErrorResponse },
      ...errorResponses({ 403: 'invitation_other_address' }),
    },
    handler: async ({ body }, req, res) => {
      res.json(await deps.invitations.accept(currentAuth(req).userId, body.token, clientContext(req)));
    },
  });

  const admin = adminOnly(deps.admin);
  const adminErrors = errorResponses({ 403: 'Not an administrator' });
  const AdminOrg = OrgView.extend({ members: z.number().int() }).meta({ id: 'AdminOrganizationSummary' });
  api.route({
    method: 'get',
    path: '/admin/orgs',
    summary: 'Every organization, newest first, with its member count; search matches name or slug',
    security: ['bearer'],
    query: z
      .object({
        search: z
          .string()
          .trim()
          .min(1)
          .max(100)
          .refine((search) => !search.includes('\u0000'), 'no U+0000')
          .optional(),
        ...pageQueryFields,
      })
      .strict(),
    middleware: admin,
    responses: { 200: { description: 'A page', schema: pageEnvelope('organizations', AdminOrg, 'AdminOrganizationPage') }, ...adminErrors },
    handler: async ({ query }, _req, res) => {
      res.json(await deps.organizations.list(query));
    },
  });
  api.route({
    method: 'get',
    path: '/admin/orgs/:orgId',
    summary: 'One organization and its members',
    security: ['bearer'],
    params: OrgIdParams,
    middleware: admin,
    responses: {
      200: { description: 'The organization', schema: OrgView.extend({ members: z.array(Member) }).meta({ id: 'AdminOrganization' }) },
      404: { description: 'org_not_found', schema: ErrorResponse },
      ...adminErrors,
    },
    handler: async ({ params }, _req, res) => {
      res.json(await deps.organizations.inspect(params.orgId));
    },
  });
  api.route({
    method: 'delete',
    path: '/admin/orgs/:orgId',
    summary: "Delete any organization; its members' tokens for it stop working at once",
    security: ['bearer'],
    params: OrgIdParams,
    middleware: admin,
    responses: { 204: { description: 'Deleted' }, 404: { description: 'org_not_found', schema: ErrorResponse }, ...adminErrors },
    handler: async ({ params }, req, res) => {
      await deps.organizations.remove(params.orgId, currentAuth(req).userId, clientContext(req));
      res.status(204).end();
    },
  });
  return api;
}
