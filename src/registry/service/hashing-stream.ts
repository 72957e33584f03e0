import { Transform, type TransformCallback } from 'node:stream';
import type { Hash } from 'node:crypto';

/**
 * Passes bytes through unchanged while feeding a hash and counting them, so a
 * blob is hashed on its single trip to storage (never buffered). An optional
 * `limit` fails the stream as soon as more bytes than that arrive; an optional
 * `expected` length fails it at the end when the count differs, so the
 * consumer (a storage append) sees a failed body and keeps none of it.
 */
export class HashingStream extends Transform {
  bytes = 0;

  constructor(
    private readonly hash: Hash | undefined,
    private readonly limit = Number.POSITIVE_INFINITY,
    private readonly expected?: number,
  ) {
    super();
  }

  override _flush(cb: TransformCallback): void {
    cb(this.expected !== undefined && this.bytes !== this.expected ? new LengthMismatchError(this.expected, this.bytes) : null);
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

export class LengthMismatchError extends Error {
  constructor(
    readonly expected: number,
    readonly actual: number,
  ) {
    super(`expected ${expected} bytes, got ${actual}`);
    this.name = 'LengthMismatchError';
  }
}
