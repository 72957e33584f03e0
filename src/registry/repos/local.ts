import { RegistryError } from '../../core/errors.js';
import type { RepositoryConfig } from '../../core/config/repository.js';
import type { MetadataStore } from '../../metadata/store.js';
import type { BlobService } from '../service/blobs.js';
import type { ManifestService } from '../service/manifests.js';
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

  async listTags(image: string, page: { last?: string; n?: number }): Promise<TagPage> {
    if (!(await this.deps.store.manifests.imageExists(this.key, image))) {
      throw new RegistryError('NAME_UNKNOWN', `repository ${this.key} has no image ${image}`, { name: `${this.key}/${image}` });
    }
    if (page.n === 0) return { tags: [], more: false };
    const limit = page.n === undefined ? undefined : page.n + 1;
    const tags = await this.deps.store.tags.list(this.key, image, { last: page.last, limit });
    const more = page.n !== undefined && tags.length > page.n;
    return { tags: more ? tags.slice(0, page.n) : tags, more };
  }

  referrers(image: string, digest: string, artifactType: string | undefined) {
    return this.deps.manifests.referrers(this.key, image, digest, artifactType);
  }

  async images(page: { last?: string; n?: number }): Promise<{ images: string[]; more: boolean }> {
    if (page.n === 0) return { images: [], more: false };
    const rows = await this.deps.store.manifests.catalog({
      repoKeys: [this.key],
      last: page.last === undefined ? undefined : `${this.key}/${page.last}`,
      limit: page.n === undefined ? undefined : page.n + 1,
    });
    const more = page.n !== undefined && rows.length > page.n;
    return { images: (more ? rows.slice(0, page.n) : rows).map((r) => r.image), more };
  }

  deploymentKey(): string {
    return this.key;
  }
}
