// Images: a refused upload said beside the form, an upload shown whole (never cropped) in the gallery, opened in the
// page's own viewer (no new tab, no policy errors), closed, and deleted.
import sharp from 'sharp';
import { expect, it } from 'vitest';
import { svg } from '../../support/images.js';
import { type Kit, refused, register, Visit, WIDTHS } from '../support/page-kit.js';

/** A wide PNG (4:1) with a gradient, so a cropped thumbnail or a squashed viewer would show. */
async function widePng(width = 800, height = 200): Promise<Buffer> {
  const pixels = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      const at = (y * width + x) * 3;
      pixels[at] = Math.round((255 * x) / width);
      pixels[at + 1] = Math.round((255 * y) / height);
      pixels[at + 2] = 160;
    }
  return sharp(pixels, { raw: { width, height, channels: 3 } })
    .png()
    .toBuffer();
}

export function imageScreens(kit: Kit): void {
  it('when a person uploads, opens, closes and deletes an image, then each step shows in the page and beside what they did', async () => {
    const visit = await Visit.open(kit.browser, kit.server);
    const { page } = visit;
    await register(visit);
    await expect.poll(() => visit.text('#upload-limit')).toMatch(/^, at most /);
    await visit.check('40-images-empty');

    // A type the server refuses: said beside the upload form.
    await page.locator('#file').setInputFiles({ name: 'logo.svg', mimeType: 'image/svg+xml', buffer: svg });
    await page.getByRole('button', { name: 'Upload' }).click();
    await expect.poll(() => visit.text('#upload-form > .result')).toBe('Only PNG, JPEG, GIF and WebP images are accepted.');
    expect(await visit.inView('#upload-form > .result')).toBe(true);

    // A wide image: in the gallery whole (contained, not cropped to a square).
    await page.locator('#file').setInputFiles({ name: 'panorama.png', mimeType: 'image/png', buffer: await widePng() });
    await expect.poll(() => visit.text('#upload-form > .result')).toBe('');
    await page.getByRole('button', { name: 'Upload' }).click();
    await expect.poll(() => visit.text('#upload-form > .result')).toBe('Uploaded panorama.png.');
    const thumb = page.locator('#gallery li').filter({ hasText: 'panorama.png' });
    await expect.poll(() => visit.prop('#gallery li img', 'naturalWidth')).toBe(800);
    expect(await visit.style('#gallery li img', 'objectFit')).toBe('contain');
    expect(await thumb.locator('.size').textContent()).toContain('800×200');
    await visit.check('41-image-uploaded', [refused(415)]);

    // Opened: a dialog in this page, the whole image inside the window at its own proportions, no new tab.
    await page.getByRole('button', { name: 'Open panorama.png' }).click();
    const isOpen = () => visit.prop('#viewer', 'open');
    await expect.poll(isOpen).toBe(true);
    expect(await visit.text('#viewer-title')).toBe('panorama.png');
    await expect.poll(() => visit.prop('#viewer-image', 'naturalWidth')).toBe(800);
    for (const width of WIDTHS) {
      await page.setViewportSize({ width, height: width < 600 ? 844 : 900 });
      // The whole image inside the window, and either its own 4:1 box or contained in its box: never cut, never stretched.
      expect(await visit.inView('#viewer-image')).toBe(true);
      const box = await visit.box('#viewer-image');
      expect((await visit.style('#viewer-image', 'objectFit')) === 'contain' || Math.abs(box.width / box.height - 4) < 0.05).toBe(true);
    }
    expect(page.context().pages()).toHaveLength(1);
    await visit.check('42-image-viewer');

    // Closed by its button, and by Esc.
    await page.getByRole('button', { name: 'Close' }).click();
    await expect.poll(isOpen).toBe(false);
    await page.getByRole('button', { name: 'Open panorama.png' }).click();
    await expect.poll(isOpen).toBe(true);
    await page.keyboard.press('Escape');
    await expect.poll(isOpen).toBe(false);

    // Deleted: said beside the gallery, and the gallery says it is empty.
    await thumb.getByRole('button', { name: 'Delete panorama.png' }).click();
    await expect.poll(() => visit.text('#gallery-card > .result')).toBe('Deleted panorama.png.');
    expect(await page.locator('#gallery li').count()).toBe(0);
    expect(await page.locator('#empty').isVisible()).toBe(true);
    await visit.check('43-image-deleted');
    await visit.close();
  });
}
