import { describe, expect, it } from '@jest/globals';
import { antMatch } from '../../src/core/ant-pattern.js';
import type { Action, Identity, Resource } from '../../src/registry/auth/identity.js';
import { permissionTargetSchema, type PermissionTarget } from '../../src/registry/auth/permission-target.js';
import { permits } from '../../src/registry/auth/permissions.js';
import type { RepositoryClass } from '../../src/metadata/store.js';

const classes = new Map<string, RepositoryClass>([
  ['team-a', 'local'],
  ['team-b', 'local'],
  ['hub', 'remote'],
  ['all', 'virtual'],
]);

const target = (t: unknown): PermissionTarget => permissionTargetSchema.parse(t);

const TARGETS: PermissionTarget[] = [
  target({ name: 'a-readers', repo: { repositories: ['team-a'], actions: { users: { reader: ['read'] }, groups: { devs: ['read'] } } } }),
  target({ name: 'a-deployers', repo: { repositories: ['team-a'], actions: { users: { deployer: ['write'] } } } }),
  target({ name: 'a-deleters', repo: { repositories: ['team-a'], actions: { users: { deleter: ['delete'] } } } }),
  target({ name: 'a-managers', repo: { repositories: ['team-a'], actions: { users: { manager: ['manage'] } } } }),
  target({ name: 'local-ci', repo: { repositories: ['ANY LOCAL'], actions: { groups: { ci: ['write'] } } } }),
  target({ name: 'remote-cache', repo: { repositories: ['ANY REMOTE'], actions: { users: { cacher: ['write'] } } } }),
  target({ name: 'anything', repo: { repositories: ['ANY'], actions: { users: { auditor: ['read'] } } } }),
  target({
    name: 'b-apps',
    repo: {
      repositories: ['team-b'],
      include_patterns: ['apps/**'],
      exclude_patterns: ['apps/secret/**'],
      actions: { users: { pat: ['read'] } },
    },
  }),
  target({
    name: 'b-releases',
    repo: { repositories: ['team-b'], include_patterns: ['rel/**/v*'], actions: { users: { tagger: ['read'] } } },
  }),
  target({ name: 'anon', repo: { repositories: ['team-b'], actions: { users: { anonymous: ['read'] } } } }),
];

const user = (name: string, groups: string[] = [], extra: Partial<Identity> = {}): Identity => ({ kind: 'user', name, admin: false, groups, ...extra });
const ANON: Identity = { kind: 'anonymous', name: 'anonymous', admin: false, groups: [] };

type Row = [string, Identity, Action, Resource, boolean];
const A = (image = 'app', leaf?: string): Resource => ({ repoKey: 'team-a', image, leaf });
const B = (image: string, leaf?: string): Resource => ({ repoKey: 'team-b', image, leaf });

