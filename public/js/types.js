// The shapes of what the server answers, as the page uses them (JSDoc types only; nothing runs here).

/** @typedef {{ id: string, username: string, email: string, emailVerified?: boolean, hasPassword?: boolean }} User hasPassword: as GET /me answers */
/** @typedef {{ id: string, name: string, url: string, width: number, height: number, size: number }} Image */
/** @typedef {{ images: Image[], maxUploadBytes: number }} ImagePage */
/** @typedef {{ id: string, name: string, prefix: string, scopes: string[], lastUsedAt: string | null }} ApiKey */
/** @typedef {{ id: string, name: string, deviceType: string, createdAt: string, lastUsedAt: string | null }} Passkey */
/**
 * @typedef {{ type: string, createdAt: string, ip: string | null, userAgent: string | null,
 *   details?: Record<string, unknown> }} SecurityEvent
 */
/** @typedef {{ type: string, label: string }} EventType */
/**
 * @typedef {{ id: string, createdAt: string, lastUsedAt: string, expiresAt: string, userAgent: string | null,
 *   ip: string | null, current: boolean }} Session
 */
/**
 * @typedef {{ id: string, name: string, slug: string, settings: Record<string, unknown>, externalId: string | null,
 *   createdAt: string, updatedAt: string, role: string }} MyOrganization an organization you belong to, with your role
 */
/** @typedef {MyOrganization & { permissions: string[] }} OrganizationStanding one organization, with what your role grants */
/** @typedef {{ userId: string, username: string, email: string, role: string, joinedAt: string }} Member */
/** @typedef {{ name: string, description: string, permissions: string[], builtIn: boolean }} OrgRole */
/** @typedef {{ id: string, email: string, role: string, invitedBy: string | null, createdAt: string, expiresAt: string }} Invitation */
/** @typedef {{ access_token: string, token_type: string, expires_in: number }} SwitchedToken */

export {};
