import type { Readable } from 'node:stream';

/**
 * The blob storage port: bytes by key, no OCI knowledge. Keys are
 * slash-separated relative paths (`blobs/sha256/ab/abcd…`, `uploads/<id>`);
 * layout.ts decides them. Every driver must pass test/conformance/blob-driver.ts.
 */
export interface BlobDriver {
  /** Short name for metrics and logs: `filesystem`, `s3`, `gcs`. */
  readonly name: string;

  /** Size of a committed object; `undefined` when it does not exist. */
  stat(key: string): Promise<ObjectInfo | undefined>;

  /**
   * Streams a committed object, or the inclusive byte range of it.
   * Throws `StorageNotFoundError` when absent. `range.end` past the end is clamped.
   */
  read(key: string, range?: ByteRange, signal?: AbortSignal): Promise<Readable>;

  /**
   * Writes a whole object from a stream. The object becomes visible under `key`
   * only when the promise resolves (never half-written); on failure nothing is left.
   */
  write(key: string, body: Readable, signal?: AbortSignal): Promise<{ size: number }>;

  /** Removes objects; absent keys are not an error. Drivers batch where they can. */
  delete(keys: string[]): Promise<void>;

  /** Checks that the backend answers (for /readyz). */
  ping(): Promise<void>;

  // ---- Resumable multi-part writes, for upload sessions -------------------------
  // A session's state is an opaque JSON value the caller persists (in the
  // database) between requests, so any process can continue a session.

  /** Starts an empty multi-part object for upload session `id`. */
  createUpload(id: string): Promise<UploadState>;

  /**
   * Appends `body` at `offset` (which must equal the bytes written so far; the
   * caller enforces order). Resolves when the bytes are durable, with the new
   * state and the total size. A failed append leaves the prior bytes intact and
   * the session still at `offset`.
   */
  appendUpload(state: UploadState, offset: number, body: Readable, signal?: AbortSignal): Promise<{ state: UploadState; size: number }>;

  /** Streams the bytes written so far to a session (used to rebuild a hash state). */
  readUpload(state: UploadState, range?: ByteRange): Promise<Readable>;

  /**
   * Makes the session's bytes visible as the committed object `key`, and returns
   * the key they now live under (normally `key`; a driver that cannot rename
   * cheaply may keep the upload's own key — the metadata records whichever).
   * If `key` already exists the session is discarded and `key` returned.
   */
  commitUpload(state: UploadState, key: string): Promise<string>;

  /** Discards a session's bytes; idempotent. */
  abortUpload(state: UploadState): Promise<void>;

  /** A short-lived URL a client may fetch the object from directly, when the driver's redirect policy allows. */
  redirectUrl?(key: string, ttlSeconds: number): Promise<string | undefined>;
}

export interface ObjectInfo {
  size: number;
}

/** Inclusive byte range, as in HTTP `Range: bytes=start-end`. */
export interface ByteRange {
  start: number;
  end: number;
}

/** Driver-specific, JSON-serialisable state of an upload session. */
export type UploadState = { [k: string]: string | number | boolean | null | UploadState | UploadState[] | string[] };

export class StorageNotFoundError extends Error {
  constructor(readonly key: string) {
    super(`storage object not found: ${key}`);
    this.name = 'StorageNotFoundError';
  }
}

/** Thrown by drivers for transient backend failures (I/O errors, timeouts, 5xx). */
export class StorageUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StorageUnavailableError';
  }
}
