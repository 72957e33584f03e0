/**
 * What the operator does about one `DockerRepository` resource (SPEC §8), decided
 * by a pure function of the resource and what was observed around it: the stored
 * repository, rival resources claiming the same key, the credentials Secret and
 * the access targets it wrote before. The controller gathers the observation,
 * executes the actions in order and writes the status; nothing here does I/O.
 */
import { createHash } from 'node:crypto';
import { formatZodIssues, repositorySchema, type RepositoryConfig } from '../core/config/repository.js';
import { setMeUp } from '../registry/service/setmeup.js';
import { MANAGED_PERMISSION_PREFIX } from '../registry/service/security.js';
import { setConditions, type Condition, type ConditionInput } from './conditions.js';
import { dockerRepositorySpecSchema } from './crd-schema.js';
import type { KubeObject } from './resources.js';
import { sameJson } from './same-json.js';

/** Held while the resource's repository may still need its deletion policy applied. */
export const REPOSITORY_FINALIZER = 'drydock.dev/deletion-policy';

export type DockerRepositorySpec = ReturnType<typeof dockerRepositorySpecSchema.parse>;

export interface DockerRepositoryStatus {
  conditions?: Condition[];
  observedGeneration?: number;
  url?: string;
  imageCount?: number;
  setMeUp?: string;
}

export interface DockerRepositoryResource extends KubeObject {
  status?: DockerRepositoryStatus;
}

/** A resource as seen in the operator's cache, for key conflicts. */
export interface Claimant {
  namespace: string;
  name: string;
  creationTimestamp?: string;
}

export interface RepositoryObservation {
  /** The stored repository under the resource's key (upstream password in clear). */
  stored?: { config: RepositoryConfig; managedBy: string | null };
  /** Other resources, not being deleted, that claim the same key. */
  rivals: Claimant[];
  /**
   * Whether the resource named by `stored.managedBy` still exists: false when its
   * namespace is watched and it is gone, undefined when that cannot be known.
   */
  managerExists?: boolean;
  /** The Secret named by `spec.remote.credentialsSecretRef`: its decoded data, or null when it does not exist. */
  secret?: Record<string, string> | null;
  /** Access targets this resource wrote earlier, by name. */
  access: Array<{ name: string; target: Record<string, unknown> }>;
  /** Keys of other repositories this resource still manages (its `spec.key` changed). */
  orphans?: string[];
  imageCount?: number;
  /** How clients reach drydock (`scheme://host[:port]`). */
  baseUrl: string;
}

export type RepositoryAction =
  | { kind: 'addFinalizer' }
  | { kind: 'removeFinalizer' }
  | { kind: 'createRepository'; key: string; config: RepositoryConfig }
  | { kind: 'updateRepository'; key: string; config: RepositoryConfig }
  /** Deletion with `Retain`: keep the images, black the key out, release it from the resource. */
  | { kind: 'retainRepository'; key: string }
  /** Deletion with `Delete`: the repository and its content. */
  | { kind: 'deleteRepository'; key: string }
  | { kind: 'putAccess'; name: string; target: Record<string, unknown> }
  | { kind: 'deleteAccess'; name: string }
  | { kind: 'event'; type: 'Normal' | 'Warning'; reason: string; message: string };

export interface RepositoryReconcile {
  actions: RepositoryAction[];
  /** The status to write; undefined when the resource is going away. */
  status?: DockerRepositoryStatus;
}

/** `namespace/name`, as `managedBy` records it. */
export function managerOf(resource: KubeObject): string {
  return `${resource.metadata.namespace ?? ''}/${resource.metadata.name}`;
}

/** The repository key a resource claims: `spec.key`, else its name. */
export function keyOf(resource: KubeObject): string {
  const spec = resource.spec as { key?: unknown } | undefined;
  return typeof spec?.key === 'string' && spec.key ? spec.key : resource.metadata.name;
}

