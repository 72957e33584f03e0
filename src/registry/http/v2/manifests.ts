import type { V2RepoCall } from './call.js';
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

/** PUT /v2/<name>/manifests/<reference>[?tag=…]: validate, store byte-for-byte, tag. */
export async function putManifest({ req, res, repo, name, params, ctx }: V2RepoCall): Promise<void> {
  const body = await readManifestBody(req);
  const tags = queryList(req.query.tag);
  const result = await repo.putManifest(
    { image: name.image, reference: params.reference!, body, contentType: req.headers['content-type'], tags },
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
