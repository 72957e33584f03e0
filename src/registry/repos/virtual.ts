import { RegistryError, type ErrorCode } from '../../core/errors.js';
import type { RepositoryConfig, VirtualRepositoryConfig } from '../../core/config/repository.js';
import { digestOf, looksLikeDigest, parseDigest } from '../../core/oci/digest.js';
import { assertTag, isValidTag } from '../../core/oci/reference.js';
import type { Action, Identity, Resource } from '../auth/identity.js';
import type { ManifestRecord, ManifestSummary, MetadataStore } from '../../metadata/store.js';
import type { OpenedBlob } from '../service/blobs.js';
import type { PutManifestResult } from '../service/manifests.js';
import type { RepositoryBackend, RequestContext, TagPage } from './types.js';

/** How deep virtual repositories may nest inside one another before the rest is ignored. */
export const MAX_VIRTUAL_DEPTH = 5;

/**
 * What a member may answer that means "not here": the next member is tried.
 * UNSUPPORTED and UNAVAILABLE are included so a remote member that cannot
 * serve (or whose upstream is down) does not hide what the others hold;
 * DENIED so a member refusing the caller is skipped as if it were unreadable.
 */
const NOT_HERE: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'UNSUPPORTED',
  'UNAVAILABLE',
  'NAME_UNKNOWN',
  'MANIFEST_UNKNOWN',
  'BLOB_UNKNOWN',
  'DENIED',
]);

export interface VirtualRepositoryDeps {
  store: MetadataStore;
  /** Members are looked up on every call, so a member's change shows as soon as the resolver sees it. */
  resolver: { get(key: string): Promise<RepositoryBackend | undefined> };
  authorizer: { can(identity: Identity, action: Action, resource: Resource): Promise<boolean> };
}

interface Page {
  last?: string;
  n?: number;
}

interface ItemPage {
  items: string[];
  more: boolean;
}

/**
 * One endpoint over several repositories (SPEC §5, Artifactory's virtual
 * repository): reads go to the members the caller may read — locals first, then
 * remotes, each in the listed order, then nested virtual repositories expanded
 * in place — and writes go to `defaultDeploymentRepo`.
 */
export class VirtualRepository implements RepositoryBackend {
  readonly rclass = 'virtual' as const;
  readonly config: VirtualRepositoryConfig;

  constructor(
    config: RepositoryConfig,
    private readonly deps: VirtualRepositoryDeps,
  ) {
    if (config.rclass !== 'virtual') throw new Error(`repository '${config.key}' is ${config.rclass}, not virtual`);
    this.config = config;
  }

  get key(): string {
    return this.config.key;
  }

  async getManifest(image: string, reference: string, ctx: RequestContext): Promise<ManifestRecord> {
    // Validated here too: with no readable member, a malformed reference must still be refused as such.
    if (looksLikeDigest(reference)) parseDigest(reference);
    else assertTag(reference);
    const byTag = !looksLikeDigest(reference);
    const members = await this.members(ctx, image, byTag ? reference : undefined);
    if (byTag && this.config.resolveDockerTagsByTimestamp) {
      const newest = await this.newestLocal(members, image, reference);
      if (newest) {
        const found = await this.attempt(newest, ctx, () => newest.getManifest(image, reference, ctx));
        if (found) return found.value;
      }
      // No local holds the tag (or it went away meanwhile): the first remote that resolves it.
      const rest = members.filter((m) => m.rclass !== 'local');
      const hit = await this.first(rest, ctx, (m) => m.getManifest(image, reference, ctx));
      if (hit) return hit;
    } else {
      const hit = await this.first(members, ctx, (m) => m.getManifest(image, reference, ctx));
      if (hit) return hit;
    }
    throw new RegistryError('MANIFEST_UNKNOWN', `manifest unknown: ${reference}`, { reference });
  }

  async putManifest(input: Parameters<RepositoryBackend['putManifest']>[0], ctx: RequestContext): Promise<PutManifestResult> {
    const byDigest = looksLikeDigest(input.reference);
    const target = await this.deployment(ctx, 'write', input.image, byDigest ? undefined : input.reference);
    // Re-pointing a tag needs delete as well (the overwrite rule the route applies to this
    // virtual key), and it is the deployment repository's tags that get re-pointed.
    const digest = byDigest ? input.reference : digestOf(input.body);
    for (const tag of byDigest ? (input.tags ?? []) : [input.reference]) {
      if (!isValidTag(tag)) continue;
      const current = await this.deps.store.tags.resolve(target.key, input.image, tag);
      if (current && current !== digest) await this.require(ctx, 'delete', target.key, input.image, tag);
    }
    return target.putManifest(input, ctx);
  }

  async deleteManifest(image: string, reference: string, ctx: RequestContext): Promise<void> {
    const target = await this.deployment(ctx, 'delete', image, looksLikeDigest(reference) ? undefined : reference);
    return target.deleteManifest(image, reference, ctx);
  }

  async statBlob(image: string, digest: string, ctx: RequestContext) {
    parseDigest(digest);
    const hit = await this.first(await this.members(ctx, image), ctx, (m) => m.statBlob(image, digest, ctx));
    if (hit) return hit;
    throw blobUnknown(digest);
  }

