import type { NextFunction, Request, Response } from 'express';
import { RegistryError } from '../../../core/errors.js';
import type { Action, Identity, Resource } from '../../auth/identity.js';
import type { Services } from '../../services.js';
import { httpContext } from '../context.js';

/** The challenge sent with every 401. */
export const BASIC_CHALLENGE = 'Basic realm="drydock"';

/** Authenticates the request (Basic credentials, or anonymous) into `ctx.identity`. */
export function authenticate(services: Services) {
  return async (req: Request, res: Response, next: NextFunction): Promise<void> => {
    try {
      httpContext(res).identity = await services.authenticator.authenticate(req.headers.authorization);
      next();
    } catch (e) {
      next(withChallenge(e));
    }
  };
}

/**
 * Throws unless `identity` may do `action` on `resource`: 401 (with a challenge)
 * for anonymous callers, 403 DENIED for authenticated ones. The answer is the
 * same whether or not the resource exists.
 */
export function authorize(services: Services, identity: Identity, action: Action, resource: Resource = {}): void {
  if (services.authorizer.can(identity, action, resource)) return;
  if (identity.kind === 'anonymous') throw unauthorized();
  const what = resource.repoKey ? ` on ${resource.repoKey}${resource.image ? `/${resource.image}` : ''}` : '';
  throw new RegistryError('DENIED', `${identity.name} may not ${action}${what}`);
}

/** Route guard: the action a route declares, on no particular repository (management API). */
export function can(services: Services, action: Action) {
  return (_req: Request, res: Response, next: NextFunction): void => {
    try {
      authorize(services, httpContext(res).identity, action);
      next();
    } catch (e) {
      next(e);
    }
  };
}

/** A 401 carrying the challenge clients answer with credentials. */
export function unauthorized(message = 'authentication required'): RegistryError {
  return new RegistryError('UNAUTHORIZED', message, undefined, { 'WWW-Authenticate': BASIC_CHALLENGE });
}

function withChallenge(e: unknown): unknown {
  return e instanceof RegistryError && e.code === 'UNAUTHORIZED' ? unauthorized(e.message) : e;
}
