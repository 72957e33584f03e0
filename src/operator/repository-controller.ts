/**
 * DockerRepository controller: gathers what `reconcileDockerRepository` needs
 * (stored repository, rival resources, credentials Secret, access targets),
 * executes the actions it returns, and writes the status. Secrets are watched
 * so that rotated upstream credentials reach the database without an edit of
 * the resource.
 */
import { RegistryError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { MetadataStore } from '../metadata/store.js';
import type { Identity } from '../registry/auth/identity.js';
import type { RepositoryService } from '../registry/service/repositories.js';
import type { SecurityService } from '../registry/service/security.js';
import { setConditions } from './conditions.js';
import {
  accessPrefix,
  keyOf,
  managerOf,
  reconcileDockerRepository,
  REPOSITORY_FINALIZER,
  type DockerRepositoryResource,
  type RepositoryAction,
  type RepositoryObservation,
} from './docker-repository.js';
import type { EventRecorder } from './events.js';
import type { Informer } from './informer.js';
import { isConflict, isNotFound, type KubeClient } from './kube.js';
import { measured, type OperatorMetrics } from './metrics.js';
import type { WorkResult } from './queue.js';
import { DOCKER_REPOSITORIES, objectKey, splitKey, type KubeObject } from './resources.js';
import { sameJson } from './same-json.js';

/** Who the operator acts as in the registry's audit log and permission checks. */
export const OPERATOR_IDENTITY: Identity = { kind: 'user', name: 'system', admin: true, groups: [] };

export interface RepositoryControllerDeps {
  client: KubeClient;
  repositories: DockerRepositoryCache;
  /** Reads a Secret when a reconcile needs its data (the Secret informer only signals changes). */
  readSecret: (namespace: string, name: string) => Promise<KubeObject | undefined>;
  store: MetadataStore;
  repositoryService: RepositoryService;
  security: SecurityService;
  recorder: EventRecorder;
  metrics: OperatorMetrics;
  log: Logger;
  baseUrl: string;
  /** The namespaces watched; undefined for all. */
  namespaces?: readonly string[];
}

export type DockerRepositoryCache = Pick<Informer, 'get' | 'list'>;

/** Keys of the resources to reconcile when the Secret `namespace/name` changes. */
export function resourcesUsingSecret(cache: DockerRepositoryCache, secretKey: string): string[] {
  const { namespace, name } = splitKey(secretKey);
  return cache
    .list()
    .filter((r) => r.metadata.namespace === namespace && (r.spec as { remote?: { credentialsSecretRef?: { name?: string } } } | undefined)?.remote?.credentialsSecretRef?.name === name)
    .map(objectKey);
}

/** Keys of the other resources claiming the same repository key (a winner's change can free a loser). */
export function resourcesSharingKey(cache: DockerRepositoryCache, resource: KubeObject): string[] {
  const key = keyOf(resource);
  return cache
    .list()
    .filter((r) => keyOf(r) === key && objectKey(r) !== objectKey(resource))
    .map(objectKey);
}

function decodeSecret(secret: KubeObject | undefined): Record<string, string> | null {
  if (!secret) return null;
  const data = (secret as { data?: Record<string, string>; stringData?: Record<string, string> }).data ?? {};
  return Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]));
}

export class RepositoryController {
  constructor(private readonly deps: RepositoryControllerDeps) {}

  /** Requeues itself now and then: image counts change with pushes, which raise no Kubernetes event. */
  reconcile(key: string): Promise<WorkResult | void> {
    return measured(this.deps.metrics, 'DockerRepository', () => this.reconcileOnce(key), isConflict);
  }

  private watched(namespace: string): boolean {
    return !this.deps.namespaces?.length || this.deps.namespaces.includes(namespace);
  }

  private async observe(resource: DockerRepositoryResource): Promise<RepositoryObservation> {
    const { store, repositoryService, repositories } = this.deps;
    const repoKey = keyOf(resource);
    const stored = await repositoryService.current(repoKey);
    const rivals = repositories
      .list()
      .filter((r) => objectKey(r) !== objectKey(resource) && !r.metadata.deletionTimestamp && keyOf(r) === repoKey)
      .map((r) => ({ namespace: r.metadata.namespace ?? '', name: r.metadata.name, creationTimestamp: r.metadata.creationTimestamp }));
    let managerExists: boolean | undefined;
    if (stored?.managedBy && stored.managedBy !== managerOf(resource)) {
      const { namespace } = splitKey(stored.managedBy);
      if (namespace !== undefined && this.watched(namespace)) managerExists = repositories.get(stored.managedBy) !== undefined;
    }
    const ref = (resource.spec as { remote?: { credentialsSecretRef?: { name?: string } } } | undefined)?.remote?.credentialsSecretRef?.name;
    const secret = ref ? decodeSecret(await this.deps.readSecret(resource.metadata.namespace ?? '', ref)) : undefined;
    const prefix = accessPrefix(resource);
    const access = (await store.permissions.list()).filter((p) => p.name.startsWith(prefix)).map((p) => ({ name: p.name, target: p.target }));
    const imageCount =
      stored && stored.config.rclass !== 'virtual' && stored.managedBy === managerOf(resource) ? ((await store.manifests.imageCounts([repoKey])).get(repoKey) ?? 0) : undefined;
    // A key is left behind only by an edit of the spec (or found on deletion): the
    // periodic reconciles of an unchanged resource need not scan every repository.
    const specChanged = resource.metadata.generation !== resource.status?.observedGeneration || resource.metadata.deletionTimestamp;
    const orphans = specChanged
      ? (await store.repositories.list()).filter((r) => r.managedBy === managerOf(resource) && r.key !== repoKey).map((r) => r.key)
      : [];
    return { stored, rivals, managerExists, secret, access, imageCount, orphans, baseUrl: this.deps.baseUrl };
  }

