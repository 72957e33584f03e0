/**
 * `HttpUpstream`: the `Upstream` of a remote repository over HTTP(S) with undici.
 *
 * One instance per remote repository owns one connection pool (an `Agent`, or a
 * `ProxyAgent` when `proxy` is set) configured from the repository's network
 * settings. Every request goes through the same pipeline:
 *
 *   circuit breaker → retries with backoff → registry auth (Basic / token flow) → redirects
 *
 * Failures the caller can fall back from (network, timeout, 5xx, 429, breaker
 * open) surface as `UpstreamUnavailableError`; a refusal of our credentials as
 * `UpstreamDeniedError`; a 404 as `undefined`.
 */
import { rootCertificates } from 'node:tls';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, ProxyAgent, request, type Dispatcher } from 'undici';
import type { RemoteRepositoryConfig } from '../../core/config/repository.js';
import type { Logger } from '../../core/log.js';
import type { Metrics } from '../../core/metrics.js';
import { looksLikeDigest } from '../../core/oci/digest.js';
import { MediaTypes } from '../../core/oci/media-types.js';
import { pullScope, TransientTokenError, UpstreamAuth } from './upstream-auth.js';
import { CircuitBreaker, type BreakerOptions, type Permit } from './upstream-health.js';
import {
  discard,
  hasNextLink,
  headerValue,
  isNetworkError,
  knownManifestType,
  manifestDigest,
  manifestMediaType,
  mediaTypeOf,
  parseRateLimitRemaining,
  parseRetryAfter,
  readCapped,
  validDigest,
} from './upstream-http.js';
import {
  UpstreamDeniedError,
  UpstreamUnavailableError,
  type Upstream,
  type UpstreamBlob,
  type UpstreamManifest,
  type UpstreamManifestInfo,
} from './upstream.js';

export { parseChallenge, parseChallenges, type Challenge } from './upstream-auth.js';
export type { BreakerOptions, BreakerState } from './upstream-health.js';
export { parseRateLimitRemaining, parseRetryAfter } from './upstream-http.js';

export interface HttpUpstreamOptions {
  /** The remote repository's key: the metrics label and log field. */
  repository: string;
  config: RemoteRepositoryConfig;
  metrics: Metrics;
  log: Logger;
  /** Clock for token expiry, Retry-After dates and the breaker (tests inject one). */
  now?: () => number;
  /** Circuit breaker thresholds; defaults 5 failures, 30 s. */
  breaker?: BreakerOptions;
}

/** Schema 1 is left out on purpose: drydock refuses it, so never invite it. */
export const MANIFEST_ACCEPT = [MediaTypes.ociIndex, MediaTypes.ociManifest, MediaTypes.dockerList, MediaTypes.dockerManifest].join(', ');
/** The same cap as on push (SPEC §4): a bigger "manifest" is not one we could serve. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
const MAX_TOKEN_BYTES = 1024 * 1024;
const MAX_TAGS_BYTES = 16 * 1024 * 1024;
const MAX_REDIRECTS = 5;
const BACKOFF_BASE_MS = 100;
const BACKOFF_CAP_MS = 2000;
/** Longer waits are not worth it: the caller serves its cache rather than keep a client waiting. */
const MAX_RETRY_AFTER_MS = 5000;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
/** TLS verification failures: retrying cannot help, but the upstream is still unusable. */
const TLS_ERROR = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS|ERR_SSL|UNABLE_TO_GET_ISSUER/;

type Method = 'GET' | 'HEAD';
type Headers = Record<string, string>;
type Response = Dispatcher.ResponseData;

interface Call {
  method: Method;
  url: URL;
  headers: Headers;
  /** The upstream image name, for registry auth; absent for `fetchUrl` (no auth at all). */
  name?: string;
  signal?: AbortSignal;
  /** Whether the circuit breaker guards it (registry requests; not foreign-layer URLs on other hosts). */
  guarded: boolean;
}

