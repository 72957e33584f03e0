import type { Response } from 'express';
import { RegistryError } from '../../../core/errors.js';
import { parseContentRange } from '../../../core/http-range.js';
import type { UploadRecord } from '../../../metadata/store.js';
import { resolveName } from './addressing.js';
import type { V2RepoCall } from './call.js';
import { tokenAllows } from './v2-auth.js';

/**
 * POST /v2/<name>/blobs/uploads/: a cross-repository mount (`?mount=&from=`),
 * a monolithic upload (`?digest=`), or a new session (202 + Location).
 */
export async function startUpload(call: V2RepoCall): Promise<void> {
  const { req, res, repo, name, services, ctx } = call;
  const target = { repoKey: await repo.deploymentKey(ctx, name.image), image: name.image };
  const mount = typeof req.query.mount === 'string' ? req.query.mount : undefined;
  const from = typeof req.query.from === 'string' ? req.query.from : undefined;
  const digest = typeof req.query.digest === 'string' ? req.query.digest : undefined;

  if (mount && from) {
    const blob = await tryMount(call, target, mount, from);
    if (blob) {
      req.resume();
      return blobCreated(res, name.namePath, mount);
    }
  }
  if (digest !== undefined) {
    const blob = await services.uploads.monolithic(target, digest, req);
    return blobCreated(res, name.namePath, blob.digest);
  }
  req.resume();
  const rec = await services.uploads.start(target);
  sessionHeaders(res, name.namePath, rec);
  res.status(202).end();
}

/** PATCH /v2/<name>/blobs/uploads/<uuid>: a streamed or (with Content-Range) chunked append. */
export async function patchUpload({ req, res, repo, name, params, services, ctx }: V2RepoCall): Promise<void> {
  const range = chunkRange(req.headers['content-range']);
  const rec = await services.uploads.append({ repoKey: await repo.deploymentKey(ctx, name.image), image: name.image }, params.uuid!, req, range);
  sessionHeaders(res, name.namePath, rec);
  res.status(202).end();
}

/** PUT /v2/<name>/blobs/uploads/<uuid>?digest=: the optional last chunk, then verify and commit. */
export async function completeUpload({ req, res, repo, name, params, services, ctx }: V2RepoCall): Promise<void> {
  const digest = typeof req.query.digest === 'string' ? req.query.digest : undefined;
  if (!digest) {
    req.resume();
    throw new RegistryError('DIGEST_INVALID', 'the digest query parameter is required to complete an upload');
  }
  const range = chunkRange(req.headers['content-range']);
  const hasBody = Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding'] !== undefined;
  const blob = await services.uploads.complete(
    { repoKey: await repo.deploymentKey(ctx, name.image), image: name.image },
    params.uuid!,
    digest,
    hasBody ? req : undefined,
    range,
  );
  if (!hasBody) req.resume();
  blobCreated(res, name.namePath, blob.digest);
}

/** GET /v2/<name>/blobs/uploads/<uuid>: where the session stands (204 + Range). */
export async function uploadStatus({ res, repo, name, params, services, ctx }: V2RepoCall): Promise<void> {
  const rec = await services.uploads.get({ repoKey: await repo.deploymentKey(ctx, name.image), image: name.image }, params.uuid!);
  sessionHeaders(res, name.namePath, rec);
  res.status(204).end();
}

/** DELETE /v2/<name>/blobs/uploads/<uuid>: cancel. */
export async function cancelUpload({ res, repo, name, params, services, ctx }: V2RepoCall): Promise<void> {
  await services.uploads.cancel({ repoKey: await repo.deploymentKey(ctx, name.image), image: name.image }, params.uuid!);
  res.status(204).end();
}

/**
 * A mount needs read on the source; a source the caller cannot read, or that
 * lacks the blob, falls back to a normal upload session (as the spec allows),
 * so nothing leaks about content outside the caller's rights.
 */
async function tryMount(call: V2RepoCall, target: { repoKey: string; image: string }, digest: string, from: string) {
  const { addr, services, ctx } = call;
  let source;
  try {
    source = resolveName(addr, from);
  } catch {
    return undefined;
  }
  if (!(await services.authorizer.can(ctx.identity, 'read', { repoKey: source.repoKey, image: source.image }))) return undefined;
  // With a registry token, the token itself must also cover pulling from the source.
  const tokenAccess = ctx.identity.tokenAccess;
  if (tokenAccess && !tokenAllows(tokenAccess, 'repository', `${source.repoKey}/${source.image}`, 'pull')) return undefined;
  const sourceRepo = await services.resolver.get(source.repoKey);
  if (!sourceRepo || sourceRepo.rclass !== 'local') return undefined;
  return services.blobs.mount({ repoKey: source.repoKey, image: source.image }, target, digest);
}

function chunkRange(header: string | undefined) {
  const range = parseContentRange(header);
  if (range === 'invalid') throw new RegistryError('RANGE_INVALID', `invalid Content-Range: ${header}`);
  return range;
}

function sessionHeaders(res: Response, namePath: string, rec: UploadRecord): void {
  res.setHeader('Location', `${namePath}/blobs/uploads/${rec.id}`);
  res.setHeader('Docker-Upload-UUID', rec.id);
  res.setHeader('Range', `0-${Math.max(rec.size - 1, 0)}`);
  res.setHeader('Content-Length', '0');
}

function blobCreated(res: Response, namePath: string, digest: string): void {
  res.setHeader('Location', `${namePath}/blobs/${digest}`);
  res.setHeader('Docker-Content-Digest', digest);
  res.setHeader('Content-Length', '0');
  res.status(201).end();
}
