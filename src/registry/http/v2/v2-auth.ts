import type { Request } from 'express';
import { RegistryError } from '../../../core/errors.js';
import type { Action, Identity, Resource, TokenAccess } from '../../auth/identity.js';
import { REGISTRY_SERVICE } from '../../auth/tokens.js';
import type { Services } from '../../services.js';
import { baseUrl } from '../api/urls.js';
import { refusal } from '../middleware/auth.js';

/** Docker token actions for each permission action. */
export const TOKEN_ACTIONS: Record<Action, string[]> = {
  read: ['pull'],
  annotate: ['pull', 'push'],
  write: ['pull', 'push'],
  delete: ['delete'],
  manage: ['*'],
};

/** `Bearer realm="<base>/v2/token",service="drydock"[,scope="…"][,error="…"]` (Docker token spec). */
export function bearerChallenge(req: Request, services: Services, scope?: string, error?: string): string {
  let c = `Bearer realm="${baseUrl(req, services)}/v2/token",service="${REGISTRY_SERVICE}"`;
  if (scope) c += `,scope="${scope}"`;
  if (error) c += `,error="${error}"`;
  return c;
}

export function repositoryScope(repoKey: string, image: string, action: Action): string {
  return `repository:${repoKey}/${image}:${TOKEN_ACTIONS[action].join(',')}`;
}

/** True when a registry token's access claim covers `action` on `type:name`. */
export function tokenAllows(access: readonly TokenAccess[], type: string, name: string, action: string): boolean {
  return access.some((a) => a.type === type && a.name === name && (a.actions.includes(action) || a.actions.includes('*')));
}

/**
 * Authorizes a registry API request on a repository path. With a registry
 * token, the token must carry the scope (else 401 `insufficient_scope`, so the
 * client fetches a token that does — or 403 when the user could not get one)
 * and the user must still hold the right now. Without one, the permission
 * targets decide: 401 with a Bearer challenge for anonymous callers, 403 otherwise.
 */
export async function authorizeRepository(
  req: Request,
  services: Services,
  identity: Identity,
  action: Action,
  resource: Required<Pick<Resource, 'repoKey' | 'image'>> & Resource,
): Promise<void> {
  const scope = repositoryScope(resource.repoKey, resource.image, action);
  const allowed = await services.authorizer.can(identity, action, resource);
  if (identity.tokenAccess) {
    const name = `${resource.repoKey}/${resource.image}`;
    const needed = TOKEN_ACTIONS[action];
    if (!needed.every((a) => tokenAllows(identity.tokenAccess!, 'repository', name, a))) {
      if (!allowed) throw refusal({ ...identity, kind: identity.kind }, action, resource, bearerChallenge(req, services, scope));
      throw new RegistryError('UNAUTHORIZED', `the token does not grant ${needed.join(',')} on ${name}`, undefined, {
        'WWW-Authenticate': bearerChallenge(req, services, scope, 'insufficient_scope'),
      });
    }
  }
  if (!allowed) throw refusal(identity, action, resource, bearerChallenge(req, services, scope));
}

/** The 401 for an unauthenticated or badly authenticated registry API request. */
export function registryUnauthorized(req: Request, services: Services, message: string, scope?: string): RegistryError {
  return new RegistryError('UNAUTHORIZED', message, undefined, { 'WWW-Authenticate': bearerChallenge(req, services, scope) });
}
