/**
 * Small, pure HTTP helpers for upstream-client.ts: header parsing, body
 * reading with a cap, and telling network errors from bugs.
 */
import type { Dispatcher } from 'undici';
import { digestOf, looksLikeDigest, parseDigest, type Digest } from '../../core/oci/digest.js';
import { MANIFEST_MEDIA_TYPES, SCHEMA1_MEDIA_TYPES } from '../../core/oci/media-types.js';
import { UpstreamUnavailableError } from './upstream.js';

export function headerValue(res: Dispatcher.ResponseData, name: string): string | undefined {
  const v = res.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** Drops a response body we will not read, so the connection goes back to the pool. */
export async function discard(res: Dispatcher.ResponseData): Promise<void> {
  try {
    await res.body.dump();
  } catch {
    // The connection is closed instead; nothing to report.
  }
}

/** Reads a whole body, refusing more than `limit` bytes (it is destroyed then). */
export async function readCapped(res: Dispatcher.ResponseData, limit: number, what: string): Promise<Buffer> {
  const declared = Number(headerValue(res, 'content-length'));
  if (Number.isFinite(declared) && declared > limit) {
    res.body.destroy();
    throw new UpstreamUnavailableError(`${what} is larger than ${limit} bytes (${declared})`, res.statusCode);
  }
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of res.body as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > limit) {
      res.body.destroy();
      throw new UpstreamUnavailableError(`${what} is larger than ${limit} bytes`, res.statusCode);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, total);
}

/** `Retry-After` as milliseconds from now: delta-seconds or an HTTP date. */
export function parseRetryAfter(value: string | string[] | undefined, now: number): number | undefined {
  const v = (Array.isArray(value) ? value[0] : value)?.trim();
  if (!v) return undefined;
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** Docker Hub sends `RateLimit-Remaining: 76;w=21600`: the number before any `;` parameters. */
export function parseRateLimitRemaining(value: string | undefined): number | undefined {
  const m = value === undefined ? null : /^\s*(\d+)/.exec(value);
  return m ? Number(m[1]) : undefined;
}

/** `Link: </v2/x/tags/list?last=b&n=2>; rel="next"` — whether there is a next page. */
export function hasNextLink(link: string | string[] | undefined): boolean {
  const all = Array.isArray(link) ? link.join(',') : (link ?? '');
  return /;\s*rel="?next"?/i.test(all);
}

export function mediaTypeOf(contentType: string | undefined): string {
  return (contentType ?? '').split(';')[0]!.trim().toLowerCase();
}

export const knownManifestType = (mt: string): boolean => MANIFEST_MEDIA_TYPES.has(mt) || SCHEMA1_MEDIA_TYPES.has(mt);

export function validDigest(value: string | undefined): Digest | undefined {
  if (!value) return undefined;
  try {
    return parseDigest(value.trim());
  } catch {
    return undefined;
  }
}

/**
 * undici's errors (`UND_ERR_*`) and the socket's (`ECONNREFUSED`, TLS codes)
 * carry a string code; a bug's TypeError does not. Duck-typed, not
 * `instanceof Error`: TLS errors can come from another realm (a vm context).
 */
export function isNetworkError(e: unknown): e is { code: string; message: string } {
  if (typeof e !== 'object' || e === null) return false;
  const { code, message } = e as { code?: unknown; message?: unknown };
  return typeof code === 'string' && typeof message === 'string';
}

/**
 * The manifest's digest: the reference when it is one, else the upstream's
 * Docker-Content-Digest, else sha256 — and the body must hash to it, so a
 * wrong answer can never be cached under a digest it does not have.
 */
export function manifestDigest(reference: string, header: string | undefined, body: Buffer): string {
  if (looksLikeDigest(reference)) {
    const want = validDigest(reference);
    if (!want) throw new UpstreamUnavailableError(`invalid digest reference: ${reference}`);
    if (digestOf(body, want.algorithm) !== want.value) throw new UpstreamUnavailableError('digest mismatch', 200);
    return want.value;
  }
  const claimed = validDigest(header);
  if (!claimed) return digestOf(body);
  if (digestOf(body, claimed.algorithm) !== claimed.value) throw new UpstreamUnavailableError('digest mismatch', 200);
  return claimed.value;
}

/** Content-Type without parameters; when it is not a manifest type (`application/json`), the body's own `mediaType`. */
export function manifestMediaType(contentType: string | undefined, body: Buffer): string {
  const fromHeader = mediaTypeOf(contentType);
  if (knownManifestType(fromHeader)) return fromHeader;
  try {
    const own = (JSON.parse(body.toString('utf8')) as { mediaType?: unknown }).mediaType;
    if (typeof own === 'string' && knownManifestType(own)) return own;
  } catch {
    // Not JSON: the caller's manifest parser refuses it with a proper error.
  }
  return fromHeader;
}
