import { z } from 'zod';
import { ACTIONS } from './identity.js';

/** Special repository names of Artifactory permission targets. */
export const ANY_REPOSITORY = ['ANY', 'ANY LOCAL', 'ANY REMOTE'] as const;

const actionList = z.array(z.enum(ACTIONS, { error: `actions must be among ${ACTIONS.join(', ')}` }));

/**
 * An Artifactory v2 permission target (`PUT /api/v2/security/permissions/<name>`):
 * which repositories, which paths in them (Ant patterns on `<image>/<tag>`),
 * and which actions users and groups get there.
 */
export const permissionTargetSchema = z.strictObject({
  name: z.string().min(1).max(128),
  repo: z.strictObject({
    repositories: z.array(z.string().min(1)).min(1, 'name at least one repository, or ANY / ANY LOCAL / ANY REMOTE'),
    include_patterns: z.array(z.string()).default(['**']),
    exclude_patterns: z.array(z.string()).default([]),
    actions: z
      .strictObject({
        users: z.record(z.string().min(1), actionList).default({}),
        groups: z.record(z.string().min(1), actionList).default({}),
      })
      .default({ users: {}, groups: {} }),
  }),
});

export type PermissionTarget = z.output<typeof permissionTargetSchema>;
