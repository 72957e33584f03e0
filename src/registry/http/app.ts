import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import { RegistryError } from '../../core/errors.js';
import type { Services } from '../services.js';
import { httpContext } from './context.js';
import { authenticate, can, unauthorized } from './middleware/auth.js';
import { errorRenderer } from './middleware/errors.js';
import { requestContext } from './middleware/request-context.js';
import { API_ROUTES, V2_ROUTES } from './routes.js';
import { v2Dispatcher } from './v2/dispatch.js';

/** Builds the registry's HTTP app from its services; does not listen. */
export function createApp(services: Services): Express {
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  app.set('query parser', 'simple');
  if (services.config.server.trustProxy) app.set('trust proxy', true);

  app.use(requestContext(services.log, services.metrics));
  app.use(v2Dispatcher(services, V2_ROUTES));

  const json = express.json({ type: () => true, limit: '1mb' });
  // Runs before `json` on the routes that take both: once it has read a form body, `json` skips the request.
  const form = express.urlencoded({ extended: false, limit: '64kb' });
  for (const route of API_ROUTES) {
    const guard = guardFor(services, route.access);
    const handlers = [
      (_req: Request, res: Response, next: NextFunction) => {
        httpContext(res).route = route.path;
        next();
      },
      ...(route.access === 'public' && route.path !== '/metrics' ? [] : [authenticate(services)]),
      ...(guard ? [guard] : []),
      ...(route.form ? [form] : []),
      ...(route.json ? [json] : []),
      route.handler(services),
    ];
    app[route.method](route.path, ...handlers);
    if (route.path.startsWith('/api/')) app[route.method](`/artifactory${route.path}`, ...handlers);
  }

  app.use((req: Request, _res: Response, next: NextFunction) => {
    next(new RegistryError('NOT_FOUND', `no endpoint at ${req.method} ${req.path}`));
  });
  app.use(errorRenderer());
  return app;
}

function guardFor(services: Services, access: (typeof API_ROUTES)[number]['access']) {
  if (access === 'public') return undefined;
  if (access === 'authenticated') {
    return (_req: Request, res: Response, next: NextFunction) => {
      const { identity } = httpContext(res);
      next(identity.kind === 'anonymous' && !services.config.auth.anonymousAccess ? unauthorized() : undefined);
    };
  }
  return can(services, access);
}
