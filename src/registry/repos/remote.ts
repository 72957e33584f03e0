import { PassThrough } from 'node:stream';
import { antMatch } from '../../core/ant-pattern.js';
import type { RemoteRepositoryConfig } from '../../core/config/repository.js';
import { RegistryError } from '../../core/errors.js';
import { looksLikeDigest, parseDigest } from '../../core/oci/digest.js';
import { isForeignLayer, parseManifest } from '../../core/oci/manifest.js';
import type { Logger } from '../../core/log.js';
import type { BlobRecord, ManifestRecord, MetadataStore } from '../../metadata/store.js';
import type { Authorizer } from '../auth/authorizer.js';
import type { BlobService, OpenedBlob } from '../service/blobs.js';
import type { ManifestService } from '../service/manifests.js';
import type { UploadService } from '../service/uploads.js';
import { storedImages, storedTags } from './stored-listing.js';
import type { RepositoryBackend, RequestContext, TagPage } from './types.js';
import { UpstreamDeniedError, UpstreamUnavailableError, type Upstream, type UpstreamBlob } from './upstream.js';

/** Manifest lookups in progress in this process, by repository, image and reference. */
const manifestFetches = new Map<string, Promise<ManifestRecord>>();

/** A fetch lease outlives any sane single blob download; a crashed owner's lease expires after it. */
const FILL_LEASE_MS = 10 * 60_000;
const LEASE_POLL_MS = 100;

/** Hosts that are Docker Hub, where single-segment names live under `library/`. */
const DOCKER_HUB_HOSTS = new Set(['registry-1.docker.io', 'index.docker.io', 'docker.io', 'registry.hub.docker.com']);

export interface RemoteDeps {
  store: MetadataStore;
  blobs: BlobService;
  manifests: ManifestService;
  uploads: UploadService;
  authorizer: Pick<Authorizer, 'can'>;
  upstream: Upstream;
  log: Logger;
  /** This registry instance, as the owner of fetch leases shared with other processes. */
  owner: string;
  /** Cache fills in progress in this process, shared by every remote repository: one upstream fetch per blob. */
  fills: Map<string, Promise<BlobRecord | undefined>>;
}

/**
 * A pull-through cache of another registry. Manifests and tags are stored as
 * soon as a client asks for them (HEAD included); blobs are fetched when a
 * client asks for them, streamed to it while they are written to the cache,
 * and become visible only once their digest is verified. Tags are revalidated
 * with a HEAD after `retrievalCachePeriodSecs`; digests never are. When the
 * upstream cannot answer, what is cached is served. Filling the cache needs
 * `write` on the repository; `read` alone serves only what is cached.
 */
export class RemoteRepository implements RepositoryBackend {
  readonly rclass = 'remote' as const;

  constructor(
    readonly config: RemoteRepositoryConfig,
    private readonly deps: RemoteDeps,
  ) {}

  get key(): string {
    return this.config.key;
  }

  /**
   * Concurrent asks of one caller for one manifest that all miss the cache (or
   * all find a tag due for revalidation) share one upstream round trip.
   */
  getManifest(image: string, reference: string, ctx: RequestContext): Promise<ManifestRecord> {
    // Per caller: what one may fetch (write) another may only read from the cache.
    const k = `${ctx.identity.name}\n${this.key}/${image}:${reference}`;
    const inflight = manifestFetches.get(k);
    if (inflight) return inflight;
    const p = this.resolveManifest(image, reference, ctx).finally(() => manifestFetches.delete(k));
    manifestFetches.set(k, p);
    return p;
  }

  private async resolveManifest(image: string, reference: string, ctx: RequestContext): Promise<ManifestRecord> {
    if (looksLikeDigest(reference)) {
      parseDigest(reference);
      try {
        return await this.deps.manifests.get(this.key, image, reference);
      } catch (e) {
        if (!isCode(e, 'MANIFEST_UNKNOWN')) throw e;
      }
      if (this.config.offline || !(await this.mayFill(image, ctx))) throw manifestUnknown(reference);
      return (await this.fetchManifest(image, reference)) ?? throwManifestUnknown(reference);
    }
    const tag = (await this.deps.store.tags.records(this.key, image)).find((t) => t.name === reference);
    const cached = tag ? await this.deps.store.manifests.get(this.key, image, tag.digest) : undefined;
    const fresh = tag && Date.now() - tag.updatedAt.getTime() < this.config.retrievalCachePeriodSecs * 1000;
    if (cached && (fresh || this.config.offline)) return cached;
    if (this.config.offline || !(await this.mayFill(image, ctx))) return cached ?? throwManifestUnknown(reference);
    try {
      if (cached) {
        // Revalidate with a HEAD only: it does not count against Docker Hub's pull limit.
        const head = await this.deps.upstream.headManifest(this.upstreamName(image), reference);
        if (!head || head.digest === cached.digest) {
          await this.deps.store.tags.set(this.key, image, reference, cached.digest);
          return cached;
        }
      }
      return (await this.fetchManifest(image, reference)) ?? cached ?? throwManifestUnknown(reference);
    } catch (e) {
      if (cached && isUpstreamFailure(e)) {
        ctx.log.warn({ err: e, image, reference }, 'upstream unavailable; serving the cached manifest');
        return cached;
      }
      throw translateUpstream(e, this.key);
    }
  }

