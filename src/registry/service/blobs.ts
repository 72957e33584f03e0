import type { Readable } from 'node:stream';
import { RegistryError } from '../../core/errors.js';
import { parseDigest } from '../../core/oci/digest.js';
import { LruCache } from '../../core/lru.js';
import { parseRangeHeader, type ResolvedRange } from '../../core/http-range.js';
import type { BlobDriver } from '../../storage/driver.js';
import type { BlobRecord, MetadataStore } from '../../metadata/store.js';

export interface OpenedBlob {
  blob: BlobRecord;
  /** Set when a Range was asked for and is satisfiable (→ 206). */
  range?: ResolvedRange;
  /** Either a stream of the bytes, or a URL the client may fetch them from. */
  stream?: Readable;
  redirect?: string;
}

/** Reading, linking and unlinking blobs of local repositories. */
export class BlobService {
  /** `repo\0image\0digest` → the linked blob. Links are cached briefly; see docs/adr/0003-metadata-caching.md. */
  private readonly links: LruCache<string, BlobRecord>;

  constructor(
    private readonly deps: { store: MetadataStore; driver: BlobDriver; cacheTtlMs: number; redirectTtlSeconds?: number },
  ) {
    this.links = new LruCache(50_000, deps.cacheTtlMs);
  }

  /** The blob linked into this image; BLOB_UNKNOWN otherwise. */
  async stat(repoKey: string, image: string, digest: string): Promise<BlobRecord> {
    parseDigest(digest);
    const k = `${repoKey}\0${image}\0${digest}`;
    const hit = this.links.get(k);
    if (hit) return hit;
    const blob = await this.deps.store.blobs.getLinked(repoKey, image, digest);
    if (!blob) throw new RegistryError('BLOB_UNKNOWN', `blob unknown: ${digest}`, { digest });
    this.links.set(k, blob);
    return blob;
  }

  /** Opens the blob (or the asked-for range of it); 416 with `Content-Range: bytes *\/size` when unsatisfiable. */
  async open(repoKey: string, image: string, digest: string, rangeHeader?: string): Promise<OpenedBlob> {
    const blob = await this.stat(repoKey, image, digest);
    const range = parseRangeHeader(rangeHeader, blob.size);
    if (range === 'unsatisfiable') {
      throw new RegistryError('RANGE_INVALID', `range ${rangeHeader} is outside the blob's ${blob.size} bytes`, undefined, {
        'Content-Range': `bytes */${blob.size}`,
      });
    }
    if (!range && this.deps.driver.redirectUrl && blob.size > 0) {
      const redirect = await this.deps.driver.redirectUrl(blob.storageKey, this.deps.redirectTtlSeconds ?? 300);
      if (redirect) return { blob, redirect };
    }
    if (blob.size === 0) return { blob, range };
    const stream = await this.deps.driver.read(blob.storageKey, range);
    return { blob, range, stream };
  }

  /** Unlinks the blob from the image (its bytes stay until garbage collection). */
  async delete(repoKey: string, image: string, digest: string): Promise<void> {
    parseDigest(digest);
    this.links.delete(`${repoKey}\0${image}\0${digest}`);
    const removed = await this.deps.store.blobs.unlink(repoKey, image, digest);
    if (!removed) throw new RegistryError('BLOB_UNKNOWN', `blob unknown: ${digest}`, { digest });
  }

  /**
   * Cross-repository mount: links a blob already linked into `from` into `to`.
   * Undefined when the source does not hold it (the caller then opens a session).
   */
  async mount(from: { repoKey: string; image: string }, to: { repoKey: string; image: string }, digest: string): Promise<BlobRecord | undefined> {
    parseDigest(digest);
    return this.deps.store.transaction(async (tx) => {
      const blob = await tx.blobs.getLinked(from.repoKey, from.image, digest);
      if (!blob) return undefined;
      await tx.blobs.link(to.repoKey, to.image, digest);
      return blob;
    });
  }

  /** Forgets cached links of a repository (deleted or reconfigured). */
  forgetRepository(repoKey: string): void {
    this.links.deleteWhere((k) => k.startsWith(`${repoKey}\0`));
  }
}
