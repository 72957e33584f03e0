import type { Request, Response } from 'express';
import type { Actor } from '../../service/security.js';
import type { Services } from '../../services.js';
import { httpContext } from '../context.js';
import { unauthorized } from '../middleware/auth.js';
import { baseUrl } from './urls.js';

/** Who is calling, for the service's rules and the audit log. */
function actor(req: Request, res: Response): Actor {
  return { identity: httpContext(res).identity, clientIp: req.ip ?? null };
}

/** Token routes are open to any user but never to the anonymous one, even when anonymous access is on. */
function userActor(req: Request, res: Response): Actor {
  const a = actor(req, res);
  if (a.identity.kind === 'anonymous') throw unauthorized();
  return a;
}

const name = (req: Request): string => String(req.params.name);

/** Artifactory's list entry: the name and where to read it. */
function listed(req: Request, services: Services, path: string, names: string[], extra: object = {}) {
  const base = `${baseUrl(req, services)}/artifactory/api/${path}`;
  return names.map((n) => ({ name: n, uri: `${base}/${encodeURIComponent(n)}`, ...extra }));
}

// ---- users ----

/** GET /api/security/users: `[{name, uri, realm}]`. */
export function listUsers(services: Services) {
  return async (req: Request, res: Response): Promise<void> => {
    res.json(listed(req, services, 'security/users', await services.security.listUsers(), { realm: 'internal' }));
  };
}

/** GET /api/security/users/<name>: `{name, email, admin, groups}`. */
export function getUser(services: Services) {
  return async (req: Request, res: Response): Promise<void> => {
    res.json(await services.security.getUser(name(req)));
  };
}

/** PUT /api/security/users/<name>: create (201) or replace (200). */
export function putUser(services: Services) {
  return async (req: Request, res: Response): Promise<void> => {
    const { user, created } = await services.security.putUser(actor(req, res), name(req), req.body);
    res.status(created ? 201 : 200).json(user);
  };
}

/** POST /api/security/users/<name>: update the fields given. */
export function updateUser(services: Services) {
  return async (req: Request, res: Response): Promise<void> => {
    res.json(await services.security.updateUser(actor(req, res), name(req), req.body));
  };
}

export function deleteUser(services: Services) {
  return async (req: Request, res: Response): Promise<void> => {
    await services.security.deleteUser(actor(req, res), name(req));
    res.type('text/plain').send(`User '${name(req)}' has been removed successfully.`);
  };
}

// ---- groups ----

export function listGroups(services: Services) {
  return async (req: Request, res: Response): Promise<void> => {
    res.json(listed(req, services, 'security/groups', await services.security.listGroups()));
  };
}

/** GET /api/security/groups/<name>[?includeUsers=true]. */
export function getGroup(services: Services) {
  return async (req: Request, res: Response): Promise<void> => {
    res.json(await services.security.getGroup(name(req), req.query.includeUsers === 'true'));
  };
}

export function putGroup(services: Services) {
  return async (req: Request, res: Response): Promise<void> => {
    const { group, created } = await services.security.putGroup(actor(req, res), name(req), req.body);
    res.status(created ? 201 : 200).json(group);
  };
}

export function updateGroup(services: Services) {
  return async (req: Request, res: Response): Promise<void> => {
    res.json(await services.security.updateGroup(actor(req, res), name(req), req.body));
  };
}

export function deleteGroup(services: Services) {
  return async (req: Request, res: Response): Promise<void> => {
    await services.security.deleteGroup(actor(req, res), name(req));
    res.type('text/plain').send(`Group '${name(req)}' has been removed successfully.`);
  };
}

// ---- permission targets (v2) ----

export function listPermissions(services: Services) {
  return async (req: Request, res: Response): Promise<void> => {
    res.json(listed(req, services, 'v2/security/permissions', await services.security.listPermissions()));
  };
}

export function getPermission(services: Services) {
  return async (req: Request, res: Response): Promise<void> => {
    res.json(await services.security.getPermission(name(req)));
  };
}

/** PUT /api/v2/security/permissions/<name>: create (201) or replace (200); answers the target as stored. */
export function putPermission(services: Services) {
  return async (req: Request, res: Response): Promise<void> => {
    const { target, created } = await services.security.putPermission(actor(req, res), name(req), req.body);
    res.status(created ? 201 : 200).json(target);
  };
}

export function deletePermission(services: Services) {
  return async (req: Request, res: Response): Promise<void> => {
    await services.security.deletePermission(actor(req, res), name(req));
    res.type('text/plain').send(`Permission Target '${name(req)}' has been removed successfully.`);
  };
}

// ---- access tokens ----

/** POST /api/security/token: form body (`username`, `scope`, `expires_in`, `description`) or the same as JSON. */
export function createToken(services: Services) {
  return async (req: Request, res: Response): Promise<void> => {
    res.json(await services.security.tokens.create(userActor(req, res), req.body));
  };
}

/** GET /api/security/token: the caller's tokens (everybody's for an admin). */
export function listTokens(services: Services) {
  return async (req: Request, res: Response): Promise<void> => {
    res.json(await services.security.tokens.list(userActor(req, res).identity));
  };
}

/** POST /api/security/token/revoke: `token_id` or `token`, form or JSON. */
export function revokeToken(services: Services) {
  return async (req: Request, res: Response): Promise<void> => {
    await services.security.tokens.revoke(userActor(req, res), req.body);
    res.type('text/plain').send('Token revoked');
  };
}

/** DELETE /api/security/token/<token_id>. */
export function deleteToken(services: Services) {
  return async (req: Request, res: Response): Promise<void> => {
    await services.security.tokens.revokeById(userActor(req, res), String(req.params.id));
    res.type('text/plain').send('Token revoked');
  };
}