  putManifest(): never {
    throw pushRefused(this.key);
  }

  /** Removes from the cache only; the upstream is never touched. */
  deleteManifest(image: string, reference: string) {
    return this.deps.manifests.delete(this.key, image, reference);
  }

  async statBlob(image: string, digest: string, ctx: RequestContext): Promise<BlobRecord> {
    try {
      return await this.deps.blobs.stat(this.key, image, digest);
    } catch (e) {
      if (!isCode(e, 'BLOB_UNKNOWN') || this.config.offline || !(await this.mayFill(image, ctx))) throw e;
    }
    const inflight = this.deps.fills.get(this.fillKey(image, digest));
    if (inflight && (await inflight.catch(() => undefined))) return this.deps.blobs.stat(this.key, image, digest);
    try {
      const head = await this.deps.upstream.headBlob(this.upstreamName(image), digest);
      if (!head) throw new RegistryError('BLOB_UNKNOWN', `blob unknown: ${digest}`, { digest });
      return { digest, size: head.size, storageKey: '', createdAt: new Date() };
    } catch (e) {
      throw translateUpstream(e, this.key);
    }
  }

  async openBlob(image: string, digest: string, rangeHeader: string | undefined, ctx: RequestContext): Promise<OpenedBlob> {
    try {
      return await this.deps.blobs.open(this.key, image, digest, rangeHeader);
    } catch (e) {
      if (!isCode(e, 'BLOB_UNKNOWN') || this.config.offline || !(await this.mayFill(image, ctx))) throw e;
    }
    const k = this.fillKey(image, digest);
    const inflight = this.deps.fills.get(k);
    if (inflight) {
      // Someone in this process is already fetching it: wait for the cache rather than fetch again.
      await inflight.catch(() => undefined);
      return this.deps.blobs.open(this.key, image, digest, rangeHeader);
    }
    // Registered before the first await, so concurrent requests in this process wait on it.
    const settle = deferred<BlobRecord | undefined>();
    this.deps.fills.set(k, settle.promise);
    let fill: Promise<BlobRecord>;
    let source: UpstreamBlob;
    try {
      if (!(await this.claim(k, image, digest))) {
        // Another process fetched it while we waited for its lease.
        settle.resolve(undefined);
        this.deps.fills.delete(k);
        return this.deps.blobs.open(this.key, image, digest, rangeHeader);
      }
      source = await this.fetchBlob(image, digest, ctx).catch(async (e: unknown) => {
        await this.deps.store.leases.release(k, this.deps.owner).catch(() => undefined);
        throw e;
      });
    } catch (e) {
      settle.reject(e);
      this.deps.fills.delete(k);
      throw e;
    }
    const cacheBranch = new PassThrough({ highWaterMark: 1024 * 1024 });
    const clientBranch = new PassThrough({ highWaterMark: 1024 * 1024 });
    source.body.on('error', (err) => {
      cacheBranch.destroy(err);
      clientBranch.destroy(err);
    });
    // pipe() unpipes a destination that closes: a client that goes away leaves the cache write running.
    source.body.pipe(cacheBranch);
    source.body.pipe(clientBranch);
    fill = this.deps.uploads.monolithic({ repoKey: this.key, image }, digest, cacheBranch);
    fill.then(
      (blob) => {
        ctx.log.info({ digest, image }, 'cached blob from upstream');
        settle.resolve(blob);
      },
      (err: unknown) => {
        ctx.log.warn({ err, digest, image }, 'caching a blob from upstream failed');
        settle.reject(err);
      },
    );
    void settle.promise
      .catch(() => undefined)
      .finally(() => {
        this.deps.fills.delete(k);
        return this.deps.store.leases.release(k, this.deps.owner).catch(() => undefined);
      });
    if (rangeHeader || source.size === undefined) {
      // A range (or an unknown length) is served from the cache once it is complete.
      clientBranch.resume();
      await fill;
      return this.deps.blobs.open(this.key, image, digest, rangeHeader);
    }
    return { blob: { digest, size: source.size, storageKey: '', createdAt: new Date() }, stream: clientBranch };
  }