/** Older resources win a key; names break ties so every operator replica decides alike. */
export function olderFirst(a: Claimant, b: Claimant): number {
  const ta = a.creationTimestamp ? Date.parse(a.creationTimestamp) : Number.MAX_SAFE_INTEGER;
  const tb = b.creationTimestamp ? Date.parse(b.creationTimestamp) : Number.MAX_SAFE_INTEGER;
  if (ta !== tb) return ta - tb;
  const na = `${a.namespace}/${a.name}`;
  const nb = `${b.namespace}/${b.name}`;
  return na < nb ? -1 : na > nb ? 1 : 0;
}

/** Names of the access targets a resource owns: one per rule, plus one for anonymous reads. */
export function accessPrefix(resource: KubeObject): string {
  const raw = `${MANAGED_PERMISSION_PREFIX}${resource.metadata.namespace ?? ''}.${resource.metadata.name}.`;
  // Permission target names are at most 128 characters; long names get a stable digest instead.
  if (raw.length <= 100) return raw;
  return `${MANAGED_PERMISSION_PREFIX}${createHash('sha256').update(raw).digest('hex').slice(0, 40)}.`;
}

type Built = { ok: true; key: string; spec: DockerRepositorySpec; config: RepositoryConfig } | { ok: false; reason: string; message: string };

/** The repository configuration a resource declares, or why it declares none. */
export function buildRepositoryConfig(resource: KubeObject, secret: Record<string, string> | null | undefined): Built {
  const parsed = dockerRepositorySpecSchema.safeParse(resource.spec ?? {});
  if (!parsed.success) return { ok: false, reason: 'InvalidSpec', message: formatZodIssues(parsed.error, 'spec').join('; ') };
  const spec = parsed.data;
  const key = spec.key ?? resource.metadata.name;
  const misplaced = (['local', 'remote', 'virtual'] as const).filter((t) => t !== spec.type && spec[t] !== undefined);
  if (misplaced.length) {
    return { ok: false, reason: 'InvalidSpec', message: `spec.${misplaced[0]}: only allowed with type ${misplaced[0]} (this resource is ${spec.type})` };
  }
  let body: Record<string, unknown>;
  const common = { key, ...(spec.description !== undefined ? { description: spec.description } : {}) };
  if (spec.type === 'local') {
    body = { ...common, rclass: 'local', ...(spec.local ?? {}) };
  } else if (spec.type === 'remote') {
    if (!spec.remote) return { ok: false, reason: 'InvalidSpec', message: 'spec.remote: required for type remote (at least url)' };
    const { externalDependencies, credentialsSecretRef, ...remote } = spec.remote;
    body = { ...common, rclass: 'remote', ...remote };
    if (externalDependencies?.enabled !== undefined) body.externalDependenciesEnabled = externalDependencies.enabled;
    if (externalDependencies?.patterns !== undefined) body.externalDependenciesPatterns = externalDependencies.patterns;
    if (credentialsSecretRef) {
      if (secret === null || secret === undefined) {
        return { ok: false, reason: 'SecretNotFound', message: `Secret '${credentialsSecretRef.name}' (spec.remote.credentialsSecretRef) does not exist in namespace ${resource.metadata.namespace}` };
      }
      if (!secret.username || !secret.password) {
        return { ok: false, reason: 'SecretInvalid', message: `Secret '${credentialsSecretRef.name}' needs the keys 'username' and 'password'` };
      }
      body.username = secret.username;
      body.password = secret.password;
    }
  } else {
    if (!spec.virtual) return { ok: false, reason: 'InvalidSpec', message: 'spec.virtual: required for type virtual (at least repositories)' };
    body = { ...common, rclass: 'virtual', ...spec.virtual };
  }
  const config = repositorySchema.safeParse(body);
  if (!config.success) {
    // Paths in the repository schema are Artifactory's; say where they are in the resource.
    return { ok: false, reason: 'InvalidSpec', message: formatZodIssues(config.error, `spec.${spec.type}`).join('; ') };
  }
  return { ok: true, key, spec, config: config.data };
}

