import type { z } from 'zod';
import { formatZodIssues } from '../../core/config/repository.js';
import {
  ANONYMOUS_USER,
  groupBodySchema,
  groupNameSchema,
  permissionTargetSchema,
  userBodySchema,
  userNameSchema,
  type PermissionTarget,
} from '../../core/config/security.js';
import type { Config } from '../../core/config/index.js';
import { RegistryError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import type { MetadataStore, UserRecord } from '../../metadata/store.js';
import { hashPassword } from '../auth/passwords.js';
import type { TokenSigner } from '../auth/tokens.js';
import type { AuditLog } from './audit.js';
import { isObject, missingRepositories, parseBody, type Actor } from './security-common.js';
import { applySecurityConfig, type ApplyOptions, type ApplyResult } from './security-config.js';
import { AccessTokenService } from './security-tokens.js';

/** A user as the API shows it: never the password hash. */
export interface UserView {
  name: string;
  email?: string;
  admin: boolean;
  groups: string[];
}

export interface GroupView {
  name: string;
  description?: string;
  /** Members, when asked for. */
  users?: string[];
}

export interface SecurityDeps {
  store: MetadataStore;
  audit: AuditLog;
  signer: TokenSigner;
  log: Logger;
  /** Called after every change, so cached permissions and verified credentials are dropped. */
  onChange?: () => void;
}

// Serializes the changes that could leave the installation without an admin.
const ADMINS_LOCK = 'security.admins';

/**
 * Users, groups and permission targets (Artifactory's security API), access
 * tokens (`tokens`), and the idempotent apply of the config file's `users:`,
 * `groups:` and `permissions:`. Every change is one transaction, then the
 * caches are told and an audit event is written with the actor.
 */
export type { Actor } from './security-common.js';

export class SecurityService {
  readonly tokens: AccessTokenService;

  constructor(private readonly deps: SecurityDeps) {
    this.tokens = new AccessTokenService(deps);
  }

  // ---- users ----

  async listUsers(): Promise<string[]> {
    return (await this.deps.store.users.list()).map((u) => u.name);
  }

  async getUser(name: string): Promise<UserView> {
    const rec = await this.deps.store.users.get(name);
    if (!rec) throw new RegistryError('NOT_FOUND', `user '${name}' does not exist`);
    return userView(rec, await this.deps.store.groups.ofUser(name));
  }

  /** PUT: creates the user (a password is required) or replaces its fields (the password only when given). */
  async putUser(actor: Actor, name: string, body: unknown): Promise<{ user: UserView; created: boolean }> {
    const b = parseBody(userBodySchema, body, 'user');
    checkName(userNameSchema, name, b.name, 'user');
    const hash = b.password === undefined ? undefined : await hashPassword(b.password);
    const groups = unique(b.groups ?? []);
    const { before, user } = await this.deps.store.transaction(async (tx) => {
      await tx.lock(ADMINS_LOCK);
      const existing = await tx.users.get(name);
      if (!existing && hash === undefined) throw new RegistryError('BAD_REQUEST', `password is required to create user '${name}'`);
      await requireGroups(tx, groups);
      const admin = b.admin ?? false;
      if (existing?.admin && !admin) await keepAnAdmin(tx, name);
      const before = existing && userView(existing, await tx.groups.ofUser(name));
      await tx.users.upsert({ name, passwordHash: hash ?? existing?.passwordHash ?? null, email: b.email ?? null, admin });
      await tx.groups.setUserGroups(name, groups);
      return { before, user: userView({ name, email: b.email ?? null, admin }, groups) };
    });
    this.changed();
    if (before) await this.record(actor, 'user.update', name, { fields: changedFields(before, user, hash !== undefined) });
    else await this.record(actor, 'user.create', name, { admin: user.admin, groups: user.groups });
    return { user, created: !before };
  }

  /** POST: changes only the fields the body carries. */
  async updateUser(actor: Actor, name: string, body: unknown): Promise<UserView> {
    const b = parseBody(userBodySchema, body, 'user');
    if (b.name !== undefined && b.name !== name) throw mismatch('name', b.name, name);
    const hash = b.password === undefined ? undefined : await hashPassword(b.password);
    const { before, user } = await this.deps.store.transaction(async (tx) => {
      await tx.lock(ADMINS_LOCK);
      const existing = await tx.users.get(name);
      if (!existing) throw new RegistryError('NOT_FOUND', `user '${name}' does not exist`);
      const before = userView(existing, await tx.groups.ofUser(name));
      const admin = b.admin ?? existing.admin;
      if (existing.admin && !admin) await keepAnAdmin(tx, name);
      const groups = b.groups === undefined ? before.groups : unique(b.groups);
      await requireGroups(tx, groups);
      const email = b.email ?? existing.email;
      await tx.users.upsert({ name, passwordHash: hash ?? existing.passwordHash, email, admin });
      if (b.groups !== undefined) await tx.groups.setUserGroups(name, groups);
      return { before, user: userView({ name, email, admin }, groups) };
    });
    this.changed();
    await this.record(actor, 'user.update', name, { fields: changedFields(before, user, hash !== undefined) });
    return user;
  }

  /** DELETE: the user, its memberships and its access tokens. The last admin and `anonymous` stay. */
  async deleteUser(actor: Actor, name: string): Promise<void> {
    if (name === ANONYMOUS_USER) {
      throw new RegistryError('BAD_REQUEST', `'${ANONYMOUS_USER}' is the built-in user of requests without credentials; it cannot be deleted`);
    }
    await this.deps.store.transaction(async (tx) => {
      await tx.lock(ADMINS_LOCK);
      const existing = await tx.users.get(name);
      if (!existing) throw new RegistryError('NOT_FOUND', `user '${name}' does not exist`);
      if (existing.admin) await keepAnAdmin(tx, name);
      await tx.users.delete(name);
    });
    this.changed();
    await this.record(actor, 'user.delete', name);
  }

  // ---- groups ----

  async listGroups(): Promise<string[]> {
    return (await this.deps.store.groups.list()).map((g) => g.name);
  }

  async getGroup(name: string, includeUsers: boolean): Promise<GroupView> {
    const rec = await this.deps.store.groups.get(name);
    if (!rec) throw new RegistryError('NOT_FOUND', `group '${name}' does not exist`);
    return groupView(rec.name, rec.description, includeUsers ? await this.deps.store.groups.members(name) : undefined);
  }

  /** PUT: creates the group or replaces its description; sets its members when `users` is given. */
  async putGroup(actor: Actor, name: string, body: unknown): Promise<{ group: GroupView; created: boolean }> {
    const b = parseBody(groupBodySchema, body, 'group');
    checkName(groupNameSchema, name, b.name, 'group');
    return this.writeGroup(actor, name, b, 'put');
  }

  /** POST: changes the description and/or the members, whichever the body carries. */
  async updateGroup(actor: Actor, name: string, body: unknown): Promise<GroupView> {
    const b = parseBody(groupBodySchema, body, 'group');
    if (b.name !== undefined && b.name !== name) throw mismatch('name', b.name, name);
    return (await this.writeGroup(actor, name, b, 'post')).group;
  }

  async deleteGroup(actor: Actor, name: string): Promise<void> {
    if (!(await this.deps.store.groups.delete(name))) throw new RegistryError('NOT_FOUND', `group '${name}' does not exist`);
    this.changed();
    await this.record(actor, 'group.delete', name);
  }

  private async writeGroup(
    actor: Actor,
    name: string,
    b: z.output<typeof groupBodySchema>,
    mode: 'put' | 'post',
  ): Promise<{ group: GroupView; created: boolean }> {
    const users = b.users && unique(b.users);
    const { before, group } = await this.deps.store.transaction(async (tx) => {
      const existing = await tx.groups.get(name);
      if (!existing && mode === 'post') throw new RegistryError('NOT_FOUND', `group '${name}' does not exist`);
      if (users) await requireUsers(tx, users);
      const before = existing && groupView(existing.name, existing.description, await tx.groups.members(name));
      // PUT replaces the description (absent clears it); POST keeps it unless given.
      const description = mode === 'put' ? (b.description ?? null) : (b.description ?? existing?.description ?? null);
      await tx.groups.upsert({ name, description });
      if (users) await tx.groups.setMembers(name, users);
      return { before, group: groupView(name, description, users ?? before?.users ?? []) };
    });
    this.changed();
    if (before) {
      const fields = (['description', 'users'] as const).filter((f) => JSON.stringify(before[f]) !== JSON.stringify(group[f]));
      await this.record(actor, 'group.update', name, { fields });
    } else await this.record(actor, 'group.create', name, { users: group.users });
    return { group, created: !before };
  }

  // ---- permission targets ----

  async listPermissions(): Promise<string[]> {
    return (await this.deps.store.permissions.list()).map((p) => p.name);
  }

  async getPermission(name: string): Promise<PermissionTarget | Record<string, unknown>> {
    const rec = await this.deps.store.permissions.get(name);
    if (!rec) throw new RegistryError('NOT_FOUND', `permission target '${name}' does not exist`);
    // Re-read through the schema for a stable field order (jsonb reorders keys).
    const parsed = permissionTargetSchema.safeParse(rec.target);
    return parsed.success ? parsed.data : rec.target;
  }

  /**
   * PUT: creates or replaces a v2 permission target; its repositories must exist.
   * Targets named `k8s.…` are the operator's (a DockerRepository's `spec.access`):
   * only it (`managed`) may write them, as with managed repositories.
   */
  async putPermission(actor: Actor, name: string, body: unknown, opts: { managed?: boolean } = {}): Promise<{ target: PermissionTarget; created: boolean }> {
    assertUnmanaged(name, opts);
    if (!isObject(body)) throw new RegistryError('BAD_REQUEST', 'the body must be a JSON object');
    const target = parseBody(permissionTargetSchema, body.name === undefined ? { ...body, name } : body, 'permission target');
    if (target.name !== name) throw mismatch('name', target.name, name);
    const created = await this.deps.store.transaction(async (tx) => {
      await requireRepositories(tx, target.repo.repositories);
      return tx.permissions.upsert(name, target);
    });
    this.changed();
    await this.record(actor, created ? 'permission.create' : 'permission.update', name, {
      repositories: target.repo.repositories,
      users: Object.keys(target.repo.actions.users),
      groups: Object.keys(target.repo.actions.groups),
    });
    return { target, created };
  }

  async deletePermission(actor: Actor, name: string, opts: { managed?: boolean } = {}): Promise<void> {
    assertUnmanaged(name, opts);
    if (!(await this.deps.store.permissions.delete(name))) {
      throw new RegistryError('NOT_FOUND', `permission target '${name}' does not exist`);
    }
    this.changed();
    await this.record(actor, 'permission.delete', name);
  }

  // ---- the config file ----

  /** Makes the stored users, groups and permission targets match the config file's; only changed things are written. */
  async apply(config: Pick<Config, 'users' | 'groups' | 'permissions'>, opts: ApplyOptions = {}): Promise<ApplyResult> {
    const result = await applySecurityConfig(this.deps, config, opts);
    if (result.created.length || result.updated.length) this.changed();
    return result;
  }

  private changed(): void {
    this.deps.onChange?.();
  }

  private record(actor: Actor, action: string, target: string, details?: Record<string, unknown>): Promise<void> {
    return this.deps.audit.record({
      actor: actor.identity.name,
      action,
      target,
      outcome: 'success',
      clientIp: actor.clientIp ?? null,
      details: details ?? null,
    });
  }
}

function userView(rec: Pick<UserRecord, 'name' | 'email' | 'admin'>, groups: string[]): UserView {
  return { name: rec.name, ...(rec.email ? { email: rec.email } : {}), admin: rec.admin, groups };
}

function groupView(name: string, description: string | null, users: string[] | undefined): GroupView {
  return { name, ...(description ? { description } : {}), ...(users ? { users } : {}) };
}

/** The fields of a user that an update changed (the password whenever one was given: its hash always differs). */
function changedFields(before: UserView, after: UserView, password: boolean): string[] {
  const fields = (['email', 'admin', 'groups'] as const).filter((f) => JSON.stringify(before[f]) !== JSON.stringify(after[f]));
  return password ? [...fields, 'password'] : fields;
}

/** The URL's name must be valid for a new user or group, and the body's (if any) the same. */
function checkName(schema: z.ZodType<string>, name: string, inBody: string | undefined, what: string): void {
  const r = schema.safeParse(name);
  if (!r.success) throw new RegistryError('BAD_REQUEST', `invalid ${what}: ${formatZodIssues(r.error, 'name').join('; ')}`);
  if (inBody !== undefined && inBody !== name) throw mismatch('name', inBody, name);
}

function mismatch(field: string, inBody: string, inUrl: string): RegistryError {
  return new RegistryError('BAD_REQUEST', `${field} '${inBody}' in the body does not match '${inUrl}' in the URL`);
}

function unique(names: readonly string[]): string[] {
  return [...new Set(names)];
}

async function keepAnAdmin(tx: MetadataStore, name: string): Promise<void> {
  const others = (await tx.users.list()).filter((u) => u.admin && u.name !== name);
  if (others.length === 0) {
    throw new RegistryError('CONFLICT', `'${name}' is the last admin user; make another user admin first`);
  }
}

async function requireGroups(tx: MetadataStore, groups: readonly string[]): Promise<void> {
  const missing = [];
  for (const g of groups) if (!(await tx.groups.get(g))) missing.push(g);
  if (missing.length) throw new RegistryError('BAD_REQUEST', `groups: these groups do not exist: ${missing.join(', ')}`);
}

async function requireUsers(tx: MetadataStore, users: readonly string[]): Promise<void> {
  const missing = [];
  for (const u of users) if (!(await tx.users.get(u))) missing.push(u);
  if (missing.length) throw new RegistryError('BAD_REQUEST', `users: these users do not exist: ${missing.join(', ')}`);
}

async function requireRepositories(tx: MetadataStore, repositories: readonly string[]): Promise<void> {
  const missing = await missingRepositories(tx, repositories);
  if (missing.length) {
    throw new RegistryError('BAD_REQUEST', `repo.repositories: these repositories do not exist: ${missing.join(', ')}`);
  }
}

/** Names of the permission targets the operator writes from DockerRepository resources. */
export const MANAGED_PERMISSION_PREFIX = 'k8s.';

function assertUnmanaged(name: string, opts: { managed?: boolean }): void {
  if (name.startsWith(MANAGED_PERMISSION_PREFIX) && !opts.managed) {
    throw new RegistryError(
      'CONFLICT',
      `permission target '${name}' is managed by a DockerRepository resource (spec.access); change it there (names starting with '${MANAGED_PERMISSION_PREFIX}' are reserved)`,
    );
  }
}
