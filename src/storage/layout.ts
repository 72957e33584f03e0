import type { Digest } from '../core/oci/digest.js';

/** Where a committed blob lives: content-addressed, fanned out by the first two hex digits. */
export function blobKey(digest: Digest): string {
  return `blobs/${digest.algorithm}/${digest.hex.slice(0, 2)}/${digest.hex}`;
}

/** Prefix under which drivers keep in-progress upload sessions. */
export const UPLOADS_PREFIX = 'uploads';
