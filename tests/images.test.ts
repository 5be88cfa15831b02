import { createHash, randomBytes } from 'node:crypto';
import { chmod, mkdir, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Express } from 'express';
import sharp from 'sharp';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../src/core/clock.js';
import { sweepImageOrphans } from '../src/features/images/image-service.js';
import { LocalDiskStorage } from '../src/features/images/image-storage.js';
import { type Database, openDatabase } from '../src/core/db.js';
import { TcpProxy } from './support/tcp-proxy.js';
import { bearer, createAdmin, login, registerAndLogin, uniqueName } from './support/accounts.js';
import { animatedGif, EXIF_TAG, exifTags, gif, jpegImage, photoWithLocation, php, png, pngDeclaring, svg, webp } from './support/images.js';
import { buildApp, builtWith, openBackends, silentLogger, testConfig, testRunDir, useBackends } from './support/test-app.js';

async function filesIn(dir: string): Promise<string[]> {
  return readdir(dir).catch(() => []);
}

/** The bytes a signed URL serves. */
async function served(app: Express, url: string): Promise<Buffer> {
  const res = await request(app)
    .get(url)
    .buffer(true)
    .parse((response, done) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => done(null, Buffer.concat(chunks)));
    });
  expect(res.status).toBe(200);
  return res.body as Buffer;
}

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

