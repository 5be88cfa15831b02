// HTTP routes for uploading, listing, describing, deleting and (through signed URLs) serving images.
import type { Metrics } from '../../core/metrics.js';
import type { OpenAPIRegistry } from '@asteasolutions/zod-to-openapi';
import type { RequestHandler } from 'express';
import multer from 'multer';
import { z } from 'zod';
import { AppError } from '../../core/errors.js';
import { ApiRouter } from '../../core/http/api-router.js';
import { pageEnvelope, pageQueryFields } from '../../core/pagination.js';
import { ErrorResponse, errorResponses } from '../../core/http/openapi.js';
import { type Authenticators, currentAuth } from '../../kernel/authenticate/authenticate.js';
import type { OrgAccess } from '../../kernel/authenticate/org-access.js';
import type { ImageService, ImageView } from './image-service.js';
import type { ImageUrlSigner } from './signed-urls.js';
import type { Budget } from '../../kernel/throttle/rate-limiter.js';

const UPLOAD_FIELD = 'image';

const Image = z
  .object({
    id: z.uuid(),
    ownerId: z.uuid().nullable().meta({ description: "Who uploaded it; null once that account is gone (an organization's image stays)" }),
    orgId: z.uuid().nullable().meta({ description: "The organization it belongs to (its members with images:read see it); null: the uploader's own" }),
    name: z.string(),
    type: z.enum(['image/png', 'image/jpeg', 'image/gif', 'image/webp']),
    size: z.number().int(),
    width: z.number().int(),
    height: z.number().int(),
    sha256: z.string(),
    createdAt: z.iso.datetime(),
    url: z.string().meta({ description: 'Signed URL of the bytes; works without Authorization until urlExpiresAt' }),
    urlExpiresAt: z.iso.datetime(),
  })
  .meta({ id: 'Image' });
const ImagePage = pageEnvelope('images', Image, 'ImagePageBase')
  .extend({
    maxUploadBytes: z.number().int().meta({ description: 'The largest image an upload may be (MAX_UPLOAD_BYTES)' }),
    maxPixels: z.number().int().meta({ description: 'The most pixels an image may declare, every frame counted (IMAGE_MAX_PIXELS)' }),
    usedBytes: z.number().int().meta({ description: "What your own images take together (the organization's, when listing its images)" }),
    quotaBytes: z
      .number()
      .int()
      .nullable()
      .meta({ description: 'What they may take together (IMAGE_QUOTA_BYTES_PER_USER, for a person and for each organization); null: no limit' }),
  })
  .meta({ id: 'ImagePage' });

const ListQuery = z
  .object({
    ...pageQueryFields,
    scope: z.enum(['mine', 'all']).default('mine').meta({ description: '`all` (administrators only) lists every user’s images' }),
    orgId: z.uuid().optional().meta({ description: "The organization's images instead of yours (images:read there); an organization's API key lists its own" }),
  })
  .strict();
const ImageParams = z.object({ id: z.uuid() });
const SignedQuery = z
  .object({
    expires: z.coerce.number().int().positive(),
    k: z.coerce.number().int().min(1).max(1_000_000).optional().meta({ description: 'The generation of the key that signed the link' }),
    sig: z.string().regex(/^[A-Za-z0-9_-]{43}$/, 'a base64url HMAC'),
  })
  .strict();

const errors = errorResponses();
const notFound = { 404: { description: 'No such image (or not yours)', schema: ErrorResponse } };

export interface ImageRouteDeps {
  images: ImageService;
  metrics?: Metrics;
  signer: ImageUrlSigner;
  maxUploadBytes: number;
  maxPixels: number;
  authn: Authenticators;
  orgAccess: OrgAccess;
  imagesLimit: Budget;
  signedUrlLimit: RequestHandler;
}

/** A failure of the upload itself (storage, database), as opposed to a malformed form: mapped as itself, not as a 400. */
class UploadFailure extends Error {
  constructor(readonly reason: unknown) {
    super('the upload failed');
  }
}

/** The uploaded image, recorded while the form was read (see `streamToStorage`). */
type UploadedFile = Express.Multer.File & { image?: ImageView };

/**
 * A multer storage engine that streams the file part straight into ImageService.upload (and so into image storage),
 * never holding the whole file; the route answers with what it recorded. Should the form fail after the file (a
 * second file, too many parts), multer asks for it to be removed, and it is.
 */
