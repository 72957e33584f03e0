import type { Request, Response } from 'express';
import { RegistryError } from '../../../core/errors.js';
import type { PromotionContext } from '../../service/promotion.js';
import { parsePromoteBody } from '../../service/promotion.js';
import type { Services } from '../../services.js';
import { httpContext } from '../context.js';
import { unauthorized } from '../middleware/auth.js';

const DEFAULT_LIMIT = 100;
const MAX_LIMIT = 1000;

/** Artifactory's answer to a successful promotion, word for word. */
const PROMOTED = { messages: [{ level: 'INFO', message: 'Promotion ended successfully' }] };

/**
 * POST /api/docker/<repoKey>/v2/promote — Artifactory's promote request; the URL
 * names the source repository. The service checks every right.
 */
export function promote(services: Services) {
  return async (req: Request, res: Response): Promise<void> => {
    if (req.body === undefined) throw new RegistryError('BAD_REQUEST', 'a JSON body is required');
    const body = parsePromoteBody(req.body);
    await withChallenge(() => services.promotion.promote({ ...body, sourceRepo: repoKey(req) }, context(req, res)));
    res.status(200).json(PROMOTED);
  };
}

/**
 * GET /api/docker/<repoKey>/v2/promotions?limit=&before= — promotions from or
 * into the repository, newest first; `next`, when present, is the next page's `before`.
 */
export function listPromotions(services: Services) {
  return async (req: Request, res: Response): Promise<void> => {
    const limit = integer(req, 'limit', 1, MAX_LIMIT) ?? DEFAULT_LIMIT;
    const before = integer(req, 'before', 1, Number.MAX_SAFE_INTEGER);
    const page = await withChallenge(() => services.promotion.list(repoKey(req), { limit, before }, context(req, res)));
    res.json({
      promotions: page.promotions.map((p) => ({
        id: p.id,
        user: p.actor,
        sourceRepo: p.sourceRepo,
        targetRepo: p.targetRepo,
        image: p.image,
        targetImage: p.targetImage,
        tag: p.tag,
        targetTag: p.targetTag,
        digest: p.digest,
        copy: p.copy,
        at: p.at.toISOString(),
      })),
      ...(page.next === undefined ? {} : { next: page.next }),
    });
  };
}

const repoKey = (req: Request): string => String(req.params.repoKey);

function context(req: Request, res: Response): PromotionContext {
  return { identity: httpContext(res).identity, clientIp: req.ip ?? null };
}

/** The service refuses anonymous callers without HTTP words; the 401 gets the management API's challenge here. */
async function withChallenge<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof RegistryError && e.code === 'UNAUTHORIZED' && !e.headers['WWW-Authenticate']) throw unauthorized(e.message);
    throw e;
  }
}

function integer(req: Request, name: string, min: number, max: number): number | undefined {
  const raw = req.query[name];
  if (raw === undefined || raw === '') return undefined;
  const n = typeof raw === 'string' && /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!(n >= min && n <= max)) {
    const range = max === Number.MAX_SAFE_INTEGER ? 'a positive integer' : `an integer from ${min} to ${max}`;
    throw new RegistryError('BAD_REQUEST', `${name} must be ${range}; got '${String(raw)}'`);
  }
  return n;
}
