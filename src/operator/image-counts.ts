/**
 * Keeps `status.imageCount` of DockerRepositories current. Pushes and deletes
 * change it without touching the resource, and a full resync is minutes apart,
 * so every few seconds one grouped query compares the counts with the statuses
 * and only the resources whose count moved are reconciled.
 */
import type { Logger } from '../core/log.js';
import type { MetadataStore } from '../metadata/store.js';
import { findCondition, type Condition } from './conditions.js';
import { keyOf } from './docker-repository.js';
import type { Informer } from './informer.js';
import { objectKey, type KubeObject } from './resources.js';

interface CountedStatus {
  imageCount?: number;
  conditions?: Condition[];
}

/**
 * The resources (`namespace/name`) whose `status.imageCount` differs from the
 * stored count of their repository. Only Ready resources of local and remote
 * repositories count: a resource that lost its key or is being deleted shows no
 * count of its own, and a virtual repository holds no images.
 */
export function staleImageCounts(resources: Iterable<KubeObject>, counts: ReadonlyMap<string, number>): string[] {
  const stale: string[] = [];
  for (const r of resources) {
    const status = (r.status ?? {}) as CountedStatus;
    const type = (r.spec as { type?: string } | undefined)?.type;
    if (r.metadata.deletionTimestamp || type === 'virtual' || typeof status.imageCount !== 'number') continue;
    if (findCondition(status.conditions, 'Ready')?.status !== 'True') continue;
    if ((counts.get(keyOf(r)) ?? 0) !== status.imageCount) stale.push(objectKey(r));
  }
  return stale;
}

export class ImageCountRefresher {
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;

  constructor(
    private readonly deps: {
      repositories: Pick<Informer, 'list'>;
      store: MetadataStore;
      /** Queues a resource for reconciliation. */
      reconcile: (key: string) => void;
      log: Logger;
      intervalMs: number;
    },
  ) {}

  start(): void {
    this.timer = setInterval(() => {
      this.running ??= this.refresh().finally(() => (this.running = undefined));
    }, this.deps.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /** One comparison; the reconciles it queues write the new counts. */
  async refresh(): Promise<void> {
    const resources = this.deps.repositories.list();
    if (resources.length === 0) return;
    try {
      const counts = await this.deps.store.manifests.imageCounts([...new Set(resources.map(keyOf))]);
      for (const key of staleImageCounts(resources, counts)) this.deps.reconcile(key);
    } catch (err) {
      this.deps.log.warn({ err }, 'could not compare image counts; trying again at the next interval');
    }
  }
}