  async openBlob(image: string, digest: string, rangeHeader: string | undefined, ctx: RequestContext): Promise<OpenedBlob> {
    parseDigest(digest);
    const hit = await this.first(await this.members(ctx, image), ctx, (m) => m.openBlob(image, digest, rangeHeader, ctx));
    if (hit) return hit;
    throw blobUnknown(digest);
  }

  async deleteBlob(image: string, digest: string, ctx: RequestContext): Promise<void> {
    const target = await this.deployment(ctx, 'delete', image);
    return target.deleteBlob(image, digest, ctx);
  }

  async listTags(image: string, page: Page, ctx: RequestContext): Promise<TagPage> {
    const members = await this.members(ctx, image);
    const merged = await this.mergedPage(
      members,
      page,
      ctx,
      async (m, p) => {
        const r = await m.listTags(image, p, ctx);
        return { items: r.tags, more: r.more };
      },
      // The caller sees a member's tag only when it may read that tag there.
      (m, tag) => this.deps.authorizer.can(ctx.identity, 'read', { repoKey: m.key, image, leaf: tag }),
    );
    if (!merged) {
      throw new RegistryError('NAME_UNKNOWN', `repository ${this.key} has no image ${image}`, { name: `${this.key}/${image}` });
    }
    return { tags: merged.items, more: merged.more };
  }

  async referrers(image: string, digest: string, artifactType: string | undefined, ctx: RequestContext): Promise<ManifestSummary[]> {
    parseDigest(digest);
    const byDigest = new Map<string, ManifestSummary>();
    for (const m of await this.members(ctx, image)) {
      const found = await this.attempt(m, ctx, () => m.referrers(image, digest, artifactType, ctx));
      if (!found) continue;
      for (const r of found.value) if (!byDigest.has(r.digest)) byDigest.set(r.digest, r);
    }
    return [...byDigest.values()].sort((a, b) => byteOrder(a.digest, b.digest));
  }

  async images(page: Page, ctx: RequestContext): Promise<{ images: string[]; more: boolean }> {
    const members = await this.members(ctx);
    const merged = await this.mergedPage(
      members,
      page,
      ctx,
      async (m, p) => {
        const r = await m.images(p, ctx);
        return { items: r.images, more: r.more };
      },
      (m, image) => this.deps.authorizer.can(ctx.identity, 'read', { repoKey: m.key, image, partial: true }),
    );
    return { images: merged?.items ?? [], more: merged?.more ?? false };
  }

  async deploymentKey(ctx: RequestContext, image: string): Promise<string> {
    return (await this.deployment(ctx, 'write', image)).key;
  }

  /**
   * The members the caller may read, in resolution order: locals, then remotes,
   * each in the listed order, then nested virtual repositories expanded in place
   * (each seen once, so cycles end; nesting deeper than MAX_VIRTUAL_DEPTH is ignored).
   * `tag`, when given, must be readable in a member for it to be consulted.
   */
  private async members(ctx: RequestContext, image?: string, tag?: string): Promise<RepositoryBackend[]> {
    const out: RepositoryBackend[] = [];
    await this.expand(this.config, 1, new Set([this.key]), out, ctx, image, tag);
    return out;
  }

  private async expand(
    config: VirtualRepositoryConfig,
    depth: number,
    seen: Set<string>,
    out: RepositoryBackend[],
    ctx: RequestContext,
    image: string | undefined,
    tag: string | undefined,
  ): Promise<void> {
    const found: RepositoryBackend[] = [];
    for (const key of config.repositories) {
      // A member deleted since the virtual repository was configured is simply not there.
      const backend = await this.deps.resolver.get(key);
      if (backend) found.push(backend);
    }
    const rank = { local: 0, remote: 1, virtual: 2 } as const;
    // Array.prototype.sort is stable: within a class the listed order stays.
    found.sort((a, b) => rank[a.rclass] - rank[b.rclass]);
    for (const m of found) {
      if (seen.has(m.key)) continue;
      seen.add(m.key);
      if (!(await this.readable(ctx, m.key, image, tag))) continue;
      if (m.config.rclass !== 'virtual') {
        out.push(m);
      } else if (depth >= MAX_VIRTUAL_DEPTH) {
        ctx.log.warn({ virtual: this.key, member: m.key }, `virtual repositories nest deeper than ${MAX_VIRTUAL_DEPTH}; ignoring the deeper ones`);
      } else {
        await this.expand(m.config, depth + 1, seen, out, ctx, image, tag);
      }
    }
  }

  private async readable(ctx: RequestContext, repoKey: string, image: string | undefined, tag: string | undefined): Promise<boolean> {
    const { authorizer } = this.deps;
    if (!(await authorizer.can(ctx.identity, 'read', { repoKey, image, partial: true }))) return false;
    return tag === undefined || image === undefined || authorizer.can(ctx.identity, 'read', { repoKey, image, leaf: tag });
  }

