// Stores, lists, serves and deletes users' images, never leaving a file without a row or a row without a file.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rm } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ImageProbe } from './image-probe.js';
import type { Clock } from '../../core/clock.js';
import { isDatabaseUnavailable, type Prisma } from '../../core/db.js';
import { AppError } from '../../core/errors.js';
import { type PageQuery, pageWindow } from '../../core/pagination.js';
import type { Logger } from '../../core/logger.js';
import type { AuthContext } from '../../kernel/authenticate/authenticate.js';
import { ADMIN_ROLE } from '../../kernel/identity/roles.js';
import type { OrgAccess } from '../../kernel/authenticate/org-access.js';
import { type ImageType, type InspectedImage, inspectImage, isLosslessWebp, sanitiseFileName } from './image-content.js';
import { ImageProcessor } from './image-processing.js';
import { type ImageStorage, rethrowDiskRefusal } from './image-storage.js';
import type { ImageUrlSigner } from './signed-urls.js';

export interface ImageView {
  id: string;
  /** Who uploaded it; null once that account is gone (an organization's image outlives its uploader). */
  ownerId: string | null;
  /** The organization it belongs to, or null for the uploader's own. */
  orgId: string | null;
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
  ownerId: string | null;
  orgId: string | null;
  storageKey: string;
  originalName: string;
  mimeType: string;
  size: number;
  sha256: string;
  width: number;
  height: number;
  createdAt: Date;
}

export interface ImageSettings {
  /** Where uploads wait, on local disk, while they are checked (the upload directory); each is removed afterwards. */
  spoolDir: string;
  /** IMAGE_MAX_PIXELS: the most pixels a header may declare, every frame counted. */
  maxPixels: number;
  /** IMAGE_STRIP_METADATA: store a re-encoded copy without metadata rather than the bytes as sent. */
  stripMetadata: boolean;
  /** IMAGE_QUOTA_BYTES_PER_USER: what one owner's images may take together; 0: no limit. */
  quotaBytesPerUser: number;
}

/** An owner's storage: what their images take and what they may (null: no limit). */
export interface StorageUsage {
  usedBytes: number;
  quotaBytes: number | null;
}

const notFound = () => new AppError('image_not_found');

const tooManyPixels = (pixels: number, maxPixels: number) =>
  new AppError('image_too_large_dimensions', `The image declares more than ${maxPixels} pixels (IMAGE_MAX_PIXELS).`, { details: { pixels, maxPixels } });

export class ImageService {
  private readonly processor: ImageProcessor;

  constructor(
    private readonly prisma: Prisma,
    private readonly storage: ImageStorage,
    private readonly signer: ImageUrlSigner,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly settings: ImageSettings,
    private readonly orgs: Pick<OrgAccess, 'standingOf'>,
  ) {
    this.processor = new ImageProcessor(settings.maxPixels);
  }

