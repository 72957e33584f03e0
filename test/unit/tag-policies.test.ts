import { describe, expect, it } from '@jest/globals';
import { localRepositorySchema, repositorySchema } from '../../src/core/config/repository.js';
import { RegistryError } from '../../src/core/errors.js';
import { platformSuffix, platformTagsFor, possibleIndexTags } from '../../src/registry/service/platform-tags.js';
import { assertTagMutable, globToRegExp, immutableRule } from '../../src/registry/service/tag-policy.js';
import { retentionUnits, tagsBeyondLimit } from '../../src/registry/service/tag-retention.js';

const d = (n: number) => `sha256:${String(n).repeat(64).slice(0, 64)}`;

describe('platform tag names', () => {
  it('is <os>-<arch>, with -<variant> when the platform has one', () => {
    expect(platformSuffix({ platform: { os: 'linux', architecture: 'amd64' } })).toBe('linux-amd64');
    expect(platformSuffix({ platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } })).toBe('linux-arm64-v8');
    expect(platformSuffix({ platform: { os: 'linux', architecture: 'arm', variant: 'v7' } })).toBe('linux-arm-v7');
    expect(platformSuffix({ platform: { os: 'windows', architecture: 'amd64', 'os.version': '10.0.17763.1' } })).toBe('windows-amd64');
  });

  it('skips entries without a platform and buildx attestation entries', () => {
    expect(platformSuffix({})).toBeUndefined();
    expect(platformSuffix({ platform: { os: 'unknown', architecture: 'unknown' } })).toBeUndefined();
    expect(
      platformSuffix({
        platform: { os: 'linux', architecture: 'amd64' },
        annotations: { 'vnd.docker.reference.type': 'attestation-manifest', 'vnd.docker.reference.digest': d(1) },
      }),
    ).toBeUndefined();
  });

  it('tags each platform child of an index under the index tag, first entry winning a duplicate platform', () => {
    const children = [
      { digest: d(1), platform: { os: 'linux', architecture: 'amd64' } },
      { digest: d(2), platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
      { digest: d(3), platform: { os: 'unknown', architecture: 'unknown' } },
      { digest: d(4), platform: { os: 'linux', architecture: 'amd64' } },
      { digest: d(5) },
    ];
    expect(platformTagsFor('1.33', children)).toEqual([
      { tag: '1.33-linux-amd64', digest: d(1) },
      { tag: '1.33-linux-arm64-v8', digest: d(2) },
    ]);
  });

  it('skips names outside the tag grammar instead of failing', () => {
    const long = 'x'.repeat(120);
    expect(platformTagsFor(long, [{ digest: d(1), platform: { os: 'linux', architecture: 'amd64' } }])).toEqual([]);
    expect(platformTagsFor('1.0', [{ digest: d(1), platform: { os: 'linux', architecture: 'amd/64' } }])).toEqual([]);
  });

  it('finds the tags that could own another tag as a platform tag', () => {
    expect([...possibleIndexTags(['1.0', '1.0-linux-amd64', '1.0-linux-arm64-v8', 'latest', '2.0-rc'])].sort()).toEqual(['1.0']);
    expect([...possibleIndexTags(['a', 'a-b', 'a-b-c'])].sort()).toEqual(['a', 'a-b']);
  });
});

