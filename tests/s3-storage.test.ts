import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { CreateBucketCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import S3rver from 's3rver';
import sharp from 'sharp';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sweepImageOrphans } from '../src/features/images/image-service.js';
import { type S3Settings, S3ImageStorage, s3ClientOptions } from '../src/features/images/s3-storage.js';
import { bearer, registerAndLogin } from './support/accounts.js';
import { EXIF_TAG, exifTags, photoWithLocation, png, pngDeclaring } from './support/images.js';
import { createApp } from '../src/app.js';
import { buildApp, silentLogger, testConfig, useBackends } from './support/test-app.js';

/** A real S3-compatible server (s3rver) on a free port, with files under a temporary directory. */
describe('images in S3-compatible storage', () => {
  const backends = useBackends();
  let server: S3rver;
  let dir: string;
  let settings: S3Settings;
  let client: S3Client;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'authkit-s3-'));
    server = new S3rver({ port: 0, address: '127.0.0.1', directory: dir, silent: true });
    const { port } = await server.run();
    settings = { bucket: 'authkit-images', region: 'us-east-1', endpoint: `http://127.0.0.1:${port}`, forcePathStyle: true, presignedDownloads: false };
    client = new S3Client({ ...s3ClientOptions(settings), credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } });
    await client.send(new CreateBucketCommand({ Bucket: settings.bucket }));
  });
  afterAll(async () => {
    client?.destroy();
    await server?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  function storage(overrides: Partial<S3Settings> = {}) {
    return new S3ImageStorage({ ...settings, ...overrides }, client);
  }

  async function objectCount(): Promise<number> {
    return (await client.send(new ListObjectsV2Command({ Bucket: settings.bucket, Prefix: 'images/' }))).KeyCount ?? 0;
  }

  const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

  it('when an image is uploaded through one instance, then another instance lists and serves it from the bucket', async () => {
    const first = buildApp(backends, { config: testConfig() });
    const second = buildApp(backends, { config: testConfig() });
    const one = createApp({ ...first.deps, imageStorage: storage() });
    const two = createApp({ ...second.deps, config: first.deps.config, imageStorage: storage() });
    const user = await registerAndLogin(one);

    const image = png(6, 5);
    const upload = await request(one)
      .post('/images')
      .set(...bearer(user.accessToken))
      .attach('image', image, 'sky.png');
    const list = await request(two)
      .get('/images')
      .set(...bearer(user.accessToken));
    const bytes = await request(two)
      .get(list.body.images[0].url as string)
      .buffer(true);
    const row = await backends.db.prisma.image.findUniqueOrThrow({ where: { id: upload.body.id } });

    expect(upload.status).toBe(201);
    expect(list.body.images).toHaveLength(1);
    expect(bytes.status).toBe(200);
    expect(bytes.headers['content-type']).toBe('image/png');
    expect(sha256(bytes.body as Buffer)).toBe(upload.body.sha256);
    expect(await storage().has(row.storageKey)).toBe(true);

    const removed = await request(two)
      .delete(`/images/${upload.body.id}`)
      .set(...bearer(user.accessToken));
    expect(removed.status).toBe(204);
    expect(await storage().has(row.storageKey)).toBe(false);
  });

  it('when S3_PRESIGNED_DOWNLOADS is on, then the content link redirects to a presigned URL that serves the bytes', async () => {
    const { deps } = buildApp(backends, { config: testConfig() });
    const app = createApp({ ...deps, imageStorage: storage({ presignedDownloads: true }) });
    const user = await registerAndLogin(app);
    const image = png(3, 3);
    const upload = await request(app)
      .post('/images')
      .set(...bearer(user.accessToken))
      .attach('image', image, 'dot.png');

    const link = await request(app).get(upload.body.url as string);
    const location = String(link.headers.location);
    const direct = await fetch(location);

    expect(link.status).toBe(302);
    expect(location).toMatch(new RegExp(`^${settings.endpoint}/${settings.bucket}/images/.*X-Amz-Signature=`));
    expect(direct.status).toBe(200);
    expect(sha256(Buffer.from(await direct.arrayBuffer()))).toBe(upload.body.sha256);
  });

  it('when an image is stored, then the object carries its sniffed type and disposition, and its bytes no location', async () => {
    const { deps } = buildApp(backends, { config: testConfig() });
    const app = createApp({ ...deps, imageStorage: storage({ presignedDownloads: true }) });
    const user = await registerAndLogin(app);

    // Declared as text/html: what the bucket serves must come from the bytes, never from the client's word.
    const upload = await request(app)
      .post('/images')
      .set(...bearer(user.accessToken))
      .attach('image', await photoWithLocation(), { filename: 'holiday.jpg', contentType: 'text/html' });
    const row = await backends.db.prisma.image.findUniqueOrThrow({ where: { id: upload.body.id } });
    const head = await client.send(new HeadObjectCommand({ Bucket: settings.bucket, Key: `images/${row.storageKey}` }));
    const direct = await fetch(String((await request(app).get(upload.body.url as string)).headers.location));
    const stored = await sharp(Buffer.from(await direct.arrayBuffer())).metadata();

    expect(upload.status).toBe(201);
    expect(head.ContentType).toBe('image/jpeg');
    expect(head.ContentDisposition).toBe('inline; filename="holiday.jpg"');
    expect(direct.headers.get('content-type')).toBe('image/jpeg');
    expect(direct.headers.get('content-disposition')).toBe('inline; filename="holiday.jpg"');
    expect(exifTags(stored.exif)).not.toContain(EXIF_TAG.gps);
    expect(stored.orientation).toBe(6);
  });

  it('when an upload is refused (too many pixels, past the quota), then no object is left in the bucket', async () => {
    const image = png(4, 4);
    const { deps } = buildApp(backends, { config: testConfig({ imageStripMetadata: false, imageQuotaBytesPerUser: image.length }) });
    const app = createApp({ ...deps, imageStorage: storage() });
    const user = await registerAndLogin(app);
    await request(app)
      .post('/images')
      .set(...bearer(user.accessToken))
      .attach('image', image, 'fits.png')
      .expect(201);
    const before = await objectCount();

    const bomb = await request(app)
      .post('/images')
      .set(...bearer(user.accessToken))
      .attach('image', pngDeclaring(50_000, 50_000), 'bomb.png');
    const over = await request(app)
      .post('/images')
      .set(...bearer(user.accessToken))
      .attach('image', png(4, 4), 'over.png');

    expect(bomb.status).toBe(422);
    expect(bomb.body.error.code).toBe('image_too_large_dimensions');
    expect(over.status).toBe(413);
    expect(over.body.error.code).toBe('storage_quota_exceeded');
    expect(await objectCount()).toBe(before);
    expect(await backends.db.prisma.image.count({ where: { ownerId: user.id } })).toBe(1);
  });

  it('when the bytes are missing from the bucket, then the link answers 404, and the sweep settles both directions', async () => {
    const { deps } = buildApp(backends, { config: testConfig() });
    const store = storage();
    const app = createApp({ ...deps, imageStorage: store });
    const user = await registerAndLogin(app);
    const upload = await request(app)
      .post('/images')
      .set(...bearer(user.accessToken))
      .attach('image', png(2, 2), 'gone.png');
    const row = await backends.db.prisma.image.findUniqueOrThrow({ where: { id: upload.body.id } });
    await store.remove(row.storageKey);
    const stray = 'strayStrayStrayStrayStray0';
    await client.send(new PutObjectCommand({ Bucket: settings.bucket, Key: `images/${stray}`, Body: Buffer.from('orphan') }));

    const missing = await request(app).get(upload.body.url as string);
    const swept = await sweepImageOrphans({ prisma: backends.db.prisma, storage: store, logger: silentLogger }, Date.now() + 2 * 3_600_000, 3_600_000);

    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe('not_found');
    expect(swept.files).toBeGreaterThanOrEqual(1);
    expect(await store.has(stray)).toBe(false);
    expect(await backends.db.prisma.image.findUnique({ where: { id: upload.body.id } })).toBeNull();
  });

  it('when the bucket cannot be reached, then an upload fails without leaving a row', async () => {
    const { deps } = buildApp(backends, { config: testConfig() });
    const unreachable = new S3ImageStorage(
      { ...settings, endpoint: 'http://127.0.0.1:9' },
      new S3Client({
        ...s3ClientOptions({ ...settings, endpoint: 'http://127.0.0.1:9' }),
        credentials: { accessKeyId: 'x', secretAccessKey: 'y' },
        maxAttempts: 1,
      }),
    );
    const app = createApp({ ...deps, imageStorage: unreachable, logger: silentLogger });
    const user = await registerAndLogin(app);

    const res = await request(app)
      .post('/images')
      .set(...bearer(user.accessToken))
      .attach('image', png(2, 2), 'lost.png');

    expect(res.status).toBe(503);
    expect(res.body.error.code).toBe('service_unavailable');
    expect(res.headers['retry-after']).toBeDefined();
    expect(await backends.db.prisma.image.count({ where: { ownerId: user.id } })).toBe(0);
  });
});
