import { randomUUID } from 'node:crypto';
import type { RemoteRepositoryConfig } from '../../core/config/repository.js';
import { LruCache } from '../../core/lru.js';
import type { Logger } from '../../core/log.js';
import type { BlobRecord, MetadataStore } from '../../metadata/store.js';
import type { Authorizer } from '../auth/authorizer.js';
import type { BlobService } from '../service/blobs.js';
import type { ManifestService } from '../service/manifests.js';
import { toConfig } from '../service/repositories.js';
import type { UploadService } from '../service/uploads.js';
import { LocalRepository } from './local.js';
import { mirrorsHost, RemoteRepository } from './remote.js';
import type { RepositoryBackend } from './types.js';
import type { Upstream } from './upstream.js';
import { VirtualRepository } from './virtual.js';

export interface ResolverDeps {
  store: MetadataStore;
  blobs: BlobService;
  manifests: ManifestService;
  uploads: UploadService;
  authorizer: Pick<Authorizer, 'can'>;
  log: Logger;
  cacheTtlMs: number;
  /** Builds the client of a remote repository's upstream (credentials already decrypted). */
  upstreamFor: (config: RemoteRepositoryConfig) => Upstream;
}

/**
 * Maps a repository key to the backend serving it. Configurations are cached
 * (they are read on every request); `invalidate` is called on every change made
 * through this process, and the TTL bounds staleness for changes made elsewhere.
 * Upstream clients live longer than backends: their token caches and health
 * survive until the remote's configuration changes.
 */
export class RepositoryResolver {
  private readonly cache: LruCache<string, RepositoryBackend | null>;
  private readonly upstreams = new Map<string, { fingerprint: string; upstream: Upstream }>();
  /** Cache fills in progress, shared by every remote repository of this process. */
  private readonly fills = new Map<string, Promise<BlobRecord | undefined>>();
  private mirrors?: { at: number; remotes: RemoteRepositoryConfig[] };
  /** Owner of this instance's fetch leases (one per registry instance, not per module: tests run several in a process). */
  private readonly owner = randomUUID();

  constructor(private readonly deps: ResolverDeps) {
    this.cache = new LruCache(1000, deps.cacheTtlMs);
  }

  /** The backend for `key`, or undefined when no such repository exists or it is blacked out. */
  async get(key: string): Promise<RepositoryBackend | undefined> {
    const hit = this.cache.get(key);
    if (hit !== undefined) return hit ?? undefined;
    const rec = await this.deps.store.repositories.get(key);
    const config = rec ? toConfig(rec) : undefined;
    // A blacked-out repository serves nothing, alone or as a virtual repository's member.
    const backend = config && !config.blackedOut ? this.build(config) : null;
    this.cache.set(key, backend);
    return backend ?? undefined;
  }

  /**
   * Why `get(key)` found nothing, as clients read it. Only the error path pays
   * for the extra lookup.
   */
  async whyMissing(key: string): Promise<string> {
    const rec = await this.deps.store.repositories.get(key);
    if (rec && toConfig(rec).blackedOut) {
      return `repository '${key}' is blacked out: its images are kept but not served until it is enabled again`;
    }
    return `repository '${key}' does not exist`;
  }

  /** The key of the remote repository that mirrors `ns` (containerd's upstream host), if any. */
  async remoteForHost(ns: string): Promise<string | undefined> {
    if (!this.mirrors || Date.now() - this.mirrors.at > Math.min(this.deps.cacheTtlMs, 5000)) {
      const rows = await this.deps.store.repositories.list('remote');
      this.mirrors = { at: Date.now(), remotes: rows.map((r) => toConfig(r) as RemoteRepositoryConfig) };
    }
    return this.mirrors.remotes.find((r) => mirrorsHost(r, ns))?.key;
  }

  invalidate(key: string): void {
    this.cache.delete(key);
    this.mirrors = undefined;
    this.deps.blobs.forgetRepository(key);
    this.deps.manifests.forgetRepository(key);
  }

  private build(config: ReturnType<typeof toConfig>): RepositoryBackend {
    switch (config.rclass) {
      case 'local':
        return new LocalRepository(config, this.deps);
      case 'virtual':
        return new VirtualRepository(config, { store: this.deps.store, authorizer: this.deps.authorizer, resolver: this });
      case 'remote':
        return new RemoteRepository(config, {
          ...this.deps,
          owner: this.owner,
          upstream: this.upstream(config),
          fills: this.fills,
        });
    }
  }

  private upstream(config: RemoteRepositoryConfig): Upstream {
    const fingerprint = JSON.stringify(config);
    const known = this.upstreams.get(config.key);
    if (known && known.fingerprint === fingerprint) return known.upstream;
    // The old client may still serve requests in flight: close it once they have had time to end.
    if (known?.upstream.close) setTimeout(() => void known.upstream.close?.().catch(() => undefined), 60_000).unref();
    const upstream = this.deps.upstreamFor(config);
    this.upstreams.set(config.key, { fingerprint, upstream });
    return upstream;
  }
}