/** The access targets a spec grants, by name (Artifactory permission target bodies). */
export function accessTargets(resource: KubeObject, key: string, spec: DockerRepositorySpec): Array<{ name: string; target: Record<string, unknown> }> {
  const prefix = accessPrefix(resource);
  const out: Array<{ name: string; target: Record<string, unknown> }> = [];
  const access = spec.access;
  if (access?.anonymousRead) {
    const name = `${prefix}anonymous`;
    out.push({ name, target: { name, repo: { repositories: [key], include_patterns: ['**'], exclude_patterns: [], actions: { users: { anonymous: ['read'] }, groups: {} } } } });
  }
  (access?.rules ?? []).forEach((rule, i) => {
    const name = `${prefix}${i}`;
    const grant = (names: string[] | undefined) => Object.fromEntries((names ?? []).map((n) => [n, [...rule.actions]]));
    out.push({
      name,
      target: {
        name,
        repo: {
          repositories: [key],
          include_patterns: rule.include ?? ['**'],
          exclude_patterns: rule.exclude ?? [],
          actions: { users: grant(rule.users), groups: grant(rule.groups) },
        },
      },
    });
  });
  return out;
}

function hasFinalizer(resource: KubeObject): boolean {
  return (resource.metadata.finalizers ?? []).includes(REPOSITORY_FINALIZER);
}

/**
 * Decides the actions and status for one resource. `now` stamps condition
 * transitions. The status describes the state once the actions succeed; the
 * controller replaces it with the error when one fails.
 */
