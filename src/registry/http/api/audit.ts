import type { Request, Response } from 'express';
import { RegistryError } from '../../../core/errors.js';
import type { Services } from '../../services.js';

const DEFAULT_LIMIT = 100;
const MAX_LIMIT = 1000;

/**
 * GET /api/audit?limit=&before=&actor=&action= (admin): the audit log, newest
 * first. `next`, present when the page is full, is the `before` of the next page.
 */
export function listAudit(services: Services) {
  return async (req: Request, res: Response): Promise<void> => {
    const limit = integer(req, 'limit', 1, MAX_LIMIT) ?? DEFAULT_LIMIT;
    const before = integer(req, 'before', 1, Number.MAX_SAFE_INTEGER);
    const events = await services.audit.list({ limit, before, actor: text(req, 'actor'), action: text(req, 'action') });
    res.json({
      events: events.map((e) => ({
        id: e.id,
        at: e.at.toISOString(),
        actor: e.actor,
        action: e.action,
        target: e.target,
        outcome: e.outcome,
        clientIp: e.clientIp,
        details: e.details,
      })),
      ...(events.length === limit ? { next: events[events.length - 1]!.id } : {}),
    });
  };
}

function integer(req: Request, name: string, min: number, max: number): number | undefined {
  const raw = text(req, name);
  if (raw === undefined) return undefined;
  const n = /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!(n >= min && n <= max)) {
    const range = max === Number.MAX_SAFE_INTEGER ? 'a positive integer' : `an integer from ${min} to ${max}`;
    throw new RegistryError('BAD_REQUEST', `${name} must be ${range}; got '${raw}'`);
  }
  return n;
}

function text(req: Request, name: string): string | undefined {
  const v = req.query[name];
  if (v === undefined || v === '') return undefined;
  if (typeof v !== 'string') throw new RegistryError('BAD_REQUEST', `${name} may be given once`);
  return v;
}
