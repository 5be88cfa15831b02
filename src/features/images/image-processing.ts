// What sharp does with an upload: reads its declared size without decoding it, and re-encodes it without metadata.
import { availableParallelism } from 'node:os';
import sharp from 'sharp';
import { AppError } from '../../core/errors.js';
import type { ImageType } from './image-content.js';

/** A few jobs at a time, each waiting its turn; sharp's work runs on libuv's thread pool, never on the event loop. */
class Slots {
  private readonly waiting: Array<() => void> = [];

  constructor(private free: number) {}

  async run<T>(job: () => Promise<T>): Promise<T> {
    if (this.free > 0) this.free--;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    try {
      return await job();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.free++;
    }
  }
}

/**
 * libuv's pool has four threads by default and also serves file-system calls, DNS lookups and zlib: image work may
 * take half of it at most (and no more than the machine has cores), so it never starves the rest of the service.
 */
const JOBS_AT_ONCE = Math.max(1, Math.min(2, availableParallelism()));

const FORMAT: Record<ImageType, 'png' | 'jpeg' | 'gif' | 'webp'> = {
  'image/png': 'png',
  'image/jpeg': 'jpeg',
  'image/gif': 'gif',
  'image/webp': 'webp',
};

/** What the header declares, read without decoding a pixel. */
export interface ImageLayout {
  /** Every frame's pixels together (width × height × frames): what a decoder would have to hold. */
  pixels: number;
  /** The EXIF Orientation (1–8), when the file has one. */
  orientation?: number;
  isPalette: boolean;
}

const undecodable = (cause: unknown) => new AppError('image_damaged', { cause });

export class ImageProcessor {
  private readonly slots = new Slots(JOBS_AT_ONCE);

  /**
   * @param maxPixels the most pixels (all frames together) a decode may produce; sharp refuses more itself too.
   */
  constructor(private readonly maxPixels: number) {}

  /** The header's account of the file at `file`; a header sharp cannot read, or of another format, is damaged. */
  async layout(file: string, type: ImageType): Promise<ImageLayout> {
    // The limit is checked by the caller from these numbers; metadata() itself decodes nothing, whatever they say.
    const metadata = await this.slots
      .run(() => sharp(file, { limitInputPixels: false }).metadata())
      .catch((err: unknown) => {
        throw undecodable(err);
      });
    if (metadata.format !== FORMAT[type]) throw undecodable(new Error(`sharp reads ${metadata.format}, the signature says ${type}`));
    return { pixels: metadata.width * metadata.height * (metadata.pages ?? 1), orientation: metadata.orientation, isPalette: metadata.isPalette };
  }

  /**
   * The same picture in the same format with no EXIF, GPS, XMP, IPTC, ICC profile or comments: the pixels are
   * converted to sRGB, and the EXIF Orientation, if any, is written back alone (the pixels are not rotated, so the
   * stored width and height stay the file's own). Every frame of an animation is kept.
   */
  async withoutMetadata(file: string, type: ImageType, layout: ImageLayout, lossless: boolean): Promise<Buffer> {
    return this.slots.run(async () => {
      let image = sharp(file, { animated: true, limitInputPixels: this.maxPixels, failOn: 'error' });
      if (layout.orientation !== undefined && layout.orientation !== 1) image = image.withExif({ IFD0: { Orientation: String(layout.orientation) } });
      switch (type) {
        case 'image/png':
          // A palette image stays one (re-encoding it as truecolour could multiply its size).
          image = image.png({ palette: layout.isPalette });
          break;
        case 'image/jpeg':
          image = image.jpeg({ quality: 90 });
          break;
        case 'image/gif':
          image = image.gif();
          break;
        case 'image/webp':
          image = image.webp(lossless ? { lossless: true } : { quality: 90 });
          break;
      }
      return image.toBuffer().catch((err: unknown) => {
        throw undecodable(err);
      });
    });
  }
}
