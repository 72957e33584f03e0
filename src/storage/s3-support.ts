/**
 * Helpers of the S3 driver (s3.ts) that need no client: error classification,
 * part accumulation and the upload-session state codec.
 */
import { Readable } from 'node:stream';
import { StorageNotFoundError, StorageUnavailableError, type ByteRange, type UploadState } from './driver.js';

/** Upload session ids are single, uuid-like key segments (no dots, no slashes). */
export const SESSION_ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/;

/** S3's smallest part (all but the last part of a multipart upload). */
export const MIN_PART_SIZE = 5 * 1024 * 1024;

/** The HTTP status an SDK error carries; undefined for network failures. */
export function statusOf(err: unknown): number | undefined {
  const meta = (err as { $metadata?: { httpStatusCode?: unknown } } | null)?.$metadata;
  return typeof meta?.httpStatusCode === 'number' ? meta.httpStatusCode : undefined;
}

export function errorName(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'name' in err && typeof err.name === 'string' ? err.name : undefined;
}

/** HeadObject answers 404 without a body (`NotFound`), GetObject with `NoSuchKey`. */
export function isAbsent(err: unknown): boolean {
  const name = errorName(err);
  return name === 'NotFound' || name === 'NoSuchKey' || name === 'NoSuchUpload' || statusOf(err) === 404;
}

/**
 * Maps an error of an S3 call: aborts pass through (callers match on the name),
 * absence becomes `StorageNotFoundError` when `key` is given, 416 a `RangeError`,
 * and everything else (5xx, throttling, network, credentials) `StorageUnavailableError`:
 * whatever the reason, the registry cannot reach its bytes right now.
 */
export function mapS3Error(err: unknown, what: string, key?: string): unknown {
  if (errorName(err) === 'AbortError') return err;
  if (key !== undefined && isAbsent(err)) return new StorageNotFoundError(key);
  const status = statusOf(err);
  if (status === 416) return new RangeError(`s3: ${what}: range not satisfiable`);
  const message = err instanceof Error ? err.message : String(err);
  return new StorageUnavailableError(`s3: ${what} failed${status ? ` (HTTP ${status})` : ''}: ${message}`, { cause: err });
}

export function validateRange(range: ByteRange): void {
  const { start, end } = range;
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start) {
    throw new RangeError(`invalid byte range ${start}-${end}`);
  }
}

/**
 * Collects stream chunks until a part is full. Holds at most one part plus one
 * incoming chunk: `take` copies exactly `n` bytes out and drops what it consumed,
 * so memory stays bounded by the part size whatever the object size.
 */
export class PartBuffer {
  private chunks: Buffer[] = [];
  length = 0;

  push(chunk: Buffer | string): void {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    if (buf.length === 0) return;
    this.chunks.push(buf);
    this.length += buf.length;
  }

  /**
   * The first `n` bytes as the chunks that hold them, without copying: a part is
   * sent from these, so no part-sized buffer is allocated per part.
   */
  takeChunks(n: number): Buffer[] {
    const out: Buffer[] = [];
    let filled = 0;
    while (filled < n) {
      const head = this.chunks[0]!;
      const want = n - filled;
      if (head.length <= want) {
        out.push(head);
        filled += head.length;
        this.chunks.shift();
      } else {
        out.push(head.subarray(0, want));
        filled += want;
        this.chunks[0] = head.subarray(want);
      }
    }
    this.length -= n;
    return out;
  }

  take(n: number): Buffer {
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const head = this.chunks[0]!;
      const want = n - filled;
      if (head.length <= want) {
        head.copy(out, filled);
        filled += head.length;
        this.chunks.shift();
      } else {
        head.copy(out, filled, 0, want);
        filled += want;
        // subarray keeps the rest without copying; the consumed prefix is freed with it later.
        this.chunks[0] = head.subarray(want);
      }
    }
    this.length -= n;
    return out;
  }
}

/** One part of a session's multipart upload, and the readable copy of its bytes. */
export interface SessionPart {
  PartNumber: number;
  ETag: string;
  size: number;
  /** Unprefixed key of the plain object that holds the same bytes, for `readUpload`. */
  copyKey: string;
}

/** The S3 driver's upload-session state (docs/adr/0004-s3-upload-sessions.md). */
export interface SessionState {
  v: 1;
  id: string;
  /** Unprefixed key of the multipart upload: the blob's final object when it has parts. */
  key: string;
  uploadId: string;
  parts: SessionPart[];
  /** Unprefixed key of the pending bytes after the last part (fewer than a part), or null. */
  tailKey: string | null;
  tailSize: number;
}

