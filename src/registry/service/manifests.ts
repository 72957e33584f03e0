import { RegistryError } from '../../core/errors.js';
import { digestOf, looksLikeDigest, parseDigest } from '../../core/oci/digest.js';
import { assertTag } from '../../core/oci/reference.js';
import { isForeignLayer, parseManifest, type ParsedManifest } from '../../core/oci/manifest.js';
import { LruCache } from '../../core/lru.js';
import type { LocalRepositoryConfig, RepositoryConfig } from '../../core/config/repository.js';
import type { ManifestRecord, ManifestReference, ManifestSummary, MetadataStore } from '../../metadata/store.js';
import { platformTagsFor, possibleIndexTags } from './platform-tags.js';
import { assertTagMutable, immutableRule, imageTagsLock } from './tag-policy.js';
import { tagsBeyondLimit } from './tag-retention.js';

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

  /**
   * Validates and stores the manifest and sets its tags, all in one transaction.
   * With the configuration of a local repository, the same transaction applies
   * its tag policies: `tagImmutability` (refuses re-pointing a protected tag),
   * `platformTags` (an index tagged T also tags its platforms T-os-arch[-variant])
   * and `maxUniqueTags` (drops the image's oldest tag units beyond N).
   */
  async put(input: PutManifestInput, config?: RepositoryConfig): Promise<PutManifestResult> {
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
    const policy = config?.rclass === 'local' ? config : undefined;

    await this.deps.store.transaction(async (tx) => {
      // Every tag-policy decision below reads the image's tags and then writes
      // them: one push per image at a time, so two racing pushes cannot both
      // see a protected tag as unset or both count themselves within the limit.
      if (policy && tags.length) await tx.lock(imageTagsLock(repoKey, image));
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
      if (!policy) {
        for (const t of tags) await tx.tags.set(repoKey, image, t, digest);
        return;
      }
      await applyTagPolicies(tx, policy, { repoKey, image, digest, parsed, tags });
    });
    return { digest, tags, subject: parsed.subject?.digest };
  }

  /**
   * By digest: removes the manifest and every tag pointing at it. By tag: removes
   * just the tag. With a local repository's configuration, a tag protected by
   * `tagImmutability` refuses both (DENIED).
   */
  async delete(repoKey: string, image: string, reference: string, config?: RepositoryConfig): Promise<void> {
    const policy = config?.rclass === 'local' && config.tagImmutability.length ? config : undefined;
    if (looksLikeDigest(reference)) {
      parseDigest(reference);
      this.cache.delete(`${repoKey}\0${image}\0${reference}`);
      const deleted = await this.deps.store.transaction(async (tx) => {
        if (policy) {
          await tx.lock(imageTagsLock(repoKey, image));
          for (const tag of await tx.tags.forDigest(repoKey, image, reference)) {
            const rule = immutableRule(policy, tag);
            if (rule !== undefined) {
              throw new RegistryError(
                'DENIED',
                `manifest ${reference} cannot be deleted: tag '${tag}' points at it and is immutable in repository '${policy.key}' (rule '${rule}')`,
                { repository: policy.key, tag, rule, digest: reference },
              );
            }
          }
        }
        return tx.manifests.delete(repoKey, image, reference);
      });
      if (!deleted) throw unknown(reference);
      return;
    }
    assertTag(reference);
    const deleted = await this.deps.store.transaction(async (tx) => {
      if (policy) {
        await tx.lock(imageTagsLock(repoKey, image));
        assertTagMutable(policy, reference, await tx.tags.resolve(repoKey, image, reference), undefined);
      }
      return tx.tags.delete(repoKey, image, reference);
    });
    if (!deleted) throw unknown(reference);
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

/**
 * Sets the pushed tags (plus platform tags) under the repository's policies,
 * then trims the image to `maxUniqueTags`. Runs inside the push's transaction
 * holding the image's tag lock: any refusal rolls the whole push back.
 */
async function applyTagPolicies(
  tx: MetadataStore,
  policy: LocalRepositoryConfig,
  push: { repoKey: string; image: string; digest: string; parsed: ParsedManifest; tags: string[] },
): Promise<void> {
  const { repoKey, image, digest, parsed, tags } = push;
  // Explicit tags first, so a platform tag can never override a tag the client named.
  const wanted = new Map<string, string>(tags.map((t) => [t, digest]));
  if (policy.platformTags && parsed.kind === 'index') {
    for (const t of tags) {
      for (const p of platformTagsFor(t, parsed.manifests)) if (!wanted.has(p.tag)) wanted.set(p.tag, p.digest);
    }
  }

  const current = new Map<string, string | undefined>();
  for (const [tag, next] of wanted) {
    const now = await tx.tags.resolve(repoKey, image, tag);
    assertTagMutable(policy, tag, now, next);
    current.set(tag, now);
  }

  // Platform tags follow their index tag: when T moves off an index, the
  // platform tags that index gave T go, unless the new push re-sets them, they
  // were re-pointed by hand since, or they are protected (immutability wins).
  const stale: string[] = [];
  if (policy.platformTags) {
    for (const t of tags) {
      const previous = current.get(t);
      if (previous === undefined || previous === digest) continue;
      const old = await tx.manifests.get(repoKey, image, previous);
      if (!old) continue;
      const oldParsed = parseManifest(old.content, old.mediaType);
      if (oldParsed.kind !== 'index') continue;
      for (const p of platformTagsFor(t, oldParsed.manifests)) {
        if (wanted.has(p.tag) || immutableRule(policy, p.tag) !== undefined) continue;
        if ((await tx.tags.resolve(repoKey, image, p.tag)) === p.digest) stale.push(p.tag);
      }
    }
  }

  for (const [tag, next] of wanted) await tx.tags.set(repoKey, image, tag, next);
  for (const tag of stale) await tx.tags.delete(repoKey, image, tag);
  if (policy.maxUniqueTags > 0 && tags.length) await trimTags(tx, policy, repoKey, image, [...wanted.keys()]);
}

/** Removes the image's oldest tag units beyond `maxUniqueTags`; the manifests stay (garbage collection's job). */
/** maxUniqueTags: removes the oldest tag units beyond the limit (also after a promotion into the image). */
export async function trimTags(tx: MetadataStore, policy: LocalRepositoryConfig, repoKey: string, image: string, pushed: string[]): Promise<void> {
  const records = await tx.tags.records(repoKey, image);
  if (records.length <= policy.maxUniqueTags) return;
  const digestOfTag = new Map(records.map((r) => [r.name, r.digest]));
  // An index tag and the platform tags it gave its children are one unit. Only
  // tags that prefix another tag can be such an index tag; read just those.
  const indexTagOf = new Map<string, string>();
  const parsedByDigest = new Map<string, ParsedManifest | undefined>();
  for (const candidate of possibleIndexTags(digestOfTag.keys())) {
    const d = digestOfTag.get(candidate)!;
    if (!parsedByDigest.has(d)) {
      const rec = await tx.manifests.get(repoKey, image, d);
      parsedByDigest.set(d, rec ? parseManifest(rec.content, rec.mediaType) : undefined);
    }
    const parsed = parsedByDigest.get(d);
    if (parsed?.kind !== 'index') continue;
    for (const p of platformTagsFor(candidate, parsed.manifests)) {
      if (digestOfTag.get(p.tag) === p.digest && !indexTagOf.has(p.tag)) indexTagOf.set(p.tag, candidate);
    }
  }
  const remove = tagsBeyondLimit({
    max: policy.maxUniqueTags,
    tags: records.map((r) => r.name),
    pushed,
    indexTagOf,
    isProtected: (tag) => immutableRule(policy, tag) !== undefined,
  });
  for (const tag of remove) await tx.tags.delete(repoKey, image, tag);
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
