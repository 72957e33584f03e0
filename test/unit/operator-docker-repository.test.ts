import { describe, expect, it } from '@jest/globals';
import {
  accessTargets,
  buildRepositoryConfig,
  reconcileDockerRepository,
  REPOSITORY_FINALIZER,
  type DockerRepositoryResource,
  type RepositoryObservation,
} from '../../src/operator/docker-repository.js';
import { repositorySchema } from '../../src/core/config/repository.js';

const NOW = new Date('2026-11-27T10:00:00Z');

function resource(spec: Record<string, unknown>, meta: Partial<DockerRepositoryResource['metadata']> = {}): DockerRepositoryResource {
  return {
    apiVersion: 'drydock.dev/v1alpha1',
    kind: 'DockerRepository',
    metadata: {
      name: 'team-a',
      namespace: 'team-a',
      uid: 'u-1',
      generation: 1,
      creationTimestamp: '2026-11-27T09:00:00Z',
      finalizers: [REPOSITORY_FINALIZER],
      ...meta,
    },
    spec,
  };
}

function observed(extra: Partial<RepositoryObservation> = {}): RepositoryObservation {
  return { rivals: [], access: [], baseUrl: 'https://registry.example.com', ...extra };
}

const LOCAL = { type: 'local', local: { maxUniqueTags: 20 } };

