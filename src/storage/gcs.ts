import { randomBytes } from 'node:crypto';
import { addAbortSignal, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Storage, type Bucket, type File } from '@google-cloud/storage';
import { StorageNotFoundError, StorageUnavailableError, type BlobDriver, type ByteRange, type ObjectInfo, type UploadState } from './driver.js';
import { UPLOADS_PREFIX } from './layout.js';
import {
  CHUNK_GRANULE,
  COMPOSE_LIMIT,
  decodeGcsState,
  encodeGcsState,
  gcsSessionSize,
  isGcsAbsent,
  mapGcsError,
  type GcsSessionPart,
  type GcsSessionState,
} from './gcs-support.js';
import { PartBuffer, SESSION_ID, validateRange } from './s3-support.js';

/** The `storage.gcs` config section (schema.ts), as the driver needs it. */
export interface GcsDriverOptions {
  bucket: string;
  projectId?: string | undefined;
  /** Another endpoint than Google's (an emulator); the client then sends no credentials. */
  apiEndpoint?: string | undefined;
  /** Service-account key file; absent = Application Default Credentials. Needed to sign URLs. */
  keyFilename?: string | undefined;
  /** Prepended (with a `/`) to every key, so several registries can share a bucket. */
  prefix: string;
  redirect: { mode: 'none' | 'signed' | 'cdn'; ttlSecs: number; cdnBaseUrl?: string | undefined };
  /**
   * A multiple of 256 KiB: bodies up to this size are one multipart upload (held in
   * memory), larger ones a resumable upload; also the largest part object of an
   * upload session. Bounds the memory of one stream.
   */
  chunkSize: number;
  /** Retries of the client for transient failures; 0 disables them. Default: the client's (3). */
  maxRetries?: number | undefined;
}

/** Deletes in flight at once: the client has no batch API, so a "batch" is parallel requests. */
const DELETE_CONCURRENCY = 32;

/**
 * Blob driver on Google Cloud Storage (`@google-cloud/storage`).
 *
 * - Whole objects: a body up to `chunkSize` is sent as one multipart upload,
 *   a larger one as a resumable upload streamed in one request (the client's
 *   chunked mode keeps several chunks in memory; one streamed request keeps
 *   memory flat). GCS shows an object only when its upload finalises, so a key
 *   never shows half an object; a failed resumable upload is never finalised and
 *   stays invisible.
 * - Upload sessions: as on S3 (docs/adr/0004-s3-upload-sessions.md) every append
 *   writes plain, readable part objects (`uploads/<id>.part-<n>-<nonce>`, at most
 *   `chunkSize` each) beside a marker `uploads/<id>.session` whose absence means
 *   committed or aborted. Unlike S3, GCS composes objects server-side and parts
 *   have no minimum size, so there is no multipart upload and no tail: commit
 *   composes the parts (32 per request, in rounds for more) straight into the
 *   requested key, with no bytes through the registry.
 * - No request path ever lists the bucket.
 *
 * Errors: absent objects/sessions are `StorageNotFoundError` (or `undefined` from
 * `stat`), unsatisfiable ranges `RangeError`, other failures
 * `StorageUnavailableError` with the client's error as `cause`; errors of the
 * caller's body stream and `AbortError`s pass through.
 */
export class GcsDriver implements BlobDriver {
  readonly name = 'gcs';
  readonly storage: Storage;
  private readonly bucket: Bucket;
  private readonly prefix: string;
  private readonly chunkSize: number;

  constructor(private readonly opts: GcsDriverOptions) {
    if (opts.chunkSize < CHUNK_GRANULE || opts.chunkSize % CHUNK_GRANULE !== 0) {
      throw new Error(`gcs chunkSize must be a positive multiple of ${CHUNK_GRANULE} bytes (256 KiB)`);
    }
    if (opts.redirect.mode === 'signed' && !opts.keyFilename) throw new Error('gcs redirect mode signed needs keyFilename (a service-account key)');
    this.prefix = opts.prefix.replace(/^\/+|\/+$/g, '');
    this.chunkSize = opts.chunkSize;
    this.storage = new Storage({
      ...(opts.apiEndpoint ? { apiEndpoint: opts.apiEndpoint.replace(/\/+$/, '') } : {}),
      ...(opts.projectId ? { projectId: opts.projectId } : {}),
      ...(opts.keyFilename ? { keyFilename: opts.keyFilename } : {}),
      ...(opts.maxRetries !== undefined
        ? { retryOptions: opts.maxRetries === 0 ? { autoRetry: false } : { autoRetry: true, maxRetries: opts.maxRetries } }
        : {}),
    });
    this.bucket = this.storage.bucket(opts.bucket);
  }