const TABLE: Row[] = [
  ['admin does anything', user('root', [], { admin: true }), 'manage', {}, true],
  ['system resources are admin-only', user('manager'), 'manage', {}, false],
  ['reader pulls', user('reader'), 'read', A(), true],
  ['reader cannot push', user('reader'), 'write', A(), false],
  ['reader cannot delete', user('reader'), 'delete', A(), false],
  ['reader sees nothing in another repository', user('reader'), 'read', B('apps/x'), false],
  ['group member pulls', user('someone', ['devs']), 'read', A(), true],
  ['group member cannot push', user('someone', ['devs']), 'write', A(), false],
  ['deployer pushes (write includes read)', user('deployer'), 'read', A(), true],
  ['deployer pushes', user('deployer'), 'write', A(), true],
  ['deployer cannot re-point a tag (needs delete)', user('deployer'), 'delete', A('app', '1.0'), false],
  ['deleter deletes and overwrites', user('deleter'), 'delete', A('app', '1.0'), true],
  ['deleter can push (delete includes write)', user('deleter'), 'write', A(), true],
  ['manager has every action', user('manager'), 'delete', A(), true],
  ['ANY LOCAL covers locals', user('bot', ['ci']), 'write', B('anything'), true],
  ['ANY LOCAL does not cover remotes', user('bot', ['ci']), 'write', { repoKey: 'hub', image: 'x' }, false],
  ['ANY REMOTE covers remotes (cache fill is write)', user('cacher'), 'write', { repoKey: 'hub', image: 'library/nginx' }, true],
  ['ANY REMOTE does not cover locals', user('cacher'), 'read', A(), false],
  ['ANY covers virtuals too', user('auditor'), 'read', { repoKey: 'all', image: 'x' }, true],
  ['include pattern admits', user('pat'), 'read', B('apps/web'), true],
  ['outside the include pattern', user('pat'), 'read', B('tools/x'), false],
  ['exclude pattern wins', user('pat'), 'read', B('apps/secret/key'), false],
  ['exclude hides even for listing', user('pat'), 'read', { ...B('apps/secret'), partial: true }, false],
  ['tag pattern admits the matching tag', user('tagger'), 'read', B('rel/app', 'v1.0'), true],
  ['tag pattern refuses another tag', user('tagger'), 'read', B('rel/app', 'latest'), false],
  ['tag pattern makes the image listable', user('tagger'), 'read', B('rel/app'), true],
  ['anonymous gets what targets grant it', ANON, 'read', B('x'), true],
  ['anonymous cannot write', ANON, 'write', B('x'), false],
  ['anonymous elsewhere', ANON, 'read', A(), false],
  ['unknown user has nothing', user('nobody'), 'read', A(), false],
  ['group-scoped token: only the group grants', user('reader', ['devs'], { restrictToGroups: ['devs'] }), 'read', A(), true],
  ['group-scoped token drops the user grant', user('deployer', [], { restrictToGroups: [] }), 'write', A(), false],
  ['group-scoped token never adds a group the user lacks', user('x', [], { restrictToGroups: ['devs'] }), 'read', A(), false],
];

describe('permission evaluator', () => {
  it.each(TABLE)('%s', (_name, who, action, resource, expected) => {
    expect(permits(TARGETS, classes, who, action, resource)).toBe(expected);
  });
});

describe('permission target schema', () => {
  it('fills Artifactory defaults', () => {
    expect(target({ name: 'x', repo: { repositories: ['ANY'] } }).repo).toEqual({
      repositories: ['ANY'],
      include_patterns: ['**'],
      exclude_patterns: [],
      actions: { users: {}, groups: {} },
    });
  });
  it('refuses unknown actions and fields', () => {
    expect(permissionTargetSchema.safeParse({ name: 'x', repo: { repositories: ['a'], actions: { users: { u: ['deploy'] } } } }).success).toBe(false);
    expect(permissionTargetSchema.safeParse({ name: 'x', repo: { repositories: ['a'] }, build: {} }).success).toBe(false);
    expect(permissionTargetSchema.safeParse({ name: 'x', repo: { repositories: [] } }).success).toBe(false);
  });
});

describe('Ant patterns', () => {
  it.each([
    ['**', 'a/b/c', true],
    ['**', '', true],
    ['a/**', 'a', true],
    ['a/**', 'a/b/c', true],
    ['a/*', 'a/b', true],
    ['a/*', 'a/b/c', false],
    ['a/?', 'a/b', true],
    ['a/?', 'a/bc', false],
    ['**/v*', 'x/y/v1', true],
    ['**/v*', 'x/y/w1', false],
    ['a/**/c', 'a/c', true],
    ['a/**/c', 'a/b/b/c', true],
    ['a/**/c', 'a/b/d', false],
    ['*.txt', 'x.txt', true],
    ['a.b', 'axb', false],
    ['**/mcr.microsoft.com/**', 'https://mcr.microsoft.com/v2/x', true],
  ])('%s ~ %s = %s', (pattern, path, expected) => {
    expect(antMatch(pattern, path)).toBe(expected);
  });

  it('partial matching answers whether something under the path may match', () => {
    expect(antMatch('rel/app/v*', 'rel/app', { partial: true })).toBe(true);
    expect(antMatch('rel/app/v*', 'rel/other', { partial: true })).toBe(false);
    expect(antMatch('rel/app/v*', 'rel/app')).toBe(false);
  });
});
