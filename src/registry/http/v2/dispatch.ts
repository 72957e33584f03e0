import type { NextFunction, Request, Response } from 'express';
import { RegistryError } from '../../../core/errors.js';
import type { Services } from '../../services.js';
import { authorize, unauthorized } from '../middleware/auth.js';
import { httpContext } from '../context.js';
import { parseV2Path, resolveName } from './addressing.js';
import type { HttpMethod, V2Route } from './call.js';

/**
 * Serves the registry API for every addressing method: matches the route in
 * `routes`, authenticates, checks the action the route declares on the
 * repository it names, resolves the repository, and calls the handler.
 */
export function v2Dispatcher(services: Services, routes: readonly V2Route[]) {
  return async (req: Request, res: Response, next: NextFunction): Promise<void> => {
    const addr = parseV2Path(req.path);
    if (!addr) return next();
    res.locals.errorShape = 'oci';
    res.setHeader('Docker-Distribution-API-Version', 'registry/2.0');
    const ctx = httpContext(res);
    try {
      const match = matchRoute(routes, addr.rest);
      if (!match) throw new RegistryError('NOT_FOUND', `no registry API endpoint at ${req.path}`);
      const { route, params } = match;
      ctx.route = route.template;
      const method = route.methods[req.method as HttpMethod];
      if (!method) {
        throw new RegistryError('UNSUPPORTED', `${req.method} is not supported on ${route.template}`, undefined, {
          Allow: Object.keys(route.methods).join(', '),
        });
      }
      try {
        ctx.identity = await services.authenticator.authenticate(req.headers.authorization);
      } catch (e) {
        throw e instanceof RegistryError && e.code === 'UNAUTHORIZED' ? unauthorized(e.message) : e;
      }
      const rctx = { identity: ctx.identity, log: ctx.log };
      const call = { req, res, services, ctx: rctx, addr, params };
      if (method.scope === 'registry') {
        if (method.action === 'authenticated') {
          if (ctx.identity.kind === 'anonymous' && !services.config.auth.anonymousAccess) throw unauthorized();
        } else {
          authorize(services, ctx.identity, method.action);
        }
        await method.handler(call);
        return;
      }
      const name = resolveName(addr, params.name!);
      authorize(services, ctx.identity, method.action, { repoKey: name.repoKey, image: name.image });
      const repo = await services.resolver.get(name.repoKey);
      if (!repo) throw new RegistryError('NAME_UNKNOWN', `repository '${name.repoKey}' does not exist`, { name: name.clientName });
      ctx.log = ctx.log.child({ repo: name.repoKey });
      await method.handler({ ...call, ctx: { ...rctx, log: ctx.log }, name, repo });
    } catch (e) {
      next(e);
    }
  };
}

function matchRoute(routes: readonly V2Route[], rest: string): { route: V2Route; params: Record<string, string> } | undefined {
  for (const route of routes) {
    const m = route.pattern.exec(rest);
    if (m) return { route, params: { ...(m.groups ?? {}) } };
  }
  return undefined;
}
