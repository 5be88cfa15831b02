// The roles the service itself knows: every account is a user; administrators manage the rest.
export const DEFAULT_ROLE = 'user';
export const ADMIN_ROLE = 'admin';
