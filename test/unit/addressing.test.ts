import { describe, expect, it } from '@jest/globals';
import { RegistryError } from '../../src/core/errors.js';
import { parseV2Path, resolveName, type V2Address } from '../../src/registry/http/v2/addressing.js';

function errorOf(fn: () => unknown): RegistryError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(RegistryError);
    return e as RegistryError;
  }
  throw new Error('expected a RegistryError');
}

describe('parseV2Path', () => {
  it.each([
    ['/v2', { prefix: '/v2', rest: '' }],
    ['/v2/', { prefix: '/v2', rest: '' }],
    ['/v2/_catalog', { prefix: '/v2', rest: '_catalog' }],
    ['/v2/docker-local/team/app/manifests/1.0', { prefix: '/v2', rest: 'docker-local/team/app/manifests/1.0' }],
    ['/v2/docker-local/app/blobs/uploads/', { prefix: '/v2', rest: 'docker-local/app/blobs/uploads/' }],
  ])('%s (path method)', (path, addr) => {
    expect(parseV2Path(path)).toEqual(addr);
  });

  it.each([
    ['/api/docker/docker-local/v2', { fixedRepoKey: 'docker-local', prefix: '/api/docker/docker-local/v2', rest: '' }],
    ['/api/docker/docker-local/v2/', { fixedRepoKey: 'docker-local', prefix: '/api/docker/docker-local/v2', rest: '' }],
    ['/api/docker/docker-local/v2/_catalog', { fixedRepoKey: 'docker-local', prefix: '/api/docker/docker-local/v2', rest: '_catalog' }],
    [
      '/api/docker/docker-local/v2/team/app/manifests/1.0',
      { fixedRepoKey: 'docker-local', prefix: '/api/docker/docker-local/v2', rest: 'team/app/manifests/1.0' },
    ],
    [
      '/artifactory/api/docker/prod/v2/app/tags/list',
      { fixedRepoKey: 'prod', prefix: '/artifactory/api/docker/prod/v2', rest: 'app/tags/list' },
    ],
    // The key is decoded; the prefix stays as the client sent it (it is echoed in Location headers).
    ['/api/docker/docker%2Dlocal/v2/app', { fixedRepoKey: 'docker-local', prefix: '/api/docker/docker%2Dlocal/v2', rest: 'app' }],
  ])('%s (direct API path)', (path, addr) => {
    expect(parseV2Path(path)).toEqual(addr);
  });

  it('keeps a malformed percent-encoded key as sent (so it is refused as an invalid key, not a crash)', () => {
    expect(parseV2Path('/api/docker/%zz/v2/app/manifests/x')).toEqual({ fixedRepoKey: '%zz', prefix: '/api/docker/%zz/v2', rest: 'app/manifests/x' });
  });

  it.each(['/', '/v2x', '/v3/', '/V2/', '/api/repositories', '/api/docker/docker-local', '/api/docker/docker-local/v3/x', '/api/docker//v2/x', '/x/v2/', '/healthz'])(
    '%s is not a registry API path',
    (path) => {
      expect(parseV2Path(path)).toBeUndefined();
    },
  );
});

describe('resolveName', () => {
  const pathMethod: V2Address = { prefix: '/v2', rest: '' };
  const direct: V2Address = { fixedRepoKey: 'docker-local', prefix: '/api/docker/docker-local/v2', rest: '' };

  it('splits repository key and image on the path method', () => {
    expect(resolveName(pathMethod, 'docker-local/team/app')).toEqual({
      repoKey: 'docker-local',
      image: 'team/app',
      clientName: 'docker-local/team/app',
      namePath: '/v2/docker-local/team/app',
    });
    expect(resolveName(pathMethod, 'k.1/a__b/c-d/e.f')).toMatchObject({ repoKey: 'k.1', image: 'a__b/c-d/e.f' });
  });

  it('takes the whole name as the image under a fixed repository', () => {
    expect(resolveName(direct, 'team/app')).toEqual({
      repoKey: 'docker-local',
      image: 'team/app',
      clientName: 'team/app',
      namePath: '/api/docker/docker-local/v2/team/app',
    });
    // A one-component image needs no key in the path there.
    expect(resolveName(direct, 'nginx')).toMatchObject({ repoKey: 'docker-local', image: 'nginx' });
  });

  it('a name without an image on the path method is NAME_INVALID, suggesting the right form', () => {
    const e = errorOf(() => resolveName(pathMethod, 'nginx'));
    expect(e.code).toBe('NAME_INVALID');
    expect(e.message).toBe("'nginx' names no image: address images as <host>/<repository key>/<image>, e.g. <host>/docker-local/nginx");
    expect(e.detail).toEqual({ name: 'nginx' });
  });

  it.each(['Docker-Local/app', 'docker_local/app', '-local/app', 'local-/app', `${'k'.repeat(65)}/app`, '/app'])(
    'an invalid repository key in %s is NAME_INVALID',
    (name) => {
      const e = errorOf(() => resolveName(pathMethod, name));
      expect(e.code).toBe('NAME_INVALID');
      expect(e.message).toBe(`invalid repository key '${name.slice(0, name.indexOf('/'))}'`);
    },
  );

  it('an invalid fixed repository key is NAME_INVALID', () => {
    const e = errorOf(() => resolveName({ fixedRepoKey: 'Bad_Key', prefix: '/api/docker/Bad_Key/v2', rest: '' }, 'app'));
    expect(e.code).toBe('NAME_INVALID');
  });

  it.each(['docker-local/UPPER', 'docker-local/a//b', 'docker-local/app/', 'docker-local/-app', 'docker-local/a..b', `docker-local/${'a'.repeat(256)}`])(
    'an invalid image name in %s is NAME_INVALID',
    (name) => {
      const e = errorOf(() => resolveName(pathMethod, name));
      expect(e.code).toBe('NAME_INVALID');
      expect(e.message).toBe(`invalid image name: ${name.slice('docker-local/'.length)}`);
    },
  );

  it('a 64-character key and a 255-character image are fine', () => {
    const key = 'k'.repeat(64);
    const image = `${'a'.repeat(127)}/${'b'.repeat(127)}`;
    expect(image.length).toBe(255);
    expect(resolveName(pathMethod, `${key}/${image}`)).toMatchObject({ repoKey: key, image });
  });
});
