/**
 * Authentication against a remote repository's upstream: parsing its
 * `WWW-Authenticate` challenges, Basic credentials, and the Docker token flow
 * (https://distribution.github.io/distribution/spec/auth/token/) with a
 * per-scope token cache. Used by upstream-client.ts; no HTTP of its own — the
 * client hands in the function that GETs the token realm.
 */
import { UpstreamDeniedError, UpstreamUnavailableError } from './upstream.js';

/** One challenge of a `WWW-Authenticate` header; `scheme` lower-cased, parameter names lower-cased. */
export interface Challenge {
  scheme: string;
  params: Record<string, string>;
  /** The token68 form (`Negotiate abc==`), when the challenge has one instead of parameters. */
  token68?: string;
}

const TCHAR = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/;
const TOKEN68 = /^[A-Za-z0-9\-._~+/]+=*[ \t]*(?:,|$)/;

/**
 * Parses a `WWW-Authenticate` header (RFC 7235 §4.1) into its challenges.
 * Handles several challenges in one header (`Basic realm="a", Bearer realm="b"`),
 * several headers (an array), quoted values containing commas and escaped quotes
 * (Docker scopes such as `repository:x:pull,push`), unquoted values, and
 * whitespace around `=`. Anything it cannot read is skipped, never thrown: the
 * header comes from a server we do not control.
 */
export function parseChallenges(header: string | readonly string[] | undefined): Challenge[] {
  if (header === undefined) return [];
  if (typeof header !== 'string') return header.flatMap((h) => parseChallenges(h));
  const s = header;
  const out: Challenge[] = [];
  let i = 0;

  const skipWs = (): void => {
    while (i < s.length && (s[i] === ' ' || s[i] === '\t')) i++;
  };
  const readToken = (): string => {
    const start = i;
    while (i < s.length && TCHAR.test(s[i]!)) i++;
    return s.slice(start, i);
  };
  // Lenient about unquoted values: `realm=https://x` is not RFC token syntax but is meant literally.
  const readBare = (): string => {
    const start = i;
    while (i < s.length && s[i] !== ',' && s[i] !== ' ' && s[i] !== '\t') i++;
    return s.slice(start, i);
  };
  const readQuoted = (): string => {
    // s[i] is the opening quote; an unterminated string runs to the end.
    i++;
    let v = '';
    while (i < s.length && s[i] !== '"') {
      if (s[i] === '\\' && i + 1 < s.length) i++;
      v += s[i];
      i++;
    }
    i++;
    return v;
  };

  while (i < s.length) {
    while (i < s.length && (s[i] === ',' || s[i] === ' ' || s[i] === '\t')) i++;
    if (i >= s.length) break;
    const scheme = readToken();
    if (!scheme) {
      // Garbage where a scheme should be: skip that word so the loop always advances.
      while (i < s.length && s[i] !== ',' && s[i] !== ' ' && s[i] !== '\t') i++;
      continue;
    }
    const challenge: Challenge = { scheme: scheme.toLowerCase(), params: {} };
    out.push(challenge);
    skipWs();
    const m68 = TOKEN68.exec(s.slice(i));
    if (m68 && !/^[^=]*=[ \t]*(?:"|[^=,\s])/.test(s.slice(i))) {
      challenge.token68 = m68[0].replace(/[ \t,]+$/, '');
      i += challenge.token68.length;
      continue;
    }
    for (;;) {
      const save = i;
      skipWs();
      const name = readToken();
      skipWs();
      if (!name || s[i] !== '=') {
        // Not `name=`: the next challenge's scheme (or junk), read by the outer loop.
        i = save;
        break;
      }
      i++;
      skipWs();
      const value = s[i] === '"' ? readQuoted() : readBare();
      challenge.params[name.toLowerCase()] = value;
      skipWs();
      if (s[i] !== ',') break;
      i++;
    }
  }
  return out;
}

/** The first challenge of the header, or undefined when it has none. */
export function parseChallenge(header: string | readonly string[] | undefined): Challenge | undefined {
  return parseChallenges(header)[0];
}

/** `repository:<name>:pull` — the only access drydock ever asks an upstream for. */
export function pullScope(name: string): string {
  return `repository:${name}:pull`;
}

/** GETs a token realm URL with the given headers; resolves status, headers and the body text. */
export type TokenFetcher = (
  url: URL,
  headers: Record<string, string>,
) => Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }>;

/** A thrown token-endpoint answer the caller may retry (5xx, 429). */
export class TransientTokenError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly retryAfter: string | string[] | undefined,
  ) {
    super(message);
    this.name = 'TransientTokenError';
  }
}

interface CachedToken {
  token: string;
  /** When to stop sending it: shortly before it really expires. */
  staleAt: number;
}

/** Scopes are per image, so the cache is bounded; the oldest entries go first. */
const MAX_CACHED_TOKENS = 1000;

/**
 * What to send with a request and how to answer a 401, for one upstream.
 * Credentials are only sent after the upstream asked for them (the first 401),
 * then proactively: Basic on every request, or the cached Bearer token of the
 * request's scope (fetched ahead of the request once the realm is known, so a
 * new image costs one token request, not a 401 round trip as well).
 */
export class UpstreamAuth {
  private readonly basic?: string;
  private useBasic = false;
  private bearerRealm?: { realm: string; service?: string };
  private readonly tokens = new Map<string, CachedToken>();
  private readonly inflight = new Map<string, Promise<string>>();

