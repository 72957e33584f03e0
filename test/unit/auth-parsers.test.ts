import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { parseAuthorization } from '../../src/registry/auth/authorization-header.js';
import { formatScope, parseScope, parseScopes } from '../../src/registry/auth/scope.js';
import { LoginThrottle } from '../../src/registry/auth/login-throttle.js';
import { RegistryError } from '../../src/core/errors.js';

const basic = (user: string, pass: string) => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;

describe('Authorization header parser', () => {
  it('parses Basic and Bearer', () => {
    expect(parseAuthorization(basic('alice', 'p:a:ss'))).toEqual({ scheme: 'basic', user: 'alice', password: 'p:a:ss' });
    expect(parseAuthorization('bearer abc.def.ghi')).toEqual({ scheme: 'bearer', token: 'abc.def.ghi' });
    expect(parseAuthorization(undefined)).toBeUndefined();
    expect(parseAuthorization('')).toBeUndefined();
  });

  it.each(['Basic', 'Basic !!!', `Basic ${Buffer.from('nocolon').toString('base64')}`, `Basic ${Buffer.from(':nouser').toString('base64')}`, 'Digest x', 'Bearer', 'Bearer a b'])(
    'refuses %s',
    (h) => expect(parseAuthorization(h)).toBe('invalid'),
  );

  it('round-trips any user and password (fuzz)', () => {
    fc.assert(
      fc.property(
        fc.string({ minLength: 1 }).filter((u) => !u.includes(':')),
        fc.string(),
        (user, pass) => {
          // Only well-formed UTF-8 survives base64 unchanged: skip lone surrogates.
          fc.pre(Buffer.from(user, 'utf8').toString('utf8') === user && Buffer.from(pass, 'utf8').toString('utf8') === pass);
          expect(parseAuthorization(basic(user, pass))).toEqual({ scheme: 'basic', user, password: pass });
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('never throws, whatever the header (fuzz)', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.string().map((s) => `Basic ${s}`), fc.string().map((s) => `Bearer ${s}`), fc.base64String().map((s) => `Basic ${s}`)), (h) => {
        const r = parseAuthorization(h);
        expect(r === undefined || r === 'invalid' || typeof r === 'object').toBe(true);
        if (typeof r === 'object' && r.scheme === 'basic') expect(r.user.length).toBeGreaterThan(0);
      }),
      { numRuns: 5000 },
    );
  });
});

describe('Docker token scope parser', () => {
  it('parses repository and registry scopes', () => {
    expect(parseScope('repository:docker-local/team/app:pull,push')).toEqual({ type: 'repository', name: 'docker-local/team/app', actions: ['pull', 'push'] });
    expect(parseScope('registry:catalog:*')).toEqual({ type: 'registry', name: 'catalog', actions: ['*'] });
    expect(parseScope('repository(plugin):a/b:pull')).toEqual({ type: 'repository', name: 'a/b', actions: ['pull'] });
    expect(parseScope('repository:host:5000/a/b:pull')).toEqual({ type: 'repository', name: 'host:5000/a/b', actions: ['pull'] });
  });

  it.each(['', 'repository', 'repository:a', ':a:pull', 'repository::pull', 'repository:a:', 'repository:a:PULL', 'Repo:a:pull'])('refuses %j', (s) =>
    expect(parseScope(s)).toBeUndefined(),
  );

  it('splits space-separated scopes and drops malformed ones', () => {
    expect(parseScopes(['repository:a/b:pull repository:c/d:push', 'junk', 'registry:catalog:*'])).toHaveLength(3);
  });

  it('round-trips well-formed scopes (fuzz)', () => {
    const segment = fc.stringMatching(/^[a-z0-9]+(?:[._-][a-z0-9]+)*$/);
    const scope = fc.record({
      type: fc.constantFrom('repository', 'registry'),
      name: fc.array(segment, { minLength: 1, maxLength: 4 }).map((xs) => xs.join('/')),
      actions: fc.uniqueArray(fc.constantFrom('pull', 'push', 'delete', '*'), { minLength: 1 }),
    });
    fc.assert(fc.property(scope, (s) => expect(parseScope(formatScope(s))).toEqual(s)), { numRuns: 2000 });
  });

  it('never throws and never yields an empty name or action list (fuzz)', () => {
    fc.assert(
      fc.property(fc.array(fc.string(), { maxLength: 5 }), (values) => {
        for (const s of parseScopes(values)) {
          expect(s.name.length).toBeGreaterThan(0);
          expect(s.actions.length).toBeGreaterThan(0);
        }
      }),
      { numRuns: 5000 },
    );
  });
});

describe('login throttle', () => {
  const limits = { perUser: 3, perAddress: 5, windowMs: 60_000 };

  function refused(t: LoginThrottle, user: string, addr: string, now: number): RegistryError | undefined {
    try {
      t.check(user, addr, now);
      return undefined;
    } catch (e) {
      return e as RegistryError;
    }
  }

  it('refuses a user after too many failures, with Retry-After, until the window passes', () => {
    const t = new LoginThrottle(limits);
    for (let i = 0; i < 3; i++) t.fail('alice', '10.0.0.1', 1000 + i);
    const e = refused(t, 'alice', '10.0.0.9', 2000);
    expect(e?.code).toBe('TOOMANYREQUESTS');
    expect(e?.status).toBe(429);
    // The oldest failure (t=1000) leaves the 60 s window at t=61000: 59 s after t=2000.
    expect(Number(e?.headers['Retry-After'])).toBe(59);
    expect(refused(t, 'bob', '10.0.0.9', 2000)).toBeUndefined();
    expect(refused(t, 'alice', '10.0.0.9', 1000 + 60_001)).toBeUndefined();
  });

  it('refuses an address guessing many users', () => {
    const t = new LoginThrottle(limits);
    for (let i = 0; i < 5; i++) t.fail(`user${i}`, '10.0.0.2', 1000);
    expect(refused(t, 'fresh', '10.0.0.2', 1001)?.code).toBe('TOOMANYREQUESTS');
    expect(refused(t, 'fresh', '10.0.0.3', 1001)).toBeUndefined();
  });

  it('a success clears the user but not the address', () => {
    const t = new LoginThrottle(limits);
    for (let i = 0; i < 3; i++) t.fail('carol', '10.0.0.4', 1000);
    t.succeed('carol');
    expect(refused(t, 'carol', '10.0.0.5', 1001)).toBeUndefined();
  });
});
