// A storage every tab of a site reads consistently: IndexedDB.
//
// The client refreshes under a Web Lock and, once it holds it, reads the storage to see whether the tab that held it
// before has renewed the pair already. With localStorage that read can miss the write: Chromium hands a write on to
// the other tabs' processes asynchronously, and the lock may reach the next tab first, which then spends the refresh
// token again (seen in a browser test, a few runs in a hundred). IndexedDB's transactions are ordered in one place:
// a read started after another tab's write has completed sees it.
import { memoryStorage, type TokenStorage } from './storage.js';

// The few parts of IndexedDB used here, written out so the package needs no DOM types to compile.
interface RequestLike<T> {
  readonly result: T;
  readonly error: Error | null;
  addEventListener(type: 'success' | 'error' | 'upgradeneeded', listener: () => void): void;
}
interface StoreLike {
  get(key: string): RequestLike<unknown>;
  put(value: string, key: string): RequestLike<unknown>;
  delete(key: string): RequestLike<unknown>;
}
interface TransactionLike {
  readonly error: Error | null;
  objectStore(name: string): StoreLike;
  addEventListener(type: 'complete' | 'error' | 'abort', listener: () => void): void;
}
interface DatabaseLike {
  transaction(store: string, mode: 'readonly' | 'readwrite'): TransactionLike;
  createObjectStore(name: string): unknown;
}
/** What `indexedDB` is in a browser. */
export interface IndexedDbFactoryLike {
  open(name: string, version: number): RequestLike<DatabaseLike>;
}

export interface IndexedDbStorageOptions {
  /** The database's name (`authkit` unless given); its one object store is `session`. */
  database?: string;
  /** Where IndexedDB is not there or cannot be opened (some private modes): `localStorage` if there is one, else memory. */
  fallback?: TokenStorage;
  /** IndexedDB itself: `globalThis.indexedDB` unless given. */
  indexedDB?: IndexedDbFactoryLike;
}

const STORE = 'session';

/**
 * The session kept in IndexedDB, shared by every tab of the site like localStorage, but coherent: the storage to give
 * a browser app whose tabs refresh under the client's Web Lock.
 */
export function indexedDbStorage(options: IndexedDbStorageOptions = {}): TokenStorage {
  const { database: name = 'authkit' } = options;
  const factory = options.indexedDB ?? (globalThis as { indexedDB?: IndexedDbFactoryLike }).indexedDB;
  const fallback = options.fallback ?? (globalThis as { localStorage?: TokenStorage }).localStorage ?? memoryStorage();

  let opened: Promise<DatabaseLike> | undefined;
  const database = () =>
    (opened ??= new Promise<DatabaseLike>((resolve, reject) => {
      if (factory === undefined) throw new Error('IndexedDB is not available here');
      const request = factory.open(name, 1);
      request.addEventListener('upgradeneeded', () => request.result.createObjectStore(STORE));
      request.addEventListener('success', () => resolve(request.result));
      request.addEventListener('error', () => reject(request.error ?? new Error('IndexedDB could not be opened')));
    }));

  /** One request in a transaction of its own; its result once the transaction is complete (a write: committed). */
  async function run(mode: 'readonly' | 'readwrite', act: (store: StoreLike) => RequestLike<unknown>): Promise<unknown> {
    const db = await database();
    return new Promise((resolve, reject) => {
      const transaction = db.transaction(STORE, mode);
      const request = act(transaction.objectStore(STORE));
      transaction.addEventListener('complete', () => resolve(request.result));
      transaction.addEventListener('error', () => reject(transaction.error ?? new Error('IndexedDB refused the write')));
      transaction.addEventListener('abort', () => reject(transaction.error ?? new Error('IndexedDB aborted the transaction')));
    });
  }

  /** `work` on IndexedDB, or `instead` on the fallback when IndexedDB cannot be opened at all. */
  async function kept<T>(work: () => Promise<T>, instead: () => T | Promise<T>): Promise<T> {
    try {
      await database();
    } catch {
      return instead();
    }
    return work();
  }

  return {
    getItem: (key) =>
      kept(
        async () => {
          const value = await run('readonly', (store) => store.get(key));
          return typeof value === 'string' ? value : null;
        },
        () => fallback.getItem(key),
      ),
    setItem: (key, value) =>
      kept(
        async () => void (await run('readwrite', (store) => store.put(value, key))),
        () => fallback.setItem(key, value),
      ),
    removeItem: (key) =>
      kept(
        async () => void (await run('readwrite', (store) => store.delete(key))),
        () => fallback.removeItem(key),
      ),
  };
}
