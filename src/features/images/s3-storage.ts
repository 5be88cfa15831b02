// Image bytes in an S3-compatible bucket (AWS S3, MinIO, Cloudflare R2 …), so every instance sees every image.
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { Upload } from '@aws-sdk/lib-storage';
import { AppError } from '../../core/errors.js';
import type { ImageStorage, StoredObject } from './image-storage.js';

export interface S3Settings {
  bucket: string;
  region: string;
  /** For a store other than AWS (MinIO, R2, a local test server); unset: AWS's own endpoint for the region. */
  endpoint?: string;
  /** `bucket.host/key` (virtual-hosted, AWS's default) or `host/bucket/key` (most self-hosted stores). */
  forcePathStyle: boolean;
  /** Serve content links as presigned URLs to the bucket instead of streaming the bytes through the service. */
  presignedDownloads: boolean;
}

const PREFIX = 'images/';
const KEY = /^[A-Za-z0-9_-]{20,64}$/;

/** The bucket did not answer (refused, reset, timed out): 503, as for PostgreSQL. An answer, even an error, is S3's. */
function unreachable(err: unknown): AppError | undefined {
  if (err instanceof S3ServiceException) return undefined;
  return new AppError('image_storage_unavailable', { cause: err, headers: { 'Retry-After': '2' } });
}

function missing(err: unknown): boolean {
  return err instanceof S3ServiceException && (err.name === 'NoSuchKey' || err.name === 'NotFound' || err.$metadata.httpStatusCode === 404);
}

/** Missing bytes fail as on local disk (code ENOENT), so callers answer 404 the same way for either store. */
function notFound(key: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`no object for ${key}`), { code: 'ENOENT' });
}

/** Names are sanitised to printable ASCII without quotes before they are stored (sanitiseFileName). */
const inlineDisposition = (filename: string) => `inline; filename="${filename}"`;

/**
 * Checksums only where S3 requires them: the SDK's default (a CRC trailer in an aws-chunked body on every PUT) is not
 * accepted by every S3-compatible store.
 */
export function s3ClientOptions(settings: Pick<S3Settings, 'region' | 'endpoint' | 'forcePathStyle'>) {
  return {
    region: settings.region,
    endpoint: settings.endpoint,
    forcePathStyle: settings.forcePathStyle,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  } as const;
}

export class S3ImageStorage implements ImageStorage {
  private readonly client: S3Client;

  /** Credentials come from the usual AWS variables (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_PROFILE, roles …). */
  constructor(
    private readonly settings: S3Settings,
    client?: S3Client,
  ) {
    this.client = client ?? new S3Client(s3ClientOptions(settings));
  }

  /** Runs one S3 call, a bucket that does not answer becoming a 503. */
  private async attempt<T>(call: (client: S3Client) => Promise<T>): Promise<T> {
    try {
      return await call(this.client);
    } catch (err) {
      throw unreachable(err) ?? err;
    }
  }

  private objectKey(key: string): string {
    if (!KEY.test(key)) throw new Error('malformed storage key');
    return `${PREFIX}${key}`;
  }

  /**
   * Streams the upload (one PUT up to a 5 MiB part, S3's smallest multipart part, which the SDK holds in memory; a
   * multipart upload beyond). S3 makes an object visible whole or not at all, and a failed multipart upload is
   * aborted, so a failure leaves nothing behind. The object carries its type and an inline disposition, so a
   * presigned download (or a bucket served another way) never leaves a browser to guess what the bytes are.
   */
  async put(source: Readable, describe: StoredObject): Promise<string> {
    const key = randomBytes(18).toString('base64url');
    const params = {
      Bucket: this.settings.bucket,
      Key: this.objectKey(key),
      Body: source,
      ContentType: describe.contentType,
      ContentDisposition: inlineDisposition(describe.filename),
    };
    await this.attempt((client) => new Upload({ client, params, leavePartsOnError: false }).done());
    return key;
  }

  async open(key: string): Promise<Readable> {
    try {
      const object = await this.attempt((client) => client.send(new GetObjectCommand({ Bucket: this.settings.bucket, Key: this.objectKey(key) })));
      return object.Body as Readable;
    } catch (err) {
      if (missing(err)) throw notFound(key);
      throw err;
    }
  }

  async remove(key: string): Promise<void> {
    await this.attempt((client) => client.send(new DeleteObjectCommand({ Bucket: this.settings.bucket, Key: this.objectKey(key) })));
  }

  async has(key: string): Promise<boolean> {
    try {
      await this.attempt((client) => client.send(new HeadObjectCommand({ Bucket: this.settings.bucket, Key: this.objectKey(key) })));
      return true;
    } catch (err) {
      if (missing(err)) return false;
      throw err;
    }
  }

  async *list(): AsyncIterable<{ key: string; modifiedAtMs: number }> {
    let token: string | undefined;
    do {
      const page = await this.attempt((client) =>
        client.send(new ListObjectsV2Command({ Bucket: this.settings.bucket, Prefix: PREFIX, ContinuationToken: token })),
      );
      for (const object of page.Contents ?? []) {
        const key = object.Key?.slice(PREFIX.length) ?? '';
        if (KEY.test(key)) yield { key, modifiedAtMs: object.LastModified?.getTime() ?? 0 };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  /**
   * With S3_PRESIGNED_DOWNLOADS: a URL to the object itself, as long-lived as the content link that led to it. The
   * signed response overrides pin the type and disposition; S3 has no way to add `X-Content-Type-Options: nosniff`
   * (only a CDN in front of the bucket can), which is why the sniffed type is stored on the object and named here.
   */
  downloadUrl(key: string, options: { expiresInS: number; contentType: string; filename: string }): Promise<string> | undefined {
    if (!this.settings.presignedDownloads) return undefined;
    const command = new GetObjectCommand({
      Bucket: this.settings.bucket,
      Key: this.objectKey(key),
      ResponseContentType: options.contentType,
      ResponseContentDisposition: inlineDisposition(options.filename),
      ResponseCacheControl: `private, max-age=${options.expiresInS}`,
    });
    return getSignedUrl(this.client, command, { expiresIn: Math.max(1, options.expiresInS) });
  }

  close(): void {
    this.client.destroy();
  }
}
