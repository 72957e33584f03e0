import type { RequestHandler } from 'express';
import type { Action } from '../auth/identity.js';
import type { Services } from '../services.js';
import * as audit from './api/audit.js';
import * as browse from './api/browse.js';
import * as promotion from './api/promotion.js';
import * as repos from './api/repositories.js';
import * as security from './api/security.js';
import * as system from './api/system.js';

export { V2_ROUTES } from './v2/routes.js';

/**
 * Every URL outside the registry API, in one table. (The registry API's
 * `/v2/…` and `/api/docker/<key>/v2/…` URLs are in ./v2/routes.ts.)
 * `access`: `public` needs nothing; `authenticated` needs any identity the
 * route itself checks (filtering by rights); an Action is checked before the handler.
 * Every `/api/…` path is also served under `/artifactory/api/…`.
 */
export interface ApiRoute {
  method: 'get' | 'put' | 'post' | 'delete';
  path: string;
  access: 'public' | 'authenticated' | Action;
  /** Parse a JSON body. */
  json?: boolean;
  /** Also parse an `application/x-www-form-urlencoded` body (Artifactory's curl examples send one). */
  form?: boolean;
  handler: (services: Services) => RequestHandler;
}

export const API_ROUTES: readonly ApiRoute[] = [
  { method: 'get', path: '/healthz', access: 'public', handler: system.healthz },
  { method: 'get', path: '/readyz', access: 'public', handler: system.readyz },
  { method: 'get', path: '/metrics', access: 'public', handler: system.metrics },
  { method: 'get', path: '/api/system/ping', access: 'public', handler: system.ping },
  { method: 'get', path: '/api/system/protected-digests', access: 'manage', handler: system.protectedDigests },
  { method: 'get', path: '/api/repositories', access: 'authenticated', handler: repos.listRepositories },
  { method: 'get', path: '/api/repositories/:key', access: 'manage', handler: repos.getRepository },
  { method: 'put', path: '/api/repositories/:key', access: 'manage', json: true, handler: repos.createRepository },
  { method: 'post', path: '/api/repositories/:key', access: 'manage', json: true, handler: repos.updateRepository },
  { method: 'delete', path: '/api/repositories/:key', access: 'manage', handler: repos.deleteRepository },
  // Users, groups and permission targets: admin only (`manage` on no repository).
  { method: 'get', path: '/api/security/users', access: 'manage', handler: security.listUsers },
  { method: 'get', path: '/api/security/users/:name', access: 'manage', handler: security.getUser },
  { method: 'put', path: '/api/security/users/:name', access: 'manage', json: true, handler: security.putUser },
  { method: 'post', path: '/api/security/users/:name', access: 'manage', json: true, handler: security.updateUser },
  { method: 'delete', path: '/api/security/users/:name', access: 'manage', handler: security.deleteUser },
  { method: 'get', path: '/api/security/groups', access: 'manage', handler: security.listGroups },
  { method: 'get', path: '/api/security/groups/:name', access: 'manage', handler: security.getGroup },
  { method: 'put', path: '/api/security/groups/:name', access: 'manage', json: true, handler: security.putGroup },
  { method: 'post', path: '/api/security/groups/:name', access: 'manage', json: true, handler: security.updateGroup },
  { method: 'delete', path: '/api/security/groups/:name', access: 'manage', handler: security.deleteGroup },
  { method: 'get', path: '/api/v2/security/permissions', access: 'manage', handler: security.listPermissions },
  { method: 'get', path: '/api/v2/security/permissions/:name', access: 'manage', handler: security.getPermission },
  { method: 'put', path: '/api/v2/security/permissions/:name', access: 'manage', json: true, handler: security.putPermission },
  { method: 'delete', path: '/api/v2/security/permissions/:name', access: 'manage', handler: security.deletePermission },
  // Access tokens: any user, for itself (an admin for anyone); the service checks who may do what.
  { method: 'post', path: '/api/security/token', access: 'authenticated', json: true, form: true, handler: security.createToken },
  { method: 'get', path: '/api/security/token', access: 'authenticated', handler: security.listTokens },
  { method: 'post', path: '/api/security/token/revoke', access: 'authenticated', json: true, form: true, handler: security.revokeToken },
  { method: 'delete', path: '/api/security/token/:id', access: 'authenticated', handler: security.deleteToken },
  { method: 'get', path: '/api/docker/:key/info/*rest', access: 'authenticated', handler: browse.getTagInfo },
  { method: 'get', path: '/api/docker/:key/images', access: 'authenticated', handler: browse.listImages },
  { method: 'get', path: '/api/docker/:key/setmeup', access: 'authenticated', handler: browse.getSetMeUp },
  // Promotion: under the registry API's prefix, as in Artifactory (the v2 dispatcher passes these on); the service checks rights.
  { method: 'post', path: '/api/docker/:repoKey/v2/promote', access: 'authenticated', json: true, handler: promotion.promote },
  { method: 'get', path: '/api/docker/:repoKey/v2/promotions', access: 'authenticated', handler: promotion.listPromotions },
  { method: 'get', path: '/api/audit', access: 'manage', handler: audit.listAudit },
];