function streamToStorage(images: ImageService, maxBytes: number): multer.StorageEngine {
  return {
    _handleFile(req, file, done) {
      images.upload(currentAuth(req).userId, { source: file.stream, originalName: file.originalname, maxBytes, orgId: req.org?.orgId }).then(
        (image) => done(null, { image, size: image.size } as Partial<UploadedFile>),
        (err: unknown) => {
          // What is left of the part is drained, so the form's parser can finish and answer.
          file.stream.resume();
          done(err instanceof AppError ? err : new UploadFailure(err));
        },
      );
    },
    _removeFile(_req, file, done) {
      const image = (file as UploadedFile).image;
      if (!image) return done(null);
      images.discard(image.id).then(() => done(null), done);
    },
  };
}

/** Parses exactly one file under explicit limits; anything but multipart/form-data is refused up front. */
function singleUpload(images: ImageService, maxBytes: number): RequestHandler {
  const parse = multer({
    storage: streamToStorage(images, maxBytes),
    // One byte over the limit reaches the probe, which refuses it (413) before anything is recorded.
    limits: { fileSize: maxBytes + 1, files: 1, fields: 4, parts: 6, fieldSize: 1_024, fieldNameSize: 64, headerPairs: 20 },
  }).single(UPLOAD_FIELD);
  return (req, res, next) => {
    if (!req.is('multipart/form-data')) {
      next(new AppError('multipart_required'));
      return;
    }
    parse(req, res, (err?: unknown) => {
      // The file streams to storage, whose failures arrive as an UploadFailure or an AppError; anything else is the
      // body itself: busboy's errors (a bad part header, no boundary, a truncated or empty body) are the client's, never a 500.
      if (err instanceof multer.MulterError && (err.code === 'LIMIT_UNEXPECTED_FILE' || err.code === 'LIMIT_FILE_COUNT')) {
        // A file under another name, or a second file: say which, and where the one image goes.
        const second = err.code === 'LIMIT_FILE_COUNT' || err.field === UPLOAD_FIELD;
        const message = second ? 'send one image per request' : `unexpected file field; the image goes in "${UPLOAD_FIELD}"`;
        next(new AppError('upload_field_invalid', { details: [{ path: err.field ?? UPLOAD_FIELD, message }] }));
      } else if (err instanceof UploadFailure) next(err.reason);
      else if (err === undefined || err instanceof multer.MulterError || err instanceof AppError) next(err);
      else next(new AppError('upload_form_invalid', { cause: err }));
    });
  };
}

