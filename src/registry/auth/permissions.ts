import { antMatch } from '../../core/ant-pattern.js';
import type { RepositoryClass } from '../../metadata/store.js';
import type { Action, Identity, Resource } from './identity.js';
import type { PermissionTarget } from './permission-target.js';

/**
 * Artifactory's actions are cumulative (selecting "Delete/Overwrite" grants
 * deploy and read too): a grant covers every action ranked at or below it.
 */
const RANK: Record<Action, number> = { read: 0, annotate: 1, write: 2, delete: 3, manage: 4 };

/** What the evaluator needs to know about repositories (their class, for ANY LOCAL / ANY REMOTE). */
export type RepositoryClasses = ReadonlyMap<string, RepositoryClass>;

/**
 * The one permission decision, pure: may `who` do `action` on `resource`, given
 * the permission targets? Admins may do everything; system resources (no
 * repository) are admin-only. Otherwise some target must name the repository,
 * include the path and not exclude it, and grant the user — or, for a
 * group-scoped token, one of those groups only — an action at or above `action`.
 */
export function permits(
  targets: readonly PermissionTarget[],
  classes: RepositoryClasses,
  who: Identity,
  action: Action,
  resource: Resource,
): boolean {
  if (who.admin) return true;
  if (!resource.repoKey) return false;
  const rclass = classes.get(resource.repoKey);
  const path = resource.image === undefined ? undefined : resource.leaf ? `${resource.image}/${resource.leaf}` : resource.image;
  const partial = resource.partial ?? resource.leaf === undefined;
  const groups = who.restrictToGroups ? who.groups.filter((g) => who.restrictToGroups!.includes(g)) : who.groups;
  for (const t of targets) {
    if (!coversRepository(t.repo.repositories, resource.repoKey, rclass)) continue;
    if (path !== undefined && !coversPath(t, path, partial)) continue;
    if (!who.restrictToGroups && grants(t.repo.actions.users[who.name], action)) return true;
    for (const g of groups) if (grants(t.repo.actions.groups[g], action)) return true;
  }
  return false;
}

function coversRepository(repositories: readonly string[], key: string, rclass: RepositoryClass | undefined): boolean {
  for (const r of repositories) {
    if (r === key || r === 'ANY') return true;
    if (r === 'ANY LOCAL' && rclass === 'local') return true;
    if (r === 'ANY REMOTE' && rclass === 'remote') return true;
  }
  return false;
}

function coversPath(t: PermissionTarget, path: string, partial: boolean): boolean {
  const include = t.repo.include_patterns.filter((p) => p !== '');
  const exclude = t.repo.exclude_patterns.filter((p) => p !== '');
  if (!include.some((p) => antMatch(p, path, { partial }))) return false;
  // An exclusion hides a path only when it matches it fully, even when listing.
  return !exclude.some((p) => antMatch(p, path));
}

function grants(actions: readonly Action[] | undefined, action: Action): boolean {
  return actions !== undefined && actions.some((a) => RANK[a] >= RANK[action]);
}