  async stat(key: string): Promise<ObjectInfo | undefined> {
    return this.statFull(this.full(key), key);
  }

  async read(key: string, range?: ByteRange, signal?: AbortSignal): Promise<Readable> {
    signal?.throwIfAborted();
    if (range) validateRange(range);
    // The client reports absence as a stream error; the port wants a rejection, so look first.
    const info = await this.statFull(this.full(key), key);
    if (!info) throw new StorageNotFoundError(key);
    const body = this.get(this.full(key), key, info.size, range);
    return signal ? addAbortSignal(signal, body) : body;
  }

  async write(key: string, body: Readable, signal?: AbortSignal): Promise<{ size: number }> {
    const file = this.file(this.full(key));
    signal?.throwIfAborted();
    const source = signal ? addAbortSignal(signal, body) : body;
    const it = (source as AsyncIterable<Buffer | string>)[Symbol.asyncIterator]();
    const acc = new PartBuffer();
    let size = 0;
    let sourceError: unknown;
    const next = async (): Promise<IteratorResult<Buffer | string>> => {
      try {
        const r = await it.next();
        if (!r.done) size += typeof r.value === 'string' ? Buffer.byteLength(r.value) : r.value.length;
        return r;
      } catch (err) {
        sourceError = err;
        throw err;
      }
    };
    // Strictly more than a chunk goes resumable: an object of exactly one chunk is one request.
    let ended = false;
    while (acc.length <= this.chunkSize) {
      const r = await next();
      if (r.done) {
        ended = true;
        break;
      }
      acc.push(r.value);
    }
    if (ended) {
      await this.save(file, acc.take(acc.length), key, signal);
      return { size };
    }
    const rest = Readable.from(
      (async function* () {
        yield* acc.takeChunks(acc.length);
        for (;;) {
          const r = await next();
          if (r.done) return;
          yield typeof r.value === 'string' ? Buffer.from(r.value) : r.value;
        }
      })(),
      { objectMode: false },
    );
    try {
      await pipeline(rest, file.createWriteStream({ resumable: true, validation: 'crc32c' }), signal ? { signal } : {});
      return { size };
    } catch (err) {
      // An unfinalised resumable upload is invisible: nothing to clean up.
      if (sourceError !== undefined) throw sourceError;
      throw mapGcsError(err, `write ${key}`);
    } finally {
      await it.return?.().catch(() => undefined);
    }
  }

  async delete(keys: string[]): Promise<void> {
    const full = keys.map((k) => this.full(k)); // validate all before deleting any
    await this.deleteFull(full);
  }

  async ping(): Promise<void> {
    let exists: boolean;
    try {
      [exists] = await this.bucket.exists();
    } catch (err) {
      throw mapGcsError(err, `check bucket ${this.opts.bucket}`);
    }
    // Without its bucket the registry cannot serve anything: an outage, not absence.
    if (!exists) throw new StorageUnavailableError(`gcs: bucket ${this.opts.bucket} does not exist`);
  }

  async createUpload(id: string): Promise<UploadState> {
    if (!SESSION_ID.test(id)) throw new Error(`invalid upload session id: ${JSON.stringify(id)}`);
    const key = `${UPLOADS_PREFIX}/${id}`;
    await this.save(this.file(this.full(markerKey(key))), Buffer.alloc(0), key);
    return encodeGcsState({ v: 1, id, key, parts: [] });
  }