export function imageRoutes(registry: OpenAPIRegistry, deps: ImageRouteDeps): ApiRouter {
  const api = new ApiRouter(registry, { tags: ['images'] });
  const read = [deps.authn.userOrKey('images:read', deps.imagesLimit)];
  const write = [deps.authn.userOrKey('images:write', deps.imagesLimit)];
  api.route({
    method: 'post',
    path: '/images',
    summary: 'Upload one image (PNG, JPEG, GIF or WebP, judged by its bytes)',
    security: ['bearer', 'apiKey'],
    upload: { field: UPLOAD_FIELD, description: `The image, at most MAX_UPLOAD_BYTES` },
    query: z.object({ orgId: ListQuery.shape.orgId }).strict(),
    middleware: [...write, deps.orgAccess.require('images:write', { inQuery: true }), singleUpload(deps.images, deps.maxUploadBytes)],
    responses: {
      201: { description: 'Stored (by default re-encoded without metadata: size, sha256 and dimensions describe the stored bytes)', schema: Image },
      404: { description: 'orgId names an organization you are not a member of (org_not_found)', schema: ErrorResponse },
      413: { description: 'Larger than MAX_UPLOAD_BYTES (`payload_too_large`), or past your storage quota (`storage_quota_exceeded`)', schema: ErrorResponse },
      415: { description: 'Not a PNG, JPEG, GIF or WebP (SVG included)', schema: ErrorResponse },
      422: { description: 'Declares more pixels than IMAGE_MAX_PIXELS (`image_too_large_dimensions`); refused before decoding', schema: ErrorResponse },
      ...errors,
    },
    handler: (_input, req, res) => {
      // The form's parser has stored and recorded the image (streamToStorage); no file part means nothing was sent.
      const uploaded: UploadedFile | undefined = req.file;
      const image = uploaded?.image;
      if (!image) throw new AppError('upload_missing');
      deps.metrics?.uploads.inc();
      deps.metrics?.uploadBytes.inc(image.size);
      res.status(201).json(image);
    },
  });
  api.route({
    method: 'get',
    path: '/images',
    summary: 'Your images, newest first',
    security: ['bearer', 'apiKey'],
    query: ListQuery,
    middleware: [...read, deps.orgAccess.require('images:read', { inQuery: true })],
    responses: {
      200: { description: 'A page of images', schema: ImagePage },
      403: { description: 'scope=all without admin', schema: ErrorResponse },
      404: { description: 'orgId names an organization you are not a member of (org_not_found)', schema: ErrorResponse },
      ...errors,
    },
    handler: async ({ query }, req, res) => {
      const auth = currentAuth(req);
      const [page, usage] = await Promise.all([
        deps.images.list(auth, { ...query, orgId: req.org?.orgId }),
        deps.images.usage(req.org ? { orgId: req.org.orgId } : { ownerId: auth.userId }),
      ]);
      res.json({ ...page, maxUploadBytes: deps.maxUploadBytes, maxPixels: deps.maxPixels, ...usage });
    },
  });
  api.route({
    method: 'get',
    path: '/images/:id',
    summary: "An image's metadata and a fresh signed URL",
    security: ['bearer', 'apiKey'],
    params: ImageParams,
    middleware: read,
    responses: { 200: { description: 'The image', schema: Image }, ...notFound, ...errors },
    handler: async ({ params }, req, res) => {
      res.json(await deps.images.get(currentAuth(req), params.id));
    },
  });
  api.route({
    method: 'delete',
    path: '/images/:id',
    summary: 'Delete an image (row and bytes)',
    security: ['bearer', 'apiKey'],
    params: ImageParams,
    middleware: write,
    responses: { 204: { description: 'Deleted' }, ...notFound, ...errors },
    handler: async ({ params }, req, res) => {
      await deps.images.delete(currentAuth(req), params.id);
      res.status(204).end();
    },
  });
  api.route({
    method: 'get',
    path: '/images/:id/content',
    summary: 'The image bytes, from a signed URL (no Authorization header)',
    params: ImageParams,
    query: SignedQuery,
    middleware: [deps.signedUrlLimit],
    responses: {
      200: { description: 'The bytes', schema: z.string().meta({ format: 'binary' }), contentType: 'image/*' },
      302: {
        description: 'With S3_PRESIGNED_DOWNLOADS: Location is a presigned URL to the object, valid as long as this link',
        headers: { Location: { description: 'The presigned URL', schema: { type: 'string' } } },
      },
      403: { description: 'Tampered or expired signature', schema: ErrorResponse },
      ...notFound,
    },
    handler: async ({ params, query }, _req, res) => {
      const check = deps.signer.check(params.id, query.expires, query.sig, query.k);
      if (check !== 'valid') {
        throw new AppError(check === 'expired' ? 'image_link_expired' : 'image_link_invalid');
      }
      const content = await deps.images.content(params.id, deps.signer.secondsLeft(query.expires));
      if ('redirect' in content) {
        // The bucket serves the bytes itself (S3_PRESIGNED_DOWNLOADS), for no longer than this link lives.
        res.set('Cache-Control', `private, max-age=${deps.signer.secondsLeft(query.expires)}`).redirect(302, content.redirect);
        return;
      }
      const { stream, row } = content;
      res.set({
        'Content-Type': row.mimeType,
        'Content-Length': String(row.size),
        'Content-Disposition': `inline; filename="${row.originalName}"`,
        'X-Content-Type-Options': 'nosniff',
        // The browser's own image view styles itself inline; nothing else may load, and the tab has no origin.
        'Content-Security-Policy': "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox",
        // Cacheable by this browser only, and no longer than the link itself lives.
        'Cache-Control': `private, max-age=${deps.signer.secondsLeft(query.expires)}`,
        ETag: `"${row.sha256}"`,
      });
      stream.pipe(res);
      await new Promise<void>((resolve, reject) => {
        res.on('finish', resolve);
        res.on('close', resolve);
        stream.on('error', reject);
      });
    },
  });
  return api;
}
