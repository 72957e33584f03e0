import { createHash, type Hash } from 'node:crypto';
import { RegistryError } from '../errors.js';

/** Digest algorithms drydock verifies, with the hex length each must have. */
export const ALGORITHMS = { sha256: 64, sha512: 128 } as const;
export type Algorithm = keyof typeof ALGORITHMS;

export interface Digest {
  algorithm: Algorithm;
  hex: string;
  /** `<algorithm>:<hex>` */
  value: string;
}

const DIGEST_RE = /^([a-z0-9]+(?:[.+_-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)$/;

/** Parses `sha256:<64 hex>` / `sha512:<128 hex>`; anything else is DIGEST_INVALID. */
export function parseDigest(value: string): Digest {
  const m = DIGEST_RE.exec(value);
  if (!m) throw new RegistryError('DIGEST_INVALID', `invalid digest: ${value}`);
  const algorithm = m[1] as Algorithm;
  const len = ALGORITHMS[algorithm];
  if (len === undefined) throw new RegistryError('DIGEST_INVALID', `unsupported digest algorithm: ${m[1]}`);
  const hex = m[2]!;
  if (hex.length !== len || !/^[a-f0-9]+$/.test(hex)) {
    throw new RegistryError('DIGEST_INVALID', `invalid ${algorithm} digest: ${value}`);
  }
  return { algorithm, hex, value };
}

/** True when `ref` has the shape of a digest (so a manifest reference is not a tag). */
export function looksLikeDigest(ref: string): boolean {
  return ref.includes(':');
}

export function newHasher(algorithm: Algorithm): Hash {
  return createHash(algorithm);
}

export function digestOf(data: Uint8Array | string, algorithm: Algorithm = 'sha256'): string {
  return `${algorithm}:${createHash(algorithm).update(data).digest('hex')}`;
}