/** A failure worth another attempt: a network error, a timeout, a 5xx or a 429. */
class Transient extends Error {
  constructor(
    message: string,
    readonly status?: number,
    readonly retryAfterMs?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Unavailable errors that mean the upstream is unreachable (they count towards "down"), as opposed to bad content. */
const outages = new WeakSet<Error>();

function outage(message: string, status?: number, cause?: unknown): UpstreamUnavailableError {
  const e = new UpstreamUnavailableError(message, status, cause === undefined ? undefined : { cause });
  outages.add(e);
  return e;
}

export class HttpUpstream implements Upstream {
  private readonly base: string;
  private readonly dispatcher: Dispatcher;
  private readonly timeoutMs: number;
  private readonly retries: number;
  private readonly now: () => number;
  private readonly auth: UpstreamAuth;
  private readonly breaker: CircuitBreaker;
  private readonly repository: string;
  private readonly metrics: Metrics;
  private readonly log: Logger;

  constructor(opts: HttpUpstreamOptions) {
    const { config } = opts;
    this.repository = opts.repository;
    this.metrics = opts.metrics;
    // The caller's logger may already carry the repository; pino would print a second `repo` field.
    const bound = opts.log.bindings() as { repo?: unknown };
    this.log = opts.log.child({ ...(bound.repo === undefined ? { repo: opts.repository } : {}), upstream: withoutUserinfo(config.url) });
    this.now = opts.now ?? Date.now;
    this.base = config.url.replace(/\/+$/, '');
    this.timeoutMs = config.socketTimeoutMillis;
    this.retries = config.retries;
    // A private CA is added to the public ones, not put in their place: blob
    // redirects usually lead to a public CDN or bucket.
    const tls = {
      ca: config.caCert ? [...rootCertificates, config.caCert] : undefined,
      rejectUnauthorized: !config.insecureSkipVerify,
      timeout: this.timeoutMs,
    };
    this.dispatcher = config.proxy
      ? new ProxyAgent({
          uri: config.proxy,
          // Plain-HTTP upstreams go through the proxy as absolute-URI requests
          // (what every forward proxy accepts); HTTPS ones are tunnelled with CONNECT.
          proxyTunnel: false,
          requestTls: tls,
          proxyTls: { timeout: this.timeoutMs },
          headersTimeout: this.timeoutMs,
          bodyTimeout: this.timeoutMs,
        })
      : new Agent({ connect: tls, headersTimeout: this.timeoutMs, bodyTimeout: this.timeoutMs });
    this.auth = new UpstreamAuth({
      upstreamOrigin: new URL(this.base).origin,
      username: config.username,
      password: config.password,
      enableTokenAuthentication: config.enableTokenAuthentication,
      now: this.now,
      fetchToken: async (url, headers) => {
        const { res } = await this.exchange({ method: 'GET', url, headers, guarded: true }, headers);
        const body = (await readCapped(res, MAX_TOKEN_BYTES, 'token response')).toString('utf8');
        return { status: res.statusCode, headers: res.headers, body };
      },
    });
    this.breaker = new CircuitBreaker(opts.breaker ?? {}, this.now, (state, failures) => {
      if (state === 'open') this.log.warn({ failures, forMs: this.breaker.openMillis }, 'upstream marked down');
      else if (state === 'closed') this.log.info('upstream answers again');
    });
  }

  /** True while calls are refused without dialing (see upstream-health.ts). */
  isDown(): boolean {
    return this.breaker.isDown();
  }

  /** Closes the connection pool; in-flight requests finish first. */
  async close(): Promise<void> {
    await this.dispatcher.close();
  }

  async headManifest(name: string, reference: string, signal?: AbortSignal): Promise<UpstreamManifestInfo | undefined> {
    const call = this.registryCall('HEAD', name, `manifests/${reference}`, { accept: MANIFEST_ACCEPT }, signal);
    const info = await this.send(call, async (res) => {
      await discard(res);
      if (res.statusCode === 404) return undefined;
      if (res.statusCode !== 200) throw this.unexpected('HEAD', res);
      const byRef = looksLikeDigest(reference) ? reference : undefined;
      const claimed = validDigest(headerValue(res, 'docker-content-digest'))?.value;
      if (byRef && claimed && claimed !== byRef && validDigest(claimed)?.algorithm === validDigest(byRef)?.algorithm) {
        throw new UpstreamUnavailableError(`digest mismatch: asked for ${byRef}, the upstream says ${claimed}`, res.statusCode);
      }
      const digest = byRef ?? claimed;
      const size = Number(headerValue(res, 'content-length'));
      const mediaType = mediaTypeOf(headerValue(res, 'content-type'));
      // A HEAD that leaves something out is completed with a GET below: the
      // caller stores what we answer, so it must not be a guess.
      if (!digest || !Number.isInteger(size) || !knownManifestType(mediaType)) return 'incomplete' as const;
      return { digest, mediaType, size };
    });
    if (info !== 'incomplete') return info;
    const full = await this.getManifest(name, reference, signal);
    return full && { digest: full.digest, mediaType: full.mediaType, size: full.size };
  }

  async getManifest(name: string, reference: string, signal?: AbortSignal): Promise<UpstreamManifest | undefined> {
    return this.send(this.registryCall('GET', name, `manifests/${reference}`, { accept: MANIFEST_ACCEPT }, signal), async (res) => {
      if (res.statusCode === 404) {
        await discard(res);
        return undefined;
      }
      if (res.statusCode !== 200) throw await this.unexpectedDrained('GET', res);
      const body = await readCapped(res, MAX_MANIFEST_BYTES, 'manifest');
      return {
        digest: manifestDigest(reference, headerValue(res, 'docker-content-digest'), body),
        mediaType: manifestMediaType(headerValue(res, 'content-type'), body),
        size: body.length,
        body,
      };
    });
  }

  async headBlob(name: string, digest: string, signal?: AbortSignal): Promise<{ size: number } | undefined> {
    return this.send(this.registryCall('HEAD', name, `blobs/${digest}`, {}, signal), async (res) => {
      await discard(res);
      if (res.statusCode === 404) return undefined;
      if (res.statusCode !== 200) throw this.unexpected('HEAD', res);
      const size = Number(headerValue(res, 'content-length'));
      if (!Number.isInteger(size) || size < 0) {
        throw new UpstreamUnavailableError('the upstream sent no Content-Length for a blob', res.statusCode);
      }
      return { size };
    });
  }

  async getBlob(name: string, digest: string, signal?: AbortSignal): Promise<UpstreamBlob | undefined> {
    return this.send(this.registryCall('GET', name, `blobs/${digest}`, {}, signal), (res) => this.streamed(res));
  }

  async listTags(
    name: string,
    page: { n?: number; last?: string },
    signal?: AbortSignal,
  ): Promise<{ tags: string[]; more: boolean } | undefined> {
    const query = new URLSearchParams();
    if (page.n !== undefined) query.set('n', String(page.n));
    if (page.last !== undefined) query.set('last', page.last);
    const qs = query.size > 0 ? `?${query.toString()}` : '';
    return this.send(this.registryCall('GET', name, `tags/list${qs}`, { accept: 'application/json' }, signal), async (res) => {
      if (res.statusCode === 404) {
        await discard(res);
        return undefined;
      }
      if (res.statusCode !== 200) throw await this.unexpectedDrained('GET', res);
      const text = (await readCapped(res, MAX_TAGS_BYTES, 'tags list')).toString('utf8');
      let parsed: { tags?: unknown };
      try {
        parsed = JSON.parse(text) as { tags?: unknown };
      } catch {
        throw new UpstreamUnavailableError('the upstream answered an invalid tags list', res.statusCode);
      }
      // distribution answers `"tags": null` for a repository without tags.
      const tags = parsed.tags ?? [];
      if (!Array.isArray(tags) || !tags.every((t) => typeof t === 'string')) {
        throw new UpstreamUnavailableError('the upstream answered an invalid tags list', res.statusCode);
      }
      return { tags: tags as string[], more: hasNextLink(res.headers.link) };
    });
  }

  async fetchUrl(url: string, signal?: AbortSignal): Promise<UpstreamBlob | undefined> {
    let target: URL;
    try {
      target = new URL(url);
    } catch {
      throw new UpstreamUnavailableError(`not a URL: ${url}`);
    }
    if (target.protocol !== 'http:' && target.protocol !== 'https:') throw new UpstreamUnavailableError(`not an http(s) URL: ${url}`);
    return this.send({ method: 'GET', url: target, headers: {}, signal, guarded: false }, (res) => this.streamed(res));
  }

  private registryCall(method: Method, name: string, path: string, headers: Headers, signal?: AbortSignal): Call {
    return { method, url: new URL(`${this.base}/v2/${name}/${path}`), headers, name, signal, guarded: true };
  }

  private async streamed(res: Response): Promise<UpstreamBlob | undefined> {
    if (res.statusCode === 404) {
      await discard(res);
      return undefined;
    }
    if (res.statusCode !== 200) throw await this.unexpectedDrained('GET', res);
    const length = Number(headerValue(res, 'content-length'));
    return { size: Number.isInteger(length) && length >= 0 ? length : undefined, body: res.body };
  }

  private unexpected(method: Method, res: Response): UpstreamUnavailableError {
    return new UpstreamUnavailableError(`${method} answered ${res.statusCode}`, res.statusCode);
  }

  private async unexpectedDrained(method: Method, res: Response): Promise<UpstreamUnavailableError> {
    await discard(res);
    return this.unexpected(method, res);
  }

  /** Circuit breaker around the retried request; `handle` turns the final response into the answer. */
  private async send<T>(call: Call, handle: (res: Response) => Promise<T>): Promise<T> {
    let permit: Permit | undefined;
    if (call.guarded) {
      permit = this.breaker.admit();
      if (!permit) throw new UpstreamUnavailableError('upstream marked down');
    }
    try {
      const out = await this.withRetries(call, handle);
      if (permit) this.breaker.success(permit);
      return out;
    } catch (e) {
      if (permit) {
        if (e instanceof UpstreamDeniedError) this.breaker.success(permit);
        else if (e instanceof UpstreamUnavailableError && outages.has(e)) this.breaker.failure(permit);
        else this.breaker.release(permit);
      }
      throw e;
    }
  }

  private async withRetries<T>(call: Call, handle: (res: Response) => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      let failure: Transient;
      try {
        const res = await this.authorized(call);
        if (res.statusCode === 429 || res.statusCode >= 500) {
          const retryAfterMs = parseRetryAfter(res.headers['retry-after'], this.now());
          await discard(res);
          throw new Transient(`answered ${res.statusCode}`, res.statusCode, retryAfterMs);
        }
        // Inside the retried part: a body that stalls or breaks mid-read is retried too.
        return await handle(res);
      } catch (e) {
        if (call.signal?.aborted) throw e;
        const verdict = this.classify(e, call);
        if ('fail' in verdict) throw verdict.fail;
        failure = verdict.retry;
      }
      const where = `${call.method} ${call.url.origin}${call.url.pathname}`;
      const attempts = `${attempt + 1} attempt${attempt === 0 ? '' : 's'}`;
      if (failure.retryAfterMs !== undefined && failure.retryAfterMs > MAX_RETRY_AFTER_MS) {
        throw outage(`${where}: ${failure.message}, Retry-After ${Math.ceil(failure.retryAfterMs / 1000)} s`, failure.status, failure);
      }
      if (attempt >= this.retries) throw outage(`${where}: ${failure.message} after ${attempts}`, failure.status, failure);
      const backoff = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** attempt);
      // Half fixed, half random: spreads the retries of many pods without ever retrying at once.
      const delay = failure.retryAfterMs ?? backoff / 2 + Math.random() * (backoff / 2);
      this.log.debug({ url: where, attempt: attempt + 1, delayMs: Math.round(delay), err: failure.message }, 'retrying upstream request');
      await sleep(delay, undefined, { signal: call.signal });
    }
  }

