// The client library's IndexedDB storage where there is no IndexedDB (Node, some private modes): it keeps the session
// in the fallback it is given, so one configuration serves every runtime. Its IndexedDB path runs in Chromium, in the
// page's two-tab test (tests/e2e/screens/tabs.ts).
import { describe, expect, it } from 'vitest';
import { type IndexedDbFactoryLike, indexedDbStorage, memoryStorage } from '../../packages/client/src/index.js';

describe('the client library: indexedDbStorage', () => {
  it('when the runtime has no IndexedDB, then items are kept in the fallback storage', async () => {
    const fallback = memoryStorage();
    const storage = indexedDbStorage({ fallback });

    await storage.setItem('k', 'v');

    expect(await fallback.getItem('k')).toBe('v');
    expect(await storage.getItem('k')).toBe('v');
    await storage.removeItem('k');
    expect(await fallback.getItem('k')).toBeNull();
  });

  it('when IndexedDB refuses to open, then the fallback keeps the items and nothing throws', async () => {
    const refusing: IndexedDbFactoryLike = {
      open: () => {
        const listeners = new Map<string, () => void>();
        queueMicrotask(() => listeners.get('error')?.());
        return {
          get result(): never {
            throw new Error('no database');
          },
          error: new Error('blocked by the browser'),
          addEventListener: (type, listener) => void listeners.set(type, listener),
        };
      },
    };
    const fallback = memoryStorage();
    const storage = indexedDbStorage({ indexedDB: refusing, fallback });

    await storage.setItem('k', 'v');

    expect(await fallback.getItem('k')).toBe('v');
    expect(await storage.getItem('k')).toBe('v');
  });
});
