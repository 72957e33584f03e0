import { describe, expect, it } from '@jest/globals';
import { UpstreamAuth, TransientTokenError, type TokenFetcher } from '../../src/registry/repos/upstream-auth.js';
import { parseRateLimitRemaining, parseRetryAfter } from '../../src/registry/repos/upstream-http.js';
import { UpstreamDeniedError } from '../../src/registry/repos/upstream.js';

const BEARER = 'Bearer realm="https://auth.example/token",service="registry.example",scope="repository:x:pull"';
const BASIC = 'Basic realm="r"';
const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;

interface SetupOptions {
  username?: string;
  password?: string;
  enableTokenAuthentication?: boolean;
  /** The token endpoint's answer to its n-th request (1-based); a 300 s token `t<n>` by default. */
  answer?: (n: number) => { status: number; body: string };
}

function setup(opts: SetupOptions = {}) {
  let now = 1_000_000;
  const calls: Array<{ url: URL; headers: Record<string, string> }> = [];
  const fetchToken: TokenFetcher = async (url, headers) => {
    calls.push({ url, headers });
    const a = opts.answer?.(calls.length) ?? { status: 200, body: JSON.stringify({ token: `t${calls.length}`, expires_in: 300 }) };
    return { status: a.status, headers: {}, body: a.body };
  };
  const auth = new UpstreamAuth({
    upstreamOrigin: 'https://registry.example',
    username: opts.username,
    password: opts.password,
    enableTokenAuthentication: opts.enableTokenAuthentication ?? true,
    fetchToken,
    now: () => now,
  });
  return { auth, calls, advance: (ms: number) => (now += ms) };
}

