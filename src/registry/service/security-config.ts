import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { ConfigError } from '../../core/config/errors.js';
import type { Config } from '../../core/config/index.js';
import { PASSWORD_SOURCES, permissionTargetSchema } from '../../core/config/security.js';
import type { MetadataStore } from '../../metadata/store.js';
import { hashPassword, verifyPassword } from '../auth/passwords.js';
import type { AuditLog } from './audit.js';
import { missingRepositories } from './security-common.js';

export interface ApplyOptions {
  /** Where `passwordEnv` is read; default `process.env`. */
  env?: Record<string, string | undefined>;
  /** Base of relative `passwordFile` paths; default the working directory. */
  cwd?: string;
}

/** What was written, as `user:<name>`, `group:<name>`, `permission:<name>`. */
export interface ApplyResult {
  created: string[];
  updated: string[];
}

type Declared = Pick<Config, 'users' | 'groups' | 'permissions'>;

interface Change {
  action: string;
  target: string;
  fields?: string[];
}

// Named in the start-up error: these problems are found against the database, after the file was validated.
const SOURCE = "the configuration's users, groups and permissions";

/**
 * Makes stored users, groups and permission targets match the config file,
 * idempotently: only what differs is written (a password from the environment
 * or a file is re-hashed only when it no longer verifies), in one transaction,
 * with one audit event (actor `system`) per entity changed. Fields a user or
 * group leaves out stay as they are. A membership declared on either side
 * (a user's `groups:` or a group's `users:`) counts for both, so the two lists
 * never undo each other from one start to the next.
 */
export async function applySecurityConfig(
  deps: { store: MetadataStore; audit: AuditLog },
  declared: Declared,
  opts: ApplyOptions,
): Promise<ApplyResult> {
  const { store } = deps;
  const passwords = await readPasswords(declared, opts);
  await checkReferences(store, declared);

  // Hashed before the transaction: scrypt is slow by design.
  const hashes = new Map<string, string>();
  for (const u of declared.users) {
    const stored = (await store.users.get(u.name))?.passwordHash;
    if (u.passwordHash !== undefined) {
      if (stored !== u.passwordHash) hashes.set(u.name, u.passwordHash);
      continue;
    }
    const password = passwords.get(u.name);
    if (password === undefined || (stored && (await verifyPassword(password, stored)))) continue;
    hashes.set(u.name, await hashPassword(password));
  }

  const memberships = new Map<string, Set<string>>();
  const pair = (user: string, group: string) => memberships.set(user, (memberships.get(user) ?? new Set()).add(group));
  for (const u of declared.users) for (const g of u.groups ?? []) pair(u.name, g);
  for (const g of declared.groups) for (const u of g.users ?? []) pair(u, g.name);

  const changes = await store.transaction(async (tx) => {
    // Pods starting together apply one after the other; the later ones find nothing to do.
    await tx.lock('bootstrap.security');
    const out = new Map<string, Change>();
    const note = (kind: string, name: string, created: boolean, field?: string) => {
      const key = `${kind}:${name}`;
      const change = out.get(key) ?? { action: `${kind}.${created ? 'create' : 'update'}`, target: name, fields: [] };
      if (field) change.fields!.push(field);
      out.set(key, change);
    };

    for (const g of declared.groups) {
      const rec = await tx.groups.get(g.name);
      if (!rec) {
        await tx.groups.upsert({ name: g.name, description: g.description ?? null });
        note('group', g.name, true);
      } else if (g.description !== undefined && g.description !== rec.description) {
        await tx.groups.upsert({ name: g.name, description: g.description });
        note('group', g.name, false, 'description');
      }
    }

    for (const u of declared.users) {
      const rec = await tx.users.get(u.name);
      const hash = hashes.get(u.name);
      if (!rec) {
        if (hash === undefined) throw new ConfigError(SOURCE, [`users: '${u.name}' has no password source`]);
        await tx.users.upsert({ name: u.name, passwordHash: hash, email: u.email ?? null, admin: u.admin ?? false });
        note('user', u.name, true);
      } else {
        const fields = [
          ...(u.email !== undefined && u.email !== rec.email ? ['email'] : []),
          ...(u.admin !== undefined && u.admin !== rec.admin ? ['admin'] : []),
          ...(hash !== undefined ? ['password'] : []),
        ];
        if (fields.length) {
          await tx.users.upsert({ name: u.name, passwordHash: hash ?? rec.passwordHash, email: u.email ?? rec.email, admin: u.admin ?? rec.admin });
          for (const f of fields) note('user', u.name, false, f);
        }
      }
      if (u.groups !== undefined) {
        const wanted = [...(memberships.get(u.name) ?? [])];
        if (!sameSet(await tx.groups.ofUser(u.name), wanted)) {
          await tx.groups.setUserGroups(u.name, wanted);
          if (rec) note('user', u.name, false, 'groups');
        }
      }
    }

    for (const g of declared.groups) {
      if (g.users === undefined) continue;
      const wanted = [...memberships].filter(([, groups]) => groups.has(g.name)).map(([user]) => user);
      if (!sameSet(await tx.groups.members(g.name), wanted)) {
        await tx.groups.setMembers(g.name, wanted);
        if (!out.get(`group:${g.name}`)?.action.endsWith('.create')) note('group', g.name, false, 'users');
      }
    }

    for (const p of declared.permissions) {
      const rec = await tx.permissions.get(p.name);
      const stored = rec && permissionTargetSchema.safeParse(rec.target);
      if (stored?.success && canonical(stored.data) === canonical(p)) continue;
      await tx.permissions.upsert(p.name, structuredClone(p) as Record<string, unknown>);
      note('permission', p.name, !rec);
    }
    return [...out.values()];
  });

  // After the commit, so nothing rolled back is ever recorded.
  for (const c of changes) {
    await deps.audit.record({
      actor: 'system',
      action: c.action,
      target: c.target,
      outcome: 'success',
      details: { source: 'config', ...(c.fields?.length ? { fields: c.fields } : {}) },
    });
  }
  const kindOf = (c: Change) => `${c.action.split('.')[0]}:${c.target}`;
  return {
    created: changes.filter((c) => c.action.endsWith('.create')).map(kindOf),
    updated: changes.filter((c) => c.action.endsWith('.update')).map(kindOf),
  };
}

