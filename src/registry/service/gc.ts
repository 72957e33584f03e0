import type { Logger } from '../../core/log.js';
import type { Metrics } from '../../core/metrics.js';
import type { GcBlob, ManifestKey, MetadataStore } from '../../metadata/store.js';
import type { BlobDriver } from '../../storage/driver.js';

export interface GcOptions {
  /** Report what would be deleted; change nothing. */
  dryRun?: boolean;
  /** A blob committed or linked this recently is kept (in-flight pushes). */
  graceSecs: number;
  /** An untagged manifest this young is kept. */
  untaggedRetentionSecs: number;
  /** Blobs per sweep transaction and per storage DeleteObjects call. */
  batchSize: number;
  /** At most this many blobs deleted per second; 0 or undefined = unlimited. */
  rate?: number;
  /** Upload sessions untouched this long are expired (0 or undefined = skip). */
  staleUploadSecs?: number;
}

export interface GcSummary {
  dryRun: boolean;
  /** Blob rows there were when the sweep began. */
  blobsExamined: number;
  blobsDeleted: number;
  bytesFreed: number;
  manifestsDeleted: number;
  /** Objects left queued by an interrupted earlier run and deleted now. */
  resumedObjects: number;
  uploadsExpired: number;
  /** Sweep batches that failed (rolled back; their blobs stay for the next run). */
  batchErrors: number;
  durationSecs: number;
  blobsExaminedPerSec: number;
  blobsDeletedPerSec: number;
}

/** Collected digests stay remembered this long (see the guard trigger in 005-gc.sql). */
const COLLECTED_MEMORY_SECS = 3600;
/** Dead-manifest passes per run: a dead index goes in one pass, its children in the next. */
const MANIFEST_PASSES = 8;

/**
 * Online garbage collector (docs/adr/0005-online-gc.md). The registry keeps
 * serving and accepting pushes: every deletion happens in a short transaction
 * holding the per-digest advisory lock `blob:<digest>` that an upload commit
 * and a manifest's references take too, and re-checks liveness under it.
 *
 * Order per run: finish objects an interrupted run left queued; delete dead
 * manifests (untagged past retention, unreachable); then sweep blobs in
 * batches — rows (with the object queued) in one transaction, then the objects
 * in one `driver.delete` under the same locks, then the queue entries.
 */
export class GarbageCollector {
  constructor(
    private readonly deps: {
      store: MetadataStore;
      driver: BlobDriver;
      log: Logger;
      metrics?: Metrics;
      /** Expires stale upload sessions (UploadService.expireStale). */
      expireUploads?: (before: Date) => Promise<number>;
    },
  ) {}

  async run(opts: GcOptions): Promise<GcSummary> {
    const started = Date.now();
    const startedAt = new Date(started);
    const dryRun = opts.dryRun ?? false;
    const batch = Math.max(1, opts.batchSize);
    const s: GcSummary = {
      dryRun,
      blobsExamined: 0,
      blobsDeleted: 0,
      bytesFreed: 0,
      manifestsDeleted: 0,
      resumedObjects: 0,
      uploadsExpired: 0,
      batchErrors: 0,
      durationSecs: 0,
      blobsExaminedPerSec: 0,
      blobsDeletedPerSec: 0,
    };
    const { store, metrics } = this.deps;
    const label = { dry_run: String(dryRun) };
    const throttle = new Throttle(opts.rate);

    if (!dryRun) {
      await store.gc.pruneCollected(COLLECTED_MEMORY_SECS);
      s.resumedObjects = await this.drainPending(batch);
      if (opts.staleUploadSecs && this.deps.expireUploads) {
        s.uploadsExpired = await this.deps.expireUploads(new Date(Date.now() - opts.staleUploadSecs * 1000));
      }
      for (let pass = 0; pass < MANIFEST_PASSES; pass++) {
        const deleted = await this.deleteDeadManifests(opts.untaggedRetentionSecs, batch);
        s.manifestsDeleted += deleted;
        if (deleted === 0) break;
      }
    } else {
      s.manifestsDeleted = await this.countDeadManifests(opts.untaggedRetentionSecs, batch);
    }
    metrics?.gcManifestsDeleted.inc(label, s.manifestsDeleted);

    s.blobsExamined = await store.gc.countBlobs();
    metrics?.gcBlobsExamined.inc(label, s.blobsExamined);
    let after: string | undefined;
    for (;;) {
      const candidates = await store.gc.deadBlobs({
        graceSecs: opts.graceSecs,
        limit: batch,
        after,
        untaggedRetentionSecs: dryRun ? opts.untaggedRetentionSecs : undefined,
      });
      if (candidates.length === 0) break;
      after = candidates[candidates.length - 1]!.digest;
      let deleted: GcBlob[];
      if (dryRun) {
        deleted = candidates;
      } else {
        try {
          deleted = await this.sweepBatch(candidates.map((c) => c.digest), opts.graceSecs);
        } catch (err) {
          // A push racing the batch (a foreign key on a fresh link, a deadlock
          // victim) rolls it back whole: nothing was deleted, the next run retries.
          s.batchErrors++;
          this.deps.log.warn({ err, first: candidates[0]!.digest }, 'gc batch rolled back');
          continue;
        }
      }
      const bytes = deleted.reduce((n, b) => n + b.size, 0);
      s.blobsDeleted += deleted.length;
      s.bytesFreed += bytes;
      metrics?.gcBlobsDeleted.inc(label, deleted.length);
      metrics?.gcBytesFreed.inc(label, bytes);
      this.deps.log.debug({ deleted: s.blobsDeleted, bytes: s.bytesFreed, dryRun }, 'gc progress');
      await throttle.after(deleted.length);
      if (candidates.length < batch) break;
    }

    const durationSecs = (Date.now() - started) / 1000;
    s.durationSecs = durationSecs;
    const per = (n: number) => (durationSecs > 0 ? Math.round((n / durationSecs) * 10) / 10 : n);
    s.blobsExaminedPerSec = per(s.blobsExamined);
    s.blobsDeletedPerSec = per(s.blobsDeleted);
    metrics?.gcDuration.set(label, durationSecs);
    metrics?.gcLastRun.set(label, Date.now() / 1000);
    if (!dryRun) {
      await store.gc.saveRun({ startedAt, finishedAt: new Date(), summary: { ...s } }).catch((err: unknown) => {
        this.deps.log.warn({ err }, 'could not record the gc run');
      });
    }
    return s;
  }