  async appendUpload(state: UploadState, offset: number, body: Readable, signal?: AbortSignal): Promise<{ state: UploadState; size: number }> {
    const s = decodeGcsState(state, UPLOADS_PREFIX);
    const before = gcsSessionSize(s);
    if (offset !== before) throw new Error(`upload ${s.key} has ${before} bytes, cannot append at offset ${offset}`);
    signal?.throwIfAborted();
    await this.requireSession(s);
    const source = signal ? addAbortSignal(signal, body) : body;
    // Fresh names for everything this append writes: a failed or aborted append
    // never touches what the prior state names, so the session stays at `offset`.
    const nonce = randomBytes(6).toString('hex');
    const parts: GcsSessionPart[] = [...s.parts];
    const created: string[] = [];
    const acc = new PartBuffer();
    const flush = async (n: number): Promise<void> => {
      const partKey = `${s.key}.part-${parts.length + 1}-${nonce}`;
      created.push(partKey);
      await this.save(this.file(this.full(partKey)), acc.take(n), s.key, signal);
      parts.push({ key: partKey, size: n });
    };
    try {
      for await (const chunk of source as AsyncIterable<Buffer | string>) {
        acc.push(chunk);
        while (acc.length >= this.chunkSize) await flush(this.chunkSize);
      }
      if (acc.length > 0) await flush(acc.length);
    } catch (err) {
      if (created.length > 0) await this.deleteFull(created.map((k) => this.full(k))).catch(() => undefined);
      throw err;
    }
    const next = { ...s, parts };
    return { state: encodeGcsState(next), size: gcsSessionSize(next) };
  }

  async readUpload(state: UploadState, range?: ByteRange): Promise<Readable> {
    const s = decodeGcsState(state, UPLOADS_PREFIX);
    if (range) validateRange(range);
    await this.requireSession(s);
    const total = gcsSessionSize(s);
    let start = 0;
    let end = total - 1;
    if (range) {
      if (range.start >= total) throw new RangeError(`range start ${range.start} is beyond the end of upload ${s.key} (${total} bytes)`);
      start = range.start;
      end = Math.min(range.end, total - 1);
    }
    const self = this;
    return Readable.from(
      (async function* () {
        let base = 0;
        for (const part of s.parts) {
          const partStart = base;
          base += part.size;
          if (base <= start || partStart > end) continue;
          const from = Math.max(start, partStart) - partStart;
          const to = Math.min(end, base - 1) - partStart;
          yield* self.get(self.full(part.key), s.key, part.size, { start: from, end: to });
        }
      })(),
      { objectMode: false },
    );
  }

  async commitUpload(state: UploadState, key: string): Promise<string> {
    const s = decodeGcsState(state, UPLOADS_PREFIX);
    const target = this.full(key);
    // Content-addressed keys: an existing object already holds these bytes. This is
    // also how a commit retried after a crash between compose and cleanup finishes.
    if ((await this.statFull(target, key)) !== undefined) {
      await this.abortUpload(state);
      return key;
    }
    await this.requireSession(s);
    if (s.parts.length === 0) await this.save(this.file(target), Buffer.alloc(0), key);
    else await this.composeAll(s, s.parts.map((p) => this.full(p.key)), target);
    await this.deleteFull(this.scratchKeys(s).map((k) => this.full(k)));
    return key;
  }

  async abortUpload(state: UploadState): Promise<void> {
    const s = decodeGcsState(state, UPLOADS_PREFIX);
    // The marker goes first: once it is gone the session is over, whatever is left.
    await this.deleteFull([this.full(markerKey(s.key))]);
    await this.deleteFull(s.parts.map((p) => this.full(p.key)));
  }

  async redirectUrl(key: string, ttlSeconds: number): Promise<string | undefined> {
    const { mode, ttlSecs, cdnBaseUrl } = this.opts.redirect;
    if (mode === 'cdn' && cdnBaseUrl) return `${cdnBaseUrl.replace(/\/+$/, '')}/${this.full(key).split('/').map(encodeURIComponent).join('/')}`;
    if (mode !== 'signed') return undefined;
    // The configured TTL caps what the caller asks for: storage policy is the operator's.
    const seconds = Math.max(1, Math.min(ttlSeconds, ttlSecs));
    try {
      const [url] = await this.file(this.full(key)).getSignedUrl({ version: 'v4', action: 'read', expires: Date.now() + seconds * 1000 });
      return url;
    } catch (err) {
      throw mapGcsError(err, `sign a URL for ${key}`);
    }
  }

  /** The bucket key of a validated driver key. */
  private full(key: string): string {
    const segments = typeof key === 'string' ? key.split('/') : [''];
    if (key.length === 0 || segments.some((s) => s === '' || s === '.' || s === '..') || key.includes('\0')) {
      throw new Error(`invalid storage key ${JSON.stringify(key)}`);
    }
    return this.prefix ? `${this.prefix}/${key}` : key;
  }