  constructor(
    private readonly opts: {
      upstreamOrigin: string;
      username?: string;
      password?: string;
      enableTokenAuthentication: boolean;
      fetchToken: TokenFetcher;
      now: () => number;
    },
  ) {
    if (opts.username !== undefined && opts.password !== undefined) {
      this.basic = `Basic ${Buffer.from(`${opts.username}:${opts.password}`).toString('base64')}`;
    }
  }

  /**
   * The Authorization header to send up front for `scope`, fetching a token
   * when a Bearer realm is already known. `fresh` tells the 401 handler that a
   * new token was just fetched, so a 401 on it is a refusal, not an expiry.
   */
  async prepare(scope: string): Promise<{ header?: string; fresh: boolean }> {
    if (this.useBasic) return { header: this.basic, fresh: false };
    if (!this.bearerRealm) return { fresh: false };
    const cached = this.cachedToken(scope);
    if (cached) return { header: `Bearer ${cached}`, fresh: false };
    return { header: `Bearer ${await this.token(scope)}`, fresh: true };
  }

  /**
   * Answers a 401: the header to retry the request with, once. Throws
   * `UpstreamDeniedError` when there is nothing better to send than what was
   * just refused.
   */
  async challenged(
    challengeHeader: string | string[] | undefined,
    scope: string,
    sent: { header?: string; fresh: boolean },
  ): Promise<string> {
    const challenges = parseChallenges(challengeHeader);
    const bearer = challenges.find((c) => c.scheme === 'bearer' && c.params.realm);
    const basic = challenges.find((c) => c.scheme === 'basic');
    if (bearer && this.opts.enableTokenAuthentication) {
      if (sent.fresh) throw new UpstreamDeniedError('the upstream refused a token it just issued', 401);
      this.bearerRealm = { realm: bearer.params.realm!, service: bearer.params.service };
      // The upstream moved from Basic to tokens: stop sending Basic up front.
      this.useBasic = false;
      this.tokens.delete(scope);
      return `Bearer ${await this.token(scope)}`;
    }
    // Basic also answers a Bearer challenge when token auth is off: drydock and
    // several registries accept Basic credentials on /v2/ directly.
    if ((basic || bearer) && this.basic && sent.header !== this.basic) {
      this.useBasic = true;
      return this.basic;
    }
    if (bearer) throw new UpstreamDeniedError('the upstream wants a Bearer token and enableTokenAuthentication is off', 401);
    if (basic) {
      throw new UpstreamDeniedError(this.basic ? 'the upstream refused the credentials' : 'the upstream requires credentials', 401);
    }
    throw new UpstreamDeniedError('the upstream answered 401 without a challenge drydock can answer', 401);
  }

  private cachedToken(scope: string): string | undefined {
    const hit = this.tokens.get(scope);
    if (!hit) return undefined;
    if (hit.staleAt <= this.opts.now()) {
      this.tokens.delete(scope);
      return undefined;
    }
    return hit.token;
  }

  /**
   * One token request per scope at a time: concurrent pulls of one image share
   * it. It is not tied to any caller's abort signal, for the same reason (one
   * client hanging up must not fail the others); the socket timeout bounds it.
   */
  private token(scope: string): Promise<string> {
    let p = this.inflight.get(scope);
    if (!p) {
      p = this.requestToken(scope).finally(() => this.inflight.delete(scope));
      this.inflight.set(scope, p);
    }
    return p;
  }

  private async requestToken(scope: string): Promise<string> {
    const realm = this.bearerRealm!;
    let url: URL;
    try {
      url = new URL(realm.realm);
    } catch {
      throw new UpstreamUnavailableError(`the upstream's token realm is not a URL: ${realm.realm}`);
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') {
      throw new UpstreamUnavailableError(`the upstream's token realm is not http(s): ${realm.realm}`);
    }
    if (realm.service !== undefined) url.searchParams.set('service', realm.service);
    url.searchParams.set('scope', scope);
    const headers: Record<string, string> = {};
    // Credentials only travel encrypted, or to the upstream's own origin (which
    // already gets them): a challenge must not be able to send them elsewhere in clear.
    if (this.basic && (url.protocol === 'https:' || url.origin === this.opts.upstreamOrigin)) headers.authorization = this.basic;
    const res = await this.opts.fetchToken(url, headers);
    if (res.status === 401 || res.status === 403) {
      throw new UpstreamDeniedError(`the token service refused ${scope} (${res.status})`, res.status);
    }
    if (res.status === 429 || res.status >= 500) {
      throw new TransientTokenError(`token service answered ${res.status}`, res.status, res.headers['retry-after']);
    }
    if (res.status !== 200) throw new UpstreamUnavailableError(`token service answered ${res.status}`, res.status);
    let body: { token?: unknown; access_token?: unknown; expires_in?: unknown };
    try {
      body = JSON.parse(res.body) as typeof body;
    } catch {
      throw new UpstreamUnavailableError('token service answered invalid JSON', res.status);
    }
    const token = typeof body.token === 'string' && body.token ? body.token : body.access_token;
    if (typeof token !== 'string' || !token) throw new UpstreamUnavailableError('token service answered no token', res.status);
    // The token spec's default lifetime is 60 s.
    const lifetimeMs = (typeof body.expires_in === 'number' && body.expires_in > 0 ? body.expires_in : 60) * 1000;
    // Stop using it a little early so a request never arrives with a token that
    // expired on the way; a fifth of its life, at most 30 s.
    const staleAt = this.opts.now() + lifetimeMs - Math.min(30_000, lifetimeMs / 5);
    this.tokens.delete(scope);
    this.tokens.set(scope, { token, staleAt });
    if (this.tokens.size > MAX_CACHED_TOKENS) this.tokens.delete(this.tokens.keys().next().value!);
    return token;
  }
}
