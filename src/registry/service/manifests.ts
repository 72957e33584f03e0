import { RegistryError } from '../../core/errors.js';
import { digestOf, looksLikeDigest, parseDigest } from '../../core/oci/digest.js';
import { assertTag } from '../../core/oci/reference.js';
import { isForeignLayer, parseManifest, type ParsedManifest } from '../../core/oci/manifest.js';
import { LruCache } from '../../core/lru.js';
import type { ManifestRecord, ManifestReference, ManifestSummary, MetadataStore } from '../../metadata/store.js';

export interface PutManifestInput {
  repoKey: string;
  image: string;
  /** Tag or digest from the URL. */
  reference: string;
  body: Buffer;
  contentType: string | undefined;
  /** Extra tags from `?tag=` (only with a digest reference). */
  tags?: string[];
}

export interface PutManifestResult {
  digest: string;
  /** Tags now pointing at the manifest. */
  tags: string[];
  subject?: string;
}

/**
 * Manifests of local repositories: validated on the way in (media type, schema,
 * digest, references), stored byte-for-byte, served with the media type they
 * were pushed with.
 */
export class ManifestService {
  /** Immutable per digest; cached briefly per link (docs/adr/0003-metadata-caching.md). */
  private readonly cache: LruCache<string, ManifestRecord>;

  constructor(private readonly deps: { store: MetadataStore; cacheTtlMs: number }) {
    this.cache = new LruCache(10_000, deps.cacheTtlMs);
  }

  /** By tag or digest; MANIFEST_UNKNOWN when absent. */
  async get(repoKey: string, image: string, reference: string): Promise<ManifestRecord> {
    const digest = await this.resolve(repoKey, image, reference);
    const k = `${repoKey}\0${image}\0${digest}`;
    const hit = this.cache.get(k);
    if (hit) return hit;
    const rec = await this.deps.store.manifests.get(repoKey, image, digest);
    if (!rec) throw unknown(reference);
    this.cache.set(k, rec);
    return rec;
  }

  async put(input: PutManifestInput): Promise<PutManifestResult> {
    const { repoKey, image, reference, body } = input;
    const byDigest = looksLikeDigest(reference);
    const algorithm = byDigest ? parseDigest(reference).algorithm : 'sha256';
    if (!byDigest) assertTag(reference);
    if (input.tags?.length && !byDigest) {
      throw new RegistryError('TAG_INVALID', '?tag= may only be used when pushing by digest');
    }
    for (const t of input.tags ?? []) assertTag(t);
    const parsed = parseManifest(body, input.contentType);
    const digest = digestOf(body, algorithm);
    if (byDigest && digest !== reference) {
      throw new RegistryError('DIGEST_INVALID', `manifest digest is ${digest}, not ${reference}`, { expected: reference, actual: digest });
    }
    const tags = byDigest ? [...new Set(input.tags ?? [])] : [reference];
    const references = referencesOf(parsed);

    await this.deps.store.transaction(async (tx) => {
      const blobDigests = parsed.blobs.filter((b) => !(isForeignLayer(b) && b.urls?.length)).map((b) => b.digest);
      const missingBlobs = await tx.blobs.missing(repoKey, image, unique(blobDigests));
      if (missingBlobs.length) {
        throw new RegistryError('MANIFEST_BLOB_UNKNOWN', `manifest references blobs not in ${repoKey}/${image}: ${missingBlobs.join(', ')}`, {
          digests: missingBlobs,
        });
      }
      const missingChildren = await tx.manifests.missing(repoKey, image, unique(parsed.manifests.map((m) => m.digest)));
      if (missingChildren.length) {
        throw new RegistryError('MANIFEST_UNKNOWN', `index references manifests not in ${repoKey}/${image}: ${missingChildren.join(', ')}`, {
          digests: missingChildren,
        });
      }
      await tx.manifests.put(
        {
          repoKey,
          image,
          digest,
          mediaType: parsed.mediaType,
          artifactType: parsed.artifactType ?? null,
          subject: parsed.subject?.digest ?? null,
          size: body.length,
          content: body,
          annotations: parsed.annotations ?? null,
        },
        references,
      );
      for (const t of tags) await tx.tags.set(repoKey, image, t, digest);
    });
    return { digest, tags, subject: parsed.subject?.digest };
  }

  /** By digest: removes the manifest and every tag pointing at it. By tag: removes just the tag. */
  async delete(repoKey: string, image: string, reference: string): Promise<void> {
    if (looksLikeDigest(reference)) {
      parseDigest(reference);
      this.cache.delete(`${repoKey}\0${image}\0${reference}`);
      if (!(await this.deps.store.manifests.delete(repoKey, image, reference))) throw unknown(reference);
      return;
    }
    assertTag(reference);
    if (!(await this.deps.store.tags.delete(repoKey, image, reference))) throw unknown(reference);
  }

  /** Manifests whose `subject` is `digest` (OCI 1.1 referrers), optionally of one artifact type. */
  async referrers(repoKey: string, image: string, digest: string, artifactType?: string): Promise<ManifestSummary[]> {
    parseDigest(digest);
    return this.deps.store.manifests.referrers(repoKey, image, digest, artifactType);
  }

  forgetRepository(repoKey: string): void {
    this.cache.deleteWhere((k) => k.startsWith(`${repoKey}\0`));
  }

  private async resolve(repoKey: string, image: string, reference: string): Promise<string> {
    if (looksLikeDigest(reference)) {
      parseDigest(reference);
      return reference;
    }
    assertTag(reference);
    const digest = await this.deps.store.tags.resolve(repoKey, image, reference);
    if (!digest) throw unknown(reference);
    return digest;
  }
}

function referencesOf(parsed: ParsedManifest): ManifestReference[] {
  const refs = new Map<string, ManifestReference>();
  for (const b of parsed.blobs) refs.set(b.digest, { digest: b.digest, kind: 'blob' });
  for (const m of parsed.manifests) refs.set(m.digest, { digest: m.digest, kind: 'manifest' });
  return [...refs.values()];
}

function unique(xs: string[]): string[] {
  return [...new Set(xs)];
}

function unknown(reference: string): RegistryError {
  return new RegistryError('MANIFEST_UNKNOWN', `manifest unknown: ${reference}`, { reference });
}
