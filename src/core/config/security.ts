/**
 * Schemas of users, groups and permission targets: one definition shared by the
 * REST API (`/api/security/...`, `/api/v2/security/permissions/...`) and the
 * config file's `users:`, `groups:` and `permissions:`, so the two cannot drift.
 * It lives in core (not next to the evaluator in registry/auth) because the
 * config schema needs it and core never imports from the registry.
 */
import { z } from 'zod';

/** Artifactory's permission actions, cumulative in this order (registry/auth/identity.ts `ACTIONS` is the same list). */
export const PERMISSION_ACTIONS = ['read', 'annotate', 'write', 'delete', 'manage'] as const;

/** Special repository names of Artifactory permission targets. */
export const ANY_REPOSITORY = ['ANY', 'ANY LOCAL', 'ANY REMOTE'] as const;

/** The user requests without credentials run as; it is built in, never stored. */
export const ANONYMOUS_USER = 'anonymous';

/** The bootstrap admin user, whose password comes from `auth.adminPassword`. */
export const BOOTSTRAP_ADMIN = 'admin';

/** Why a user or group name was refused; the same text wherever a name is validated. */
export const PRINCIPAL_NAME_RULE = "must be 1-64 characters of letters, digits, '.', '_', '-' and '@'";

const PRINCIPAL_NAME_RE = /^[A-Za-z0-9._@-]{1,64}$/;

const principalName = (what: string) =>
  z.string().regex(PRINCIPAL_NAME_RE, {
    error: (iss) => (typeof iss.input === 'string' ? `invalid ${what} name ${JSON.stringify(iss.input)}: ${PRINCIPAL_NAME_RULE}` : undefined),
  });

/** A user name that may be created: the name rule, and not `anonymous`. */
export const userNameSchema = principalName('user').refine((name) => name !== ANONYMOUS_USER, {
  error: `'${ANONYMOUS_USER}' is reserved for requests without credentials`,
});

export const groupNameSchema = principalName('group');

/** `scrypt$N$r$p$salt$hash` as `hashPassword` writes it. */
export const PASSWORD_HASH_RE = /^scrypt\$\d+\$\d+\$\d+\$[A-Za-z0-9_-]+\$[A-Za-z0-9_-]+$/;

const emailSchema = z.email({ error: 'must be an e-mail address' });

const actionList = z.array(z.enum(PERMISSION_ACTIONS, { error: `actions must be among ${PERMISSION_ACTIONS.join(', ')}` }));

/**
 * An Artifactory v2 permission target (`PUT /api/v2/security/permissions/<name>`):
 * which repositories, which paths in them (Ant patterns on `<image>/<tag>`),
 * and which actions users and groups get there. The users and groups named need
 * not exist (as in Artifactory): a grant to a user created later applies to it.
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

/** The password sources of a config-file user; at most one may be given. */
export const PASSWORD_SOURCES = ['password', 'passwordEnv', 'passwordFile', 'passwordHash'] as const;

/**
 * A user in the config file. Fields left out are left as they are on an
 * existing user (and take their defaults on a new one: no e-mail, not admin, no
 * groups). A new user needs exactly one password source; `passwordEnv` and
 * `passwordFile` keep the password itself out of the file.
 */
export const userConfigSchema = z
  .strictObject({
    name: userNameSchema,
    email: emailSchema.optional(),
    admin: z.boolean().optional(),
    /** Exactly these groups (plus those whose `users:` name this user), when given. */
    groups: z.array(groupNameSchema).optional(),
    /** The password in plain text; prefer one of the others. */
    password: z.string().min(1).optional(),
    /** The environment variable holding the password. */
    passwordEnv: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { error: 'must be an environment variable name' })
      .optional(),
    /** A file whose content, trimmed, is the password (a mounted Kubernetes Secret). */
    passwordFile: z.string().min(1).optional(),
    /** A hash from `hashPassword` (`scrypt$…`). */
    passwordHash: z
      .string()
      .regex(PASSWORD_HASH_RE, { error: 'must be an scrypt$N$r$p$salt$hash string as drydock writes it' })
      .optional(),
  })
  .superRefine((user, ctx) => {
    const given = PASSWORD_SOURCES.filter((k) => user[k] !== undefined);
    if (given.length > 1) {
      ctx.addIssue({ code: 'custom', path: [given[1]!], message: `give one password source, not ${given.join(' and ')}` });
    }
  });

export type UserConfig = z.output<typeof userConfigSchema>;

/** A group in the config file; `users`, when given, are exactly its members (plus users whose `groups:` name it). */
export const groupConfigSchema = z.strictObject({
  name: groupNameSchema,
  description: z.string().optional(),
  users: z.array(userNameSchema).optional(),
});

export type GroupConfig = z.output<typeof groupConfigSchema>;

/** Body of `PUT|POST /api/security/users/<name>` (Artifactory's user JSON, the fields drydock keeps). */
export const userBodySchema = z.strictObject({
  name: z.string().optional(),
  email: emailSchema.optional(),
  password: z.string().min(1).max(1024).optional(),
  admin: z.boolean().optional(),
  groups: z.array(groupNameSchema).optional(),
});

/** Body of `PUT|POST /api/security/groups/<name>`. */
export const groupBodySchema = z.strictObject({
  name: z.string().optional(),
  description: z.string().max(1024).optional(),
  users: z.array(z.string().min(1)).optional(),
});

/**
 * Config-file rules across entries: names unique per list, and the bootstrap
 * admin's password set in one place only (both would overwrite each other at
 * every start). Runs on a possibly partially invalid value: skips what failed.
 */
export function checkSecurityConfig(value: unknown, ctx: z.RefinementCtx): void {
  const root = value as { auth?: { adminPassword?: unknown }; users?: unknown; groups?: unknown; permissions?: unknown } | undefined;
  for (const list of ['users', 'groups', 'permissions'] as const) {
    const entries = root?.[list];
    if (!Array.isArray(entries)) continue;
    const seen = new Map<string, number>();
    entries.forEach((entry: unknown, i: number) => {
      const name = (entry as { name?: unknown } | null)?.name;
      if (typeof name !== 'string') return;
      const first = seen.get(name);
      if (first !== undefined) {
        ctx.addIssue({ code: 'custom', input: name, path: [list, i, 'name'], message: `duplicate name "${name}" (also ${list}.${first})` });
      } else seen.set(name, i);
      if (list === 'users' && name === BOOTSTRAP_ADMIN && root?.auth?.adminPassword !== undefined) {
        const source = PASSWORD_SOURCES.find((k) => (entry as Record<string, unknown>)[k] !== undefined);
        if (source) {
          ctx.addIssue({
            code: 'custom',
            path: [list, i, source],
            message: `the ${BOOTSTRAP_ADMIN} user's password is auth.adminPassword (DRYDOCK_ADMIN_PASSWORD); set it in one place only`,
          });
        }
      }
    });
  }
}
