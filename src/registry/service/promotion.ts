import { z } from 'zod';
import { formatZodIssues, repositoryKeySchema, type LocalRepositoryConfig, type RepositoryConfig } from '../../core/config/repository.js';
import { RegistryError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import { parseManifest, type Descriptor } from '../../core/oci/manifest.js';
import { isValidImageName, isValidTag } from '../../core/oci/reference.js';
import type { ManifestRecord, ManifestReference, MetadataStore, PromotionRecord, PromotionRequestRecord } from '../../metadata/store.js';
import type { Action, Identity, Resource } from '../auth/identity.js';
import type { AuditLog } from './audit.js';
import { platformTagsFor } from './platform-tags.js';
import { toConfig } from './repositories.js';
import { assertTagMutable, imageTagsLock } from './tag-policy.js';
import { trimTags } from './manifests.js';

/**
 * Promotion (SPEC §6): copies or moves an image — its tags, its manifests, an
 * index's children and every referrer (signatures, SBOMs) — from one local
 * repository to another, as Artifactory's `POST /api/docker/<repoKey>/v2/promote`
 * does. Blobs are linked into the target, never copied. Everything lands in one
 * database transaction, or nothing does. Called by the REST API and by the
 * operator's `Promotion` resource.
 */

const imageName = z.string().refine(isValidImageName, { error: 'must be an image name as the OCI distribution spec defines it (e.g. team/app)' });
const tagName = z.string().refine(isValidTag, { error: 'must be a tag: 1-128 of letters, digits, _ . - (not starting with . or -)' });

/** The body of Artifactory's promote request; `null` means absent, as Artifactory's docs put it. */
const bodyShape = {
  targetRepo: repositoryKeySchema,
  dockerRepository: imageName,
  /** Artifactory's optional rename of the image in the target; absent → `dockerRepository`. */
  targetDockerRepository: imageName.nullish(),
  /** Absent → every tag of the image. */
  tag: tagName.nullish(),
  /** Absent → the same tag; only with `tag`. */
  targetTag: tagName.nullish(),
  /** Artifactory's default: false, a move. */
  copy: z.boolean().nullish(),
};

function targetTagNeedsTag(body: { tag?: string | null; targetTag?: string | null }, ctx: z.RefinementCtx): void {
  if (body.targetTag != null && body.tag == null) {
    ctx.addIssue({ code: 'custom', path: ['targetTag'], message: 'only allowed together with tag (every tag of an image keeps its name)' });
  }
}

/** The request body as Artifactory documents it; unknown fields are refused. */
export const promoteBodySchema = z.strictObject(bodyShape).superRefine(targetTagNeedsTag);
/** A whole promotion: the body plus the source repository (the URL's, or a `Promotion` resource's `sourceRepo`). */
export const promotionRequestSchema = z.strictObject({ sourceRepo: repositoryKeySchema, ...bodyShape }).superRefine(targetTagNeedsTag);

export type PromoteBody = z.input<typeof promoteBodySchema>;
export type PromotionRequest = z.input<typeof promotionRequestSchema>;

/** Validates a promote body; BAD_REQUEST naming every problem. */
export function parsePromoteBody(body: unknown): z.output<typeof promoteBodySchema> {
  return parse(promoteBodySchema, body);
}

export interface PromotionContext {
  identity: Identity;
  clientIp?: string | null;
  /**
   * An idempotency key (the operator passes its `Promotion` resource's
   * `metadata.uid`), 1-256 characters: the promotion runs at most once under
   * it. A call with a key already recorded resolves the recorded result and
   * changes nothing; with the same key but another request it is a CONFLICT.
   * A failed promotion records nothing, so a retry runs it.
   */
  requestId?: string;
}

export interface PromotedTag {
  tag: string;
  targetTag: string;
  digest: string;
}

export interface PromotionResult {
  sourceRepo: string;
  /** The local repository the image landed in (a virtual target's deployment repository). */
  targetRepo: string;
  image: string;
  targetImage: string;
  copy: boolean;
  /** The promoted manifest: `tag`'s, or with every tag the most recently updated tag's. */
  digest: string;
  /** The tags promoted, as asked (platform tags the target adds are not listed). */
  tags: PromotedTag[];
  /** Every manifest that went along: the tagged ones, index children, referrers. */
  manifests: string[];
}

export interface PromotionServiceDeps {
  store: MetadataStore;
  authorizer: { can(identity: Identity, action: Action, resource: Resource): Promise<boolean> };
  audit: AuditLog;
  log: Logger;
  /** Called after a commit for each repository whose content changed (cache invalidation). */
  onChange: (repoKey: string) => void;
}

/** What a promotion will do, read from the source; computed before and again inside the transaction. */
interface Plan {
  promoted: PromotedTag[];
  /** Every manifest that goes along, each with its references. */
  manifests: Map<string, { record: ManifestRecord; references: ManifestReference[] }>;
  /** Target tag → digest: the promoted tags, then the platform tags the target's policy adds. */
  targetTags: Map<string, string>;
  /** For a move: the source tags that go (promoted tags and the platform tags of promoted indexes). */
  sourceTags: Map<string, string>;
}

/** A request with its defaults applied, as recorded under a request id (JSON). */
interface RequestKey {
  sourceRepo: string;
  targetRepo: string;
  image: string;
  targetImage: string;
  tag: string | null;
  targetTag: string | null;
  copy: boolean;
}

interface Sides {
  source: LocalRepositoryConfig;
  target: LocalRepositoryConfig;
  image: string;
  targetImage: string;
  copy: boolean;
  tag?: string;
  targetTag?: string;
}

export class PromotionService {
  constructor(private readonly deps: PromotionServiceDeps) {}

  /**
   * Promotes as `request` says, with the rights of `ctx.identity`: read on the
   * source (and delete, for a move), write on the target (and delete where a
   * target tag is re-pointed). Unknown image or tag: 404, nothing changed. Any
   * failure rolls everything back. Each promoted tag is recorded, and audited.
   * With `ctx.requestId`, runs at most once under that id (see PromotionContext):
   * the id is recorded in the promotion's transaction, so a caller that lost the
   * answer (crashed after the commit) gets the same result by asking again.
   */
  async promote(request: PromotionRequest, ctx: PromotionContext): Promise<PromotionResult> {
    const req = parse(promotionRequestSchema, request);
    const image = req.dockerRepository;
    const targetImage = req.targetDockerRepository ?? image;
    const copy = req.copy ?? false;
    const tag = req.tag ?? undefined;
    const targetTag = req.targetTag ?? tag;
    const what = `${req.sourceRepo}/${image}${tag ? `:${tag}` : ''}`;
    const requestId = ctx.requestId;
    if (requestId !== undefined && (requestId.length === 0 || requestId.length > 256)) {
      throw new RegistryError('BAD_REQUEST', 'a promotion request id must be 1-256 characters');
    }
    const asked: RequestKey = { sourceRepo: req.sourceRepo, targetRepo: req.targetRepo, image, targetImage, tag: tag ?? null, targetTag: targetTag ?? null, copy };
    try {
      // Rights on what the request names come first, so that the answer never
      // tells a caller without them whether the image or repository exists
      // (nor, under a request id, what an earlier promotion did).
      await this.require(ctx, 'read', { repoKey: req.sourceRepo, image, leaf: tag });
      if (!copy) await this.require(ctx, 'delete', { repoKey: req.sourceRepo, image, leaf: tag });
      await this.require(ctx, 'write', { repoKey: req.targetRepo, image: targetImage, leaf: targetTag });
      if (requestId !== undefined) {
        const done = await this.deps.store.promotions.getRequest(requestId);
        if (done) return this.replay(done, asked);
      }
      const source = await this.local(req.sourceRepo, 'source');
      const target = await this.deploymentTarget(req.targetRepo, targetImage, targetTag, ctx);
      if (source.key === target.key && image === targetImage && (tag === undefined || tag === targetTag)) {
        throw new RegistryError('BAD_REQUEST', `nothing to promote: the source and the target are both ${source.key}/${image}${tag ? `:${tag}` : ''}`);
      }
      const sides: Sides = { source, target, image, targetImage, copy, tag, targetTag };

      const plan = await this.plan(this.deps.store, sides);
      // Every right the transaction may need, decided now: inside it only the
      // transaction's own connection may be used (the authorizer reads the store).
      for (const p of plan.promoted) await this.require(ctx, 'read', { repoKey: source.key, image, leaf: p.tag });
      for (const t of plan.sourceTags.keys()) if (!copy) await this.require(ctx, 'delete', { repoKey: source.key, image, leaf: t });
      const mayRepoint = new Map<string, boolean>();
      for (const t of plan.targetTags.keys()) {
        await this.require(ctx, 'write', { repoKey: target.key, image: targetImage, leaf: t });
        mayRepoint.set(t, await this.deps.authorizer.can(ctx.identity, 'delete', { repoKey: target.key, image: targetImage, leaf: t }));
      }

      const outcome = await this.deps.store.transaction(async (tx): Promise<{ result: PromotionResult } | { done: PromotionRequestRecord }> => {
        if (requestId !== undefined) {
          // First, before the image locks: a concurrent call with this id waits
          // here until this transaction ends, then finds the result recorded
          // (rather than finding a moved tag gone and failing).
          const done = await tx.promotions.claimRequest(requestId);
          if (done) return { done };
        }
        const result = await this.apply(tx, sides, plan, mayRepoint, ctx);
        // In the promotion's transaction: the id is recorded exactly when the promotion commits.
        if (requestId !== undefined && !(await tx.promotions.recordRequest({ requestId, request: { ...asked }, result: { ...result } }))) {
          throw new Error(`promotion request ${requestId} was recorded while this transaction held its claim`);
        }
        return { result };
      });
      if ('done' in outcome) return this.replay(outcome.done, asked);
      const { result } = outcome;
      this.deps.onChange(source.key);
      this.deps.onChange(target.key);
      this.deps.log.info({ repo: source.key, image, target: target.key, targetImage, copy, digest: result.digest, requestId }, 'promoted');
      return result;
    } catch (e) {
      if (e instanceof RegistryError && (e.code === 'DENIED' || e.code === 'UNAUTHORIZED')) {
        await this.deps.audit.record({
          actor: ctx.identity.name,
          action: 'promotion',
          target: what,
          outcome: 'denied',
          clientIp: ctx.clientIp,
          details: { targetRepo: req.targetRepo, targetImage, copy },
        });
        throw e;
      }
      if (requestId !== undefined) {
        // A concurrent call with this id may have committed between this
        // call's first look and its own claim, changing what this call read
        // (a move takes the source tag away): that promotion is the answer.
        const done = await this.deps.store.promotions.getRequest(requestId).catch(() => undefined);
        if (done) return this.replay(done, asked);
      }
      throw e;
    }
  }

  /** The recorded answer to a request id used again: its result, if it names the same promotion. */
  private replay(done: PromotionRequestRecord, asked: RequestKey): PromotionResult {
    const keys = Object.keys(asked) as Array<keyof RequestKey>;
    const differing = keys.filter((k) => done.request[k] !== asked[k]);
    if (differing.length > 0) {
      throw new RegistryError('CONFLICT', `promotion request ${done.requestId} was already used for another promotion (differing in ${differing.join(', ')}); a request id names one promotion`, {
        requestId: done.requestId,
        differing,
      });
    }
    this.deps.log.info({ requestId: done.requestId, recordedAt: done.at }, 'promotion request already done; resolving its recorded result');
    // Written by this service from a PromotionResult in the promotion's transaction.
    return done.result as unknown as PromotionResult;
  }

  /**
   * Promotions from or into `repoKey` that the caller may see (read on the
   * image on that side), newest first. `next` is the `before` of the next page.
   */
  async list(repoKey: string, page: { limit: number; before?: number }, ctx: PromotionContext): Promise<{ promotions: PromotionRecord[]; next?: number }> {
    await this.require(ctx, 'read', { repoKey });
    if (!(await this.deps.store.repositories.get(repoKey))) {
      throw new RegistryError('NAME_UNKNOWN', `repository '${repoKey}' does not exist`, { repository: repoKey });
    }
    const rows = await this.deps.store.promotions.list(repoKey, page);
    const visible: PromotionRecord[] = [];
    for (const r of rows) {
      const image = r.sourceRepo === repoKey ? r.image : r.targetImage;
      if (await this.deps.authorizer.can(ctx.identity, 'read', { repoKey, image })) visible.push(r);
    }
    return { promotions: visible, ...(rows.length === page.limit && rows.length > 0 ? { next: rows[rows.length - 1]!.id } : {}) };
  }

  private async apply(tx: MetadataStore, sides: Sides, planned: Plan, mayRepoint: Map<string, boolean>, ctx: PromotionContext): Promise<PromotionResult> {
    const { source, target, image, targetImage, copy } = sides;
    // Serializes with pushes and other promotions of these images (their tag
    // policies read tags, then write them), in one order to avoid deadlocks.
    for (const name of [...new Set([imageTagsLock(source.key, image), imageTagsLock(target.key, targetImage)])].sort()) await tx.lock(name);
    const plan = await this.plan(tx, sides);
    if (fingerprint(plan) !== fingerprint(planned)) {
      // `retry` tells callers that retry on their own (the operator) that this one passes.
      throw new RegistryError('CONFLICT', `${source.key}/${image} changed while the promotion was being prepared; nothing was promoted, try again`, { retry: true });
    }

    for (const [tag, next] of plan.targetTags) {
      const current = await tx.tags.resolve(target.key, targetImage, tag);
      assertTagMutable(target, tag, current, next);
      if (current !== undefined && current !== next && !mayRepoint.get(tag)) {
        throw this.refusal(ctx, 'delete', { repoKey: target.key, image: targetImage, leaf: tag });
      }
    }
    const sameImage = source.key === target.key && image === targetImage;
    const leaving = copy ? [] : [...plan.sourceTags].filter(([tag]) => !(sameImage && plan.targetTags.has(tag)));
    for (const [tag, digest] of leaving) assertTagMutable(source, tag, digest, undefined);

    for (const { record, references } of plan.manifests.values()) {
      const blobs = references.filter((r) => r.kind === 'blob').map((r) => r.digest);
      // Only what the source holds: a foreign layer named by URL was never uploaded.
      const absent = new Set(await tx.blobs.missing(source.key, image, blobs));
      for (const b of blobs) if (!absent.has(b)) await tx.blobs.link(target.key, targetImage, b);
      const { createdAt: _createdAt, ...bytes } = record;
      await tx.manifests.put({ ...bytes, repoKey: target.key, image: targetImage }, references);
    }
    for (const [tag, digest] of plan.targetTags) await tx.tags.set(target.key, targetImage, tag, digest);
    // A promotion into an image is a push there: the target's maxUniqueTags applies, in this transaction.
    if (target.maxUniqueTags > 0) await trimTags(tx, target, target.key, targetImage, [...plan.targetTags.keys()]);

    if (!copy) {
      for (const [tag] of leaving) await tx.tags.delete(source.key, image, tag);
      await this.removeLeftovers(tx, source.key, image, plan);
    }
    for (const p of plan.promoted) {
      await tx.promotions.record({
        actor: ctx.identity.name,
        sourceRepo: source.key,
        targetRepo: target.key,
        image,
        targetImage,
        tag: p.tag,
        targetTag: p.targetTag,
        digest: p.digest,
        copy,
      });
    }
    const digest = plan.promoted[0]!.digest;
    // In the transaction: the audit trail shows a promotion exactly when it happened.
    await tx.audit.append({
      actor: ctx.identity.name,
      action: 'promotion',
      target: `${source.key}/${image}${sides.tag ? `:${sides.tag}` : ''}`,
      outcome: 'success',
      clientIp: ctx.clientIp ?? null,
      details: {
        targetRepo: target.key,
        targetImage,
        copy,
        digest,
        tags: plan.promoted.map((p) => `${p.tag}→${p.targetTag}`),
        ...(ctx.requestId !== undefined ? { requestId: ctx.requestId } : {}),
      },
    });
    return {
      sourceRepo: source.key,
      targetRepo: target.key,
      image,
      targetImage,
      copy,
      digest,
      tags: plan.promoted,
      manifests: [...plan.manifests.keys()],
    };
  }

  /** Reads what the promotion carries from the source, through `store` (the transaction's, or the plain one). */
  private async plan(store: MetadataStore, sides: Sides): Promise<Plan> {
    const { source, target, image } = sides;
    const promoted: PromotedTag[] = [];
    if (sides.tag !== undefined) {
      const digest = await store.tags.resolve(source.key, image, sides.tag);
      if (!digest) {
        throw new RegistryError('MANIFEST_UNKNOWN', `tag '${sides.tag}' of ${source.key}/${image} does not exist`, { repository: source.key, image, tag: sides.tag });
      }
      promoted.push({ tag: sides.tag, targetTag: sides.targetTag ?? sides.tag, digest });
    } else {
      // Most recently updated first, so that `digest` of the result is the newest tag's.
      for (const r of await store.tags.records(source.key, image)) promoted.push({ tag: r.name, targetTag: r.name, digest: r.digest });
      if (promoted.length === 0) {
        throw new RegistryError('NAME_UNKNOWN', `${source.key} has no tagged image '${image}'`, { repository: source.key, image });
      }
    }

    // Everything reachable from the promoted manifests: index children, and
    // referrers (whose subject is any of them), recursively.
    const manifests: Plan['manifests'] = new Map();
    const queue = [...new Set(promoted.map((p) => p.digest))];
    for (let digest = queue.shift(); digest !== undefined; digest = queue.shift()) {
      if (manifests.has(digest)) continue;
      const record = await store.manifests.get(source.key, image, digest);
      if (!record) {
        throw new RegistryError('MANIFEST_UNKNOWN', `manifest ${digest} of ${source.key}/${image} is missing; its index cannot be promoted`, { digest });
      }
      const references = await store.manifests.references(source.key, image, digest);
      manifests.set(digest, { record, references });
      for (const r of references) if (r.kind === 'manifest') queue.push(r.digest);
      for (const r of await store.manifests.referrers(source.key, image, digest)) queue.push(r.digest);
    }

    // An index tag and its platform tags are one unit: the target's policy
    // decides which platform tags it gets; a move takes the source's along.
    const targetTags = new Map(promoted.map((p) => [p.targetTag, p.digest] as const));
    const sourceTags = new Map(promoted.map((p) => [p.tag, p.digest] as const));
    for (const p of promoted) {
      const children = indexChildren(manifests.get(p.digest)!.record);
      if (children.length === 0) continue;
      if (target.platformTags) {
        for (const t of platformTagsFor(p.targetTag, children)) if (!targetTags.has(t.tag)) targetTags.set(t.tag, t.digest);
      }
      if (!sides.copy) {
        for (const t of platformTagsFor(p.tag, children)) {
          // Only while it still names that child: a platform tag re-pointed by hand is the user's own.
          if (!sourceTags.has(t.tag) && (await store.tags.resolve(source.key, image, t.tag)) === t.digest) sourceTags.set(t.tag, t.digest);
        }
      }
    }
    return { promoted, manifests, targetTags, sourceTags };
  }

  /**
   * After a move: removes from the source the promoted manifests nothing there
   * needs any more — no tag points at one, no remaining manifest references it
   * as a child, and it is not a referrer of a manifest that stays. Blob links
   * stay: a push in flight may rely on them, and garbage collection reclaims them.
   */
  private async removeLeftovers(tx: MetadataStore, repoKey: string, image: string, plan: Plan): Promise<void> {
    const removing = new Set(plan.manifests.keys());
    for (let changed = true; changed; ) {
      changed = false;
      for (const digest of [...removing]) {
        const subject = plan.manifests.get(digest)!.record.subject;
        const keep =
          (await tx.tags.forDigest(repoKey, image, digest)).length > 0 ||
          (await tx.manifests.referencing(repoKey, image, digest)).some((parent) => !removing.has(parent)) ||
          (subject !== null && !removing.has(subject) && (await tx.manifests.missing(repoKey, image, [subject])).length === 0);
        if (keep) {
          removing.delete(digest);
          changed = true;
        }
      }
    }
    for (const digest of removing) await tx.manifests.delete(repoKey, image, digest);
  }

  /** A local repository by key: 404 when absent, 400 when of another class. */
  private async local(key: string, role: 'source' | 'target'): Promise<LocalRepositoryConfig> {
    const config = await this.config(key);
    if (config.rclass !== 'local') {
      throw new RegistryError('BAD_REQUEST', `promotion ${role} '${key}' is a ${config.rclass} repository; promotion goes between local repositories`, {
        repository: key,
        rclass: config.rclass,
      });
    }
    return config;
  }

  /** The local repository a promotion into `key` lands in: itself, or a virtual repository's default deployment repository. */
  private async deploymentTarget(key: string, image: string, tag: string | undefined, ctx: PromotionContext): Promise<LocalRepositoryConfig> {
    const config = await this.config(key);
    if (config.rclass !== 'virtual') return this.local(key, 'target');
    const deployTo = config.defaultDeploymentRepo;
    if (deployTo === undefined) {
      throw new RegistryError('BAD_REQUEST', `promotion target '${key}' is a virtual repository without a default deployment repository (defaultDeploymentRepo)`, {
        repository: key,
      });
    }
    await this.require(ctx, 'write', { repoKey: deployTo, image, leaf: tag });
    return this.local(deployTo, 'target');
  }

  private async config(key: string): Promise<RepositoryConfig> {
    const rec = await this.deps.store.repositories.get(key);
    if (!rec) throw new RegistryError('NAME_UNKNOWN', `repository '${key}' does not exist`, { repository: key });
    return toConfig(rec);
  }

  private async require(ctx: PromotionContext, action: Action, resource: Resource): Promise<void> {
    if (!(await this.deps.authorizer.can(ctx.identity, action, resource))) throw this.refusal(ctx, action, resource);
  }

  /** The same words as the HTTP layer's refusal: 401 for anonymous callers (the HTTP layer adds the challenge), else 403. */
  private refusal(ctx: PromotionContext, action: Action, resource: Resource): RegistryError {
    if (ctx.identity.kind === 'anonymous') return new RegistryError('UNAUTHORIZED', 'authentication required');
    const where = resource.repoKey ? ` on ${resource.repoKey}${resource.image ? `/${resource.image}` : ''}` : '';
    return new RegistryError('DENIED', `${ctx.identity.name} may not ${action}${where}`);
  }
}

/** The child manifests an index names; none for an image (or bytes that no longer parse). */
function indexChildren(record: ManifestRecord): Descriptor[] {
  try {
    const parsed = parseManifest(record.content, record.mediaType);
    return parsed.kind === 'index' ? parsed.manifests : [];
  } catch {
    return [];
  }
}

/** What a plan does, order-free: two plans with equal fingerprints promote the same thing. */
function fingerprint(plan: Plan): string {
  const sorted = (m: Map<string, string>) => [...m].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return JSON.stringify({
    promoted: plan.promoted.map((p) => `${p.tag}\0${p.targetTag}\0${p.digest}`).sort(),
    manifests: [...plan.manifests.keys()].sort(),
    targetTags: sorted(plan.targetTags),
    sourceTags: sorted(plan.sourceTags),
  });
}

function parse<T extends z.ZodType>(schema: T, input: unknown): z.output<T> {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new RegistryError('BAD_REQUEST', 'the promotion request must be a JSON object');
  }
  const r = schema.safeParse(input);
  if (!r.success) {
    const problems = formatZodIssues(r.error);
    throw new RegistryError('BAD_REQUEST', `invalid promotion request: ${problems.join('; ')}`, { problems });
  }
  return r.data;
}