/** Each user's password from its source; a missing variable or unreadable file is a start-up error naming both. */
async function readPasswords(declared: Declared, opts: ApplyOptions): Promise<Map<string, string>> {
  const env = opts.env ?? process.env;
  const problems: string[] = [];
  const out = new Map<string, string>();
  for (const [i, u] of declared.users.entries()) {
    const where = `users.${i} (${u.name})`;
    if (u.password !== undefined) out.set(u.name, u.password);
    else if (u.passwordEnv !== undefined) {
      const value = env[u.passwordEnv];
      if (value === undefined || value === '') problems.push(`${where}: passwordEnv ${u.passwordEnv} is not set`);
      else out.set(u.name, value);
    } else if (u.passwordFile !== undefined) {
      const file = path.resolve(opts.cwd ?? process.cwd(), u.passwordFile);
      try {
        const value = (await readFile(file, 'utf8')).trim();
        if (value === '') problems.push(`${where}: passwordFile ${file} is empty`);
        else out.set(u.name, value);
      } catch (e) {
        problems.push(`${where}: passwordFile ${file} cannot be read (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
      }
    }
  }
  if (problems.length) throw new ConfigError(SOURCE, problems);
  return out;
}

/** New users need a password; named groups, users and repositories must be declared or stored. */
async function checkReferences(store: MetadataStore, declared: Declared): Promise<void> {
  const problems: string[] = [];
  const users = new Set(declared.users.map((u) => u.name));
  const groups = new Set(declared.groups.map((g) => g.name));
  for (const [i, u] of declared.users.entries()) {
    if (!PASSWORD_SOURCES.some((k) => u[k] !== undefined) && !(await store.users.get(u.name))) {
      problems.push(`users.${i} (${u.name}): a new user needs one of ${PASSWORD_SOURCES.join(', ')}`);
    }
    for (const g of u.groups ?? []) {
      if (!groups.has(g) && !(await store.groups.get(g))) problems.push(`users.${i}.groups: group '${g}' is neither declared nor stored`);
    }
  }
  for (const [i, g] of declared.groups.entries()) {
    for (const u of g.users ?? []) {
      if (!users.has(u) && !(await store.users.get(u))) problems.push(`groups.${i}.users: user '${u}' is neither declared nor stored`);
    }
  }
  for (const [i, p] of declared.permissions.entries()) {
    const missing = await missingRepositories(store, p.repo.repositories);
    if (missing.length) problems.push(`permissions.${i}.repo.repositories: these repositories do not exist: ${missing.join(', ')}`);
  }
  if (problems.length) throw new ConfigError(SOURCE, problems);
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  const set = new Set(a);
  return set.size === new Set(b).size && b.every((x) => set.has(x));
}

/** JSON with object keys sorted: jsonb does not keep the order they were written in. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}
