import type { NextFunction, Request, Response } from 'express';
import { RegistryError } from '../../../core/errors.js';
import { translateError } from '../../service/translate-error.js';
import { httpContext, isApiPath } from '../context.js';

/**
 * The one place errors become HTTP: the OCI shape `{"errors":[{code,message,detail}]}`
 * on the registry API, Artifactory's `{"errors":[{status,message}]}` on /api.
 * Unknown errors are logged with their cause and shown as UNKNOWN.
 */
export function errorRenderer() {
  return (err: unknown, req: Request, res: Response, _next: NextFunction): void => {
    const ctx = httpContext(res);
    let e = translateError(err);
    if (!(e instanceof RegistryError)) {
      const bodyError = e as { type?: string; status?: number };
      if (bodyError?.type === 'entity.parse.failed') {
        e = new RegistryError('BAD_REQUEST', 'the request body is not valid JSON');
      } else if (bodyError?.type === 'entity.too.large') {
        e = new RegistryError('BAD_REQUEST', 'the request body is too large');
      } else {
        ctx?.log.error({ err }, 'unhandled error');
        e = new RegistryError('UNKNOWN', 'internal error; see the server log', { reqId: ctx?.reqId });
      }
    }
    const re = e as RegistryError;
    if (re.code === 'UNAVAILABLE') ctx?.log.warn({ err }, 'backend unavailable');
    if (res.headersSent) {
      // Mid-stream failure: the only honest signal left is to cut the connection.
      res.destroy(err instanceof Error ? err : undefined);
      return;
    }
    for (const [k, v] of Object.entries(re.headers)) res.setHeader(k, v);
    res.status(re.status);
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    const artifactoryShape = res.locals.errorShape === 'artifactory' || (res.locals.errorShape !== 'oci' && isApiPath(req));
    const body = artifactoryShape
      ? { errors: [{ status: re.status, message: re.message }] }
      : { errors: [{ code: re.code, message: re.message, detail: re.detail ?? {} }] };
    res.json(body);
  };
}
