import type { NextFunction, Request, Response } from 'express';
import { RegistryError } from '../../../core/errors.js';
import type { Action, Identity, Resource } from '../../auth/identity.js';
import type { Services } from '../../services.js';
import { httpContext } from '../context.js';

/** The challenge the management API sends with every 401. */
export const BASIC_CHALLENGE = 'Basic realm="drydock"';

/** Authenticates a management API request (Basic, or Bearer with an access token) into `ctx.identity`. */
export function authenticate(services: Services) {
  return async (req: Request, res: Response, next: NextFunction): Promise<void> => {
    try {
      httpContext(res).identity = await services.authenticator.authenticate(req.headers.authorization, { clientIp: req.ip });
      next();
    } catch (e) {
      next(e instanceof RegistryError && e.code === 'UNAUTHORIZED' ? unauthorized(e.message) : e);
    }
  };
}

/**
 * Throws unless `identity` may do `action` on `resource`: 401 (with a challenge)
 * for anonymous callers, 403 DENIED for authenticated ones. The answer is the
 * same whether or not the resource exists.
 */
export async function authorize(services: Services, identity: Identity, action: Action, resource: Resource = {}): Promise<void> {
  if (await services.authorizer.can(identity, action, resource)) return;
  throw refusal(identity, action, resource);
}

/** The refusal for a caller without the right: 401 for anonymous callers, else 403 DENIED. */
export function refusal(identity: Identity, action: Action, resource: Resource, challenge = BASIC_CHALLENGE): RegistryError {
  if (identity.kind === 'anonymous') {
    return new RegistryError('UNAUTHORIZED', 'authentication required', undefined, { 'WWW-Authenticate': challenge });
  }
  const what = resource.repoKey ? ` on ${resource.repoKey}${resource.image ? `/${resource.image}` : ''}` : '';
  return new RegistryError('DENIED', `${identity.name} may not ${action}${what}`);
}

/** Route guard: the action a route declares, on no particular repository (management API). */
export function can(services: Services, action: Action) {
  return async (_req: Request, res: Response, next: NextFunction): Promise<void> => {
    try {
      await authorize(services, httpContext(res).identity, action);
      next();
    } catch (e) {
      next(e);
    }
  };
}

/** A 401 carrying the Basic challenge. */
export function unauthorized(message = 'authentication required'): RegistryError {
  return new RegistryError('UNAUTHORIZED', message, undefined, { 'WWW-Authenticate': BASIC_CHALLENGE });
}
