import type { RepositoryConfig } from '../../core/config/repository.js';
import type { MetadataStore } from '../../metadata/store.js';
import type { BlobService } from '../service/blobs.js';
import type { ManifestService } from '../service/manifests.js';
import { storedImages, storedTags } from './stored-listing.js';
import type { RepositoryBackend, TagPage } from './types.js';

/** A repository images are pushed to, stored in drydock's own storage and database. */
export class LocalRepository implements RepositoryBackend {
  readonly rclass = 'local' as const;

  constructor(
    readonly config: RepositoryConfig,
    private readonly deps: { store: MetadataStore; blobs: BlobService; manifests: ManifestService },
  ) {}

  get key(): string {
    return this.config.key;
  }

  getManifest(image: string, reference: string) {
    return this.deps.manifests.get(this.key, image, reference);
  }

  // The configuration goes along so the tag policies (immutability, platform
  // tags, max unique tags) are applied inside the write's own transaction.
  putManifest(input: Parameters<RepositoryBackend['putManifest']>[0]) {
    return this.deps.manifests.put({ ...input, repoKey: this.key }, this.config);
  }

  deleteManifest(image: string, reference: string) {
    return this.deps.manifests.delete(this.key, image, reference, this.config);
  }

  statBlob(image: string, digest: string) {
    return this.deps.blobs.stat(this.key, image, digest);
  }

  openBlob(image: string, digest: string, rangeHeader: string | undefined) {
    return this.deps.blobs.open(this.key, image, digest, rangeHeader);
  }

  deleteBlob(image: string, digest: string) {
    return this.deps.blobs.delete(this.key, image, digest);
  }

  listTags(image: string, page: { last?: string; n?: number }): Promise<TagPage> {
    return storedTags(this.deps.store, this.key, image, page);
  }

  referrers(image: string, digest: string, artifactType: string | undefined) {
    return this.deps.manifests.referrers(this.key, image, digest, artifactType);
  }

  images(page: { last?: string; n?: number }): Promise<{ images: string[]; more: boolean }> {
    return storedImages(this.deps.store, this.key, page);
  }

  deploymentKey(): string {
    return this.key;
  }
}