  deleteBlob(image: string, digest: string) {
    return this.deps.blobs.delete(this.key, image, digest);
  }

  async listTags(image: string, page: { last?: string; n?: number }, ctx: RequestContext): Promise<TagPage> {
    const local = () => storedTags(this.deps.store, this.key, image, page);
    if (this.config.offline || !(await this.mayFill(image, ctx))) return local();
    try {
      const up = await this.deps.upstream.listTags(this.upstreamName(image), page);
      if (!up) return local();
      const tags = [...up.tags].sort(byteOrder);
      return { tags, more: up.more };
    } catch (e) {
      if (isUpstreamFailure(e)) return local();
      throw translateUpstream(e, this.key);
    }
  }

  /** Referrers of what is cached (the upstream's referrers API is not consulted). */
  referrers(image: string, digest: string, artifactType: string | undefined) {
    return this.deps.manifests.referrers(this.key, image, digest, artifactType);
  }

  images(page: { last?: string; n?: number }): Promise<{ images: string[]; more: boolean }> {
    return storedImages(this.deps.store, this.key, page);
  }

  deploymentKey(): never {
    throw pushRefused(this.key);
  }

  /** Docker Hub keeps official images under `library/`. */
  upstreamName(image: string): string {
    const host = safeHost(this.config.url);
    return host && DOCKER_HUB_HOSTS.has(host) && !image.includes('/') ? `library/${image}` : image;
  }

  /** Also the database lease key: printable (PostgreSQL text holds no NUL). */
  private fillKey(image: string, digest: string): string {
    return `${this.key}/${image}@${digest}`;
  }

  /**
   * Takes the fetch lease every process on the database honours. True: this
   * process fetches. False: another process held it and the blob is now cached.
   */
  private async claim(key: string, image: string, digest: string): Promise<boolean> {
    const deadline = Date.now() + FILL_LEASE_MS;
    for (;;) {
      if (await this.deps.store.leases.acquire(key, this.deps.owner, FILL_LEASE_MS)) {
        // It may have landed between our cache miss and the lease.
        if (await this.deps.store.blobs.getLinked(this.key, image, digest)) {
          await this.deps.store.leases.release(key, this.deps.owner);
          return false;
        }
        return true;
      }
      if (await this.deps.store.blobs.getLinked(this.key, image, digest)) return false;
      if (Date.now() > deadline) throw new RegistryError('UNAVAILABLE', `another registry process has been fetching ${digest} for too long`);
      await new Promise((r) => setTimeout(r, LEASE_POLL_MS));
    }
  }

  private mayFill(image: string, ctx: RequestContext): Promise<boolean> {
    return this.deps.authorizer.can(ctx.identity, 'write', { repoKey: this.key, image, partial: true });
  }

  /** GETs a manifest from upstream and stores it (and the tag, for a tag reference) before anyone sees it. */
  private async fetchManifest(image: string, reference: string): Promise<ManifestRecord | undefined> {
    let m;
    try {
      m = await this.deps.upstream.getManifest(this.upstreamName(image), reference);
    } catch (e) {
      throw translateUpstream(e, this.key);
    }
    if (!m) return undefined;
    const parsed = parseManifest(m.body, m.mediaType);
    const references = [
      ...parsed.blobs.map((b) => ({ digest: b.digest, kind: 'blob' as const })),
      ...parsed.manifests.map((c) => ({ digest: c.digest, kind: 'manifest' as const })),
    ];
    const record = {
      repoKey: this.key,
      image,
      digest: m.digest,
      mediaType: parsed.mediaType,
      artifactType: parsed.artifactType ?? null,
      subject: parsed.subject?.digest ?? null,
      size: m.body.length,
      content: m.body,
      annotations: parsed.annotations ?? null,
    };
    await this.deps.store.transaction(async (tx) => {
      await tx.manifests.put(record, dedupe(references));
      if (!looksLikeDigest(reference)) await tx.tags.set(this.key, image, reference, m.digest);
    });
    return { ...record, createdAt: new Date() };
  }

