import type { NextFunction, Request, Response } from 'express';
import { RegistryError } from '../../../core/errors.js';
import { looksLikeDigest } from '../../../core/oci/digest.js';
import type { Identity } from '../../auth/identity.js';
import type { Services } from '../../services.js';
import { httpContext } from '../context.js';
import { parseV2Path, PORT_REPOSITORY, repoKeyFromHost, resolveName, type V2Address } from './addressing.js';
import type { HttpMethod, RouteMethod, V2Route } from './call.js';
import { authorizeRepository, registryUnauthorized, repositoryScope, tokenAllows, bearerChallenge } from './v2-auth.js';

/** `/api/docker/<key>/v2/<this>` paths served by the management API (routes.ts), not the registry API. */
const MANAGEMENT_ENDPOINTS: ReadonlySet<string> = new Set(['promote', 'promotions']);

/**
 * Serves the registry API for every addressing method: matches the route in
 * `routes`, authenticates, checks the action the route declares on the
 * repository and image it names, resolves the repository, calls the handler,
 * and records writes and deletes in the audit log.
 */
export function v2Dispatcher(services: Services, routes: readonly V2Route[]) {
  return async (req: Request, res: Response, next: NextFunction): Promise<void> => {
    let addr = parseV2Path(req.path);
    if (!addr) return next();
    // Artifactory puts its promotion API under the registry API's prefix; it is
    // management API (its own routes, JSON errors in Artifactory's shape).
    if (addr.fixedRepoKey !== undefined && MANAGEMENT_ENDPOINTS.has(addr.rest.replace(/\/$/, ''))) return next();
    res.locals.errorShape = 'oci';
    res.setHeader('Docker-Distribution-API-Version', 'registry/2.0');
    const ctx = httpContext(res);
    try {
      // Port and subdomain methods (SPEC §3): the listener or the Host header fixes the repository.
      const byPort = (req as Request & { [PORT_REPOSITORY]?: string })[PORT_REPOSITORY];
      const byHost = byPort ? undefined : repoKeyFromHost(req.hostname, services.config.server.subdomainOf);
      if (addr.fixedRepoKey === undefined && (byPort ?? byHost)) addr = { ...addr, fixedRepoKey: byPort ?? byHost };
      // Transparent mirror (containerd hosts.toml): `?ns=<upstream host>` picks the remote
      // repository registered for that host; drydock never dials a host a client names.
      const ns = typeof req.query.ns === 'string' && req.query.ns !== '' ? req.query.ns : undefined;
      if (ns && addr.fixedRepoKey === undefined && addr.rest.includes('/')) {
        const key = await services.resolver.remoteForHost(ns);
        if (!key) throw new RegistryError('NAME_UNKNOWN', `no remote repository mirrors '${ns}'`, { ns });
        addr = { ...addr, fixedRepoKey: key };
      }
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
      const call = { req, res, services, ctx: { identity: ctx.identity, log: ctx.log }, addr, params };
      if (method.scope === 'registry' && method.action === 'public') {
        await method.handler(call);
        return;
      }
      try {
        ctx.identity = await services.authenticator.authenticate(req.headers.authorization, { clientIp: req.ip, registryTokens: true });
      } catch (e) {
        if (e instanceof RegistryError && e.code === 'UNAUTHORIZED') throw registryUnauthorized(req, services, e.message, challengeScope(addr, method, params));
        throw e;
      }
      call.ctx.identity = ctx.identity;

      if (method.scope === 'registry') {
        await admit(req, services, ctx.identity, method);
        await method.handler(call);
        return;
      }

      const name = resolveName(addr, params.name!);
      const leaf = method.leaf === 'reference' && params.reference && !looksLikeDigest(params.reference) ? params.reference : undefined;
      const resource = { repoKey: name.repoKey, image: name.image, leaf };
      const target = `${name.repoKey}/${name.image}${params.reference ? `:${params.reference}` : params.digest ? `@${params.digest}` : ''}`;
      const recordDenial = async (e: unknown): Promise<void> => {
        if (method.audit && e instanceof RegistryError && e.code === 'DENIED') {
          await services.audit.record({ actor: ctx.identity.name, action: method.audit, target, outcome: 'denied', clientIp: req.ip });
        }
      };
      try {
        await authorizeRepository(req, services, ctx.identity, method.action, resource);
      } catch (e) {
        await recordDenial(e);
        throw e;
      }
      const repo = await services.resolver.get(name.repoKey);
      if (!repo) throw new RegistryError('NAME_UNKNOWN', await services.resolver.whyMissing(name.repoKey), { name: name.clientName });
      ctx.log = ctx.log.child({ repo: name.repoKey });
      try {
        await method.handler({ ...call, ctx: { ...call.ctx, log: ctx.log }, name, repo });
      } catch (e) {
        // The handler may refuse too: re-pointing a tag needs delete as well (Artifactory's overwrite rule).
        await recordDenial(e);
        throw e;
      }
      // Completed writes (201) and deletes; not session starts or chunks (202).
      if (method.audit && (res.statusCode === 201 || (req.method === 'DELETE' && res.statusCode < 300))) {
        const digest = res.getHeader('Docker-Content-Digest');
        await services.audit.record({
          actor: ctx.identity.name,
          action: method.audit,
          target,
          outcome: 'success',
          clientIp: req.ip,
          details: typeof digest === 'string' ? { digest } : null,
        });
      }
    } catch (e) {
      next(e);
    }
  };
}

/** Registry-wide routes (`/v2/`, catalog): any identity the configuration admits, and with a token, its scope. */
async function admit(req: Request, services: Services, identity: Identity, method: Extract<RouteMethod, { scope: 'registry' }>): Promise<void> {
  if (identity.kind === 'anonymous' && !services.config.auth.anonymousAccess) {
    throw registryUnauthorized(req, services, 'authentication required', method.tokenScope);
  }
  if (method.tokenScope && identity.tokenAccess) {
    const [type, name, action] = method.tokenScope.split(':') as [string, string, string];
    if (!tokenAllows(identity.tokenAccess, type, name, action)) {
      throw new RegistryError('UNAUTHORIZED', `the token does not grant ${method.tokenScope}`, undefined, {
        'WWW-Authenticate': bearerChallenge(req, services, method.tokenScope, 'insufficient_scope'),
      });
    }
  }
}

/** The scope a 401 names on a route: the repository action it needs, or its registry-wide scope (catalog). */
function challengeScope(addr: V2Address, method: RouteMethod, params: Record<string, string>): string | undefined {
  if (method.scope === 'registry') return method.tokenScope;
  try {
    const name = resolveName(addr, params.name!);
    return repositoryScope(name.repoKey, name.image, method.action);
  } catch {
    return undefined;
  }
}

function matchRoute(routes: readonly V2Route[], rest: string): { route: V2Route; params: Record<string, string> } | undefined {
  for (const route of routes) {
    const m = route.pattern.exec(rest);
    if (m) return { route, params: { ...(m.groups ?? {}) } };
  }
  return undefined;
}
