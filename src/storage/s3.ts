import { randomBytes } from 'node:crypto';
import { addAbortSignal, Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { StorageNotFoundError, type BlobDriver, type ByteRange, type ObjectInfo, type UploadState } from './driver.js';
import { UPLOADS_PREFIX } from './layout.js';
import {
  decodeState,
  encodeState,
  errorName,
  isAbsent,
  mapS3Error,
  MIN_PART_SIZE,
  PartBuffer,
  rangeFix,
  SESSION_ID,
  sessionSize,
  sliceStream,
  statusOf,
  validateRange,
  type SessionPart,
  type SessionState,
} from './s3-support.js';

/** The `storage.s3` config section (schema.ts), as the driver needs it. */
export interface S3DriverOptions {
  bucket: string;
  region: string;
  endpoint?: string | undefined;
  forcePathStyle: boolean;
  accessKeyId?: string | undefined;
  secretAccessKey?: string | undefined;
  /** Prepended (with a `/`) to every key, so several registries can share a bucket. */
  prefix: string;
  redirect: { mode: 'none' | 'presigned' | 'cdn'; ttlSecs: number; cdnBaseUrl?: string | undefined };
  multipartPartSize: number;
  /**
   * How long to wait for a connection, and for a connected socket to move a
   * byte, before the request fails and the SDK retries it. Defaults: 10 s and 30 s.
   */
  timeouts?: { connectMs: number; idleMs: number };
}

/** DeleteObjects takes at most 1000 keys per request. */
const DELETE_BATCH = 1000;

/**
 * Blob driver on Amazon S3 or an S3-compatible store (MinIO, Ceph RGW, s3rver).
 *
 * - Whole objects: a single PutObject up to one part (`multipartPartSize`),
 *   otherwise a multipart upload streamed part by part, holding one part in
 *   memory. S3 shows an object only once its PUT or multipart upload completes,
 *   so a key never shows half an object; a failed multipart upload is aborted.
 * - Upload sessions (docs/adr/0004-s3-upload-sessions.md): a multipart upload on
 *   `uploads/<id>`, which becomes the blob's object at commit (no copy after);
 *   each part is also kept as a plain object so the bytes can be re-read before
 *   commit, and bytes short of a part wait in a tail object.
 * - No request path ever LISTs the bucket.
 *
 * Errors: absent objects/sessions are `StorageNotFoundError` (or `undefined` from
 * `stat`), unsatisfiable ranges `RangeError`, other S3 or network failures
 * `StorageUnavailableError` with the SDK error as `cause`; errors of the caller's
 * body stream and `AbortError`s pass through.
 */
export class S3Driver implements BlobDriver {
  readonly name = 's3';
  readonly client: S3Client;
  private readonly bucket: string;
  private readonly prefix: string;
  private readonly partSize: number;

  constructor(private readonly opts: S3DriverOptions) {
    if (opts.multipartPartSize < MIN_PART_SIZE) throw new Error(`s3 multipartPartSize must be at least ${MIN_PART_SIZE} bytes`);
    this.bucket = opts.bucket;
    this.prefix = opts.prefix.replace(/^\/+|\/+$/g, '');
    this.partSize = opts.multipartPartSize;
    this.client = new S3Client({
      region: opts.region,
      ...(opts.endpoint ? { endpoint: opts.endpoint } : {}),
      forcePathStyle: opts.forcePathStyle,
      // Without timeouts the SDK waits forever on a connection the store stopped
      // answering, and a push hangs with it. `socketTimeout` is an idle timeout
      // (no byte moved), not a cap on the request, so slow large parts are not
      // cut off. A request that timed out is retried by the SDK; one whose
      // streamed body was already sent fails instead (its length no longer
      // matches), so nothing is half-written.
      requestHandler: { connectionTimeout: opts.timeouts?.connectMs ?? 10_000, socketTimeout: opts.timeouts?.idleMs ?? 30_000 },
      // Without these the SDK sends streamed bodies with aws-chunked framing and
      // trailing checksums, which S3-compatible stores (s3rver, older MinIO) store verbatim.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      // Both or neither: otherwise the SDK's default chain (env, IRSA, instance role).
      ...(opts.accessKeyId && opts.secretAccessKey
        ? { credentials: { accessKeyId: opts.accessKeyId, secretAccessKey: opts.secretAccessKey } }
        : {}),
    });
  }

  async stat(key: string): Promise<ObjectInfo | undefined> {
    try {
      const res = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.full(key) }));
      return { size: res.ContentLength ?? 0 };
    } catch (err) {
      if (isAbsent(err)) return undefined;
      throw mapS3Error(err, `stat ${key}`);
    }
  }

  async read(key: string, range?: ByteRange, signal?: AbortSignal): Promise<Readable> {
    signal?.throwIfAborted();
    if (range) validateRange(range);
    // S3 clamps an end past the object itself; a start past it is 416 (RangeError).
    const body = await this.get(this.full(key), key, range, signal);
    return signal ? addAbortSignal(signal, body) : body;
  }

  async write(key: string, body: Readable, signal?: AbortSignal): Promise<{ size: number }> {
    const target = this.full(key);
    signal?.throwIfAborted();
    const source = signal ? addAbortSignal(signal, body) : body;
    const acc = new PartBuffer();
    let size = 0;
    let upload: { uploadId: string; parts: { PartNumber: number; ETag: string }[] } | undefined;
    try {
      for await (const chunk of source as AsyncIterable<Buffer | string>) {
        acc.push(chunk);
        size += typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.length;
        // Strictly more than a part: an object of exactly one part stays a single PUT.
        while (acc.length > this.partSize) {
          upload ??= { uploadId: await this.createMultipart(target, key, signal), parts: [] };
          const n = upload.parts.length + 1;
          const etag = await this.uploadPart(target, upload.uploadId, n, acc.takeChunks(this.partSize), key, signal);
          upload.parts.push({ PartNumber: n, ETag: etag });
        }
      }
      const rest = acc.takeChunks(acc.length);
      if (!upload) {
        await this.put(target, rest, key, signal);
        return { size };
      }
      const n = upload.parts.length + 1;
      upload.parts.push({ PartNumber: n, ETag: await this.uploadPart(target, upload.uploadId, n, rest, key, signal) });
      await this.completeMultipart(target, upload.uploadId, upload.parts, key);
      return { size };
    } catch (err) {
      if (upload) await this.abortMultipart(target, upload.uploadId);
      throw err;
    }
  }

  async delete(keys: string[]): Promise<void> {
    const full = keys.map((k) => this.full(k)); // validate all before deleting any
    for (let i = 0; i < full.length; i += DELETE_BATCH) {
      await this.deleteFull(full.slice(i, i + DELETE_BATCH));
    }
  }

  async ping(): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
    } catch (err) {
      // Even 404 is an outage here: without its bucket the registry cannot serve anything.
      throw mapS3Error(err, `head bucket ${this.bucket}`);
    }
  }

  async createUpload(id: string): Promise<UploadState> {
    if (!SESSION_ID.test(id)) throw new Error(`invalid upload session id: ${JSON.stringify(id)}`);
    const key = `${UPLOADS_PREFIX}/${id}`;
    const uploadId = await this.createMultipart(this.full(key), key);
    // The marker says the session is live: S3 cannot list or read an unfinished
    // multipart upload without ListParts, so commit and abort delete this instead.
    await this.put(this.full(markerKey(key)), Buffer.alloc(0), key);
    return encodeState({ v: 1, id, key, uploadId, parts: [], tailKey: null, tailSize: 0 });
  }

  async appendUpload(state: UploadState, offset: number, body: Readable, signal?: AbortSignal): Promise<{ state: UploadState; size: number }> {
    const s = decodeState(state, UPLOADS_PREFIX);
    const before = sessionSize(s);
    if (offset !== before) throw new Error(`upload ${s.key} has ${before} bytes, cannot append at offset ${offset}`);
    signal?.throwIfAborted();
    await this.requireSession(s);
    const source = signal ? addAbortSignal(signal, body) : body;
    // Every object this append creates has a fresh suffix, so a failed or aborted
    // append never overwrites what the prior state names: it stays intact at `offset`.
    const nonce = randomBytes(6).toString('hex');
    const created: string[] = [];
    const parts: SessionPart[] = [...s.parts];
    const acc = new PartBuffer();
    let appended = 0;
    try {
      const flush = async (): Promise<void> => {
        while (acc.length >= this.partSize) parts.push(await this.sessionPart(s, parts.length + 1, acc.take(this.partSize), nonce, created, signal));
      };
      // The tail is prepended streamed, through the same part-sized buffer.
      if (s.tailKey) {
        for await (const chunk of await this.get(this.full(s.tailKey), s.key, undefined, signal)) {
          acc.push(chunk as Buffer);
          await flush();
        }
      }
      for await (const chunk of source as AsyncIterable<Buffer | string>) {
        acc.push(chunk);
        appended += typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.length;
        await flush();
      }
      if (appended === 0) return { state, size: before };
      let tailKey: string | null = null;
      const tailSize = acc.length;
      if (tailSize > 0) {
        tailKey = `${s.key}.tail-${nonce}`;
        created.push(tailKey);
        await this.put(this.full(tailKey), acc.take(tailSize), s.key, signal);
      }
      // The old tail is now inside a part or the new tail. Dropping it is best effort:
      // a leftover is invisible garbage, and the session stays consistent either way.
      if (s.tailKey) await this.deleteFull([this.full(s.tailKey)]).catch(() => undefined);
      return { state: encodeState({ ...s, parts, tailKey, tailSize }), size: before + appended };
    } catch (err) {
      // Parts this append sent to the multipart upload stay there unlisted: commit
      // names only the parts in the state, and a retry re-sends those part numbers.
      if (created.length > 0) await this.deleteFull(created.map((k) => this.full(k))).catch(() => undefined);
      throw err;
    }
  }

  async readUpload(state: UploadState, range?: ByteRange): Promise<Readable> {
    const s = decodeState(state, UPLOADS_PREFIX);
    if (range) validateRange(range);
    await this.requireSession(s);
    const total = sessionSize(s);
    const segments = [...s.parts.map((p) => ({ key: p.copyKey, size: p.size }))];
    if (s.tailKey) segments.push({ key: s.tailKey, size: s.tailSize });
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
        for (const seg of segments) {
          const segStart = base;
          base += seg.size;
          if (base <= start || segStart > end || seg.size === 0) continue;
          const from = Math.max(start, segStart) - segStart;
          const to = Math.min(end, base - 1) - segStart;
          yield* await self.get(self.full(seg.key), s.key, { start: from, end: to });
        }
      })(),
      { objectMode: false },
    );
  }

  async commitUpload(state: UploadState, key: string): Promise<string> {
    const s = decodeState(state, UPLOADS_PREFIX);
    const target = this.full(key);
    // Content-addressed keys: an existing object already holds these bytes.
    if ((await this.stat(key)) !== undefined) {
      await this.abortUpload(state);
      return key;
    }
    if (s.parts.length === 0) {
      // Less than one part in all: write it straight to `key` (bounded by the part
      // size), so small blobs land at their content address.
      await this.requireSession(s);
      const bytes = s.tailKey ? await this.getBuffer(s.tailKey, s.key) : Buffer.alloc(0);
      await this.put(target, bytes, key);
      await this.abortUpload(state);
      return key;
    }
    const full = this.full(s.key);
    const parts: { PartNumber: number; ETag: string }[] = s.parts.map((p) => ({ PartNumber: p.PartNumber, ETag: p.ETag }));
    try {
      await this.requireSession(s);
      if (s.tailKey) {
        // The tail is the last part, which S3 allows to be small.
        const n = parts.length + 1;
        parts.push({ PartNumber: n, ETag: await this.uploadPart(full, s.uploadId, n, await this.getBuffer(s.tailKey, s.key), s.key) });
      }
      await this.completeMultipart(full, s.uploadId, parts, s.key);
    } catch (err) {
      // A commit retried after a crash finds the upload already completed: the
      // object is there with the session's size, only the cleanup is left.
      if (!(err instanceof StorageNotFoundError || isAbsent((err as { cause?: unknown }).cause))) throw err;
      const done = await this.stat(s.key);
      if (done?.size !== sessionSize(s)) throw err;
    }
    await this.deleteFull(this.scratchKeys(s).map((k) => this.full(k)));
    return s.key;
  }

  async abortUpload(state: UploadState): Promise<void> {
    const s = decodeState(state, UPLOADS_PREFIX);
    await this.abortMultipart(this.full(s.key), s.uploadId);
    await this.deleteFull(this.scratchKeys(s).map((k) => this.full(k)));
  }

  async redirectUrl(key: string, ttlSeconds: number): Promise<string | undefined> {
    const { mode, ttlSecs, cdnBaseUrl } = this.opts.redirect;
    if (mode === 'cdn' && cdnBaseUrl) return `${cdnBaseUrl.replace(/\/+$/, '')}/${this.full(key).split('/').map(encodeURIComponent).join('/')}`;
    if (mode !== 'presigned') return undefined;
    // The configured TTL caps what the caller asks for: storage policy is the operator's.
    const expiresIn = Math.max(1, Math.min(ttlSeconds, ttlSecs));
    try {
      return await getSignedUrl(this.client, new GetObjectCommand({ Bucket: this.bucket, Key: this.full(key) }), { expiresIn });
    } catch (err) {
      throw mapS3Error(err, `presign ${key}`);
    }
  }

  /** Closes the client's sockets. */
  destroy(): void {
    this.client.destroy();
  }

  /** The bucket key of a validated driver key. */
  private full(key: string): string {
    const segments = typeof key === 'string' ? key.split('/') : [''];
    if (key.length === 0 || segments.some((s) => s === '' || s === '.' || s === '..') || key.includes('\0')) {
      throw new Error(`invalid storage key ${JSON.stringify(key)}`);
    }
    return this.prefix ? `${this.prefix}/${key}` : key;
  }

  /** Unprefixed keys of everything a session keeps besides its multipart upload. */
  private scratchKeys(s: SessionState): string[] {
    return [markerKey(s.key), ...s.parts.map((p) => p.copyKey), ...(s.tailKey ? [s.tailKey] : [])];
  }

  /** Rejects with `StorageNotFoundError` once a session is committed or aborted. */
  private async requireSession(s: SessionState): Promise<void> {
    if ((await this.stat(markerKey(s.key))) === undefined) throw new StorageNotFoundError(s.key);
  }

  /** Sends part `n` to the multipart upload and, alongside, to its readable copy. */
  private async sessionPart(s: SessionState, n: number, bytes: Buffer, nonce: string, created: string[], signal?: AbortSignal): Promise<SessionPart> {
    const copyKey = `${s.key}.part-${n}-${nonce}`;
    created.push(copyKey);
    const [ETag] = await Promise.all([
      this.uploadPart(this.full(s.key), s.uploadId, n, bytes, s.key, signal),
      this.put(this.full(copyKey), bytes, s.key, signal),
    ]);
    return { PartNumber: n, ETag, size: bytes.length, copyKey };
  }

  /** GetObject as a stream; absence rejects (not a stream error) as `StorageNotFoundError(label)`. */
  private async get(fullKey: string, label: string, range?: ByteRange, signal?: AbortSignal): Promise<Readable> {
    try {
      const res = await this.client.send(
        new GetObjectCommand({ Bucket: this.bucket, Key: fullKey, ...(range ? { Range: `bytes=${range.start}-${range.end}` } : {}) }),
        signal ? { abortSignal: signal } : {},
      );
      // In Node the SDK's body is the response IncomingMessage, a Readable.
      const body = (res.Body as Readable | undefined) ?? Readable.from([]);
      const fix = range ? rangeFix(range, res.ContentRange, res.ContentLength) : undefined;
      return fix ? sliceStream(body, fix.skip, fix.length) : body;
    } catch (err) {
      throw mapS3Error(err, `read ${label}`, label);
    }
  }

  /** A small object (at most one part) read whole into memory. */
  private async getBuffer(key: string, label: string): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const chunk of await this.get(this.full(key), label)) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }

  private async put(fullKey: string, body: Buffer | Buffer[], label: string, signal?: AbortSignal): Promise<void> {
    const { payload, length } = bodyOf(body);
    try {
      await this.client.send(
        new PutObjectCommand({ Bucket: this.bucket, Key: fullKey, Body: payload, ContentLength: length }),
        signal ? { abortSignal: signal } : {},
      );
    } catch (err) {
      throw mapS3Error(err, `write ${label}`);
    }
  }

  private async createMultipart(fullKey: string, label: string, signal?: AbortSignal): Promise<string> {
    try {
      const res = await this.client.send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: fullKey }), signal ? { abortSignal: signal } : {});
      if (!res.UploadId) throw new Error('CreateMultipartUpload returned no UploadId');
      return res.UploadId;
    } catch (err) {
      throw mapS3Error(err, `start multipart upload of ${label}`);
    }
  }

  /** Sends one part (see `bodyOf`). */
  private async uploadPart(fullKey: string, uploadId: string, n: number, body: Buffer | Buffer[], label: string, signal?: AbortSignal): Promise<string> {
    const { payload, length } = bodyOf(body);
    try {
      const res = await this.client.send(
        new UploadPartCommand({ Bucket: this.bucket, Key: fullKey, UploadId: uploadId, PartNumber: n, Body: payload, ContentLength: length }),
        signal ? { abortSignal: signal } : {},
      );
      if (!res.ETag) throw new Error('UploadPart returned no ETag');
      return res.ETag;
    } catch (err) {
      throw mapS3Error(err, `upload part ${n} of ${label}`, label);
    }
  }

  private async completeMultipart(fullKey: string, uploadId: string, parts: { PartNumber: number; ETag: string }[], label: string): Promise<void> {
    try {
      await this.client.send(
        new CompleteMultipartUploadCommand({ Bucket: this.bucket, Key: fullKey, UploadId: uploadId, MultipartUpload: { Parts: parts } }),
      );
    } catch (err) {
      throw mapS3Error(err, `complete multipart upload of ${label}`, label);
    }
  }

  /**
   * Best-effort abort: its parts are invisible either way, and a bucket lifecycle
   * rule (AbortIncompleteMultipartUpload) reclaims what this misses. s3rver answers
   * 405 (unsupported), a finished or aborted upload 404.
   */
  private async abortMultipart(fullKey: string, uploadId: string): Promise<void> {
    try {
      await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: fullKey, UploadId: uploadId }));
    } catch (err) {
      const status = statusOf(err);
      if (status === 404 || status === 405 || status === 501 || errorName(err) === 'NoSuchUpload') return;
      throw mapS3Error(err, `abort multipart upload of ${fullKey}`);
    }
  }

  private async deleteFull(fullKeys: string[]): Promise<void> {
    if (fullKeys.length === 0) return;
    let res;
    try {
      res = await this.client.send(
        new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: fullKeys.map((Key) => ({ Key })), Quiet: true } }),
      );
    } catch (err) {
      throw mapS3Error(err, `delete ${fullKeys.length} objects`);
    }
    // Absent keys are not errors in S3's DeleteObjects; anything it does report is.
    const failed = res.Errors ?? [];
    if (failed.length > 0) {
      throw mapS3Error(new Error(`${failed[0]!.Key}: ${failed[0]!.Code} ${failed[0]!.Message}`), `delete ${failed.length} of ${fullKeys.length} objects`);
    }
  }
}

function markerKey(sessionKey: string): string {
  return `${sessionKey}.session`;
}

/**
 * A request body from one buffer or from the chunks a `PartBuffer` handed out.
 * Chunks are streamed with their length declared rather than concatenated: a
 * part-sized copy per request would double the garbage a large upload makes.
 */
function bodyOf(body: Buffer | Buffer[]): { payload: Buffer | Readable; length: number } {
  if (!Array.isArray(body)) return { payload: body, length: body.length };
  const length = body.reduce((sum, b) => sum + b.length, 0);
  if (body.length <= 1) return { payload: body[0] ?? Buffer.alloc(0), length };
  // Shifted out as they are sent, so whatever still holds the request (the SDK,
  // a pooled socket) after it completes holds no bytes.
  const queue = [...body];
  const drain = function* (): Generator<Buffer> {
    while (queue.length > 0) yield queue.shift()!;
  };
  return { payload: Readable.from(drain(), { objectMode: false }), length };
}