export function reconcileDockerRepository(resource: DockerRepositoryResource, observed: RepositoryObservation, now: Date): RepositoryReconcile {
  const me = managerOf(resource);
  const key = keyOf(resource);
  const ownsStored = observed.stored?.managedBy === me;
  const generation = resource.metadata.generation;

  // A key given up by an edit of spec.key is released as Retain would: an edit never deletes images.
  const releases: RepositoryAction[] = (observed.orphans ?? []).flatMap((orphan) => [
    { kind: 'retainRepository', key: orphan } as const,
    { kind: 'event', type: 'Normal', reason: 'Released', message: `repository '${orphan}' (the former key) kept with its images and blacked out` } as const,
  ]);

  if (resource.metadata.deletionTimestamp) {
    if (!hasFinalizer(resource)) return { actions: [] };
    const actions: RepositoryAction[] = [...releases, ...observed.access.map((a) => ({ kind: 'deleteAccess', name: a.name }) as const)];
    if (ownsStored) {
      const policy = (resource.spec as { deletionPolicy?: string } | undefined)?.deletionPolicy === 'Delete' ? 'Delete' : 'Retain';
      if (policy === 'Delete') {
        actions.push({ kind: 'deleteRepository', key });
        actions.push({ kind: 'event', type: 'Normal', reason: 'Deleted', message: `repository '${key}' and its images deleted (deletionPolicy Delete)` });
      } else {
        actions.push({ kind: 'retainRepository', key });
        actions.push({ kind: 'event', type: 'Normal', reason: 'Retained', message: `repository '${key}' kept with its images and blacked out (deletionPolicy Retain)` });
      }
    }
    actions.push({ kind: 'removeFinalizer' });
    return { actions };
  }

  const actions: RepositoryAction[] = [];
  if (!hasFinalizer(resource)) actions.push({ kind: 'addFinalizer' });
  actions.push(...releases);
  const status = (conditions: ConditionInput[], extra: Partial<DockerRepositoryStatus> = {}): DockerRepositoryStatus => ({
    ...(resource.status ?? {}),
    ...extra,
    observedGeneration: generation,
    conditions: setConditions(resource.status?.conditions, conditions.map((c) => ({ ...c, observedGeneration: generation })), now),
  });
  const notReady = (reason: string, message: string): ConditionInput => ({ type: 'Ready', status: 'False', reason, message });

  const built = buildRepositoryConfig(resource, observed.secret);
  if (!built.ok) {
    const invalid = built.reason === 'InvalidSpec';
    if (!sameReason(resource, 'Ready', built.reason)) actions.push({ kind: 'event', type: 'Warning', reason: built.reason, message: built.message });
    return {
      actions,
      status: status([
        notReady(built.reason, built.message),
        invalid
          ? { type: 'InvalidSpec', status: 'True', reason: 'InvalidSpec', message: built.message }
          : { type: 'InvalidSpec', status: 'False', reason: 'Valid', message: 'the spec is valid' },
      ]),
    };
  }

  // The older resource keeps a contested key; the newer waits until it is free.
  const winner = [{ namespace: resource.metadata.namespace ?? '', name: resource.metadata.name, creationTimestamp: resource.metadata.creationTimestamp }, ...observed.rivals].sort(olderFirst)[0]!;
  const lostTo = `${winner.namespace}/${winner.name}` !== me ? `${winner.namespace}/${winner.name}` : undefined;
  const stored = observed.stored;
  let conflict: string | undefined;
  if (lostTo) {
    conflict = `key '${key}' is claimed by the older DockerRepository ${lostTo}`;
  } else if (stored && stored.managedBy && stored.managedBy !== me && observed.managerExists !== false && !observed.rivals.some((r) => `${r.namespace}/${r.name}` === stored.managedBy)) {
    conflict = `key '${key}' is managed by the DockerRepository ${stored.managedBy}`;
  } else if (stored && stored.config.rclass !== built.config.rclass) {
    conflict = `key '${key}' is taken by an existing ${stored.config.rclass} repository`;
  }
  const valid: ConditionInput = { type: 'InvalidSpec', status: 'False', reason: 'Valid', message: 'the spec is valid' };
  if (conflict) {
    if (!sameReason(resource, 'KeyConflict', 'KeyConflict')) actions.push({ kind: 'event', type: 'Warning', reason: 'KeyConflict', message: conflict });
    // A resource that never held the key must not release it on deletion: no finalizer needed.
    return {
      actions: actions.filter((a) => a.kind !== 'addFinalizer'),
      status: status([notReady('KeyConflict', conflict), valid, { type: 'KeyConflict', status: 'True', reason: 'KeyConflict', message: conflict }]),
    };
  }

  if (!stored) {
    actions.push({ kind: 'createRepository', key, config: built.config });
    actions.push({ kind: 'event', type: 'Normal', reason: 'Created', message: `${built.config.rclass} repository '${key}' created` });
  } else if (!ownsStored || !sameJson(stored.config, built.config)) {
    actions.push({ kind: 'updateRepository', key, config: built.config });
    const adopted = !ownsStored;
    actions.push({ kind: 'event', type: 'Normal', reason: adopted ? 'Adopted' : 'Updated', message: adopted ? `existing repository '${key}' now managed by this resource` : `repository '${key}' updated` });
  }

  const desired = accessTargets(resource, key, built.spec);
  for (const want of desired) {
    const have = observed.access.find((a) => a.name === want.name);
    if (!have || !sameJson(have.target, want.target)) actions.push({ kind: 'putAccess', name: want.name, target: want.target });
  }
  for (const have of observed.access) {
    if (!desired.some((d) => d.name === have.name)) actions.push({ kind: 'deleteAccess', name: have.name });
  }

  const help = setMeUp(built.config, { baseUrl: observed.baseUrl });
  const setMeUpText =
    built.config.rclass === 'remote'
      ? `${help.docker.login} && ${help.docker.pull.replace('<image>:<tag>', '<upstream-image>:<tag>')}`
      : `${help.docker.login} && ${help.docker.push}`;
  return {
    actions,
    status: status(
      [
        { type: 'Ready', status: 'True', reason: 'Reconciled', message: `${built.config.rclass} repository '${key}' is served at ${help.imagePrefix}` },
        valid,
        { type: 'KeyConflict', status: 'False', reason: 'KeyHeld', message: `this resource holds key '${key}'` },
      ],
      { url: help.imagePrefix, setMeUp: setMeUpText, imageCount: observed.imageCount ?? resource.status?.imageCount ?? 0 },
    ),
  };
}

/** True when the condition already says this: the event was sent when it first did. */
function sameReason(resource: DockerRepositoryResource, type: string, reason: string): boolean {
  const c = resource.status?.conditions?.find((x) => x.type === type);
  return c?.reason === reason && c.observedGeneration === resource.metadata.generation && (type !== 'KeyConflict' || c.status === 'True');
}
