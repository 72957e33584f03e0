import type { Readable } from 'node:stream';

/**
 * What a remote repository needs from the registry it proxies. One instance per
 * remote repository (its URL, credentials and network settings); the HTTP
 * implementation is upstream-client.ts. Names are upstream names (Docker Hub's
 * `library/` prefix already applied by the caller).
 *
 * Every method resolves `undefined` when the upstream answers 404 (it does not
 * have the thing), and throws `UpstreamUnavailableError` when it cannot answer
 * (network error, timeout, 5xx, 429, marked down after repeated failures) —
 * the caller then serves its cache — or `UpstreamDeniedError` when it refuses
 * our credentials.
 */
export interface Upstream {
  headManifest(name: string, reference: string, signal?: AbortSignal): Promise<UpstreamManifestInfo | undefined>;
  getManifest(name: string, reference: string, signal?: AbortSignal): Promise<UpstreamManifest | undefined>;
  headBlob(name: string, digest: string, signal?: AbortSignal): Promise<{ size: number } | undefined>;
  /** Streams a blob; the caller verifies the digest while reading. */
  getBlob(name: string, digest: string, signal?: AbortSignal): Promise<UpstreamBlob | undefined>;
  /** One page of tags as the upstream orders them. */
  listTags(name: string, page: { n?: number; last?: string }, signal?: AbortSignal): Promise<{ tags: string[]; more: boolean } | undefined>;
  /** GETs an absolute URL without registry auth (foreign layers' `urls`), with the same network settings. */
  fetchUrl(url: string, signal?: AbortSignal): Promise<UpstreamBlob | undefined>;
  /** Frees connections (the repository's configuration changed or the process stops). */
  close?(): Promise<void>;
}

export interface UpstreamManifestInfo {
  digest: string;
  mediaType: string;
  size: number;
}

export interface UpstreamManifest extends UpstreamManifestInfo {
  /** Exact bytes; `digest` is computed from them when the upstream sent none. */
  body: Buffer;
}

export interface UpstreamBlob {
  /** From Content-Length; undefined when the upstream did not say. */
  size?: number;
  body: Readable;
}

export class UpstreamUnavailableError extends Error {
  constructor(
    message: string,
    readonly status?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'UpstreamUnavailableError';
  }
}

export class UpstreamDeniedError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
    this.name = 'UpstreamDeniedError';
  }
}
