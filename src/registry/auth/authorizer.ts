import type { Action, Identity, Resource } from './identity.js';

/**
 * Decides whether an identity may perform an action on a resource. Admins may
 * do everything; with anonymous access on, everybody may read. Permission
 * targets (users, groups, patterns) plug in here without touching the routes.
 */
export class Authorizer {
  constructor(private readonly opts: { anonymousAccess: boolean }) {}

  can(identity: Identity, action: Action, _resource: Resource): boolean {
    if (identity.admin) return true;
    if (action === 'read' && this.opts.anonymousAccess) return true;
    return false;
  }
}
