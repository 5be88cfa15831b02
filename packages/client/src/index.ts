// @authkit/client: sign-in for apps that use authkit. See README.md.
export { type AuthClient, type AuthClientOptions, createAuthClient, type SignInResult } from './client.js';
export { AuthError, type ErrorCode, type ErrorReason } from './errors.js';
export { type AuthEvent, type AuthListener, broadcastChannel, type ChannelLike, type LockManagerLike, type Session } from './session.js';
export { memoryStorage, type TokenStorage } from './storage.js';
export { indexedDbStorage, type IndexedDbFactoryLike, type IndexedDbStorageOptions } from './indexeddb-storage.js';
/** Every request and answer the server's OpenAPI document describes. */
export type * as Api from './generated/types.gen.js';
