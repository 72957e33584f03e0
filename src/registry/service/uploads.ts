import { randomUUID, type Hash } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import { RegistryError } from '../../core/errors.js';
import { newHasher, parseDigest, type Algorithm } from '../../core/oci/digest.js';
import type { Logger } from '../../core/log.js';
import type { Metrics } from '../../core/metrics.js';
import type { BlobDriver, UploadState } from '../../storage/driver.js';
import { blobKey } from '../../storage/layout.js';
import type { BlobRecord, MetadataStore, UploadRecord } from '../../metadata/store.js';
import { HashingStream, LengthMismatchError } from './hashing-stream.js';
import { KeyedMutex } from './keyed-mutex.js';

/** The hash every session computes while bytes arrive; other algorithms re-read at commit. */
const STREAMING_ALGORITHM: Algorithm = 'sha256';

/** Byte range a PATCH claims (`Content-Range: <start>-<end>`), inclusive. */
export interface ChunkRange {
  start: number;
  end: number;
}

export interface UploadTarget {
  repoKey: string;
  image: string;
}

/**
 * Blob upload sessions (OCI "push a blob"): monolithic, POST+PUT, streamed and
 * chunked PATCH. Session state (offset, driver state) lives in the database, the
 * bytes in storage, so any process can continue a session after a restart.
 *
 * Hashing (docs/adr/0002-upload-hashing.md): the process that receives a chunk
 * keeps a native SHA-256 state in memory keyed by session and offset. A chunk
 * that arrives where that state is missing or at another offset (restart, other
 * pod) re-hashes the stored prefix once from storage, then continues natively.
 */
export class UploadService {
  private readonly hashers = new Map<string, { hash: Hash; offset: number; touched: number }>();
  private readonly locks = new KeyedMutex();

  constructor(
    private readonly deps: {
      store: MetadataStore;
      driver: BlobDriver;
      log: Logger;
      metrics: Metrics;
      /** In-memory hash states kept at most this long without use (bounded memory). */
      hasherIdleMs?: number;
    },
  ) {}

  async start(target: UploadTarget): Promise<UploadRecord> {
    const id = randomUUID();
    const state = await this.deps.driver.createUpload(id);
    const rec = await this.deps.store.uploads.create({ id, ...target, driverState: state });
    this.hashers.set(id, { hash: newHasher(STREAMING_ALGORITHM), offset: 0, touched: Date.now() });
    return rec;
  }

  /** The session, which must belong to `target`; otherwise BLOB_UPLOAD_UNKNOWN. */
  async get(target: UploadTarget, id: string): Promise<UploadRecord> {
    if (!/^[0-9a-f-]{36}$/.test(id)) throw new RegistryError('BLOB_UPLOAD_UNKNOWN', `unknown upload: ${id}`);
    const rec = await this.deps.store.uploads.get(id);
    if (!rec || rec.repoKey !== target.repoKey || rec.image !== target.image) {
      throw new RegistryError('BLOB_UPLOAD_UNKNOWN', `unknown upload: ${id}`);
    }
    return rec;
  }

  /**
   * Appends a chunk. With `range`, its start must equal the bytes received so far
   * (else 416 with the current Range), and the body must carry exactly its length.
   */
  async append(target: UploadTarget, id: string, body: Readable, range?: ChunkRange): Promise<UploadRecord> {
    return this.locks.run(id, async () => {
      const rec = await this.get(target, id);
      return this.appendLocked(rec, body, range);
    });
  }

  /**
   * Completes a session: appends the optional final chunk, verifies the digest,
   * makes the blob visible and links it into the target image. A digest mismatch
   * is DIGEST_INVALID and discards the session (as the reference registry does).
   */
  async complete(target: UploadTarget, id: string, digest: string, body?: Readable, range?: ChunkRange): Promise<BlobRecord> {
    const d = parseDigest(digest);
    return this.locks.run(id, async () => {
      let rec = await this.get(target, id);
      if (body) rec = await this.appendLocked(rec, body, range);
      const actual = await this.finalDigest(rec, d.algorithm);
      if (actual !== d.value) {
        await this.discard(rec, 'digest_invalid');
        throw new RegistryError('DIGEST_INVALID', `upload has digest ${actual}, not ${d.value}`, { expected: d.value, actual });
      }
      let duplicate: string | undefined;
      const blob = await this.deps.store.transaction(async (tx) => {
        // The garbage collector's per-digest lock (docs/adr/0005-online-gc.md),
        // held from writing the object until the row and link commit. The sweep
        // deletes a blob's row and, later, its object each under this lock,
        // re-checking first: so it either finished deleting before we write
        // (we then write the object anew and insert a fresh row), or it waits
        // and then finds our row (young, linked) and keeps the object. Without
        // the lock, `commitUpload` could find the object still present (and keep
        // it), and the sweep delete it right after.
        await tx.lock(`blob:${d.value}`);
        const storageKey = await this.deps.driver.commitUpload(rec.driverState as UploadState, blobKey(d));
        const b = await tx.blobs.put({ digest: d.value, size: rec.size, storageKey });
        // A driver that commits in place (S3: the upload's own key) leaves a second copy
        // when the blob existed already under another key: nothing references it.
        if (b.storageKey !== storageKey) duplicate = storageKey;
        // A re-pushed blob's row keeps its first created_at: restart its grace window.
        await tx.gc.touch(d.value);
        await tx.blobs.link(rec.repoKey, rec.image, d.value);
        await tx.uploads.delete(rec.id);
        return b;
      });
      if (duplicate) {
        await this.deps.driver.delete([duplicate]).catch((err: unknown) => this.deps.log.warn({ err, key: duplicate }, 'could not remove a duplicate blob object'));
      }
      this.hashers.delete(id);
      this.observe(rec, 'completed');
      return blob;
    });
  }