  /**
   * One sweep batch. Phase 1 deletes the rows of the blobs still dead (under
   * their locks) and queues their objects; it commits on its own so a crash
   * after it leaves only queued objects, never a row without its object.
   * Phase 2 deletes the objects under the locks again, so an upload
   * committing the same digest (which takes the lock around `commitUpload` and
   * its row insert) either finished before — its row makes us keep the object —
   * or starts after the object is gone and writes it anew.
   */
  private async sweepBatch(digests: string[], graceSecs: number): Promise<GcBlob[]> {
    const { store } = this.deps;
    const collected = await store.transaction(async (tx) => {
      await tx.gc.lockBlobs(digests);
      return tx.gc.collect(digests, graceSecs);
    });
    if (collected.length) await this.deleteObjects(collected.map((b) => b.digest));
    return collected;
  }

  private async deleteObjects(digests: string[]): Promise<number> {
    return this.deps.store.transaction(async (tx) => {
      await tx.gc.lockBlobs(digests);
      const keys = await tx.gc.settlePending(digests);
      // Deleted before the queue rows commit: a crash here re-deletes next run (idempotent).
      if (keys.length) await this.deps.driver.delete(keys);
      return keys.length;
    });
  }

  private async drainPending(batch: number): Promise<number> {
    let total = 0;
    for (;;) {
      const pending = await this.deps.store.gc.pendingObjects(batch);
      if (pending.length === 0) return total;
      total += await this.deleteObjects(pending.map((p) => p.digest));
      if (pending.length < batch) return total;
    }
  }

  private async deleteDeadManifests(untaggedRetentionSecs: number, batch: number): Promise<number> {
    let total = 0;
    let after: ManifestKey | undefined;
    for (;;) {
      const dead = await this.deps.store.gc.deadManifests({ untaggedRetentionSecs, limit: batch, after });
      if (dead.length === 0) return total;
      after = dead[dead.length - 1];
      try {
        total += (await this.deps.store.gc.deleteManifests(dead, untaggedRetentionSecs)).length;
      } catch (err) {
        this.deps.log.warn({ err }, 'gc manifest batch rolled back');
      }
      if (dead.length < batch) return total;
    }
  }

  private async countDeadManifests(untaggedRetentionSecs: number, batch: number): Promise<number> {
    let total = 0;
    let after: ManifestKey | undefined;
    for (;;) {
      const dead = await this.deps.store.gc.deadManifests({ untaggedRetentionSecs, limit: batch, after });
      total += dead.length;
      if (dead.length < batch) return total;
      after = dead[dead.length - 1];
    }
  }
}

/** Sleeps so that deletions average at most `rate` per second since the first call. */
class Throttle {
  private readonly start = Date.now();
  private done = 0;

  constructor(private readonly rate?: number) {}

  async after(n: number): Promise<void> {
    this.done += n;
    if (!this.rate || this.rate <= 0) return;
    const due = this.start + (this.done / this.rate) * 1000;
    const wait = due - Date.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  }
}