describe('UpstreamAuth', () => {
  it('sends nothing before the first challenge, then fetches a token for our pull scope with the credentials', async () => {
    const { auth, calls } = setup({ username: 'u', password: 'p' });
    const sent = await auth.prepare('repository:library/nginx:pull');
    expect(sent).toEqual({ fresh: false });
    expect(await auth.challenged(BEARER, 'repository:library/nginx:pull', sent)).toBe('Bearer t1');
    expect(calls).toHaveLength(1);
    expect(calls[0]!.url.origin + calls[0]!.url.pathname).toBe('https://auth.example/token');
    expect(calls[0]!.url.searchParams.get('service')).toBe('registry.example');
    // Our own scope, not the challenge's: we only ever pull.
    expect(calls[0]!.url.searchParams.get('scope')).toBe('repository:library/nginx:pull');
    expect(calls[0]!.headers.authorization).toBe(basic('u', 'p'));
  });

  it('reuses the token for the scope until shortly before expiry, and fetches ahead for a new scope', async () => {
    const { auth, calls, advance } = setup();
    await auth.challenged(BEARER, 'repository:a:pull', { fresh: false });
    expect(calls[0]!.headers.authorization).toBeUndefined();
    expect(await auth.prepare('repository:a:pull')).toEqual({ header: 'Bearer t1', fresh: false });
    advance(269_000);
    expect(await auth.prepare('repository:a:pull')).toEqual({ header: 'Bearer t1', fresh: false });
    advance(1_000);
    // 300 s token: dropped 30 s early.
    expect(await auth.prepare('repository:a:pull')).toEqual({ header: 'Bearer t2', fresh: true });
    expect(await auth.prepare('repository:b:pull')).toEqual({ header: 'Bearer t3', fresh: true });
    expect(calls.map((c) => c.url.searchParams.get('scope'))).toEqual(['repository:a:pull', 'repository:a:pull', 'repository:b:pull']);
  });

  it('defaults expires_in to 60 s and reads access_token', async () => {
    const { auth, advance } = setup({ answer: () => ({ status: 200, body: JSON.stringify({ access_token: 'at' }) }) });
    expect(await auth.challenged(BEARER, 's', { fresh: false })).toBe('Bearer at');
    advance(47_000);
    expect((await auth.prepare('s')).fresh).toBe(false);
    advance(2_000);
    expect((await auth.prepare('s')).fresh).toBe(true);
  });

  it('shares one token request between concurrent callers', async () => {
    const { auth, calls } = setup();
    await auth.challenged(BEARER, 'repository:a:pull', { fresh: false });
    const all = await Promise.all([auth.prepare('repository:z:pull'), auth.prepare('repository:z:pull'), auth.prepare('repository:z:pull')]);
    expect(new Set(all.map((a) => a.header))).toEqual(new Set(['Bearer t2']));
    expect(calls).toHaveLength(2);
  });

  it('refetches once when a cached token is refused, but denies a 401 on a token it just got', async () => {
    const { auth, calls } = setup();
    await auth.challenged(BEARER, 's', { fresh: false });
    expect(await auth.challenged(BEARER, 's', { header: 'Bearer t1', fresh: false })).toBe('Bearer t2');
    await expect(auth.challenged(BEARER, 's', { header: 'Bearer t2', fresh: true })).rejects.toBeInstanceOf(UpstreamDeniedError);
    expect(calls).toHaveLength(2);
  });

  it('answers a Basic challenge with the credentials once, then sends them up front', async () => {
    const { auth } = setup({ username: 'u', password: 'p' });
    expect(await auth.challenged(BASIC, 's', { fresh: false })).toBe(basic('u', 'p'));
    expect(await auth.prepare('other')).toEqual({ header: basic('u', 'p'), fresh: false });
    await expect(auth.challenged(BASIC, 's', { header: basic('u', 'p'), fresh: false })).rejects.toThrow('refused the credentials');
  });

  it('denies what it cannot answer', async () => {
    await expect(setup().auth.challenged(BASIC, 's', { fresh: false })).rejects.toThrow('requires credentials');
    await expect(setup({ enableTokenAuthentication: false }).auth.challenged(BEARER, 's', { fresh: false })).rejects.toThrow(
      'enableTokenAuthentication is off',
    );
    await expect(setup().auth.challenged(undefined, 's', { fresh: false })).rejects.toBeInstanceOf(UpstreamDeniedError);
  });

  it('with token auth off, tries Basic on a Bearer challenge (drydock and others accept it on /v2/)', async () => {
    const { auth, calls } = setup({ username: 'u', password: 'p', enableTokenAuthentication: false });
    expect(await auth.challenged(BEARER, 's', { fresh: false })).toBe(basic('u', 'p'));
    expect(calls).toHaveLength(0);
  });

  it('maps token endpoint answers: 401 denied, 503 transient, no token unavailable', async () => {
    const denied = setup({ answer: () => ({ status: 401, body: '' }) });
    await expect(denied.auth.challenged(BEARER, 's', { fresh: false })).rejects.toBeInstanceOf(UpstreamDeniedError);
    const busy = setup({ answer: () => ({ status: 503, body: '' }) });
    await expect(busy.auth.challenged(BEARER, 's', { fresh: false })).rejects.toBeInstanceOf(TransientTokenError);
    const empty = setup({ answer: () => ({ status: 200, body: '{}' }) });
    await expect(empty.auth.challenged(BEARER, 's', { fresh: false })).rejects.toThrow('no token');
    const junk = setup({ answer: () => ({ status: 200, body: '<html>' }) });
    await expect(junk.auth.challenged(BEARER, 's', { fresh: false })).rejects.toThrow('invalid JSON');
  });

  it('never sends credentials in clear to a realm on another origin', async () => {
    const { auth, calls } = setup({ username: 'u', password: 'p' });
    await auth.challenged('Bearer realm="http://elsewhere.example/token"', 's', { fresh: false });
    expect(calls[0]!.headers.authorization).toBeUndefined();
    expect(calls[0]!.url.searchParams.has('service')).toBe(false);
  });
});

describe('header helpers', () => {
  it('parseRetryAfter reads seconds and HTTP dates', () => {
    expect(parseRetryAfter('1', 0)).toBe(1000);
    expect(parseRetryAfter(['7', '9'], 0)).toBe(7000);
    const now = Date.parse('2025-01-01T00:00:00Z');
    expect(parseRetryAfter('Wed, 01 Jan 2025 00:00:03 GMT', now)).toBe(3000);
    expect(parseRetryAfter('Tue, 31 Dec 2024 23:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
  });

  it("parseRateLimitRemaining reads Docker Hub's header", () => {
    expect(parseRateLimitRemaining('76;w=21600')).toBe(76);
    expect(parseRateLimitRemaining(' 0')).toBe(0);
    expect(parseRateLimitRemaining('none')).toBeUndefined();
    expect(parseRateLimitRemaining(undefined)).toBeUndefined();
  });
});