  private async reconcileOnce(key: string): Promise<WorkResult | void> {
    const cached = this.deps.repositories.get(key) as DockerRepositoryResource | undefined;
    if (!cached) return;
    let resource = cached;
    const observation = await this.observe(resource);
    const { actions, status } = reconcileDockerRepository(resource, observation, new Date());
    try {
      for (const action of actions) resource = await this.execute(resource, action);
    } catch (e) {
      if (isConflict(e) || !(e instanceof RegistryError)) throw e;
      // The registry refused the configuration (a member that does not exist yet,
      // a port in use): say so on the resource, and try again with backoff.
      const message = e.message;
      await this.deps.recorder.record(resource, 'Warning', 'Rejected', message);
      await this.writeStatus(resource, {
        ...(resource.status ?? {}),
        observedGeneration: resource.metadata.generation,
        conditions: setConditions(
          resource.status?.conditions,
          [
            { type: 'Ready', status: 'False', reason: 'Rejected', message, observedGeneration: resource.metadata.generation },
          ],
          new Date(),
        ),
      });
      throw e;
    }
    if (status && !resource.metadata.deletionTimestamp) await this.writeStatus(resource, status);
    // Image counts change with pushes, which raise no Kubernetes event: look again now and then.
    return status ? { requeueAfterMs: 60_000 } : undefined;
  }

  private async writeStatus(resource: DockerRepositoryResource, status: DockerRepositoryResource['status']): Promise<void> {
    if (sameJson(resource.status ?? {}, status)) return;
    await this.deps.client.replaceStatus(DOCKER_REPOSITORIES, { ...resource, status });
  }

  /** Executes one action; resolves the resource as it now is (its resourceVersion moves with finalizer edits). */
  private async execute(resource: DockerRepositoryResource, action: RepositoryAction): Promise<DockerRepositoryResource> {
    const { client, repositoryService, security, recorder } = this.deps;
    const me = managerOf(resource);
    const actor = { identity: OPERATOR_IDENTITY };
    switch (action.kind) {
      case 'addFinalizer':
        return (await client.replace(DOCKER_REPOSITORIES, {
          ...resource,
          metadata: { ...resource.metadata, finalizers: [...(resource.metadata.finalizers ?? []), REPOSITORY_FINALIZER] },
        })) as DockerRepositoryResource;
      case 'removeFinalizer':
        try {
          return (await client.replace(DOCKER_REPOSITORIES, {
            ...resource,
            metadata: { ...resource.metadata, finalizers: (resource.metadata.finalizers ?? []).filter((f) => f !== REPOSITORY_FINALIZER) },
          })) as DockerRepositoryResource;
        } catch (e) {
          if (isNotFound(e)) return resource;
          throw e;
        }
      case 'createRepository':
        await repositoryService.create(action.key, action.config, { managedBy: me });
        return resource;
      case 'updateRepository':
        await repositoryService.update(action.key, action.config, { managedBy: me, takeOver: true, replace: true });
        return resource;
      case 'retainRepository': {
        const current = await repositoryService.current(action.key);
        if (current) await repositoryService.update(action.key, { ...current.config, blackedOut: true }, { managedBy: me, replace: true, release: true });
        return resource;
      }
      case 'deleteRepository':
        try {
          await repositoryService.delete(action.key, { managedBy: me });
        } catch (e) {
          if (!(e instanceof RegistryError && e.code === 'NOT_FOUND')) throw e;
        }
        return resource;
      case 'putAccess':
        await security.putPermission(actor, action.name, action.target, { managed: true });
        return resource;
      case 'deleteAccess':
        try {
          await security.deletePermission(actor, action.name, { managed: true });
        } catch (e) {
          if (!(e instanceof RegistryError && e.code === 'NOT_FOUND')) throw e;
        }
        return resource;
      case 'event':
        await recorder.record(resource, action.type, action.reason, action.message);
        return resource;
    }
  }
}
