import { describe, expect, it } from '@jest/globals';
import { parseDigest, digestOf } from '../../src/core/oci/digest.js';
import { isValidImageName, isValidRepoKey, isValidTag } from '../../src/core/oci/reference.js';
import { RegistryError } from '../../src/core/errors.js';

describe('digest grammar', () => {
  it('accepts sha256 and sha512', () => {
    const d = digestOf('');
    expect(parseDigest(d)).toMatchObject({ algorithm: 'sha256', hex: d.slice(7) });
    const d5 = digestOf('abc', 'sha512');
    expect(parseDigest(d5).algorithm).toBe('sha512');
  });
  it.each(['sha256:abc', 'md5:' + 'a'.repeat(32), 'sha256:' + 'A'.repeat(64), 'nope', 'sha512:' + 'a'.repeat(64), ''])(
    'refuses %s with DIGEST_INVALID',
    (v) => {
      expect(() => parseDigest(v)).toThrow(RegistryError);
      try {
        parseDigest(v);
      } catch (e) {
        expect((e as RegistryError).code).toBe('DIGEST_INVALID');
      }
    },
  );
});

describe('name grammar', () => {
  it.each([
    ['library/nginx', true],
    ['a', true],
    ['team/app-x/sub__x', true],
    ['a.b_c-d', true],
    ['a--b', true],
    ['Upper', false],
    ['-lead', false],
    ['trail-', false],
    ['a//b', false],
    ['a/', false],
    ['a___b', false],
    ['', false],
  ])('%s valid=%s', (name, ok) => expect(isValidImageName(name)).toBe(ok));

  it.each([
    ['latest', true],
    ['v1.0_rc-1', true],
    ['_x', true],
    ['.x', false],
    ['-x', false],
    ['a'.repeat(128), true],
    ['a'.repeat(129), false],
  ])('tag %s valid=%s', (tag, ok) => expect(isValidTag(tag)).toBe(ok));

  it.each([
    ['docker-local', true],
    ['a', true],
    ['a.b-c9', true],
    ['has_underscore', false],
    ['Upper', false],
    ['-x', false],
    ['x-', false],
    ['a'.repeat(64), true],
    ['a'.repeat(65), false],
  ])('repo key %s valid=%s', (key, ok) => expect(isValidRepoKey(key)).toBe(ok));
});
