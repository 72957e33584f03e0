import type { Request, Response } from 'express';
import type { Logger } from '../../core/log.js';
import type { Identity } from '../auth/identity.js';

/** What every request carries through the middleware chain (res.locals.ctx). */
export interface HttpContext {
  reqId: string;
  log: Logger;
  identity: Identity;
  /** Route template for metrics, e.g. `/v2/{name}/manifests/{reference}`. */
  route: string;
}

export function httpContext(res: Response): HttpContext {
  return res.locals.ctx as HttpContext;
}

export function isApiPath(req: Request): boolean {
  return req.path.startsWith('/api/') || req.path.startsWith('/artifactory/api/');
}
