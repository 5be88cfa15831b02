// Watches an upload stream on its way to storage: its length (refused past the limit), its SHA-256, and the head and
// tail that inspection needs, without holding the whole file.
import { createHash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { AppError } from '../../core/errors.js';
import { type FileParts, HEAD_BYTES, TAIL_BYTES } from './image-content.js';

export class ImageProbe extends Transform {
  private readonly head: Buffer[] = [];
  private headLength = 0;
  private tail = Buffer.alloc(0);
  private readonly hash = createHash('sha256');
  length = 0;

  constructor(private readonly maxBytes: number) {
    super();
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.length += chunk.length;
    if (this.length > this.maxBytes) {
      done(new AppError('file_too_large'));
      return;
    }
    if (this.headLength < HEAD_BYTES) {
      const part = chunk.subarray(0, HEAD_BYTES - this.headLength);
      this.head.push(part);
      this.headLength += part.length;
    }
    this.tail = chunk.length >= TAIL_BYTES ? Buffer.from(chunk.subarray(-TAIL_BYTES)) : Buffer.concat([this.tail, chunk]).subarray(-TAIL_BYTES);
    this.hash.update(chunk);
    done(null, chunk);
  }

  /** Once the stream has ended. */
  parts(): FileParts {
    return { head: Buffer.concat(this.head), tail: this.tail, length: this.length };
  }

  /** Once the stream has ended; once. */
  sha256(): string {
    return this.hash.digest('hex');
  }
}