  /** Of the local members holding `tag`, the one where it was updated last (the earlier listed on a tie). */
  private async newestLocal(members: RepositoryBackend[], image: string, tag: string): Promise<RepositoryBackend | undefined> {
    let best: { member: RepositoryBackend; at: number } | undefined;
    for (const m of members) {
      if (m.rclass !== 'local') continue;
      const rec = (await this.deps.store.tags.records(m.key, image)).find((r) => r.name === tag);
      if (rec && (!best || rec.updatedAt.getTime() > best.at)) best = { member: m, at: rec.updatedAt.getTime() };
    }
    return best?.member;
  }

  /** The first member's answer, trying each in turn; undefined when none has it. */
  private async first<T>(members: RepositoryBackend[], ctx: RequestContext, op: (m: RepositoryBackend) => Promise<T>): Promise<T | undefined> {
    for (const m of members) {
      const found = await this.attempt(m, ctx, () => op(m));
      if (found) return found.value;
    }
    return undefined;
  }

  /** Runs `op` on one member; undefined when the member answers "not here" (NOT_HERE). */
  private async attempt<T>(member: RepositoryBackend, ctx: RequestContext, op: () => Promise<T>): Promise<{ value: T } | undefined> {
    try {
      return { value: await op() };
    } catch (e) {
      if (e instanceof RegistryError && NOT_HERE.has(e.code)) {
        ctx.log.debug({ virtual: this.key, member: member.key, code: e.code }, 'virtual member skipped');
        return undefined;
      }
      throw e;
    }
  }

  /**
   * One page of the union of the members' lists (lexical, deduplicated), after
   * `last`, at most `n`. Each member contributes at most `n` kept items after
   * `last`, which is all the first `n` of the union can need. Undefined when no
   * member answered at all (none holds the image).
   */
  private async mergedPage(
    members: RepositoryBackend[],
    page: Page,
    ctx: RequestContext,
    fetch: (m: RepositoryBackend, page: Page) => Promise<ItemPage>,
    keep: (m: RepositoryBackend, item: string) => Promise<boolean>,
  ): Promise<ItemPage | undefined> {
    const union = new Set<string>();
    let answered = false;
    let more = false;
    for (const m of members) {
      const got = await this.attempt(m, ctx, () => keptPage(page, (p) => fetch(m, p), (item) => keep(m, item)));
      if (!got) continue;
      answered = true;
      more ||= got.value.more;
      for (const item of got.value.items) union.add(item);
    }
    if (!answered) return undefined;
    const sorted = [...union].sort(byteOrder);
    if (page.n === undefined || sorted.length <= page.n) return { items: sorted, more };
    return { items: sorted.slice(0, page.n), more: true };
  }

  /**
   * The deployment repository, after checking the caller may also do `action`
   * there (the route checked it on this virtual key only).
   */
  private async deployment(ctx: RequestContext, action: Action, image: string, tag?: string): Promise<RepositoryBackend> {
    const key = this.config.defaultDeploymentRepo;
    if (key === undefined) {
      throw new RegistryError(
        'UNSUPPORTED',
        `virtual repository '${this.key}' has no default deployment repository (defaultDeploymentRepo); push to one of its local repositories instead`,
        { repository: this.key, rclass: this.rclass },
      );
    }
    const target = await this.deps.resolver.get(key);
    if (!target || target.rclass !== 'local') {
      throw new RegistryError(
        'UNSUPPORTED',
        `virtual repository '${this.key}' deploys to '${key}', which is not an existing local repository`,
        { repository: this.key, rclass: this.rclass, defaultDeploymentRepo: key },
      );
    }
    await this.require(ctx, action, key, image, tag);
    return target;
  }

  private async require(ctx: RequestContext, action: Action, repoKey: string, image: string, tag?: string): Promise<void> {
    if (!(await this.deps.authorizer.can(ctx.identity, action, { repoKey, image, leaf: tag }))) {
      throw new RegistryError('DENIED', `${ctx.identity.name} may not ${action} on ${repoKey}/${image}`);
    }
  }
}

/**
 * Up to `n` items after `last` that pass `keep`, reading on while items are
 * filtered out; `more` when kept items may follow. `n: 0` still asks the source
 * once, so a source without the image answers NAME_UNKNOWN as it would otherwise.
 */
async function keptPage(page: Page, fetch: (page: Page) => Promise<ItemPage>, keep: (item: string) => Promise<boolean>): Promise<ItemPage> {
  const { n } = page;
  if (n === 0) {
    await fetch({ last: page.last, n: 0 });
    return { items: [], more: false };
  }
  const items: string[] = [];
  let after = page.last;
  for (;;) {
    const got = await fetch({ last: after, n: n === undefined ? undefined : n + 1 });
    for (const item of got.items) {
      if (!(await keep(item))) continue;
      if (n !== undefined && items.length === n) return { items, more: true };
      items.push(item);
    }
    if (!got.more || got.items.length === 0) return { items, more: false };
    after = got.items[got.items.length - 1];
  }
}

/** Byte order, as the database lists tags and images (ASCII names: UTF-16 order is byte order). */
function byteOrder(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function blobUnknown(digest: string): RegistryError {
  return new RegistryError('BLOB_UNKNOWN', `blob unknown: ${digest}`, { digest });
}
