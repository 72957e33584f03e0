import type { Request } from 'express';
import { RegistryError } from '../../../core/errors.js';
import { MAX_MANIFEST_BYTES } from '../../../core/oci/manifest.js';

/** Reads a manifest body into memory (manifests are small), refusing more than the manifest limit. */
export async function readManifestBody(req: Request): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (declared > MAX_MANIFEST_BYTES) {
    req.resume();
    throw new RegistryError('MANIFEST_TOO_LARGE', `manifest is ${declared} bytes, the limit is ${MAX_MANIFEST_BYTES}`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_MANIFEST_BYTES) {
      req.resume();
      throw new RegistryError('MANIFEST_TOO_LARGE', `manifest exceeds the ${MAX_MANIFEST_BYTES}-byte limit`);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks, size);
}
