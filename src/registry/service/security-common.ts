import type { z } from 'zod';
import { formatZodIssues } from '../../core/config/repository.js';
import { ANY_REPOSITORY } from '../../core/config/security.js';
import { RegistryError } from '../../core/errors.js';
import type { MetadataStore } from '../../metadata/store.js';
import type { Identity } from '../auth/identity.js';

/** Who makes a change, for the rules (admin or not) and the audit log. */
export interface Actor {
  identity: Identity;
  clientIp?: string | null;
}

export function isObject(body: unknown): body is Record<string, unknown> {
  return typeof body === 'object' && body !== null && !Array.isArray(body);
}

/** Validates a request body; every zod problem is listed by its path. */
export function parseBody<S extends z.ZodType>(schema: S, body: unknown, what: string): z.output<S> {
  if (body === undefined) throw new RegistryError('BAD_REQUEST', 'a JSON body is required');
  if (!isObject(body)) throw new RegistryError('BAD_REQUEST', 'the body must be a JSON object');
  const r = schema.safeParse(body);
  if (!r.success) {
    const problems = formatZodIssues(r.error);
    throw new RegistryError('BAD_REQUEST', `invalid ${what}: ${problems.join('; ')}`, { problems });
  }
  return r.data;
}

/** Repositories named by a permission target must exist, except Artifactory's ANY, ANY LOCAL and ANY REMOTE. */
export async function missingRepositories(store: MetadataStore, repositories: readonly string[]): Promise<string[]> {
  const missing = [];
  for (const r of repositories) {
    if ((ANY_REPOSITORY as readonly string[]).includes(r)) continue;
    if (!(await store.repositories.get(r))) missing.push(r);
  }
  return missing;
}

