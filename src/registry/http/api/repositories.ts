import type { Request, Response } from 'express';
import { RegistryError } from '../../../core/errors.js';
import type { RepositoryConfig } from '../../../core/config/repository.js';
import type { RepositoryClass } from '../../../metadata/store.js';
import type { Services } from '../../services.js';
import { PASSWORD_MASK } from '../../service/repositories.js';
import { httpContext } from '../context.js';
import { baseUrl } from './urls.js';

const CLASSES = new Set(['local', 'remote', 'virtual']);

/** GET /api/repositories[?type=local|remote|virtual]: the repositories the caller may read, Artifactory's list shape. */
export function listRepositories(services: Services) {
  return async (req: Request, res: Response): Promise<void> => {
    const type = typeof req.query.type === 'string' ? req.query.type.toLowerCase() : undefined;
    if (type !== undefined && !CLASSES.has(type)) {
      throw new RegistryError('BAD_REQUEST', `type must be one of local, remote, virtual; got '${type}'`);
    }
    const { identity } = httpContext(res);
    const all = await services.repositories.list(type as RepositoryClass | undefined);
    const base = baseUrl(req, services);
    const visible = [];
    for (const r of all) if (await services.authorizer.can(identity, 'read', { repoKey: r.key })) visible.push(r);
    res.json(
      visible.map((r) => ({
          key: r.key,
          type: r.rclass.toUpperCase(),
          packageType: 'docker',
          ...(r.description ? { description: r.description } : {}),
          url: r.rclass === 'remote' ? r.url : `${base}/artifactory/api/docker/${r.key}`,
        })),
    );
  };
}

/** GET /api/repositories/<key>: the configuration, credentials masked. */
export function getRepository(services: Services) {
  return async (req: Request, res: Response): Promise<void> => {
    res.json(present(await services.repositories.get(param(req))));
  };
}

/** PUT /api/repositories/<key>: create. */
export function createRepository(services: Services) {
  return async (req: Request, res: Response): Promise<void> => {
    const key = param(req);
    await services.repositories.create(key, requireBody(req));
    res.status(200).type('text/plain').send(`Successfully created repository '${key}'`);
  };
}

/** POST /api/repositories/<key>: update (the body's fields replace the stored ones). */
export function updateRepository(services: Services) {
  return async (req: Request, res: Response): Promise<void> => {
    const key = param(req);
    await services.repositories.update(key, requireBody(req));
    res.status(200).type('text/plain').send(`Repository ${key} update successful.`);
  };
}

/** DELETE /api/repositories/<key>: the repository and all its content. */
export function deleteRepository(services: Services) {
  return async (req: Request, res: Response): Promise<void> => {
    const key = param(req);
    await services.repositories.delete(key);
    res.status(200).type('text/plain').send(`Repository ${key} and all its content have been removed successfully.`);
  };
}

function param(req: Request): string {
  return String(req.params.key);
}

function requireBody(req: Request): unknown {
  if (req.body === undefined) throw new RegistryError('BAD_REQUEST', 'a JSON body is required');
  return req.body;
}

/** Never hand credentials back: a set password reads as a mask. */
function present(config: RepositoryConfig): Record<string, unknown> {
  const out: Record<string, unknown> = { ...config };
  if ('password' in out && out.password) out.password = PASSWORD_MASK;
  return out;
}