  private file(fullKey: string): File {
    return this.bucket.file(fullKey);
  }

  private scratchKeys(s: GcsSessionState): string[] {
    return [markerKey(s.key), ...s.parts.map((p) => p.key)];
  }

  /** Rejects with `StorageNotFoundError` once a session is committed or aborted. */
  private async requireSession(s: GcsSessionState): Promise<void> {
    if ((await this.statFull(this.full(markerKey(s.key)), s.key)) === undefined) throw new StorageNotFoundError(s.key);
  }

  private async statFull(fullKey: string, label: string): Promise<ObjectInfo | undefined> {
    try {
      const [md] = await this.file(fullKey).getMetadata();
      return { size: Number(md.size ?? 0) };
    } catch (err) {
      if (isGcsAbsent(err)) return undefined;
      throw mapGcsError(err, `stat ${label}`);
    }
  }

  /**
   * Streams an object of known `size`, or an inclusive range of it (end clamped).
   * Errors of the client's stream (the object vanishing meanwhile, the backend
   * failing, a checksum mismatch) surface as the port's errors.
   */
  private get(fullKey: string, label: string, size: number, range?: ByteRange): Readable {
    if (range && range.start >= size) throw new RangeError(`range start ${range.start} is beyond the end of ${label} (${size} bytes)`);
    if (size === 0) return Readable.from([], { objectMode: false });
    const stream = this.file(fullKey).createReadStream(range ? { start: range.start, end: Math.min(range.end, size - 1) } : { validation: 'crc32c' });
    return Readable.from(
      (async function* () {
        try {
          yield* stream as AsyncIterable<Buffer>;
        } catch (err) {
          throw mapGcsError(err, `read ${label}`, label);
        } finally {
          stream.destroy();
        }
      })(),
      { objectMode: false },
    );
  }

  /** One request (multipart upload) for a body already in memory, at most one chunk. */
  private async save(file: File, bytes: Buffer, label: string, signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    try {
      await file.save(bytes, { resumable: false, validation: 'crc32c' });
    } catch (err) {
      throw mapGcsError(err, `write ${label}`);
    }
    signal?.throwIfAborted();
  }

  /**
   * Composes `sources` (full keys, in order) into `target`: 32 at a time into
   * intermediate objects, round after round, until one compose makes the target.
   * Intermediates are deleted afterwards, also on failure.
   */
  private async composeAll(s: GcsSessionState, sources: string[], target: string): Promise<void> {
    const nonce = randomBytes(6).toString('hex');
    const temps: string[] = [];
    try {
      let level = sources;
      for (let round = 0; level.length > COMPOSE_LIMIT; round++) {
        const groups: string[][] = [];
        for (let i = 0; i < level.length; i += COMPOSE_LIMIT) groups.push(level.slice(i, i + COMPOSE_LIMIT));
        level = await Promise.all(
          groups.map(async (group, i) => {
            if (group.length === 1) return group[0]!;
            const temp = this.full(`${s.key}.compose-${nonce}-${round}-${i}`);
            temps.push(temp);
            await this.compose(group, temp, s.key);
            return temp;
          }),
        );
      }
      await this.compose(level, target, s.key);
    } finally {
      if (temps.length > 0) await this.deleteFull(temps).catch(() => undefined);
    }
  }

  private async compose(sources: string[], target: string, label: string): Promise<void> {
    try {
      await this.bucket.combine(
        sources.map((k) => this.file(k)),
        this.file(target),
      );
    } catch (err) {
      throw mapGcsError(err, `compose ${sources.length} objects of ${label}`, label);
    }
  }

  private async deleteFull(fullKeys: string[]): Promise<void> {
    for (let i = 0; i < fullKeys.length; i += DELETE_CONCURRENCY) {
      const batch = fullKeys.slice(i, i + DELETE_CONCURRENCY);
      const results = await Promise.allSettled(batch.map((k) => this.file(k).delete({ ignoreNotFound: true })));
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected' && !isGcsAbsent(r.reason));
      if (failed) throw mapGcsError(failed.reason, `delete ${batch.length} objects`);
    }
  }
}

function markerKey(sessionKey: string): string {
  return `${sessionKey}.session`;
}