describe('images', () => {
  const backends = useBackends();

  function setup(overrides: Parameters<typeof testConfig>[0] = {}, clock = new ManualClock()) {
    const config = testConfig(overrides);
    return { ...buildApp(backends, { config, clock }), config, clock };
  }

  describe('POST /images', () => {
    it.each([
      ['PNG', 'image/png', png(3, 2), 'photo.png', { width: 3, height: 2 }],
      ['JPEG', 'image/jpeg', jpegImage(4, 2), 'photo.jpg', { width: 4, height: 2 }],
      ['GIF', 'image/gif', gif(), 'anim.gif', { width: 1, height: 1 }],
      ['WebP', 'image/webp', webp(), 'pic.webp', { width: 1, height: 1 }],
    ])('when a %s is uploaded, then 201 with its metadata, judged by its bytes', async (_name, type, bytes, filename, size) => {
      const { app } = setup();
      const user = await registerAndLogin(app);
      // A misleading declared type must not matter.
      const res = await request(app)
        .post('/images')
        .set(...bearer(user.accessToken))
        .attach('image', bytes, { filename, contentType: 'text/plain' });
      expect(res.status, JSON.stringify(res.body)).toBe(201);
      expect(res.body).toMatchObject({ ownerId: user.id, name: filename, type, ...size });
      expect(res.body.url).toMatch(new RegExp(`^/images/${res.body.id}/content\\?expires=\\d+&k=1&sig=`));
      // Stored re-encoded: size and hash describe what is served, not what was sent.
      const stored = await served(app, res.body.url as string);
      expect(res.body.size).toBe(stored.length);
      expect(res.body.sha256).toBe(sha256(stored));
      expect((await sharp(stored).metadata()).format).toBe(type.slice('image/'.length));
    });

    it.each([
      ['a PHP script renamed .png', php, 'shell.png', 415, 'unsupported_media_type'],
      ['an SVG', svg, 'logo.svg', 415, 'unsupported_media_type'],
      ['a truncated PNG', png(8, 8).subarray(0, -12), 'cut.png', 400, 'validation_failed'],
      ['a truncated JPEG', jpegImage(8, 8).subarray(0, -40), 'cut.jpg', 400, 'validation_failed'],
    ])('when %s is uploaded, then it is refused and nothing is stored', async (_name, bytes, filename, status, code) => {
      const { app, config } = setup();
      const user = await registerAndLogin(app);
      const res = await request(app)
        .post('/images')
        .set(...bearer(user.accessToken))
        .attach('image', bytes, { filename, contentType: 'image/png' });
      expect(res.status).toBe(status);
      expect(res.body.error.code).toBe(code);
      expect(await filesIn(config.uploadDir)).toEqual([]);
      expect(await backends.db.prisma.image.count({ where: { ownerId: user.id } })).toBe(0);
    });

    it('when the file is over MAX_UPLOAD_BYTES, then 413 and nothing is stored', async () => {
      const { app, config } = setup({ maxUploadBytes: 4_096 });
      const user = await registerAndLogin(app);
      const res = await request(app)
        .post('/images')
        .set(...bearer(user.accessToken))
        .attach('image', png(64, 64), 'big.png');
      expect(res.status).toBe(413);
      expect(res.body.error.code).toBe('payload_too_large');
      expect(await filesIn(config.uploadDir)).toEqual([]);
    });

    it('when the upload is unauthenticated, then 401 and nothing is stored', async () => {
      const { app, config } = setup();
      const res = await request(app).post('/images').attach('image', png(), 'a.png');
      expect(res.status).toBe(401);
      expect(await filesIn(config.uploadDir)).toEqual([]);
    });

    it('when the form is wrong (no file, another field, two files, JSON), then a clear 4xx', async () => {
      const { app } = setup();
      const user = await registerAndLogin(app);
      const noFile = await request(app)
        .post('/images')
        .set(...bearer(user.accessToken))
        .field('note', 'hello');
      const wrongField = await request(app)
        .post('/images')
        .set(...bearer(user.accessToken))
        .attach('picture', png(), 'a.png');
      const twoFiles = await request(app)
        .post('/images')
        .set(...bearer(user.accessToken))
        .attach('image', png(), 'a.png')
        .attach('image', png(), 'b.png');
      const json = await request(app)
        .post('/images')
        .set(...bearer(user.accessToken))
        .send({ image: 'data' });
      expect(noFile.status).toBe(400);
      expect(wrongField.status).toBe(400);
      expect(wrongField.body.error.details).toEqual([{ path: 'picture', message: 'unexpected file field; the image goes in "image"' }]);
      expect(twoFiles.status).toBe(400);
      expect(twoFiles.body.error.details).toEqual([{ path: 'image', message: 'send one image per request' }]);
      expect(json.status).toBe(415);
    });

    it.each([
      ['no boundary parameter', 'multipart/form-data', '--x\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n\r\nabc\r\n--x--\r\n'],
      ['no closing boundary', 'multipart/form-data; boundary=x', '--x\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n\r\nabc'],
      ['a bad part header', 'multipart/form-data; boundary=x', '--x\r\nthis is not a header\r\n\r\nabc\r\n--x--\r\n'],
      ['a truncated part', 'multipart/form-data; boundary=x', '--x\r\nContent-Disposition: form-data; name="image"; filename="a.p'],
      ['an empty body', 'multipart/form-data; boundary=x', ''],
    ])('when the multipart body has %s, then 400 validation_failed and nothing is stored', async (_case, contentType, body) => {
      const { app, config } = setup();
      const user = await registerAndLogin(app);
      const before = await backends.db.prisma.image.count();

      const res = await request(app)
        .post('/images')
        .set(...bearer(user.accessToken))
        .set('Content-Type', contentType)
        .send(body);

      expect(res.status).toBe(400);
      expect(res.body.error.code).toBe('validation_failed');
      expect(await backends.db.prisma.image.count()).toBe(before);
      // The upload streams to disk; a form that breaks off mid-file is answered at once, and its partial file is
      // removed as the failed write unwinds (moments later), never left behind.
      await expect.poll(() => filesIn(config.uploadDir)).toEqual([]);
    });

    it('when the file name is hostile, then it is stored sanitised', async () => {
      const { app } = setup();
      const user = await registerAndLogin(app);
      const res = await request(app)
        .post('/images')
        .set(...bearer(user.accessToken))
        .attach('image', png(), '../../etc/"><script>x.png');
      expect(res.status).toBe(201);
      expect(res.body.name).toBe('scriptx.png');
    });

    it('when the database fails during an upload, then the stored bytes are removed again', async () => {
      const { app, config } = setup();
      const user = await registerAndLogin(app);
      await backends.db.prisma.$executeRawUnsafe('ALTER TABLE images RENAME TO images_offline');
      let res;
      try {
        res = await request(app)
          .post('/images')
          .set(...bearer(user.accessToken))
          .attach('image', png(), 'a.png');
      } finally {
        await backends.db.prisma.$executeRawUnsafe('ALTER TABLE images_offline RENAME TO images');
      }
      expect(res.status).toBe(500);
      expect(res.body.error.code).toBe('internal_error');
      expect(await filesIn(config.uploadDir)).toEqual([]);
    });
  });

  describe('what is stored', () => {
    it('when a photo carries EXIF, GPS and XMP, then the stored copy has none of it but keeps its orientation', async () => {
      const { app } = setup();
      const user = await registerAndLogin(app);
      const photo = await photoWithLocation();
      const sent = await sharp(photo).metadata();
      // The fixture really carries what must go.
      expect(exifTags(sent.exif)).toEqual(expect.arrayContaining([EXIF_TAG.make, EXIF_TAG.gps, EXIF_TAG.orientation]));
      expect(sent.xmp).toBeDefined();

      const res = await request(app)
        .post('/images')
        .set(...bearer(user.accessToken))
        .attach('image', photo, 'holiday.jpg');
      const stored = await served(app, res.body.url as string);
      const kept = await sharp(stored).metadata();

      expect(res.status).toBe(201);
      expect(res.body).toMatchObject({ type: 'image/jpeg', width: 4, height: 2, size: stored.length, sha256: sha256(stored) });
      expect(kept.orientation).toBe(6);
      expect(exifTags(kept.exif)).not.toContain(EXIF_TAG.gps);
      expect(exifTags(kept.exif)).not.toContain(EXIF_TAG.make);
      expect(stored.includes('SpyPhone')).toBe(false);
      expect(kept.xmp).toBeUndefined();
      expect(kept.iptc).toBeUndefined();
      expect(kept.icc).toBeUndefined();
    });

    it('when IMAGE_STRIP_METADATA is off, then the bytes are stored exactly as sent', async () => {
      const { app } = setup({ imageStripMetadata: false });
      const user = await registerAndLogin(app);
      const photo = await photoWithLocation();

      const res = await request(app)
        .post('/images')
        .set(...bearer(user.accessToken))
        .attach('image', photo, 'holiday.jpg');
      const stored = await served(app, res.body.url as string);

      expect(res.status).toBe(201);
      expect(Buffer.compare(stored, photo)).toBe(0);
      expect(res.body).toMatchObject({ size: photo.length, sha256: sha256(photo) });
    });

    it('when an animated GIF is uploaded, then every frame is kept', async () => {
      const { app } = setup();
      const user = await registerAndLogin(app);

      const res = await request(app)
        .post('/images')
        .set(...bearer(user.accessToken))
        .attach('image', await animatedGif(4), 'spin.gif');
      const stored = await sharp(await served(app, res.body.url as string)).metadata();

      expect(res.status).toBe(201);
      expect(res.body).toMatchObject({ type: 'image/gif', width: 10, height: 10 });
      expect(stored.pages).toBe(4);
    });
  });

  describe('pixel limit', () => {
    it.each([
      ['stripping on', true],
      ['stripping off', false],
    ])('when a PNG declares 50,000 × 50,000 pixels (%s), then 422 before decoding, and nothing is stored', async (_case, strip) => {
      const { app, config } = setup({ imageStripMetadata: strip });
      const user = await registerAndLogin(app);
      const bomb = pngDeclaring(50_000, 50_000);

      const res = await request(app)
        .post('/images')
        .set(...bearer(user.accessToken))
        .attach('image', bomb, 'bomb.png');

      expect(bomb.length).toBeLessThan(4_096);
      expect(res.status).toBe(422);
      expect(res.body.error).toMatchObject({ code: 'image_too_large_dimensions', details: { pixels: 2_500_000_000, maxPixels: 40_000_000 } });
      // No row, no stored file, no spooled upload.
      expect(await filesIn(config.uploadDir)).toEqual([]);
      expect(await backends.db.prisma.image.count({ where: { ownerId: user.id } })).toBe(0);
    });

    it('when an animation’s frames together pass IMAGE_MAX_PIXELS, then 422 though each frame is small', async () => {
      const { app, config } = setup({ imageMaxPixels: 399 });
      const user = await registerAndLogin(app);

      const refused = await request(app)
        .post('/images')
        .set(...bearer(user.accessToken))
        .attach('image', await animatedGif(4, 10), 'long.gif');
      const accepted = await request(app)
        .post('/images')
        .set(...bearer(user.accessToken))
        .attach('image', await animatedGif(3, 10), 'short.gif');

      expect(refused.status).toBe(422);
      expect(refused.body.error).toMatchObject({ code: 'image_too_large_dimensions', details: { pixels: 400, maxPixels: 399 } });
      expect(accepted.status).toBe(201);
      expect(await filesIn(config.uploadDir)).toHaveLength(1);
    });
  });

  describe('storage quota', () => {
    it('when an upload would pass IMAGE_QUOTA_BYTES_PER_USER, then 413 storage_quota_exceeded with the usage, and nothing is stored', async () => {
      // Stored as sent, so each image's size is known before it is sent.
      const [first, second] = [png(8, 8), png(8, 8)];
      const quota = first.length + second.length - 1;
      const { app, config } = setup({ imageStripMetadata: false, imageQuotaBytesPerUser: quota });
      const user = await registerAndLogin(app);
      const other = await registerAndLogin(app);

      const fits = await request(app)
        .post('/images')
        .set(...bearer(user.accessToken))
        .attach('image', first, 'one.png');
      const over = await request(app)
        .post('/images')
        .set(...bearer(user.accessToken))
        .attach('image', second, 'two.png');
      const otherAccount = await request(app)
        .post('/images')
        .set(...bearer(other.accessToken))
        .attach('image', second, 'theirs.png');
      const list = await request(app)
        .get('/images')
        .set(...bearer(user.accessToken));

      expect(fits.status).toBe(201);
      expect(over.status).toBe(413);
      expect(over.body.error).toMatchObject({
        code: 'storage_quota_exceeded',
        details: { usedBytes: first.length, quotaBytes: quota, imageBytes: second.length },
      });
      expect(otherAccount.status).toBe(201);
      expect(list.body).toMatchObject({ total: 1, usedBytes: first.length, quotaBytes: quota, maxPixels: 40_000_000 });
      expect(await filesIn(config.uploadDir)).toHaveLength(2);
      expect(await backends.db.prisma.image.count({ where: { ownerId: user.id } })).toBe(1);
    });

    it('when uploads race for the last of the quota, then only as many as fit are stored', async () => {
      const images = Array.from({ length: 5 }, () => png(8, 8));
      const size = (images[0] as Buffer).length;
      const { app, config } = setup({ imageStripMetadata: false, imageQuotaBytesPerUser: 2 * size });
      const user = await registerAndLogin(app);

      const results = await Promise.all(
        images.map((bytes, i) =>
          request(app)
            .post('/images')
            .set(...bearer(user.accessToken))
            .attach('image', bytes, `${i}.png`),
        ),
      );

      expect(results.map((res) => res.status).sort()).toEqual([201, 201, 413, 413, 413]);
      const used = await backends.db.prisma.image.aggregate({ where: { ownerId: user.id }, _sum: { size: true } });
      expect(used._sum.size).toBe(2 * size);
      expect(await filesIn(config.uploadDir)).toHaveLength(2);
    });

    it('when the quota is 0, then there is no limit, and the listing says so', async () => {
      const { app } = setup({ imageQuotaBytesPerUser: 0 });
      const user = await registerAndLogin(app);
      const upload = await request(app)
        .post('/images')
        .set(...bearer(user.accessToken))
        .attach('image', png(), 'a.png');

      const list = await request(app)
        .get('/images')
        .set(...bearer(user.accessToken));

      expect(list.body).toMatchObject({ usedBytes: upload.body.size, quotaBytes: null });
    });

    it('when an image is deleted, then its bytes no longer count', async () => {
      const { app } = setup();
      const user = await registerAndLogin(app);
      const upload = await request(app)
        .post('/images')
        .set(...bearer(user.accessToken))
        .attach('image', png(), 'a.png');
      const before = await request(app)
        .get('/images')
        .set(...bearer(user.accessToken));

      await request(app)
        .delete(`/images/${upload.body.id}`)
        .set(...bearer(user.accessToken))
        .expect(204);
      const after = await request(app)
        .get('/images')
        .set(...bearer(user.accessToken));

      expect(before.body).toMatchObject({ usedBytes: upload.body.size, quotaBytes: 1024 * 1024 * 1024 });
      expect(after.body.usedBytes).toBe(0);
    });
  });

  describe('what a crash or a lost reply leaves behind', () => {
    it('when the database goes away under an upload, then 503, and the bytes stay for the sweep (the row may exist)', async () => {
      const own = await openBackends();
      const proxy = own.url ? TcpProxy.forUrl(own.url, 5432) : undefined;
      let proxied: Database | undefined;
      try {
        const config = testConfig();
        await proxy?.start();
        if (proxy && own.url) proxied = await openDatabase({ url: proxy.rewrite(own.url), migrate: false });
        const db = proxied ?? own.db;
        const { app } = buildApp({ ...own, db }, { config });
        const user = await registerAndLogin(app);
        // A started server has read the revocation record before its first request (main.ts); so has this app now.
        await builtWith(app).graph.revocations.restored();
        if (proxy) await proxy.stop();
        else await own.db.close();

        const res = await request(app)
          .post('/images')
          .set(...bearer(user.accessToken))
          .attach('image', png(), 'a.png');

        expect(res.status).toBe(503);
        expect(await filesIn(config.uploadDir)).toHaveLength(1);
      } finally {
        await proxy?.stop();
        await proxied?.close();
        await own.close().catch(() => {});
      }
    });

    it('when the upload directory refuses writes, then 503 with Retry-After, not 500, and nothing is recorded', async () => {
      // A directory this process cannot write: under /sys for root (which ignores file modes), a read-only one otherwise.
      const refusing = process.getuid?.() === 0 ? `/sys/authkit-test-${randomBytes(4).toString('hex')}/uploads` : path.join(testRunDir(), 'read-only');
      if (process.getuid?.() !== 0) {
        await mkdir(refusing, { recursive: true });
        await chmod(refusing, 0o500);
      }
      const { app } = setup({ uploadDir: refusing });
      const user = await registerAndLogin(app);

      const res = await request(app)
        .post('/images')
        .set(...bearer(user.accessToken))
        .attach('image', png(), 'a.png');
      const listed = await request(app)
        .get('/images')
        .set(...bearer(user.accessToken));

      expect(res.status).toBe(503);
      expect(res.body.error.code).toBe('service_unavailable');
      expect(res.headers['retry-after']).toBeDefined();
      expect(listed.body.usedBytes).toBe(0);
    });

    it('when an image’s bytes have gone missing, then its signed URL answers 404, not 500', async () => {
      const { app, config } = setup();
      const user = await registerAndLogin(app);
      const upload = await request(app)
        .post('/images')
        .set(...bearer(user.accessToken))
        .attach('image', png(), 'a.png');
      for (const file of await filesIn(config.uploadDir)) await rm(path.join(config.uploadDir, file));

      const res = await request(app).get(upload.body.url);

      expect(res.status).toBe(404);
      expect(res.body.error.code).toBe('not_found');
    });

    it('when the sweep runs, then old bytes without a row and old rows without bytes go, and nothing young is touched', async () => {
      const { app, config } = setup();
      const user = await registerAndLogin(app);
      const kept = await request(app)
        .post('/images')
        .set(...bearer(user.accessToken))
        .attach('image', png(), 'kept.png');
      const broken = await request(app)
        .post('/images')
        .set(...bearer(user.accessToken))
        .attach('image', png(), 'broken.png');
      const brokenRow = await backends.db.prisma.image.findUniqueOrThrow({ where: { id: broken.body.id } });
      await rm(path.join(config.uploadDir, brokenRow.storageKey));
      const stray = randomBytes(18).toString('base64url');
      const young = randomBytes(18).toString('base64url');
      await writeFile(path.join(config.uploadDir, stray), png());
      await writeFile(path.join(config.uploadDir, young), png());
      const inTwoHours = Date.now() + 2 * 3_600_000;
      await utimes(path.join(config.uploadDir, young), new Date(inTwoHours), new Date(inTwoHours));

      const swept = await sweepImageOrphans(
        { prisma: backends.db.prisma, storage: new LocalDiskStorage(config.uploadDir), logger: silentLogger },
        inTwoHours,
        3_600_000,
      );

      const keptRow = await backends.db.prisma.image.findUniqueOrThrow({ where: { id: kept.body.id } });
      expect(swept.files).toBe(1);
      expect(swept.rows).toBeGreaterThanOrEqual(1);
      expect((await filesIn(config.uploadDir)).sort()).toEqual([keptRow.storageKey, young].sort());
      expect(await backends.db.prisma.image.findUnique({ where: { id: broken.body.id } })).toBeNull();
      expect((await request(app).get(kept.body.url)).status).toBe(200);
    });
  });

  describe('listing, reading and deleting', () => {
    it('when a user lists images, then only theirs come back, newest first, paginated', async () => {
      const { app, clock } = setup();
      const user = await registerAndLogin(app);
      const other = await registerAndLogin(app);
      for (const name of ['one.png', 'two.png', 'three.png']) {
        await request(app)
          .post('/images')
          .set(...bearer(user.accessToken))
          .attach('image', png(), name)
          .expect(201);
        clock.advance(1_000);
      }
      await request(app)
        .post('/images')
        .set(...bearer(other.accessToken))
        .attach('image', png(), 'theirs.png')
        .expect(201);
      const page1 = await request(app)
        .get('/images')
        .query({ pageSize: 2 })
        .set(...bearer(user.accessToken));
      const page2 = await request(app)
        .get('/images')
        .query({ pageSize: 2, page: 2 })
        .set(...bearer(user.accessToken));
      expect(page1.body.total).toBe(3);
      const names = [...page1.body.images, ...page2.body.images].map((image: { name: string }) => image.name);
      expect(names).toEqual(['three.png', 'two.png', 'one.png']);
    });

    it("when a user asks for another user's image, then 404 as if it did not exist", async () => {
      const { app } = setup();
      const owner = await registerAndLogin(app);
      const stranger = await registerAndLogin(app);
      const upload = await request(app)
        .post('/images')
        .set(...bearer(owner.accessToken))
        .attach('image', png(), 'mine.png');
      const read = await request(app)
        .get(`/images/${upload.body.id}`)
        .set(...bearer(stranger.accessToken));
      const remove = await request(app)
        .delete(`/images/${upload.body.id}`)
        .set(...bearer(stranger.accessToken));
      const missing = await request(app)
        .get('/images/00000000-0000-4000-8000-000000000000')
        .set(...bearer(stranger.accessToken));
      expect(read.status).toBe(404);
      expect(remove.status).toBe(404);
      expect(read.body.error.message).toBe(missing.body.error.message);
      expect(
        (
          await request(app)
            .get(`/images/${upload.body.id}`)
            .set(...bearer(owner.accessToken))
        ).status,
      ).toBe(200);
    });

    it('when an admin looks, then every image is visible, but only the owner deletes', async () => {
      const { app, deps } = setup();
      const owner = await registerAndLogin(app);
      const upload = await request(app)
        .post('/images')
        .set(...bearer(owner.accessToken))
        .attach('image', png(), 'mine.png');
      const username = uniqueName('admin');
      await createAdmin(deps, { email: `${username}@example.com`, username, password: 'admin password 1' });
      const admin = await login(app, { username, password: 'admin password 1' });
      expect(
        (
          await request(app)
            .get(`/images/${upload.body.id}`)
            .set(...bearer(admin.accessToken))
        ).status,
      ).toBe(200);
      const all = await request(app)
        .get('/images')
        .query({ scope: 'all', pageSize: 100 })
        .set(...bearer(admin.accessToken));
      expect((all.body.images as Array<{ id: string }>).map((image) => image.id)).toContain(upload.body.id);
      expect(
        (
          await request(app)
            .delete(`/images/${upload.body.id}`)
            .set(...bearer(admin.accessToken))
        ).status,
      ).toBe(403);
      expect(
        (
          await request(app)
            .get('/images')
            .query({ scope: 'all' })
            .set(...bearer(owner.accessToken))
        ).status,
      ).toBe(403);
    });

    it('when the owner deletes an image, then its row and its file are gone', async () => {
      const { app, config } = setup();
      const user = await registerAndLogin(app);
      const upload = await request(app)
        .post('/images')
        .set(...bearer(user.accessToken))
        .attach('image', png(), 'a.png');
      expect(await filesIn(config.uploadDir)).toHaveLength(1);
      expect(
        (
          await request(app)
            .delete(`/images/${upload.body.id}`)
            .set(...bearer(user.accessToken))
        ).status,
      ).toBe(204);
      expect(await filesIn(config.uploadDir)).toEqual([]);
      expect(
        (
          await request(app)
            .get(`/images/${upload.body.id}`)
            .set(...bearer(user.accessToken))
        ).status,
      ).toBe(404);
    });

    it('when the account is deleted, then its images and their files go with it', async () => {
      const { app, config } = setup();
      const user = await registerAndLogin(app);
      await request(app)
        .post('/images')
        .set(...bearer(user.accessToken))
        .attach('image', png(), 'a.png')
        .expect(201);
      await request(app)
        .post('/images')
        .set(...bearer(user.accessToken))
        .attach('image', gif(), 'b.gif')
        .expect(201);
      await request(app)
        .delete('/me')
        .set(...bearer(user.accessToken))
        .send({ password: user.password })
        .expect(204);
      expect(await filesIn(config.uploadDir)).toEqual([]);
      expect(await backends.db.prisma.image.count({ where: { ownerId: user.id } })).toBe(0);
    });
  });

  describe('signed URLs', () => {
    it('when the signed URL is fetched without credentials, then the bytes come with safe headers', async () => {
      const { app } = setup();
      const user = await registerAndLogin(app);
      const bytes = png(5, 5);
      const upload = await request(app)
        .post('/images')
        .set(...bearer(user.accessToken))
        .attach('image', bytes, 'pic.png');
      const res = await request(app)
        .get(upload.body.url)
        .buffer(true)
        .parse((response, done) => {
          const chunks: Buffer[] = [];
          response.on('data', (chunk: Buffer) => chunks.push(chunk));
          response.on('end', () => done(null, Buffer.concat(chunks)));
        });
      expect(res.status).toBe(200);
      // Re-encoded losslessly: other bytes, the same pixels.
      expect(sha256(res.body as Buffer)).toBe(upload.body.sha256);
      expect(
        Buffer.compare(
          await sharp(res.body as Buffer)
            .raw()
            .toBuffer(),
          await sharp(bytes).raw().toBuffer(),
        ),
      ).toBe(0);
      expect(res.headers['content-type']).toBe('image/png');
      expect(res.headers['x-content-type-options']).toBe('nosniff');
      expect(res.headers['content-disposition']).toBe('inline; filename="pic.png"');
      expect(res.headers['cache-control']).toBe('private, max-age=300');
    });

    it('when the signature, the id or the expiry is tampered with, then 403 invalid_signature', async () => {
      const { app } = setup();
      const user = await registerAndLogin(app);
      const first = await request(app)
        .post('/images')
        .set(...bearer(user.accessToken))
        .attach('image', png(), 'a.png');
      const second = await request(app)
        .post('/images')
        .set(...bearer(user.accessToken))
        .attach('image', png(), 'b.png');
      const url = new URL(first.body.url as string, 'http://x');
      const sig = url.searchParams.get('sig') as string;
      const expires = Number(url.searchParams.get('expires'));
      const flipped = `${sig.slice(0, -2)}${sig.endsWith('AA') ? 'BA' : 'AA'}`;
      const attempts = [
        `/images/${first.body.id}/content?expires=${expires}&sig=${flipped}`,
        `/images/${second.body.id}/content?expires=${expires}&sig=${sig}`,
        `/images/${first.body.id}/content?expires=${expires + 3600}&sig=${sig}`,
      ];
      for (const attempt of attempts) {
        const res = await request(app).get(attempt);
        expect(res.status, attempt).toBe(403);
        expect(res.body.error.code).toBe('invalid_signature');
      }
      expect((await request(app).get(`/images/${first.body.id}/content?expires=${expires}`)).status).toBe(400);
    });

    it('when the signed URL has expired, then 403', async () => {
      const { app, clock, config } = setup();
      const user = await registerAndLogin(app);
      const upload = await request(app)
        .post('/images')
        .set(...bearer(user.accessToken))
        .attach('image', png(), 'a.png');
      clock.advance((config.signedUrlTtlS + 1) * 1000);
      const res = await request(app).get(upload.body.url);
      expect(res.status).toBe(403);
      expect(res.body.error.message).toMatch(/expired/);
    });
  });
});