describe('tag immutability globs', () => {
  const repo = (tagImmutability: string[]) => localRepositorySchema.parse({ key: 'x', rclass: 'local', tagImmutability });

  it('matches the whole tag: * any run of characters, ? exactly one, the rest literal', () => {
    expect(globToRegExp('v*').test('v1.0')).toBe(true);
    expect(globToRegExp('v*').test('v')).toBe(true);
    expect(globToRegExp('v*').test('latest-v1')).toBe(false);
    expect(globToRegExp('1.?').test('1.2')).toBe(true);
    expect(globToRegExp('1.?').test('1.23')).toBe(false);
    expect(globToRegExp('1.?').test('1x2')).toBe(false);
    expect(globToRegExp('release-**').test('release-2024.1')).toBe(true);
    expect(globToRegExp('latest').test('latest')).toBe(true);
    expect(globToRegExp('latest').test('latest2')).toBe(false);
    expect(globToRegExp('a+b(c)').test('a+b(c)')).toBe(true);
    expect(globToRegExp('a+b(c)').test('aab(c)')).toBe(false);
  });

  it('answers the first matching rule, and none for remote or virtual repositories', () => {
    expect(immutableRule(repo(['release-*', 'v*', 'v1*']), 'v1.0')).toBe('v*');
    expect(immutableRule(repo(['release-*']), 'v1.0')).toBeUndefined();
    expect(immutableRule(repo([]), 'v1.0')).toBeUndefined();
    const remote = repositorySchema.parse({ key: 'r', rclass: 'remote', url: 'https://registry-1.docker.io' });
    expect(immutableRule(remote, 'v1.0')).toBeUndefined();
  });

  it('lets a protected tag be created or set to the same digest, and nothing else', () => {
    const cfg = repo(['v*']);
    expect(() => assertTagMutable(cfg, 'v1.0', undefined, d(1))).not.toThrow();
    expect(() => assertTagMutable(cfg, 'v1.0', d(1), d(1))).not.toThrow();
    expect(() => assertTagMutable(cfg, 'latest', d(1), d(2))).not.toThrow();
    expect(() => assertTagMutable(cfg, 'latest', d(1), undefined)).not.toThrow();

    const repoint = capture(() => assertTagMutable(cfg, 'v1.0', d(1), d(2)));
    expect(repoint.code).toBe('TAG_INVALID');
    expect(repoint.status).toBe(400);
    expect(repoint.message).toContain("tag 'v1.0' is immutable in repository 'x' (rule 'v*')");

    const del = capture(() => assertTagMutable(cfg, 'v1.0', d(1), undefined));
    expect(del.code).toBe('DENIED');
    expect(del.status).toBe(403);
    expect(del.message).toContain("tag 'v1.0' is immutable in repository 'x' (rule 'v*')");
  });
});

describe('max unique tags retention', () => {
  it('keeps nothing back when the limit is 0 or not exceeded', () => {
    expect(tagsBeyondLimit({ max: 0, tags: ['a', 'b', 'c'] })).toEqual([]);
    expect(tagsBeyondLimit({ max: 3, tags: ['a', 'b', 'c'] })).toEqual([]);
  });

  it('removes the oldest tags beyond N (tags come most recent first)', () => {
    expect(tagsBeyondLimit({ max: 2, tags: ['c', 'b', 'a'] })).toEqual(['a']);
    expect(tagsBeyondLimit({ max: 1, tags: ['c', 'b', 'a'] })).toEqual(['b', 'a']);
  });

  it('ranks the tags of the push being committed first, whatever their timestamps', () => {
    expect(tagsBeyondLimit({ max: 2, tags: ['c', 'b', 'new'], pushed: ['new'] })).toEqual(['b']);
  });

  it('counts an index tag and its platform tags as one unit, kept or removed together', () => {
    const indexTagOf = new Map([
      ['1.0-linux-amd64', '1.0'],
      ['1.0-linux-arm64-v8', '1.0'],
    ]);
    const tags = ['3.0', '1.0-linux-amd64', '1.0', '1.0-linux-arm64-v8', '0.9'];
    expect(retentionUnits({ tags, indexTagOf })).toEqual([['3.0'], ['1.0-linux-amd64', '1.0', '1.0-linux-arm64-v8'], ['0.9']]);
    expect(tagsBeyondLimit({ max: 2, tags, indexTagOf })).toEqual(['0.9']);
    expect(tagsBeyondLimit({ max: 1, tags, indexTagOf })).toEqual(['1.0-linux-amd64', '1.0', '1.0-linux-arm64-v8', '0.9']);
  });

  it('leaves a platform tag whose index tag is gone as a unit of its own', () => {
    const indexTagOf = new Map([['1.0-linux-amd64', '1.0']]);
    expect(retentionUnits({ tags: ['2.0', '1.0-linux-amd64'], indexTagOf })).toEqual([['2.0'], ['1.0-linux-amd64']]);
  });

  it('never removes a protected tag, nor the rest of its unit, nor lets it free a place', () => {
    const indexTagOf = new Map([['v1-linux-amd64', 'v1']]);
    const tags = ['c', 'b', 'v1-linux-amd64', 'v1', 'a'];
    const isProtected = (t: string) => t === 'v1';
    expect(tagsBeyondLimit({ max: 1, tags, indexTagOf, isProtected })).toEqual(['b', 'a']);
    expect(tagsBeyondLimit({ max: 2, tags, indexTagOf, isProtected })).toEqual(['a']);
  });
});

function capture(fn: () => void): RegistryError {
  try {
    fn();
  } catch (e) {
    if (e instanceof RegistryError) return e;
    throw e;
  }
  throw new Error('expected a RegistryError');
}
