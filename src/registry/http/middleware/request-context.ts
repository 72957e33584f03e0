import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import type { NextFunction, Request, Response } from 'express';
import type { Logger } from '../../../core/log.js';
import type { Metrics } from '../../../core/metrics.js';
import { ANONYMOUS } from '../../auth/identity.js';
import type { HttpContext } from '../context.js';

/** Per connection: `bytesRead` when its last request finished. */
const READ_MARK = Symbol('drydock.bytesReadMark');

/**
 * Gives each request an id (the client's `X-Request-Id` or a new one), a child
 * logger, an anonymous identity until authentication says otherwise, and
 * records metrics and an access log line when the response finishes.
 */
export function requestContext(log: Logger, metrics: Metrics) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const started = process.hrtime.bigint();
    const incoming = req.headers['x-request-id'];
    const reqId = typeof incoming === 'string' && /^[\w.-]{1,128}$/.test(incoming) ? incoming : randomUUID();
    const ctx: HttpContext = { reqId, log: log.child({ reqId }), identity: ANONYMOUS, route: 'unmatched' };
    res.locals.ctx = ctx;
    res.setHeader('X-Request-Id', reqId);
    const socket = req.socket as Socket & { [READ_MARK]?: number };
    const writtenBefore = socket.bytesWritten;
    res.once('close', () => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const labels = { route: ctx.route, method: req.method, status: String(res.statusCode) };
      metrics.httpRequests.inc(labels);
      metrics.httpDuration.observe(labels, seconds);
      // Counted from where the previous request on this connection ended, not from
      // when this middleware ran: by then the headers and often the first body
      // chunk (all of a small body) have been read already.
      const read = socket.bytesRead;
      metrics.bytesIn.inc({ route: ctx.route }, Math.max(read - (socket[READ_MARK] ?? 0), 0));
      socket[READ_MARK] = read;
      metrics.bytesOut.inc({ route: ctx.route }, Math.max(socket.bytesWritten - writtenBefore, 0));
      const aborted = !res.writableFinished;
      ctx.log[res.statusCode >= 500 ? 'warn' : 'debug'](
        { method: req.method, url: req.originalUrl, status: res.statusCode, ms: Math.round(seconds * 1000), user: ctx.identity.name, aborted },
        'request',
      );
    });
    next();
  };
}