describe('reconcileDockerRepository', () => {
  it('adds the finalizer before creating the repository, and reports Ready with url and Set Me Up', () => {
    const r = resource(LOCAL, { finalizers: [] });
    const { actions, status } = reconcileDockerRepository(r, observed(), NOW);
    expect(actions.map((a) => a.kind)).toEqual(['addFinalizer', 'createRepository', 'event']);
    const create = actions[1] as Extract<(typeof actions)[number], { kind: 'createRepository' }>;
    expect(create.key).toBe('team-a');
    expect(create.config).toMatchObject({ key: 'team-a', rclass: 'local', maxUniqueTags: 20, platformTags: true });
    expect(status?.url).toBe('registry.example.com/team-a');
    expect(status?.setMeUp).toContain('docker push registry.example.com/team-a/<image>:<tag>');
    expect(status?.observedGeneration).toBe(1);
    expect(status?.conditions?.find((c) => c.type === 'Ready')).toMatchObject({ status: 'True', reason: 'Reconciled', lastTransitionTime: NOW.toISOString() });
    expect(status?.conditions?.find((c) => c.type === 'KeyConflict')?.status).toBe('False');
    expect(status?.conditions?.find((c) => c.type === 'InvalidSpec')?.status).toBe('False');
  });

  it('uses spec.key over the name', () => {
    const { actions } = reconcileDockerRepository(resource({ ...LOCAL, key: 'apps' }), observed(), NOW);
    expect(actions.find((a) => a.kind === 'createRepository')).toMatchObject({ key: 'apps' });
  });

  it('does nothing but refresh the status when the stored repository already matches', () => {
    const built = buildRepositoryConfig(resource(LOCAL), undefined);
    if (!built.ok) throw new Error(built.message);
    // jsonb reorders keys: equality must not depend on order.
    const reordered = Object.fromEntries(Object.entries(built.config).reverse()) as typeof built.config;
    const { actions, status } = reconcileDockerRepository(
      resource(LOCAL),
      observed({ stored: { config: reordered, managedBy: 'team-a/team-a' }, imageCount: 3 }),
      NOW,
    );
    expect(actions).toEqual([]);
    expect(status?.imageCount).toBe(3);
  });

  it('updates a changed repository and keeps lastTransitionTime of unchanged conditions', () => {
    const first = reconcileDockerRepository(resource(LOCAL), observed(), new Date('2026-11-27T09:30:00Z'));
    const built = buildRepositoryConfig(resource(LOCAL), undefined);
    if (!built.ok) throw new Error(built.message);
    const edited = resource({ type: 'local', local: { maxUniqueTags: 5 } }, { generation: 2 });
    edited.status = first.status;
    const { actions, status } = reconcileDockerRepository(edited, observed({ stored: { config: built.config, managedBy: 'team-a/team-a' } }), NOW);
    expect(actions.map((a) => a.kind)).toEqual(['updateRepository', 'event']);
    expect(actions[0]).toMatchObject({ config: { maxUniqueTags: 5 } });
    const ready = status?.conditions?.find((c) => c.type === 'Ready');
    expect(ready?.lastTransitionTime).toBe('2026-11-27T09:30:00.000Z');
    expect(ready?.observedGeneration).toBe(2);
    expect(status?.observedGeneration).toBe(2);
  });

  it('reports InvalidSpec with the field path and writes nothing', () => {
    const { actions, status } = reconcileDockerRepository(resource({ type: 'local', local: { maxUniqueTags: -1 } }), observed(), NOW);
    expect(actions.map((a) => a.kind)).toEqual(['event']);
    const invalid = status?.conditions?.find((c) => c.type === 'InvalidSpec');
    expect(invalid).toMatchObject({ status: 'True', reason: 'InvalidSpec' });
    expect(invalid?.message).toMatch(/spec\.local\.maxUniqueTags/);
    expect(status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('False');
  });

  it('refuses a sub-object for another type, a virtual without members, a bad key', () => {
    expect(buildRepositoryConfig(resource({ type: 'local', remote: { url: 'https://x.example/' } }), undefined)).toMatchObject({ ok: false, message: expect.stringMatching(/spec\.remote: only allowed with type remote/) });
    expect(buildRepositoryConfig(resource({ type: 'virtual' }), undefined)).toMatchObject({ ok: false, message: expect.stringMatching(/spec\.virtual: required/) });
    expect(buildRepositoryConfig(resource({ type: 'local', key: 'bad_key' }), undefined)).toMatchObject({ ok: false, message: expect.stringMatching(/no underscores/) });
    expect(buildRepositoryConfig(resource({ type: 'virtual', virtual: { repositories: ['a'], defaultDeploymentRepo: 'b' } }), undefined)).toMatchObject({ ok: false, message: expect.stringMatching(/defaultDeploymentRepo/) });
  });

  it('maps a remote spec, with credentials from the Secret', () => {
    const spec = {
      type: 'remote',
      remote: { url: 'https://upstream.example/', credentialsSecretRef: { name: 'creds' }, retrievalCachePeriodSecs: 60, externalDependencies: { enabled: true, patterns: ['**/mcr.microsoft.com/**'] } },
    };
    const built = buildRepositoryConfig(resource(spec), { username: 'bot', password: 's3cret' });
    expect(built.ok && built.config).toMatchObject({
      rclass: 'remote',
      url: 'https://upstream.example/',
      username: 'bot',
      password: 's3cret',
      retrievalCachePeriodSecs: 60,
      externalDependenciesEnabled: true,
      externalDependenciesPatterns: ['**/mcr.microsoft.com/**'],
    });
    expect(repositorySchema.safeParse(built.ok && built.config).success).toBe(true);
    const missing = reconcileDockerRepository(resource(spec), observed({ secret: null }), NOW);
    expect(missing.status?.conditions?.find((c) => c.type === 'Ready')).toMatchObject({ status: 'False', reason: 'SecretNotFound' });
    expect(missing.actions.some((a) => a.kind === 'createRepository')).toBe(false);
    const incomplete = reconcileDockerRepository(resource(spec), observed({ secret: { username: 'bot' } }), NOW);
    expect(incomplete.status?.conditions?.find((c) => c.type === 'Ready')).toMatchObject({ reason: 'SecretInvalid' });
  });

  it('a rotated Secret password updates the stored repository', () => {
    const spec = { type: 'remote', remote: { url: 'https://upstream.example/', credentialsSecretRef: { name: 'creds' } } };
    const old = buildRepositoryConfig(resource(spec), { username: 'bot', password: 'one' });
    if (!old.ok) throw new Error(old.message);
    const { actions } = reconcileDockerRepository(resource(spec), observed({ secret: { username: 'bot', password: 'two' }, stored: { config: old.config, managedBy: 'team-a/team-a' } }), NOW);
    expect(actions[0]).toMatchObject({ kind: 'updateRepository', config: { password: 'two' } });
  });

  it('the older of two resources claiming a key wins; the newer gets KeyConflict and no finalizer', () => {
    const newer = resource(LOCAL, { name: 'late', namespace: 'team-b', creationTimestamp: '2026-11-27T09:30:00Z', finalizers: [] });
    newer.spec = { ...LOCAL, key: 'team-a' };
    const { actions, status } = reconcileDockerRepository(newer, observed({ rivals: [{ namespace: 'team-a', name: 'team-a', creationTimestamp: '2026-11-27T09:00:00Z' }] }), NOW);
    expect(actions.map((a) => a.kind)).toEqual(['event']);
    expect(actions[0]).toMatchObject({ type: 'Warning', reason: 'KeyConflict' });
    expect(status?.conditions?.find((c) => c.type === 'KeyConflict')).toMatchObject({ status: 'True', message: expect.stringContaining('team-a/team-a') });
    expect(status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('False');

    const older = resource({ ...LOCAL });
    const win = reconcileDockerRepository(older, observed({ rivals: [{ namespace: 'team-b', name: 'late', creationTimestamp: '2026-11-27T09:30:00Z' }] }), NOW);
    expect(win.actions.map((a) => a.kind)).toContain('createRepository');
  });

  it('a key managed by another live resource is a conflict; by a vanished one, it is taken over', () => {
    const built = buildRepositoryConfig(resource(LOCAL), undefined);
    if (!built.ok) throw new Error(built.message);
    const stored = { config: built.config, managedBy: 'other/thing' };
    const blocked = reconcileDockerRepository(resource(LOCAL), observed({ stored }), NOW);
    expect(blocked.status?.conditions?.find((c) => c.type === 'KeyConflict')?.status).toBe('True');
    const taken = reconcileDockerRepository(resource(LOCAL), observed({ stored, managerExists: false }), NOW);
    expect(taken.actions.map((a) => a.kind)).toEqual(['updateRepository', 'event']);
    expect(taken.actions[1]).toMatchObject({ reason: 'Adopted' });
  });

  it('a key held by a repository of another class is a conflict', () => {
    const remote = repositorySchema.parse({ key: 'team-a', rclass: 'remote', url: 'https://x.example/' });
    const { status, actions } = reconcileDockerRepository(resource(LOCAL), observed({ stored: { config: remote, managedBy: null } }), NOW);
    expect(actions.some((a) => a.kind === 'updateRepository')).toBe(false);
    expect(status?.conditions?.find((c) => c.type === 'KeyConflict')?.message).toMatch(/existing remote repository/);
  });

  it('grants access rules as permission targets and removes stale ones', () => {
    const spec = {
      ...LOCAL,
      access: { anonymousRead: true, rules: [{ groups: ['team-a-ci'], actions: ['read', 'write'], include: ['app/**'] }] },
    };
    const r = resource(spec);
    const targets = accessTargets(r, 'team-a', buildOk(r).spec);
    expect(targets.map((t) => t.name)).toEqual(['k8s.team-a.team-a.anonymous', 'k8s.team-a.team-a.0']);
    expect(targets[1]!.target).toEqual({
      name: 'k8s.team-a.team-a.0',
      repo: { repositories: ['team-a'], include_patterns: ['app/**'], exclude_patterns: [], actions: { users: {}, groups: { 'team-a-ci': ['read', 'write'] } } },
    });
    const { actions } = reconcileDockerRepository(r, observed({ access: [{ name: 'k8s.team-a.team-a.7', target: {} }, targets[1]!] }), NOW);
    expect(actions.filter((a) => a.kind === 'putAccess' || a.kind === 'deleteAccess')).toEqual([
      { kind: 'putAccess', name: 'k8s.team-a.team-a.anonymous', target: targets[0]!.target },
      { kind: 'deleteAccess', name: 'k8s.team-a.team-a.7' },
    ]);
  });

  it('releases the former key when spec.key changes, as Retain would', () => {
    const { actions } = reconcileDockerRepository(resource({ ...LOCAL, key: 'renamed' }), observed({ orphans: ['team-a'] }), NOW);
    expect(actions.map((a) => a.kind)).toEqual(['retainRepository', 'event', 'createRepository', 'event']);
    expect(actions[0]).toEqual({ kind: 'retainRepository', key: 'team-a' });
    expect(actions[1]).toMatchObject({ reason: 'Released' });
  });

  it('on deletion applies Retain (the default) or Delete, then releases the finalizer', () => {
    const built = buildOk(resource(LOCAL));
    const stored = { config: built.config, managedBy: 'team-a/team-a' };
    const access = [{ name: 'k8s.team-a.team-a.0', target: {} }];
    const retain = reconcileDockerRepository(resource(LOCAL, { deletionTimestamp: NOW.toISOString() }), observed({ stored, access }), NOW);
    expect(retain.actions.map((a) => a.kind)).toEqual(['deleteAccess', 'retainRepository', 'event', 'removeFinalizer']);
    expect(retain.status).toBeUndefined();
    const del = reconcileDockerRepository(resource({ ...LOCAL, deletionPolicy: 'Delete' }, { deletionTimestamp: NOW.toISOString() }), observed({ stored }), NOW);
    expect(del.actions.map((a) => a.kind)).toEqual(['deleteRepository', 'event', 'removeFinalizer']);
    // A resource that never held the key leaves the holder's repository alone.
    const loser = reconcileDockerRepository(resource(LOCAL, { deletionTimestamp: NOW.toISOString() }), observed({ stored: { ...stored, managedBy: 'x/y' } }), NOW);
    expect(loser.actions.map((a) => a.kind)).toEqual(['removeFinalizer']);
    const gone = reconcileDockerRepository(resource(LOCAL, { deletionTimestamp: NOW.toISOString(), finalizers: [] }), observed({ stored }), NOW);
    expect(gone.actions).toEqual([]);
  });
});

function buildOk(r: DockerRepositoryResource) {
  const built = buildRepositoryConfig(r, undefined);
  if (!built.ok) throw new Error(built.message);
  return built;
}
