import { LruCache } from '../../core/lru.js';
import type { MetadataStore } from '../../metadata/store.js';
import type { BlobService } from '../service/blobs.js';
import type { ManifestService } from '../service/manifests.js';
import { toConfig } from '../service/repositories.js';
import { LocalRepository } from './local.js';
import type { RepositoryBackend } from './types.js';
import { UnsupportedRepository } from './unsupported.js';

/**
 * Maps a repository key to the backend serving it. Configurations are cached
 * (they are read on every request); `invalidate` is called on every change made
 * through this process, and the TTL bounds staleness for changes made elsewhere.
 */
export class RepositoryResolver {
  private readonly cache: LruCache<string, RepositoryBackend | null>;

  constructor(
    private readonly deps: { store: MetadataStore; blobs: BlobService; manifests: ManifestService; cacheTtlMs: number },
  ) {
    this.cache = new LruCache(1000, deps.cacheTtlMs);
  }

  /** The backend for `key`, or undefined when no such repository exists. */
  async get(key: string): Promise<RepositoryBackend | undefined> {
    const hit = this.cache.get(key);
    if (hit !== undefined) return hit ?? undefined;
    const rec = await this.deps.store.repositories.get(key);
    const backend = rec ? this.build(toConfig(rec)) : null;
    this.cache.set(key, backend);
    return backend ?? undefined;
  }

  invalidate(key: string): void {
    this.cache.delete(key);
    this.deps.blobs.forgetRepository(key);
    this.deps.manifests.forgetRepository(key);
  }

  private build(config: ReturnType<typeof toConfig>): RepositoryBackend {
    if (config.rclass === 'local') return new LocalRepository(config, this.deps);
    return new UnsupportedRepository(config);
  }
}
