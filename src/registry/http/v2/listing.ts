import type { Response } from 'express';
import { RegistryError } from '../../../core/errors.js';
import { MediaTypes } from '../../../core/oci/media-types.js';
import type { V2Call, V2RepoCall } from './call.js';

/** Largest page a client may ask for; larger `n` gets this many and a Link to the rest. */
export const MAX_PAGE = 10_000;

/** GET /v2/<name>/tags/list[?n=&last=]: lexical order, Link pagination. */
export async function listTags({ req, res, repo, name, ctx }: V2RepoCall): Promise<void> {
  const page = pageParams(req.query);
  const { tags, more } = await repo.listTags(name.image, page, ctx);
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
  let names: string[];
  let more: boolean;
  if (addr.fixedRepoKey !== undefined) {
    const repo = await services.resolver.get(addr.fixedRepoKey);
    if (!repo || !services.authorizer.can(ctx.identity, 'read', { repoKey: addr.fixedRepoKey })) {
      throw new RegistryError('NAME_UNKNOWN', `repository ${addr.fixedRepoKey} is not known`);
    }
    ({ images: names, more } = await repo.images(page, ctx));
  } else {
    const locals = await services.store.repositories.list('local');
    const readable = locals.map((r) => r.key).filter((key) => services.authorizer.can(ctx.identity, 'read', { repoKey: key }));
    if (page.n === 0 || readable.length === 0) {
      names = [];
      more = false;
    } else {
      const rows = await services.store.manifests.catalog({
        repoKeys: readable,
        last: page.last,
        limit: page.n === undefined ? undefined : page.n + 1,
      });
      more = page.n !== undefined && rows.length > page.n;
      names = (more ? rows.slice(0, page.n) : rows).map((r) => `${r.repoKey}/${r.image}`);
    }
  }
  if (more && names.length) setNextLink(res, `${addr.prefix}/_catalog`, page.n!, names[names.length - 1]!);
  res.status(200).json({ repositories: names });
}

/** GET /v2/: the API version check. */
export async function base({ res }: V2Call): Promise<void> {
  res.status(200).json({});
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
