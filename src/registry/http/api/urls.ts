import type { Request } from 'express';
import type { Services } from '../../services.js';

/** The external base URL: `server.baseUrl` when configured, else the scheme and host the client used. */
export function baseUrl(req: Request, services: Services): string {
  const configured = services.config.server.baseUrl;
  if (configured) return configured.replace(/\/+$/, '');
  return `${req.protocol}://${req.get('host') ?? `localhost:${services.config.server.port}`}`;
}