  /** What a thrown error means for the retry loop: retry (Transient), or give up with this error. */
  private classify(e: unknown, call: Call): { retry: Transient } | { fail: unknown } {
    if (e instanceof Transient) return { retry: e };
    if (e instanceof TransientTokenError) {
      return { retry: new Transient(e.message, e.status, parseRetryAfter(e.retryAfter, this.now()), { cause: e }) };
    }
    if (e instanceof UpstreamDeniedError || e instanceof UpstreamUnavailableError || !isNetworkError(e)) return { fail: e };
    const code = e.code;
    const detail = e.message.includes(code) ? e.message : `${e.message} (${code})`;
    if (TLS_ERROR.test(code) || code === 'UND_ERR_INVALID_ARG') {
      return { fail: outage(`${call.method} ${call.url.origin}${call.url.pathname}: ${detail}`, undefined, e) };
    }
    return { retry: new Transient(detail, undefined, undefined, { cause: e }) };
  }

  /**
   * One attempt with registry auth: the credentials already known for the
   * scope, and on a 401 one more try with what the challenge asks for.
   */
  private async authorized(call: Call): Promise<Response> {
    if (call.name === undefined) return this.refuseDenied(call, await this.exchange(call, call.headers));
    const scope = pullScope(call.name);
    const sent = await this.auth.prepare(scope);
    let answer = await this.exchange(call, withAuthorization(call.headers, sent.header));
    if (answer.res.statusCode === 401 && answer.url.origin === call.url.origin) {
      const challenge = answer.res.headers['www-authenticate'];
      await discard(answer.res);
      const retryWith = await this.auth.challenged(challenge, scope, sent);
      answer = await this.exchange(call, withAuthorization(call.headers, retryWith));
    }
    return this.refuseDenied(call, answer);
  }