  /**
   * The blob's bytes from upstream — or, for a foreign (non-distributable)
   * layer the upstream does not serve, from one of its `urls` when external
   * dependencies are enabled and the URL matches the patterns.
   */
  private async fetchBlob(image: string, digest: string, ctx: RequestContext): Promise<UpstreamBlob> {
    try {
      const up = await this.deps.upstream.getBlob(this.upstreamName(image), digest);
      if (up) return up;
      const urls = await this.foreignUrls(image, digest);
      if (!urls.length) throw new RegistryError('BLOB_UNKNOWN', `blob unknown upstream: ${digest}`, { digest });
      if (!this.config.externalDependenciesEnabled) {
        throw new RegistryError(
          'DENIED',
          `${digest} is a foreign layer (${urls[0]}); remote repository '${this.key}' does not download external dependencies (externalDependenciesEnabled is false)`,
        );
      }
      const allowed = urls.filter((u) => this.config.externalDependenciesPatterns.some((p) => antMatch(p, u)));
      if (!allowed.length) {
        throw new RegistryError(
          'DENIED',
          `foreign layer ${digest}: none of its URLs (${urls.join(', ')}) matches externalDependenciesPatterns of '${this.key}' (${this.config.externalDependenciesPatterns.join(', ')})`,
        );
      }
      for (const url of allowed) {
        const body = await this.deps.upstream.fetchUrl(url);
        if (body) {
          ctx.log.info({ digest, url }, 'downloading a foreign layer');
          return body;
        }
      }
      throw new RegistryError('BLOB_UNKNOWN', `foreign layer ${digest} was not found at ${allowed.join(', ')}`, { digest });
    } catch (e) {
      throw translateUpstream(e, this.key);
    }
  }

  /** URLs a cached manifest of this image gives for a foreign layer. */
  private async foreignUrls(image: string, digest: string): Promise<string[]> {
    const urls: string[] = [];
    for (const manifestDigest of await this.deps.store.manifests.referencing(this.key, image, digest)) {
      const m = await this.deps.store.manifests.get(this.key, image, manifestDigest);
      if (!m) continue;
      for (const layer of parseManifest(m.content, m.mediaType).blobs) {
        if (layer.digest === digest && isForeignLayer(layer) && layer.urls) urls.push(...layer.urls);
      }
    }
    return [...new Set(urls)];
  }
}

function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: unknown) => void } {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // Nobody may be waiting: an unobserved rejection must not crash the process.
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}

function dedupe<T extends { digest: string }>(xs: T[]): T[] {
  return [...new Map(xs.map((x) => [x.digest, x])).values()];
}

function byteOrder(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function safeHost(url: string): string | undefined {
  try {
    return new URL(url).host;
  } catch {
    return undefined;
  }
}

function isCode(e: unknown, code: string): boolean {
  return e instanceof RegistryError && e.code === code;
}

function isUpstreamFailure(e: unknown): boolean {
  return e instanceof UpstreamUnavailableError || e instanceof UpstreamDeniedError || isCode(e, 'UNAVAILABLE');
}

/** Upstream trouble as a client-visible error, naming the repository. */
function translateUpstream(e: unknown, key: string): unknown {
  if (e instanceof UpstreamUnavailableError) {
    return new RegistryError('UNAVAILABLE', `the upstream of remote repository '${key}' is unavailable (${e.message}) and nothing is cached`);
  }
  if (e instanceof UpstreamDeniedError) {
    return new RegistryError('UNAVAILABLE', `the upstream of remote repository '${key}' refused drydock's credentials (${e.status})`);
  }
  return e;
}

function pushRefused(key: string): RegistryError {
  return new RegistryError('UNSUPPORTED', `'${key}' is a remote repository (a cache of another registry); push to a local repository`, {
    repository: key,
  });
}

function manifestUnknown(reference: string): RegistryError {
  return new RegistryError('MANIFEST_UNKNOWN', `manifest unknown: ${reference}`, { reference });
}

function throwManifestUnknown(reference: string): never {
  throw manifestUnknown(reference);
}

/**
 * True when a remote repository mirrors the registry containerd names in `?ns=`
 * (its upstream's host; Docker Hub answers to all its names).
 */
export function mirrorsHost(config: RemoteRepositoryConfig, ns: string): boolean {
  const host = safeHost(config.url);
  if (!host) return false;
  const want = ns.toLowerCase();
  if (host === want) return true;
  return DOCKER_HUB_HOSTS.has(host) && DOCKER_HUB_HOSTS.has(want);
}