  /** Monolithic upload (POST with `?digest=`): one request, no session left behind. */
  async monolithic(target: UploadTarget, digest: string, body: Readable): Promise<BlobRecord> {
    parseDigest(digest);
    const rec = await this.start(target);
    try {
      return await this.complete(target, rec.id, digest, body);
    } catch (e) {
      await this.cancelQuietly(rec);
      throw e;
    }
  }

  async cancel(target: UploadTarget, id: string): Promise<void> {
    await this.locks.run(id, async () => {
      const rec = await this.get(target, id);
      await this.discard(rec, 'cancelled');
    });
  }

  /** Discards sessions untouched since `before` (abandoned by their clients); resolves how many. */
  async expireStale(before: Date, batch = 100): Promise<number> {
    let total = 0;
    for (;;) {
      const stale = await this.deps.store.uploads.stale(before, batch);
      for (const rec of stale) {
        await this.locks.run(rec.id, () => this.discard(rec, 'expired'));
        total++;
      }
      if (stale.length < batch) return total;
    }
  }

  /** Drops in-memory hash states not used for a while; cheap, called periodically. */
  sweepIdleHashers(now = Date.now()): void {
    const idle = this.deps.hasherIdleMs ?? 15 * 60_000;
    for (const [id, h] of this.hashers) if (now - h.touched > idle) this.hashers.delete(id);
  }

  private async appendLocked(rec: UploadRecord, body: Readable, range?: ChunkRange): Promise<UploadRecord> {
    if (range && range.start !== rec.size) {
      body.resume();
      throw rangeError(rec.size, `chunk starts at ${range.start} but ${rec.size} bytes were received so far`);
    }
    const base = await this.hasherAt(rec);
    // Hash a copy: if the append fails, the session stays at its old offset and so does the hash.
    const hash = base.copy();
    // A body that differs from its Content-Range fails the stream at its end, so the
    // driver treats the append as failed and keeps the session at its old offset.
    const claimed = range ? range.end - range.start + 1 : undefined;
    const counter = new HashingStream(hash, claimed);
    const write = this.deps.driver.appendUpload(rec.driverState as UploadState, rec.size, counter);
    // allSettled: the driver must have finished rolling back before the lock is released.
    const [piped, written] = await Promise.allSettled([pipeline(body, counter), write]);
    if (piped.status === 'rejected' || written.status === 'rejected') {
      counter.destroy();
      const reason: unknown = piped.status === 'rejected' ? piped.reason : (written as PromiseRejectedResult).reason;
      if (reason instanceof LengthMismatchError) {
        throw new RegistryError('BLOB_UPLOAD_INVALID', `Content-Range claims ${claimed} bytes but the body had ${counter.bytes}`);
      }
      throw reason;
    }
    const { state, size } = written.value;
    const ok = await this.deps.store.uploads.advance(rec.id, rec.size, size, state);
    if (!ok) throw rangeError(rec.size, 'another request advanced this upload concurrently');
    this.hashers.set(rec.id, { hash, offset: size, touched: Date.now() });
    return { ...rec, size, driverState: state, updatedAt: new Date() };
  }

  /** The streaming hash state at the session's offset, rebuilt from storage when this process lacks it. */
  private async hasherAt(rec: UploadRecord): Promise<Hash> {
    const mem = this.hashers.get(rec.id);
    if (mem && mem.offset === rec.size) return mem.hash;
    const hash = newHasher(STREAMING_ALGORITHM);
    if (rec.size > 0) await this.rehash(rec, hash);
    this.deps.log.info({ uploadId: rec.id, bytes: rec.size }, 'rebuilt upload hash state from storage');
    this.hashers.set(rec.id, { hash, offset: rec.size, touched: Date.now() });
    return hash;
  }

  private async finalDigest(rec: UploadRecord, algorithm: Algorithm): Promise<string> {
    if (algorithm === STREAMING_ALGORITHM) {
      const h = await this.hasherAt(rec);
      return `${algorithm}:${h.copy().digest('hex')}`;
    }
    const h = newHasher(algorithm);
    if (rec.size > 0) await this.rehash(rec, h);
    return `${algorithm}:${h.digest('hex')}`;
  }

  private async rehash(rec: UploadRecord, hash: Hash): Promise<void> {
    const stream = await this.deps.driver.readUpload(rec.driverState as UploadState, { start: 0, end: rec.size - 1 });
    for await (const chunk of stream) hash.update(chunk as Buffer);
  }

  private async discard(rec: UploadRecord, outcome: string): Promise<void> {
    this.hashers.delete(rec.id);
    await this.deps.store.uploads.delete(rec.id);
    await this.deps.driver.abortUpload(rec.driverState as UploadState);
    this.observe(rec, outcome);
  }

  private async cancelQuietly(rec: UploadRecord): Promise<void> {
    try {
      await this.discard(rec, 'failed');
    } catch (e) {
      this.deps.log.warn({ err: e, uploadId: rec.id }, 'could not discard failed upload');
    }
  }

  private observe(rec: UploadRecord, outcome: string): void {
    this.deps.metrics.uploadDuration.observe({ outcome }, (Date.now() - rec.createdAt.getTime()) / 1000);
  }
}

function rangeError(size: number, message: string): RegistryError {
  return new RegistryError('RANGE_INVALID', message, { size }, { Range: `0-${Math.max(size - 1, 0)}`, 'Content-Length': '0' });
}
