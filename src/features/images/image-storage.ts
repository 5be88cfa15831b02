// Where image bytes live: a small interface, and the local-disk implementation used by default.
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { AppError } from '../../core/errors.js';
import type { S3Settings } from './s3-storage.js';

/** Swap in a shared store (S3, GCS, a network volume) by implementing these calls. */
export interface ImageStorage {
  /**
   * Streams bytes under a new random key and returns it. Nothing is left behind if it (or the source) fails. A store
   * that serves the bytes itself (S3 with presigned downloads) keeps the type and name to answer with.
   */
  put(source: Readable, describe: StoredObject): Promise<string>;
  /** The bytes; a key with none rejects with an error whose `code` is `ENOENT`. */
  open(key: string): Promise<Readable>;
  /** Removes the bytes; removing a key that is already gone is not an error. */
  remove(key: string): Promise<void>;
  /** Whether bytes exist under the key. */
  has(key: string): Promise<boolean>;
  /** Every stored key with when it was written, for the orphan sweep (partial writes are not listed). */
  list(): AsyncIterable<{ key: string; modifiedAtMs: number }>;
  /** A URL the client may fetch the bytes from directly (a presigned S3 URL), when the store offers one. */
  downloadUrl?(key: string, options: { expiresInS: number; contentType: string; filename: string }): Promise<string> | undefined;
}

/** What the stored bytes are: their sniffed type and their (sanitised) display name. */
export interface StoredObject {
  contentType: string;
  filename: string;
}

const KEY = /^[A-Za-z0-9_-]{20,64}$/;

/** Errors of a disk that refuses writes (read-only, full, no permission): the operator's to mend, 503 to the client. */
const DISK_REFUSALS = new Set(['EACCES', 'EPERM', 'EROFS', 'ENOSPC', 'EDQUOT', 'EMFILE', 'ENFILE']);

/** Throws 503 image_storage_unavailable for a disk that refuses writes, or `err` itself for anything else. */
export function rethrowDiskRefusal(err: unknown): never {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code !== undefined && DISK_REFUSALS.has(code)) throw new AppError('image_storage_unavailable', { cause: err, headers: { 'Retry-After': '30' } });
  throw err;
}

export class LocalDiskStorage implements ImageStorage {
  private ready?: Promise<unknown>;

  constructor(private readonly dir: string) {}

  private file(key: string): string {
    // Keys are ours, but a key is still never allowed to name a path outside the directory.
    if (!KEY.test(key)) throw new Error('malformed storage key');
    return path.join(this.dir, key);
  }

  async put(source: Readable, _describe: StoredObject): Promise<string> {
    this.ready ??= mkdir(this.dir, { recursive: true, mode: 0o700 }).catch((err: unknown) => {
      this.ready = undefined;
      throw err;
    });
    await this.ready.catch(rethrowDiskRefusal);
    const key = randomBytes(18).toString('base64url');
    const target = this.file(key);
    // Write beside the target and rename, so a crash mid-write never leaves a partial image under a real key.
    const partial = `${target}.partial`;
    // Opened before the first byte, so the cleanup below can never run ahead of the file's creation.
    const handle = await open(partial, 'wx', 0o600).catch(rethrowDiskRefusal);
    try {
      await pipeline(source, handle.createWriteStream());
      await rename(partial, target);
    } catch (err) {
      await handle.close().catch(() => undefined);
      await rm(partial, { force: true });
      rethrowDiskRefusal(err);
    }
    return key;
  }

  open(key: string): Promise<Readable> {
    const stream = createReadStream(this.file(key));
    return new Promise((resolve, reject) => {
      stream.once('open', () => resolve(stream));
      stream.once('error', reject);
    });
  }

  async remove(key: string): Promise<void> {
    await rm(this.file(key), { force: true });
  }

  async *list(): AsyncIterable<{ key: string; modifiedAtMs: number }> {
    const names = await readdir(this.dir).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return [];
      throw err;
    });
    for (const name of names) {
      if (!KEY.test(name)) continue;
      const stats = await stat(this.file(name)).catch(() => undefined);
      if (stats) yield { key: name, modifiedAtMs: stats.mtimeMs };
    }
  }

  async has(key: string): Promise<boolean> {
    return stat(this.file(key)).then(
      () => true,
      () => false,
    );
  }
}

/** The store the settings name: the bucket with STORAGE=s3, else the upload directory. */
export async function openImageStorage(config: { uploadDir: string; s3?: S3Settings }): Promise<ImageStorage> {
  if (!config.s3) return new LocalDiskStorage(config.uploadDir);
  // Loaded only when asked for: the AWS SDK is large, and the embedded default never needs it.
  const { S3ImageStorage } = await import('./s3-storage.js');
  return new S3ImageStorage(config.s3);
}