export function encodeState(s: SessionState): UploadState {
  return {
    v: s.v,
    id: s.id,
    key: s.key,
    uploadId: s.uploadId,
    parts: s.parts.map((p) => ({ PartNumber: p.PartNumber, ETag: p.ETag, size: p.size, copyKey: p.copyKey })),
    tailKey: s.tailKey,
    tailSize: s.tailSize,
  };
}

/**
 * Re-validates a state read back from the database: every key it names must be
 * the session's own (`uploads/<id>` and siblings), so a tampered state cannot make
 * commit or abort touch other objects.
 */
export function decodeState(state: UploadState, uploadsPrefix: string): SessionState {
  const bad = (): never => {
    throw new Error(`invalid s3 upload state: ${JSON.stringify(state)}`);
  };
  const { v, id, key, uploadId, parts, tailKey, tailSize } = state as Record<string, unknown>;
  if (v !== 1 || typeof id !== 'string' || !SESSION_ID.test(id)) bad();
  const own = `${uploadsPrefix}/${id as string}`;
  const isOwn = (k: unknown): k is string => typeof k === 'string' && k.startsWith(`${own}.`) && !k.slice(own.length + 1).includes('/');
  if (key !== own || typeof uploadId !== 'string' || uploadId === '' || !Array.isArray(parts)) bad();
  const size = (n: unknown): n is number => Number.isSafeInteger(n) && (n as number) >= 0;
  const decoded: SessionPart[] = (parts as unknown[]).map((p, i) => {
    const part = p as Record<string, unknown> | null;
    if (!part || part.PartNumber !== i + 1 || typeof part.ETag !== 'string' || !size(part.size) || !isOwn(part.copyKey)) bad();
    return { PartNumber: i + 1, ETag: part!.ETag as string, size: part!.size as number, copyKey: part!.copyKey as string };
  });
  if (!(tailKey === null || isOwn(tailKey)) || !size(tailSize) || (tailKey === null) !== (tailSize === 0)) bad();
  return { v: 1, id: id as string, key: own, uploadId: uploadId as string, parts: decoded, tailKey: tailKey as string | null, tailSize: tailSize as number };
}

export function sessionSize(s: SessionState): number {
  return s.parts.reduce((n, p) => n + p.size, 0) + s.tailSize;
}

/**
 * What to cut from a ranged GetObject body so it holds exactly the bytes asked for.
 * HTTP lets a server ignore or widen a Range (answer 200, or 206 with a larger
 * Content-Range; s3rver does the latter for `bytes=0-0`), so the driver checks the
 * range it got rather than trusting it. Undefined when the body is already exact.
 */
export function rangeFix(
  asked: ByteRange,
  contentRange: string | undefined,
  contentLength: number | undefined,
): { skip: number; length: number } | undefined {
  const m = contentRange ? /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(contentRange) : null;
  const gotStart = m ? Number(m[1]) : 0;
  const gotEnd = m ? Number(m[2]) : (contentLength ?? 0) - 1;
  const wantEnd = Math.min(asked.end, gotEnd);
  if (gotStart === asked.start && gotEnd === wantEnd) return undefined;
  if (gotStart > asked.start) throw new Error(`storage answered bytes ${gotStart}-${gotEnd} for a request from byte ${asked.start}`);
  return { skip: asked.start - gotStart, length: Math.max(0, wantEnd - asked.start + 1) };
}

/** `length` bytes of `source` after its first `skip`; the source is destroyed once they are out. */
export function sliceStream(source: Readable, skip: number, length: number): Readable {
  return Readable.from(
    (async function* () {
      let toSkip = skip;
      let left = length;
      try {
        for await (const raw of source as AsyncIterable<Buffer>) {
          let chunk = raw;
          if (toSkip > 0) {
            const n = Math.min(toSkip, chunk.length);
            toSkip -= n;
            chunk = chunk.subarray(n);
          }
          if (chunk.length === 0) continue;
          if (chunk.length >= left) {
            yield chunk.subarray(0, left);
            left = 0;
            return;
          }
          left -= chunk.length;
          yield chunk;
        }
      } finally {
        source.destroy();
      }
    })(),
    { objectMode: false },
  );
}
