// Decides what an uploaded file really is from its own bytes, and refuses anything but complete PNG, JPEG, GIF or WebP.
import { imageSize } from 'image-size';

export type ImageType = 'image/png' | 'image/jpeg' | 'image/gif' | 'image/webp';

export interface InspectedImage {
  type: ImageType;
  width: number;
  height: number;
}

export type Inspection = { ok: true; image: InspectedImage } | { ok: false; reason: 'unsupported' | 'corrupt' };

const startsWith = (bytes: Buffer, signature: number[], offset = 0) => signature.every((byte, i) => bytes[offset + i] === byte);

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const PNG_IEND = Buffer.from([0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82]);

/** The type the leading bytes claim, whatever the file name or Content-Type said. */
function sniff(bytes: Buffer): ImageType | undefined {
  if (startsWith(bytes, PNG_SIGNATURE)) return 'image/png';
  if (startsWith(bytes, [0xff, 0xd8, 0xff])) return 'image/jpeg';
  if (startsWith(bytes, [0x47, 0x49, 0x46, 0x38]) && (bytes[4] === 0x37 || bytes[4] === 0x39) && bytes[5] === 0x61) return 'image/gif';
  if (startsWith(bytes, [0x52, 0x49, 0x46, 0x46]) && startsWith(bytes, [0x57, 0x45, 0x42, 0x50], 8)) return 'image/webp';
  return undefined;
}

/** What inspection needs of a file, which a stream can keep without holding the whole of it. */
export interface FileParts {
  /** The first HEAD_BYTES (or all of a shorter file): the signature, the header and the dimensions. */
  head: Buffer;
  /** The last TAIL_BYTES: where each format marks its end. */
  tail: Buffer;
  length: number;
}

/** Enough for every format's dimensions but a JPEG with over 256 KiB of metadata before its frame header. */
export const HEAD_BYTES = 256 * 1024;
export const TAIL_BYTES = 16;

/** Each format marks its own end; a file cut short in transit lacks it. */
function isComplete(type: ImageType, { head, tail, length }: FileParts): boolean {
  switch (type) {
    case 'image/png':
      return length >= 20 && tail.subarray(-8).equals(PNG_IEND);
    case 'image/jpeg':
      return length >= 4 && tail[tail.length - 2] === 0xff && tail[tail.length - 1] === 0xd9;
    case 'image/gif':
      return tail[tail.length - 1] === 0x3b;
    case 'image/webp':
      // RIFF size counts everything after the first 8 bytes, padded to even length.
      return length >= 12 && head.readUInt32LE(4) + 8 === length;
  }
}

/**
 * Whether a WebP's image data is lossless (a `VP8L` chunk, alone or in an extended file's frames) rather than lossy
 * (`VP8 `), judged from its head: a re-encoding keeps the kind, so a screenshot is never blurred nor a photo bloated.
 */
export function isLosslessWebp(head: Buffer): boolean {
  return head.includes('VP8L', 12, 'latin1') && !head.includes('VP8 ', 12, 'latin1');
}

/** A whole file in memory, as parts. */
export function partsOf(bytes: Buffer): FileParts {
  return { head: bytes.subarray(0, HEAD_BYTES), tail: bytes.subarray(-TAIL_BYTES), length: bytes.length };
}

export function inspectImage(file: Buffer | FileParts): Inspection {
  const parts = Buffer.isBuffer(file) ? partsOf(file) : file;
  const type = sniff(parts.head);
  if (!type) return { ok: false, reason: 'unsupported' };
  if (!isComplete(type, parts)) return { ok: false, reason: 'corrupt' };
  try {
    const { width, height } = imageSize(parts.head);
    if (!width || !height) return { ok: false, reason: 'corrupt' };
    return { ok: true, image: { type, width, height } };
  } catch {
    return { ok: false, reason: 'corrupt' };
  }
}

/** A display name that is safe in a header and a page: the base name, in printable ASCII, at most 100 characters. */
export function sanitiseFileName(name: string | undefined): string {
  const base = (name ?? '').split(/[\\/]/).pop() ?? '';
  const cleaned = base
    .normalize('NFKD')
    .replace(/[^A-Za-z0-9._ -]/g, '')
    .replace(/\s+/g, ' ')
    .replace(/^[.\s]+/, '')
    .trim()
    .slice(0, 100);
  return cleaned === '' ? 'image' : cleaned;
}