  private async refuseDenied(call: Call, { res, url }: { res: Response; url: URL }): Promise<Response> {
    if (res.statusCode !== 401 && res.statusCode !== 403) return res;
    await discard(res);
    // A bucket or CDN we were redirected to refusing is not a verdict on our
    // credentials (a presigned URL that expired on the way): another attempt
    // gets a fresh redirect.
    if (url.origin !== call.url.origin) throw new Transient(`the redirect target answered ${res.statusCode}`, res.statusCode);
    const where = `${call.method} ${call.url.origin}${call.url.pathname}`;
    throw new UpstreamDeniedError(`${where}: the upstream answered ${res.statusCode}`, res.statusCode);
  }

  /**
   * One HTTP exchange, following redirects (registries send blobs to S3 or a
   * CDN). The Authorization header never leaves the origin it was meant for.
   * Every hop is counted; every `RateLimit-Remaining` is recorded.
   */
  private async exchange(call: Call, headers: Headers): Promise<{ res: Response; url: URL }> {
    let url = call.url;
    let hdrs = headers;
    for (let hop = 0; ; hop++) {
      let res: Response;
      try {
        res = await request(url, {
          dispatcher: this.dispatcher,
          method: call.method,
          headers: hdrs,
          signal: call.signal,
          headersTimeout: this.timeoutMs,
          bodyTimeout: this.timeoutMs,
        });
      } catch (e) {
        this.metrics.upstreamRequests.inc({ repository: this.repository, method: call.method, status: 'error' });
        throw e;
      }
      this.metrics.upstreamRequests.inc({ repository: this.repository, method: call.method, status: String(res.statusCode) });
      const remaining = parseRateLimitRemaining(headerValue(res, 'ratelimit-remaining'));
      if (remaining !== undefined) this.metrics.upstreamRateLimitRemaining.set({ repository: this.repository }, remaining);
      const location = headerValue(res, 'location');
      if (!REDIRECT_STATUSES.has(res.statusCode) || !location) return { res, url };
      await discard(res);
      if (hop >= MAX_REDIRECTS) {
        throw new UpstreamUnavailableError(`more than ${MAX_REDIRECTS} redirects from ${call.url.origin}`, res.statusCode);
      }
      let next: URL;
      try {
        next = new URL(location, url);
      } catch {
        throw new UpstreamUnavailableError(`invalid redirect Location: ${location}`, res.statusCode);
      }
      if (next.protocol !== 'http:' && next.protocol !== 'https:') {
        throw new UpstreamUnavailableError(`redirect to a non-http(s) URL: ${next.protocol}`, res.statusCode);
      }
      if (next.origin !== url.origin && 'authorization' in hdrs) {
        const { authorization: _dropped, ...rest } = hdrs;
        hdrs = rest;
      }
      url = next;
    }
  }
}

function withAuthorization(headers: Headers, authorization: string | undefined): Headers {
  return authorization ? { ...headers, authorization } : headers;
}

/** A URL fit for logs: credentials written into it (`https://user:pass@host`) are left out. */
function withoutUserinfo(url: string): string {
  const u = new URL(url);
  u.username = '';
  u.password = '';
  return u.toString();
}
