import { pipeline } from 'node:stream/promises';
import type { V2RepoCall } from './call.js';

/** GET and HEAD /v2/<name>/blobs/<digest>, with Range support (206) and optional redirect. */
export async function getBlob({ req, res, repo, name, params, ctx }: V2RepoCall): Promise<void> {
  const digest = params.digest!;
  if (req.method === 'HEAD') {
    const blob = await repo.statBlob(name.image, digest, ctx);
    setBlobHeaders(res, digest, blob.size);
    res.status(200).end();
    return;
  }
  const opened = await repo.openBlob(name.image, digest, req.headers.range, ctx);
  if (opened.redirect) {
    res.setHeader('Docker-Content-Digest', digest);
    res.redirect(307, opened.redirect);
    return;
  }
  const { blob, range, stream } = opened;
  setBlobHeaders(res, digest, range ? range.end - range.start + 1 : blob.size);
  if (range) {
    res.status(206).setHeader('Content-Range', `bytes ${range.start}-${range.end}/${blob.size}`);
  } else {
    res.status(200);
  }
  if (!stream) {
    res.end();
    return;
  }
  await pipeline(stream, res).catch((e: unknown) => {
    // The client went away or storage failed mid-stream; headers are out, so just cut the connection.
    ctx.log.debug({ err: e, digest }, 'blob stream ended early');
    stream.destroy();
    res.destroy();
  });
}

/** DELETE /v2/<name>/blobs/<digest>: unlinks the blob from the image. */
export async function deleteBlob({ res, repo, name, params, ctx }: V2RepoCall): Promise<void> {
  await repo.deleteBlob(name.image, params.digest!, ctx);
  res.status(202).setHeader('Content-Length', '0');
  res.end();
}

function setBlobHeaders(res: V2RepoCall['res'], digest: string, length: number): void {
  res.setHeader('Content-Type', 'application/octet-stream');
  res.setHeader('Content-Length', String(length));
  res.setHeader('Docker-Content-Digest', digest);
  res.setHeader('Accept-Ranges', 'bytes');
  res.setHeader('ETag', `"${digest}"`);
  res.setHeader('Cache-Control', 'max-age=31536000');
}
