import { describe, expect, it } from '@jest/globals';
import { parseChallenge, parseChallenges } from '../../src/registry/repos/upstream-auth.js';

describe('parseChallenge', () => {
  it("reads Docker Hub's Bearer challenge", () => {
    expect(
      parseChallenge('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull"'),
    ).toEqual({
      scheme: 'bearer',
      params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/nginx:pull' },
    });
  });

  it("reads ghcr.io's, with a scope holding a comma inside the quotes", () => {
    expect(parseChallenge('Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:octo/app:pull,push"')).toEqual({
      scheme: 'bearer',
      params: { realm: 'https://ghcr.io/token', service: 'ghcr.io', scope: 'repository:octo/app:pull,push' },
    });
  });

  it("reads quay.io's (no scope) and an error parameter", () => {
    expect(parseChallenge('Bearer realm="https://quay.io/v2/auth",service="quay.io"')).toEqual({
      scheme: 'bearer',
      params: { realm: 'https://quay.io/v2/auth', service: 'quay.io' },
    });
    const header = 'Bearer realm="https://quay.io/v2/auth",service="quay.io",scope="repository:coreos/etcd:pull",error="insufficient_scope"';
    expect(parseChallenge(header)?.params).toEqual({ realm: 'https://quay.io/v2/auth', service: 'quay.io', scope: 'repository:coreos/etcd:pull', error: 'insufficient_scope' });
  });

  it("reads distribution's htpasswd Basic challenge and is case-insensitive on scheme and names", () => {
    expect(parseChallenge('Basic realm="drydock-test"')).toEqual({ scheme: 'basic', params: { realm: 'drydock-test' } });
    expect(parseChallenge('BASIC Realm="Registry Realm", Charset="UTF-8"')).toEqual({
      scheme: 'basic',
      params: { realm: 'Registry Realm', charset: 'UTF-8' },
    });
  });

  it('accepts whitespace around "=" and ",", unquoted values, and escaped quotes', () => {
    expect(parseChallenge('Bearer  realm = "https://r.example/token" ,  service=registry.example , scope="a\\"b"')).toEqual({
      scheme: 'bearer',
      params: { realm: 'https://r.example/token', service: 'registry.example', scope: 'a"b' },
    });
    expect(parseChallenge('Bearer realm=https://r.example/token,service=svc')?.params).toEqual({
      realm: 'https://r.example/token',
      service: 'svc',
    });
  });

  it('splits several challenges in one header, and across headers', () => {
    expect(parseChallenges('Basic realm="a, b", Bearer realm="https://t/token",service="s"')).toEqual([
      { scheme: 'basic', params: { realm: 'a, b' } },
      { scheme: 'bearer', params: { realm: 'https://t/token', service: 's' } },
    ]);
    expect(parseChallenges(['Negotiate', 'Bearer realm="x"']).map((c) => c.scheme)).toEqual(['negotiate', 'bearer']);
  });

  it('reads a token68 challenge without taking it for parameters', () => {
    expect(parseChallenges('Negotiate YIIB+w==, Basic realm="r"')).toEqual([
      { scheme: 'negotiate', params: {}, token68: 'YIIB+w==' },
      { scheme: 'basic', params: { realm: 'r' } },
    ]);
  });

  it('survives garbage without throwing or looping', () => {
    expect(parseChallenges(undefined)).toEqual([]);
    expect(parseChallenges('')).toEqual([]);
    expect(parseChallenges('   ,  , ')).toEqual([]);
    expect(parseChallenge('"""')).toBeUndefined();
    expect(parseChallenge('Bearer realm="unterminated')).toEqual({ scheme: 'bearer', params: { realm: 'unterminated' } });
    expect(parseChallenges('=== Bearer realm="x"')).toEqual([{ scheme: 'bearer', params: { realm: 'x' } }]);
    for (const junk of ['Bearer ,,,realm', 'Bearer realm=', '=,=,=', '\u0000\u0001', 'a=b=c', 'Bearer realm="x" trailing junk "']) {
      expect(() => parseChallenges(junk)).not.toThrow();
    }
    expect(parseChallenge('Bearer realm=')).toEqual({ scheme: 'bearer', params: {}, token68: 'realm=' });
  });
});

describe('parseChallenges on arbitrary input', () => {
  it('never throws, and every challenge it returns has a lower-case token scheme', async () => {
    const fc = (await import('fast-check')).default;
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom('B', 'e', 'a', 'r', '=', '"', ',', ' ', '\\', 'x', '\t', '/') }), (s) => {
        for (const c of parseChallenges(s)) expect(c.scheme).toMatch(/^[!#$%&'*+\-.^_`|~0-9a-z]+$/);
      }),
      { numRuns: 2000 },
    );
  });
});
