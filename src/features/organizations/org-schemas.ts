// The organization API's request and response shapes, each documented once.
import { z } from 'zod';
import { API_KEY_STANDING, isBuiltInOrgRole, ORG_PERMISSIONS, OWNER_ONLY_PERMISSIONS } from '../../kernel/identity/org-roles.js';

/**
 * An id as a route takes it: a UUID in any case, compared in lower case (PostgreSQL reads both the same, but the
 * revocation store and the audit log compare strings).
 */
export const Id = z.uuid().transform((id) => id.toLowerCase());
export const OrgIdParams = z.object({ orgId: Id });
export const MemberParams = OrgIdParams.extend({ userId: Id });
export const InvitationParams = OrgIdParams.extend({ invitationId: Id });

export const Slug = z
  .string()
  .regex(/^[a-z0-9](?:[a-z0-9-]{0,48}[a-z0-9])?$/, 'lower-case letters, digits and hyphens, 1 to 50, not starting or ending with a hyphen')
  .meta({ description: 'Unique; lower-case letters, digits and hyphens', example: 'acme' });
const Name = z.string().trim().min(1).max(100);
const Settings = z.record(z.string(), z.unknown()).meta({ description: 'A JSON object of at most 4 kB the product keeps per organization' });

/** A role name as a route takes it: a built-in one or one the organization defines. */
export const RoleName = z.string().regex(/^[a-z][a-z0-9_-]{0,31}$/, 'a role name: lower-case letter first, then letters, digits, _ or -, at most 32');
/** A name for a role the organization defines: never a built-in one's. */
const CustomRoleName = RoleName.refine(
  (name) => !isBuiltInOrgRole(name) && name !== API_KEY_STANDING,
  'owner, admin and member are built in; api-key is reserved',
);
export const RoleParams = OrgIdParams.extend({ name: RoleName });

export const CreateOrgBody = z.object({ name: Name, slug: Slug, settings: Settings.optional() }).strict().meta({ id: 'CreateOrganizationRequest' });
export const UpdateOrgBody = z
  .object({ name: Name.optional(), slug: Slug.optional(), settings: Settings.optional() })
  .strict()
  .refine((body) => Object.keys(body).length > 0, 'name, slug or settings')
  .meta({ id: 'UpdateOrganizationRequest' });

const OrgFields = {
  id: z.uuid(),
  name: z.string(),
  slug: z.string(),
  settings: z.record(z.string(), z.unknown()),
  externalId: z.string().nullable().meta({ description: 'Its id in another system (provisioning); null unless set' }),
  createdAt: z.iso.datetime(),
  updatedAt: z.iso.datetime(),
};
export const OrgView = z.object(OrgFields).meta({ id: 'Organization' });
export const MyOrg = z.object({ ...OrgFields, role: z.string().meta({ description: 'Your role in it' }) }).meta({ id: 'MyOrganization' });
export const OrgWithStanding = z
  .object({ ...OrgFields, role: z.string(), permissions: z.array(z.string()).meta({ description: 'What your role grants' }) })
  .meta({ id: 'OrganizationWithStanding' });

export const Member = z
  .object({ userId: z.uuid(), username: z.string(), email: z.string(), role: z.string(), joinedAt: z.iso.datetime() })
  .meta({ id: 'OrganizationMember' });
export const ChangeRoleBody = z.object({ role: RoleName }).strict().meta({ id: 'ChangeMemberRoleRequest' });
export const TransferBody = z.object({ userId: Id }).strict().meta({ id: 'TransferOwnershipRequest' });

const GrantablePermission = z
  .enum(ORG_PERMISSIONS)
  .refine((permission) => !OWNER_ONLY_PERMISSIONS.includes(permission), `${OWNER_ONLY_PERMISSIONS.join(' and ')} belong to owners alone`);
export const OrgRoleView = z
  .object({ name: z.string(), description: z.string(), permissions: z.array(z.string()), builtIn: z.boolean() })
  .meta({ id: 'OrganizationRole' });
export const DefineRoleBody = z
  .object({ name: CustomRoleName, permissions: z.array(GrantablePermission).max(ORG_PERMISSIONS.length), description: z.string().trim().max(200).optional() })
  .strict()
  .meta({ id: 'DefineOrganizationRoleRequest' });
export const RedefineRoleBody = DefineRoleBody.omit({ name: true }).meta({ id: 'RedefineOrganizationRoleRequest' });

export const InviteBody = z
  .object({ email: z.email().max(254), role: RoleName.default('member') })
  .strict()
  .meta({ id: 'InviteRequest' });
export const Invitation = z
  .object({
    id: z.uuid(),
    email: z.string(),
    role: z.string(),
    invitedBy: z.uuid().nullable(),
    createdAt: z.iso.datetime(),
    expiresAt: z.iso.datetime().meta({ description: 'Past it the link no longer works; resend for a new one' }),
  })
  .meta({ id: 'Invitation' });
export const AcceptBody = z
  .object({ token: z.string().min(1).max(200).meta({ description: 'From the emailed link: /#invitation=<token>' }) })
  .strict()
  .meta({ id: 'AcceptInvitationRequest' });

export const SwitchedToken = z
  .object({
    access_token: z.string().meta({ description: 'For the same session, with org_id, org_role and org_permissions (none after DELETE /me/active-org)' }),
    token_type: z.enum(['Bearer', 'DPoP']),
    expires_in: z.number().int(),
  })
  .meta({ id: 'SwitchedAccessToken' });
