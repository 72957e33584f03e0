import type { Logger } from '../../core/log.js';
import type { MetadataStore, RepositoryClass } from '../../metadata/store.js';
import type { Action, Identity, Resource } from './identity.js';
import { permissionTargetSchema, type PermissionTarget } from './permission-target.js';
import { permits } from './permissions.js';

interface Snapshot {
  targets: PermissionTarget[];
  classes: Map<string, RepositoryClass>;
  loadedAt: number;
}

/**
 * Decides whether an identity may perform an action on a resource, with the
 * permission targets and repository classes held in memory (they are read on
 * every request). `invalidate()` is called on every change made through this
 * process; the TTL bounds staleness for changes made by other processes.
 */
export class Authorizer {
  private snapshot?: Promise<Snapshot>;

  constructor(
    private readonly deps: { store: MetadataStore; anonymousAccess: boolean; cacheTtlMs: number; log: Logger },
  ) {}

  async can(identity: Identity, action: Action, resource: Resource): Promise<boolean> {
    if (identity.kind === 'anonymous' && !this.deps.anonymousAccess) return false;
    if (identity.admin) return true;
    const snap = await this.load();
    return permits(snap.targets, snap.classes, identity, action, resource);
  }

  invalidate(): void {
    this.snapshot = undefined;
  }

  private load(): Promise<Snapshot> {
    const current = this.snapshot;
    if (current) {
      return current.then((s) => (Date.now() - s.loadedAt > this.deps.cacheTtlMs ? this.reload() : s));
    }
    return this.reload();
  }

  private reload(): Promise<Snapshot> {
    const next = (async () => {
      const [rows, repos] = await Promise.all([this.deps.store.permissions.list(), this.deps.store.repositories.list()]);
      const targets: PermissionTarget[] = [];
      for (const row of rows) {
        const parsed = permissionTargetSchema.safeParse(row.target);
        if (parsed.success) targets.push(parsed.data);
        else this.deps.log.error({ target: row.name }, 'stored permission target is invalid; ignoring it');
      }
      return { targets, classes: new Map(repos.map((r) => [r.key, r.rclass])), loadedAt: Date.now() };
    })();
    this.snapshot = next;
    next.catch(() => {
      if (this.snapshot === next) this.snapshot = undefined;
    });
    return next;
  }
}
