import type { Response } from 'express';
import { RegistryError } from '../../../core/errors.js';
import { MediaTypes } from '../../../core/oci/media-types.js';
import type { V2Call, V2RepoCall } from './call.js';

/** Largest page a client may ask for; larger `n` gets this many and a Link to the rest. */
export const MAX_PAGE = 10_000;

/** GET /v2/<name>/tags/list[?n=&last=]: lexical order, Link pagination, only tags the caller may read. */
export async function listTags({ req, res, repo, name, ctx, services }: V2RepoCall): Promise<void> {
  const page = pageParams(req.query);
  const { identity } = ctx;
  const { items: tags, more } = await filteredPage(
    page,
    async (after, limit) => {
      const r = await repo.listTags(name.image, { last: after, n: limit }, ctx);
      return { items: r.tags, more: r.more };
    },
    (tag) => services.authorizer.can(identity, 'read', { repoKey: name.repoKey, image: name.image, leaf: tag }),
  );
  if (more && tags.length) setNextLink(res, `${name.namePath}/tags/list`, page.n!, tags[tags.length - 1]!);
  res.status(200).json({ name: name.clientName, tags });
}

/** GET /v2/<name>/referrers/<digest>[?artifactType=]: an OCI index of the manifests whose subject is `digest`. */
export async function listReferrers({ req, res, repo, name, params, ctx }: V2RepoCall): Promise<void> {
  const artifactType = typeof req.query.artifactType === 'string' && req.query.artifactType ? req.query.artifactType : undefined;
  const found = await repo.referrers(name.image, params.digest!, artifactType, ctx);
  if (artifactType) res.setHeader('OCI-Filters-Applied', 'artifactType');
  res.status(200).setHeader('Content-Type', MediaTypes.ociIndex);
  res.end(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaTypes.ociIndex,
      manifests: found.map((m) => ({
        mediaType: m.mediaType,
        digest: m.digest,
        size: m.size,
        ...(m.artifactType ? { artifactType: m.artifactType } : {}),
        ...(m.annotations ? { annotations: m.annotations } : {}),
      })),
    }),
  );
}

/**
 * GET /v2/_catalog[?n=&last=]: `<repoKey>/<image>` of every image the caller may
 * read; under a fixed repository (`/api/docker/<key>/v2/_catalog`) just its images.
 */
export async function catalog({ req, res, services, ctx, addr }: V2Call): Promise<void> {
  const page = pageParams(req.query);
  const { identity } = ctx;
  const readable = (repoKey: string, image: string) => services.authorizer.can(identity, 'read', { repoKey, image, partial: true });
  let names: string[];
  let more: boolean;
  if (addr.fixedRepoKey !== undefined) {
    const key = addr.fixedRepoKey;
    const repo = await services.resolver.get(key);
    if (!repo || !(await services.authorizer.can(identity, 'read', { repoKey: key }))) {
      throw new RegistryError('NAME_UNKNOWN', `repository ${key} is not known`);
    }
    ({ items: names, more } = await filteredPage(
      page,
      async (after, limit) => {
        const r = await repo.images({ last: after, n: limit }, ctx);
        return { items: r.images, more: r.more };
      },
      (image) => readable(key, image),
    ));
  } else {
    const locals = await services.store.repositories.list('local');
    const keys: string[] = [];
    for (const r of locals) if (await services.authorizer.can(identity, 'read', { repoKey: r.key })) keys.push(r.key);
    ({ items: names, more } = await filteredPage(
      page,
      async (after, limit) => {
        if (keys.length === 0) return { items: [], more: false };
        const rows = await services.store.manifests.catalog({ repoKeys: keys, last: after, limit: limit + 1 });
        return { items: rows.slice(0, limit).map((r) => `${r.repoKey}/${r.image}`), more: rows.length > limit };
      },
      (joined) => {
        const slash = joined.indexOf('/');
        return readable(joined.slice(0, slash), joined.slice(slash + 1));
      },
    ));
  }
  if (more && names.length) setNextLink(res, `${addr.prefix}/_catalog`, page.n!, names[names.length - 1]!);
  res.status(200).json({ repositories: names });
}

/** GET /v2/: the API version check. */
export async function base({ res }: V2Call): Promise<void> {
  res.status(200).json({});
}

/**
 * One page of `n` items after `last` that pass `keep`, reading the source in
 * batches until the page is full or the source ends, so pagination stays
 * right when some items are filtered out. `more` says whether kept items may follow.
 */
async function filteredPage(
  page: { n?: number; last?: string },
  fetchBatch: (after: string | undefined, limit: number) => Promise<{ items: string[]; more: boolean }>,
  keep: (item: string) => Promise<boolean>,
): Promise<{ items: string[]; more: boolean }> {
  if (page.n === 0) return { items: [], more: false };
  const want = page.n ?? Number.POSITIVE_INFINITY;
  const batch = Math.min(Math.max((page.n ?? MAX_PAGE) + 1, 100), MAX_PAGE);
  const items: string[] = [];
  let after = page.last;
  for (;;) {
    const { items: got, more } = await fetchBatch(after, batch);
    for (const item of got) {
      if (!(await keep(item))) continue;
      if (items.length === want) return { items, more: true };
      items.push(item);
    }
    if (!more || got.length === 0) return { items, more: false };
    after = got[got.length - 1];
  }
}

function pageParams(q: Record<string, unknown>): { n?: number; last?: string } {
  const out: { n?: number; last?: string } = {};
  if (q.n !== undefined) {
    const n = Number(q.n);
    if (typeof q.n !== 'string' || !/^\d+$/.test(q.n) || !Number.isSafeInteger(n)) {
      throw new RegistryError('PAGINATION_NUMBER_INVALID', `n must be a non-negative integer, got ${String(q.n)}`);
    }
    out.n = Math.min(n, MAX_PAGE);
  }
  if (typeof q.last === 'string' && q.last !== '') out.last = q.last;
  return out;
}

function setNextLink(res: Response, path: string, n: number, last: string): void {
  res.setHeader('Link', `<${path}?n=${n}&last=${encodeURIComponent(last)}>; rel="next"`);
}
