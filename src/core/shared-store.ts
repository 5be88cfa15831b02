// Where state shared by every instance lives: Redis, or this process when the service runs alone.
import type { Redis } from './redis.js';

export type SharedStore =
  | { readonly kind: 'redis'; readonly redis: Redis; /** Prepended to every key this service writes. */ readonly prefix: string }
  | { readonly kind: 'memory' };

export const inProcessStore: SharedStore = { kind: 'memory' };

export function redisStore(redis: Redis, prefix: string): SharedStore {
  return { kind: 'redis', redis, prefix };
}

/** Resolves when the store answers; the in-process store always does. */
export async function pingStore(store: SharedStore): Promise<void> {
  if (store.kind === 'redis') await store.redis.ping();
}
