import { digestOf, looksLikeDigest } from '../../../core/oci/digest.js';
import { isValidTag } from '../../../core/oci/reference.js';
import type { V2RepoCall } from './call.js';
import { authorizeRepository } from './v2-auth.js';
import { readManifestBody } from './read-body.js';

/** GET and HEAD /v2/<name>/manifests/<reference>: the stored bytes, with the media type they were pushed with. */
export async function getManifest({ req, res, repo, name, params, ctx }: V2RepoCall): Promise<void> {
  const m = await repo.getManifest(name.image, params.reference!, ctx);
  res.status(200);
  res.setHeader('Content-Type', m.mediaType);
  res.setHeader('Content-Length', String(m.size));
  res.setHeader('Docker-Content-Digest', m.digest);
  res.setHeader('ETag', `"${m.digest}"`);
  if (req.method === 'HEAD') res.end();
  else res.end(m.content);
}

/**
 * PUT /v2/<name>/manifests/<reference>[?tag=…]: validate, store byte-for-byte, tag.
 * Re-pointing a tag that already names another manifest needs delete as well
 * (Artifactory's overwrite rule).
 */
export async function putManifest({ req, res, repo, name, params, ctx, services }: V2RepoCall): Promise<void> {
  const body = await readManifestBody(req);
  const tags = queryList(req.query.tag);
  const reference = params.reference!;
  const repoKey = await repo.deploymentKey(ctx, name.image);
  const digest = looksLikeDigest(reference) ? reference : digestOf(body);
  for (const tag of looksLikeDigest(reference) ? tags : [reference]) {
    const current = isValidTag(tag) ? await services.store.tags.resolve(repoKey, name.image, tag) : undefined;
    if (current && current !== digest) {
      await authorizeRepository(req, services, ctx.identity, 'delete', { repoKey: name.repoKey, image: name.image, leaf: tag });
    }
  }
  const result = await repo.putManifest(
    { image: name.image, reference, body, contentType: req.headers['content-type'], tags },
    ctx,
  );
  res.status(201);
  res.setHeader('Location', `${name.namePath}/manifests/${result.digest}`);
  res.setHeader('Docker-Content-Digest', result.digest);
  if (result.subject) res.setHeader('OCI-Subject', result.subject);
  if (tags.length) res.setHeader('OCI-Tag', result.tags.join(', '));
  res.setHeader('Content-Length', '0');
  res.end();
}

/** DELETE /v2/<name>/manifests/<reference>: by digest the manifest and its tags; by tag just the tag. */
export async function deleteManifest({ res, repo, name, params, ctx }: V2RepoCall): Promise<void> {
  await repo.deleteManifest(name.image, params.reference!, ctx);
  res.status(202).setHeader('Content-Length', '0');
  res.end();
}

export function queryList(v: unknown): string[] {
  if (v === undefined) return [];
  return (Array.isArray(v) ? v : [v]).filter((x): x is string => typeof x === 'string' && x !== '');
}
