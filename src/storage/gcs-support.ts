/**
 * Helpers of the GCS driver (gcs.ts) that need no client: error classification
 * and the upload-session state codec.
 */
import { StorageNotFoundError, StorageUnavailableError, type UploadState } from './driver.js';
import { errorName, SESSION_ID } from './s3-support.js';

/** GCS composes at most 32 source objects into one per request. */
export const COMPOSE_LIMIT = 32;

/** Resumable-upload chunks must be multiples of 256 KiB. */
export const CHUNK_GRANULE = 256 * 1024;

/** The HTTP status of a client error (`ApiError.code`); undefined for network failures. */
export function gcsStatusOf(err: unknown): number | undefined {
  const e = err as { code?: unknown; status?: unknown; response?: { status?: unknown } } | null;
  if (typeof e?.code === 'number') return e.code;
  if (typeof e?.status === 'number') return e.status;
  if (typeof e?.response?.status === 'number') return e.response.status;
  return undefined;
}

export function isGcsAbsent(err: unknown): boolean {
  return gcsStatusOf(err) === 404 || err instanceof StorageNotFoundError;
}

/**
 * Maps an error of a GCS call: aborts pass through, absence becomes
 * `StorageNotFoundError` when `key` is given, 416 a `RangeError`, everything else
 * (5xx, 429, network, credentials, checksum mismatches) `StorageUnavailableError`.
 */
export function mapGcsError(err: unknown, what: string, key?: string): unknown {
  if (errorName(err) === 'AbortError') return err;
  if (err instanceof StorageNotFoundError || err instanceof StorageUnavailableError || err instanceof RangeError) return err;
  if (key !== undefined && isGcsAbsent(err)) return new StorageNotFoundError(key);
  const status = gcsStatusOf(err);
  if (status === 416) return new RangeError(`gcs: ${what}: range not satisfiable`);
  const message = err instanceof Error ? err.message : String(err);
  return new StorageUnavailableError(`gcs: ${what} failed${status ? ` (HTTP ${status})` : ''}: ${message}`, { cause: err });
}

/** One readable object of a session's bytes. */
export interface GcsSessionPart {
  /** Unprefixed key, `uploads/<id>.part-<n>-<nonce>`. */
  key: string;
  size: number;
}

/** The GCS driver's upload-session state (see GcsDriver). */
export interface GcsSessionState {
  v: 1;
  id: string;
  /** `uploads/<id>`: the base of every key the session owns. */
  key: string;
  parts: GcsSessionPart[];
}

export function encodeGcsState(s: GcsSessionState): UploadState {
  return { v: s.v, id: s.id, key: s.key, parts: s.parts.map((p) => ({ key: p.key, size: p.size })) };
}

/**
 * Re-validates a state read back from the database: every key it names must be
 * the session's own (`uploads/<id>.…`), so a tampered state cannot make commit or
 * abort touch other objects.
 */
export function decodeGcsState(state: UploadState, uploadsPrefix: string): GcsSessionState {
  const bad = (): never => {
    throw new Error(`invalid gcs upload state: ${JSON.stringify(state)}`);
  };
  const { v, id, key, parts } = state as Record<string, unknown>;
  if (v !== 1 || typeof id !== 'string' || !SESSION_ID.test(id)) bad();
  const own = `${uploadsPrefix}/${id as string}`;
  if (key !== own || !Array.isArray(parts)) bad();
  const decoded = (parts as unknown[]).map((p) => {
    const part = p as Record<string, unknown> | null;
    const k = part?.key;
    const size = part?.size;
    if (typeof k !== 'string' || !k.startsWith(`${own}.part-`) || k.slice(own.length + 1).includes('/')) bad();
    if (!Number.isSafeInteger(size) || (size as number) <= 0) bad();
    return { key: k as string, size: size as number };
  });
  return { v: 1, id: id as string, key: own, parts: decoded };
}

export function gcsSessionSize(s: GcsSessionState): number {
  return s.parts.reduce((n, p) => n + p.size, 0);
}
