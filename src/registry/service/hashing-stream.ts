import { Transform, type TransformCallback } from 'node:stream';
import type { Hash } from 'node:crypto';

/**
 * Passes bytes through unchanged while feeding a hash and counting them, so a
 * blob is hashed on its single trip to storage (never buffered). An optional
 * `limit` fails the stream as soon as more bytes than that arrive.
 */
export class HashingStream extends Transform {
  bytes = 0;

  constructor(
    private readonly hash: Hash | undefined,
    private readonly limit = Number.POSITIVE_INFINITY,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.limit) {
      cb(new SizeLimitError(this.limit));
      return;
    }
    this.hash?.update(chunk);
    cb(null, chunk);
  }
}

export class SizeLimitError extends Error {
  constructor(readonly limit: number) {
    super(`body exceeds ${limit} bytes`);
    this.name = 'SizeLimitError';
  }
}
