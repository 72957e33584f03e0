import { Transform, type TransformCallback } from 'node:stream';
import type { Hash } from 'node:crypto';

/**
 * Passes bytes through unchanged while feeding a hash and counting them, so a
 * blob is hashed on its single trip to storage (never buffered). An optional
 * `expected` length fails the stream at its end when the count differs, so the
 * consumer (a storage append) sees a failed body and keeps none of it.
 */
export class HashingStream extends Transform {
  bytes = 0;

  constructor(
    private readonly hash: Hash,
    private readonly expected?: number,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    this.hash.update(chunk);
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    cb(this.expected !== undefined && this.bytes !== this.expected ? new LengthMismatchError(this.expected, this.bytes) : null);
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
