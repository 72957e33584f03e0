import type { RequestHandler } from 'express';
import type { Action } from '../auth/identity.js';
import type { Services } from '../services.js';
import * as repos from './api/repositories.js';
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
  handler: (services: Services) => RequestHandler;
}

export const API_ROUTES: readonly ApiRoute[] = [
  { method: 'get', path: '/healthz', access: 'public', handler: system.healthz },
  { method: 'get', path: '/readyz', access: 'public', handler: system.readyz },
  { method: 'get', path: '/metrics', access: 'public', handler: system.metrics },
  { method: 'get', path: '/api/system/ping', access: 'public', handler: system.ping },
  { method: 'get', path: '/api/repositories', access: 'authenticated', handler: repos.listRepositories },
  { method: 'get', path: '/api/repositories/:key', access: 'manage', handler: repos.getRepository },
  { method: 'put', path: '/api/repositories/:key', access: 'manage', json: true, handler: repos.createRepository },
  { method: 'post', path: '/api/repositories/:key', access: 'manage', json: true, handler: repos.updateRepository },
  { method: 'delete', path: '/api/repositories/:key', access: 'manage', handler: repos.deleteRepository },
];
