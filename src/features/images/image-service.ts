// Stores, lists, serves and deletes users' images, never leaving a file without a row or a row without a file.
import { pipeline } from 'node:stream';
import { ImageProbe } from './image-probe.js';
import type { Readable } from 'node:stream';
import { isDatabaseUnavailable, type Prisma } from '../../core/db.js';
import { AppError } from '../../core/errors.js';
import { type PageQuery, pageWindow } from '../../core/pagination.js';
import type { Logger } from '../../core/logger.js';
import type { AuthContext } from '../auth/authenticate.js';
import { ADMIN_ROLE } from '../admin/admin-service.js';
import { inspectImage, sanitiseFileName } from './image-content.js';
import type { ImageStorage } from './image-storage.js';
import type { ImageUrlSigner } from './signed-urls.js';

export interface ImageView {
  id: string;
  ownerId: string;
  name: string;
  type: string;
  size: number;
  width: number;
  height: number;
  sha256: string;
  createdAt: string;
  /** A signed URL for the bytes, valid until `urlExpiresAt`. */
  url: string;
  urlExpiresAt: string;
}

interface ImageRow {
  id: string;
  ownerId: string;
  storageKey: string;
  originalName: string;
  mimeType: string;
  size: number;
  sha256: string;
  width: number;
  height: number;
  createdAt: Date;
}

const notFound = () => new AppError('not_found', 'No such image.');

export class ImageService {
  constructor(
    private readonly prisma: Prisma,
    private readonly storage: ImageStorage,
    private readonly signer: ImageUrlSigner,
    private readonly logger: Logger,
  ) {}

  private view(row: ImageRow): ImageView {
    const signed = this.signer.sign(row.id);
    return {
      id: row.id,
      ownerId: row.ownerId,
      name: row.originalName,
      type: row.mimeType,
      size: row.size,
      width: row.width,
      height: row.height,
      sha256: row.sha256,
      createdAt: row.createdAt.toISOString(),
      url: signed.url,
      urlExpiresAt: signed.expiresAt.toISOString(),
    };
  }

  /**
   * Streams the upload to storage while watching it (length, SHA-256, head and tail), then checks what it was: a
   * file that is not a complete PNG, JPEG, GIF or WebP is removed again. Then records it; a failed record removes the
   * stored bytes too. Nothing holds the whole file in memory.
   */
  async upload(ownerId: string, file: { source: Readable; originalName?: string; maxBytes: number }): Promise<ImageView> {
    const probe = new ImageProbe(file.maxBytes);
    // One pipeline: a source that fails (the client went away, the form broke off) fails the probe and the write.
    const storageKey = await this.storage.put(
      pipeline(file.source, probe, () => {
        // Errors reach the storage's write through the probe; nothing more to do here.
      }),
    );
    const inspection = inspectImage(probe.parts());
    if (!inspection.ok) {
      await this.removeBytes(storageKey);
      throw inspection.reason === 'unsupported'
        ? new AppError('unsupported_media_type', 'Only PNG, JPEG, GIF and WebP images are accepted.')
        : new AppError('validation_failed', 'The image is truncated or damaged.');
    }
    try {
      const row = await this.prisma.image.create({
        data: {
          ownerId,
          storageKey,
          originalName: sanitiseFileName(file.originalName),
          mimeType: inspection.image.type,
          size: probe.length,
          sha256: probe.sha256(),
          width: inspection.image.width,
          height: inspection.image.height,
        },
      });
      return this.view(row);
    } catch (err) {
      // A lost connection leaves the insert's outcome unknown: the row may exist, so its bytes stay (the sweep
      // settles it). Any other failure means no row was written.
      if (isDatabaseUnavailable(err)) throw err;
      await this.removeBytes(storageKey);
      throw err;
    }
  }

  /** Undoes an upload the request that made it did not complete (its form turned out malformed after the file). */
  async discard(id: string): Promise<void> {
    const row = await this.prisma.image.findUnique({ where: { id } });
    if (!row) return;
    await this.prisma.image.delete({ where: { id } });
    await this.removeBytes(row.storageKey);
  }

