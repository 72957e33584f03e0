import type { PERMISSION_ACTIONS } from '../../core/config/security.js';
import type { ACTIONS } from './identity.js';

/**
 * The permission target schema lives in core/config/security.ts, because the
 * config file's `permissions:` uses it and core never imports from the registry.
 */
export { ANY_REPOSITORY, permissionTargetSchema, type PermissionTarget } from '../../core/config/security.js';

// The schema's action list and the evaluator's must be the same list; this fails to compile when they drift.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
export const ACTION_LISTS_AGREE: Same<typeof PERMISSION_ACTIONS, typeof ACTIONS> = true;