  private view(row: ImageRow): ImageView {
    const signed = this.signer.sign(row.id);
    return {
      id: row.id,
      ownerId: row.ownerId,
      orgId: row.orgId,
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
   * Spools the upload to local disk while watching it (length, SHA-256, head and tail), then judges it there: a file
   * that is not a complete PNG, JPEG, GIF or WebP, or whose header declares more than `maxPixels`, is refused before
   * anything decodes it. What is stored is a re-encoded copy without metadata (or, with stripping off, the bytes as
   * sent), recorded only if it fits the owner's quota; a failed record removes the stored bytes too. The spooled
   * file is always removed; nothing holds the upload whole in memory before it has passed those checks.
   */
  async upload(ownerId: string, file: { source: Readable; originalName?: string; maxBytes: number; orgId?: string }): Promise<ImageView> {
    const probe = new ImageProbe(file.maxBytes);
    await mkdir(this.settings.spoolDir, { recursive: true, mode: 0o700 }).catch(rethrowDiskRefusal);
    // Not a storage key (keys have no dot), so neither the store's listing nor the sweep ever takes it for an image.
    const spooled = path.join(this.settings.spoolDir, `${randomBytes(12).toString('base64url')}.incoming`);
    // Opened before the first byte, so the removal below can never run ahead of the file's creation.
    const handle = await open(spooled, 'wx', 0o600).catch(rethrowDiskRefusal);
    try {
      // One pipeline: a source that fails (the client went away, the form broke off) fails the probe and the write.
      await pipeline(file.source, probe, handle.createWriteStream());
      const sent = this.judge(probe);
      const layout = await this.processor.layout(spooled, sent.type);
      if (layout.pixels > this.settings.maxPixels) throw tooManyPixels(layout.pixels, this.settings.maxPixels);
      const name = sanitiseFileName(file.originalName);
      if (!this.settings.stripMetadata) {
        return await this.store({ ownerId, orgId: file.orgId ?? null }, name, createReadStream(spooled), {
          ...sent,
          size: probe.length,
          sha256: probe.sha256(),
        });
      }
      const bytes = await this.processor.withoutMetadata(spooled, sent.type, layout, sent.type === 'image/webp' && isLosslessWebp(probe.parts().head));
      // What is stored is described from its own bytes: a re-encoding has its own size, hash and (in principle) header.
      const inspection = inspectImage(bytes);
      if (!inspection.ok || inspection.image.type !== sent.type)
        throw new Error(`re-encoding a ${sent.type} gave ${inspection.ok ? inspection.image.type : inspection.reason}`);
      return await this.store({ ownerId, orgId: file.orgId ?? null }, name, Readable.from([bytes]), {
        ...inspection.image,
        size: bytes.length,
        sha256: createHash('sha256').update(bytes).digest('hex'),
      });
    } finally {
      await handle.close().catch(() => undefined);
      await rm(spooled, { force: true });
    }
  }

  /** What the spooled bytes are, by their own signature, end and header; refused unless an image within the limit. */
  private judge(probe: ImageProbe): InspectedImage {
    const inspection = inspectImage(probe.parts());
    if (!inspection.ok) {
      throw inspection.reason === 'unsupported' ? new AppError('image_type_unsupported') : new AppError('image_damaged');
    }
    const { width, height } = inspection.image;
    if (width * height > this.settings.maxPixels) throw tooManyPixels(width * height, this.settings.maxPixels);
    return inspection.image;
  }

  /** Writes the bytes to storage, then records them within the owner's quota; a failed record removes the bytes. */
  private async store(
    { ownerId, orgId }: { ownerId: string; orgId: string | null },
    name: string,
    source: Readable,
    stored: { type: ImageType; width: number; height: number; size: number; sha256: string },
  ): Promise<ImageView> {
    const storageKey = await this.storage.put(source, { contentType: stored.type, filename: name });
    const data = {
      ownerId,
      orgId,
      storageKey,
      originalName: name,
      mimeType: stored.type,
      size: stored.size,
      sha256: stored.sha256,
      width: stored.width,
      height: stored.height,
    };
    try {
      return this.view(await this.recordWithinQuota(data));
    } catch (err) {
      // A lost connection leaves the insert's outcome unknown: the row may exist, so its bytes stay (the sweep
      // settles it). Any other failure (the quota included) means no row was written.
      if (isDatabaseUnavailable(err)) throw err;
      await this.removeBytes(storageKey);
      throw err;
    }
  }

  /**
   * Inserts the row unless it would take its quota's holder (the organization for its images, else the uploader)
   * past the quota. Uploads to one holder take turns (a transaction lock keyed by it) from the sum to the commit, so
   * two at once can never both fit into the same space.
   */
  private async recordWithinQuota(data: Omit<ImageRow, 'id' | 'createdAt'> & { ownerId: string }): Promise<ImageRow> {
    const quota = this.settings.quotaBytesPerUser;
    const row = { ...data, createdAt: new Date(this.clock.now()) };
    if (quota === 0) return this.prisma.image.create({ data: row });
    const holder = quotaHolder(data.orgId === null ? { ownerId: data.ownerId } : { orgId: data.orgId });
    return this.prisma.$transaction(async (tx) => {
      await tx.$executeRaw`SELECT pg_advisory_xact_lock(hashtextextended(${`image-quota:${holder.lock}`}::text, 0))`;
      const used = (await tx.image.aggregate({ where: holder.where, _sum: { size: true } }))._sum.size ?? 0;
      if (used + data.size > quota) {
        throw new AppError('storage_quota_exceeded', {
          details: { usedBytes: used, quotaBytes: quota, imageBytes: data.size },
        });
      }
      return tx.image.create({ data: row });
    });
  }

  /** What a person's own images, or an organization's, take, and the quota (IMAGE_QUOTA_BYTES_PER_USER, one each). */
  async usage(of: { ownerId: string } | { orgId: string }): Promise<StorageUsage> {
    const used = (await this.prisma.image.aggregate({ where: quotaHolder(of).where, _sum: { size: true } }))._sum.size ?? 0;
    return { usedBytes: used, quotaBytes: this.settings.quotaBytesPerUser === 0 ? null : this.settings.quotaBytesPerUser };
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

  /** `orgId`: the organization's images (the caller's standing there was checked); otherwise the caller's own. */
  async list(auth: AuthContext, query: PageQuery & { scope: 'mine' | 'all'; orgId?: string }) {
    if (query.scope === 'all' && !auth.roles.includes(ADMIN_ROLE)) throw new AppError('admin_only');
    const where = query.scope === 'all' ? {} : query.orgId !== undefined ? { orgId: query.orgId } : { ownerId: auth.userId, orgId: null };
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

  /**
   * The image if the caller may see it: their own, or an organization's where their standing grants images:read;
   * anything else answers as if it did not exist, except to administrators.
   */
  private async visible(auth: AuthContext, id: string): Promise<ImageRow & { mayWrite: boolean }> {
    const row = await this.prisma.image.findUnique({ where: { id } });
    if (!row) throw notFound();
    if (row.orgId !== null) {
      const standing = await this.orgs.standingOf(auth, row.orgId);
      if (standing?.permissions.includes('images:read')) return { ...row, mayWrite: standing.permissions.includes('images:write') };
    } else if (row.ownerId === auth.userId && !(auth.apiKeyId !== undefined && auth.org !== undefined)) {
      // The uploader's own image: theirs with any of their credentials but an organization's key.
      return { ...row, mayWrite: true };
    }
    if (auth.roles.includes(ADMIN_ROLE)) return { ...row, mayWrite: false };
    throw notFound();
  }

  async get(auth: AuthContext, id: string): Promise<ImageView> {
    const { mayWrite: _, ...row } = await this.visible(auth, id);
    return this.view(row);
  }

  async delete(auth: AuthContext, id: string): Promise<void> {
    const row = await this.visible(auth, id);
    if (!row.mayWrite) throw new AppError('not_owner');
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
    // The account's own images go with it; an organization's images stay with the organization (uploader: null).
    const rows = await this.prisma.image.findMany({ where: { ownerId, orgId: null }, select: { id: true, storageKey: true } });
    return async () => {
      await this.prisma.image.deleteMany({ where: { id: { in: rows.map((row) => row.id) } } });
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

/** Whose quota an image counts against, as a row filter and a lock name: a person's own images, or an organization's. */
function quotaHolder(of: { ownerId: string } | { orgId: string }): { where: { ownerId?: string; orgId: string | null }; lock: string } {
  return 'orgId' in of ? { where: { orgId: of.orgId }, lock: `org:${of.orgId}` } : { where: { ownerId: of.ownerId, orgId: null }, lock: of.ownerId };
}
