import type { Identity } from '../auth/identity.js';
import type { Logger } from '../../core/log.js';
import type { RepositoryConfig } from '../../core/config/repository.js';
import type { BlobRecord, ManifestRecord, ManifestSummary, RepositoryClass } from '../../metadata/store.js';
import type { OpenedBlob } from '../service/blobs.js';
import type { PutManifestInput, PutManifestResult } from '../service/manifests.js';

/** Per-request facts a repository may need (who asks: virtual repositories skip members they cannot read). */
export interface RequestContext {
  identity: Identity;
  log: Logger;
  signal?: AbortSignal;
}

export interface TagPage {
  tags: string[];
  /** True when tags exist after the last one returned (→ a Link header). */
  more: boolean;
}

/**
 * What a route talks to, whatever the repository type. Local repositories
 * store; remote ones proxy and cache; virtual ones aggregate and delegate
 * writes to their deployment repository.
 */
export interface RepositoryBackend {
  readonly key: string;
  readonly rclass: RepositoryClass;
  readonly config: RepositoryConfig;

  getManifest(image: string, reference: string, ctx: RequestContext): Promise<ManifestRecord>;
  putManifest(input: Omit<PutManifestInput, 'repoKey'>, ctx: RequestContext): Promise<PutManifestResult>;
  deleteManifest(image: string, reference: string, ctx: RequestContext): Promise<void>;

  statBlob(image: string, digest: string, ctx: RequestContext): Promise<BlobRecord>;
  openBlob(image: string, digest: string, rangeHeader: string | undefined, ctx: RequestContext): Promise<OpenedBlob>;
  deleteBlob(image: string, digest: string, ctx: RequestContext): Promise<void>;

  listTags(image: string, page: { last?: string; n?: number }, ctx: RequestContext): Promise<TagPage>;
  referrers(image: string, digest: string, artifactType: string | undefined, ctx: RequestContext): Promise<ManifestSummary[]>;
  /** Image names in this repository, lexical, after `last`, at most `n`. */
  images(page: { last?: string; n?: number }, ctx: RequestContext): Promise<{ images: string[]; more: boolean }>;

  /**
   * The local repository key that uploads and mounts of `image` addressed to
   * this repository land in; UNSUPPORTED where pushing is not possible. May be
   * asynchronous: a virtual repository checks that the caller may write to its
   * deployment repository too (DENIED otherwise).
   */
  deploymentKey(ctx: RequestContext, image: string): string | Promise<string>;
}
