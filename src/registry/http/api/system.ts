import type { Request, Response } from 'express';
import type { Services } from '../../services.js';
import { authorize } from '../middleware/auth.js';
import { httpContext } from '../context.js';

/** GET /healthz: the process is up. */
export function healthz() {
  return (_req: Request, res: Response): void => {
    res.json({ status: 'ok' });
  };
}

/** GET /readyz: the database and the blob storage both answer. */
export function readyz(services: Services) {
  return async (_req: Request, res: Response): Promise<void> => {
    const checks = await Promise.allSettled([services.store.ping(), services.driver.ping()]);
    const [db, storage] = checks.map((c) => (c.status === 'fulfilled' ? 'ok' : 'unavailable'));
    const ready = db === 'ok' && storage === 'ok';
    if (!ready) {
      checks.forEach((c) => c.status === 'rejected' && httpContext(res).log.warn({ err: c.reason }, 'readiness check failed'));
    }
    res.status(ready ? 200 : 503).json({ status: ready ? 'ok' : 'unavailable', database: db, storage });
  };
}

/** GET /metrics: Prometheus text; admin-only when `metrics.requireAuth`. */
export function metrics(services: Services) {
  return async (_req: Request, res: Response): Promise<void> => {
    if (services.config.metrics.requireAuth) await authorize(services, httpContext(res).identity, 'manage');
    res.type(services.metrics.registry.contentType).send(await services.metrics.registry.metrics());
  };
}

/** GET /api/system/ping: Artifactory's liveness answer, for scripts that call it. */
export function ping() {
  return (_req: Request, res: Response): void => {
    res.type('text/plain').send('OK');
  };
}

/**
 * GET /api/system/protected-digests (admin): the digests garbage collection never
 * collects, as the operator recorded them from running Pods.
 */
export function protectedDigests(services: Services) {
  return async (_req: Request, res: Response): Promise<void> => {
    const rows = await services.store.gc.listProtected();
    res.json({
      digests: rows.map((r) => ({ digest: r.digest, reason: r.reason, pod: r.pod, recordedAt: r.recordedAt.toISOString() })),
    });
  };
}
