// What a member may do inside an organization: the permission names, the three built-in roles, and the rule that
// nobody hands out more than they hold.

/** Every permission an organization role can grant; a product checks these in `org_permissions`. */
export const ORG_PERMISSIONS = [
  'org:update',
  'org:delete',
  'org:transfer',
  'members:read',
  'members:invite',
  'members:update',
  'members:remove',
  'roles:manage',
  'api-keys:manage',
  'audit:read',
  'images:read',
  'images:write',
] as const;
export type OrgPermission = (typeof ORG_PERMISSIONS)[number];

/** Held by owners alone: no admin and no role an organization defines can delete it or hand it over. */
export const OWNER_ONLY_PERMISSIONS: readonly OrgPermission[] = ['org:delete', 'org:transfer'];

export const OWNER = 'owner';
/** The role an organization's API key stands in (never a role an organization may define). */
export const API_KEY_STANDING = 'api-key';
export const BUILT_IN_ORG_ROLES = {
  owner: ORG_PERMISSIONS,
  admin: ORG_PERMISSIONS.filter((permission) => !OWNER_ONLY_PERMISSIONS.includes(permission)),
  member: ['members:read', 'images:read', 'images:write'],
} as const satisfies Record<string, readonly OrgPermission[]>;
export type BuiltInOrgRole = keyof typeof BUILT_IN_ORG_ROLES;

export function isBuiltInOrgRole(role: string): role is BuiltInOrgRole {
  return Object.hasOwn(BUILT_IN_ORG_ROLES, role);
}

/** What a role grants: a built-in one's list, or the permissions its organization defined (`custom`, when it has the role). */
export function permissionsOfRole(role: string, custom: { permissions: string[] } | null | undefined): OrgPermission[] {
  if (isBuiltInOrgRole(role)) return [...BUILT_IN_ORG_ROLES[role]];
  // A stored list is filtered by the vocabulary, so a permission that no longer exists grants nothing.
  return (custom?.permissions ?? []).filter((permission): permission is OrgPermission => (ORG_PERMISSIONS as readonly string[]).includes(permission));
}

/** Whether `held` covers every permission in `granted`: an actor may hand out (or take from others) only that. */
export function covers(held: readonly string[], granted: readonly string[]): boolean {
  return granted.every((permission) => held.includes(permission));
}