  private async removeBytes(storageKey: string): Promise<void> {
    await this.storage.remove(storageKey).catch((err: unknown) => {
      this.logger.error({ err, storageKey }, 'could not remove the bytes of a failed upload (the hourly sweep will)');
    });
  }

  async list(auth: AuthContext, query: PageQuery & { scope: 'mine' | 'all' }) {
    if (query.scope === 'all' && !auth.roles.includes(ADMIN_ROLE)) throw new AppError('forbidden', 'Only administrators can list every image.');
    const where = query.scope === 'all' ? {} : { ownerId: auth.userId };
    const [total, rows] = await this.prisma.$transaction([
      this.prisma.image.count({ where }),
      this.prisma.image.findMany({
        where,
        orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
        ...pageWindow(query),
      }),
    ]);
    return { images: rows.map((row) => this.view(row)), page: query.page, pageSize: query.pageSize, total };
  }

  /** The caller's image; another user's answers as if it did not exist, except to administrators. */
  private async visible(auth: AuthContext, id: string): Promise<ImageRow> {
    const row = await this.prisma.image.findUnique({ where: { id } });
    if (!row || (row.ownerId !== auth.userId && !auth.roles.includes(ADMIN_ROLE))) throw notFound();
    return row;
  }

  async get(auth: AuthContext, id: string): Promise<ImageView> {
    return this.view(await this.visible(auth, id));
  }

  async delete(auth: AuthContext, id: string): Promise<void> {
    const row = await this.visible(auth, id);
    if (row.ownerId !== auth.userId) throw new AppError('forbidden', 'Only the owner can delete an image.');
    // Row first: a missing file behind a row would be a broken image; an orphan file is removed by the sweep.
    await this.prisma.image.delete({ where: { id } });
    await this.storage.remove(row.storageKey);
  }

  /**
   * The bytes behind a signed URL, or (with presigned downloads) where to fetch them, valid `expiresInS`; bytes that
   * have gone missing answer as a missing image, not a failure.
   */
  async content(id: string, expiresInS: number): Promise<{ stream: Readable; row: ImageRow } | { redirect: string; row: ImageRow }> {
    const row = await this.prisma.image.findUnique({ where: { id } });
    if (!row) throw notFound();
    const redirect = await this.storage.downloadUrl?.(row.storageKey, { expiresInS, contentType: row.mimeType, filename: row.originalName });
    if (redirect !== undefined) return { redirect, row };
    try {
      return { stream: await this.storage.open(row.storageKey), row };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw notFound();
      throw err;
    }
  }


  /** For account deletion: finds what to remove now, and returns the step that removes the bytes afterwards. */
  async prepareOwnerRemoval(ownerId: string): Promise<() => Promise<void>> {
    const rows = await this.prisma.image.findMany({ where: { ownerId }, select: { storageKey: true } });
    return async () => {
      for (const row of rows) await this.storage.remove(row.storageKey);
    };
  }
}

/**
 * Settles what a crash or a lost reply can leave behind, in both directions: stored bytes no row refers to, and
 * rows whose bytes are gone. Only entries older than `graceMs` are touched, so uploads in flight (bytes first, then
 * the row) are never mistaken for orphans; safe to run on several instances at once. Returns what it removed.
 */
export async function sweepImageOrphans(
{ prisma, storage, logger }: { prisma: Prisma; storage: ImageStorage; logger: Logger },
nowMs: number,
graceMs: number,
): Promise<{ files: number; rows: number }> {
  const before = nowMs - graceMs;
  let files = 0;
  for await (const stored of storage.list()) {
    if (stored.modifiedAtMs >= before) continue;
    if ((await prisma.image.count({ where: { storageKey: stored.key } })) > 0) continue;
    await storage.remove(stored.key);
    files++;
  }
  let rows = 0;
  for (const row of await prisma.image.findMany({ where: { createdAt: { lt: new Date(before) } }, select: { id: true, storageKey: true } })) {
    if (await storage.has(row.storageKey)) continue;
    rows += (await prisma.image.deleteMany({ where: { id: row.id } })).count;
  }
  if (files + rows > 0) logger.warn({ files, rows }, 'image sweep removed orphans');
  return { files, rows };
}
