import { describe, expect, it } from '@jest/globals';
import { MAX_ATTEMPTS, nextPromotionStep, promotionOutcome, sourceRefusal, type PromotionResource } from '../../src/operator/promotion.js';
import { isTransient } from '../../src/operator/promotion-controller.js';
import { RegistryError } from '../../src/core/errors.js';

const NOW = new Date('2026-11-27T10:00:00Z');
const SPEC = { sourceRepo: 'team-a', targetRepo: 'prod', dockerRepository: 'app', tag: '1.4.2', targetTag: '1.4.2', copy: true };

function promo(status?: PromotionResource['status'], spec: Record<string, unknown> = SPEC): PromotionResource {
  return { metadata: { name: 'p', namespace: 'team-a', uid: 'uid-1', generation: 1 }, spec, status };
}

const RESULT = {
  sourceRepo: 'team-a',
  targetRepo: 'prod',
  image: 'app',
  targetImage: 'app',
  copy: true,
  digest: `sha256:${'a'.repeat(64)}`,
  tags: [{ tag: '1.4.2', targetTag: '1.4.2', digest: `sha256:${'a'.repeat(64)}` }],
  manifests: [`sha256:${'a'.repeat(64)}`],
};

describe('Promotion phases', () => {
  it('goes Pending, then Running (with an event), then runs with the uid as request id', () => {
    const first = nextPromotionStep(promo(), NOW);
    expect(first).toMatchObject({ kind: 'status', status: { phase: 'Pending', observedGeneration: 1 } });
    const second = nextPromotionStep(promo(first.kind === 'status' ? first.status : undefined), NOW);
    expect(second).toMatchObject({ kind: 'status', status: { phase: 'Running', message: 'promoting team-a/app:1.4.2 → prod/app:1.4.2' }, event: { reason: 'Started' } });
    const third = nextPromotionStep(promo({ phase: 'Running' }), NOW);
    expect(third).toEqual({
      kind: 'run',
      requestId: 'uid-1',
      request: { sourceRepo: 'team-a', targetRepo: 'prod', dockerRepository: 'app', tag: '1.4.2', targetTag: '1.4.2', copy: true },
    });
  });

  it('does nothing once finished', () => {
    expect(nextPromotionStep(promo({ phase: 'Succeeded' }), NOW)).toEqual({ kind: 'done' });
    expect(nextPromotionStep(promo({ phase: 'Failed' }), NOW)).toEqual({ kind: 'done' });
  });

  it('fails an invalid spec at once, naming the field', () => {
    const step = nextPromotionStep(promo(undefined, { ...SPEC, targetRepo: 'Bad_Key' }), NOW);
    expect(step).toMatchObject({ kind: 'status', status: { phase: 'Failed', completionTime: NOW.toISOString() } });
    expect(step.kind === 'status' && step.status.message).toMatch(/spec\.targetRepo/);
  });

  it('records success with digest, message and completion time', () => {
    const v = promotionOutcome(promo({ phase: 'Running' }), { ok: true, result: RESULT }, NOW);
    expect(v.retry).toBe(false);
    expect(v.status).toMatchObject({ phase: 'Succeeded', digest: RESULT.digest, completionTime: NOW.toISOString(), message: 'copied team-a/app (1.4.2) to prod/app' });
    expect(v.status.conditions?.[0]).toMatchObject({ type: 'Succeeded', status: 'True' });
  });

  it('retries transient failures up to the limit, fails permanent ones at once', () => {
    const retry = promotionOutcome(promo({ phase: 'Running' }), { ok: false, message: 'database down', transient: true, attempt: 1 }, NOW);
    expect(retry).toMatchObject({ retry: true, status: { phase: 'Running' }, event: { reason: 'Retrying' } });
    const last = promotionOutcome(promo({ phase: 'Running' }), { ok: false, message: 'database down', transient: true, attempt: MAX_ATTEMPTS }, NOW);
    expect(last).toMatchObject({ retry: false, status: { phase: 'Failed', message: `gave up after ${MAX_ATTEMPTS} attempts: database down` } });
    const permanent = promotionOutcome(promo({ phase: 'Running' }), { ok: false, message: "tag '1.4.2' not found", transient: false, attempt: 1 }, NOW);
    expect(permanent).toMatchObject({ retry: false, status: { phase: 'Failed', message: "tag '1.4.2' not found" } });
    expect(permanent.status.conditions?.[0]).toMatchObject({ type: 'Succeeded', status: 'False' });
  });

  it('promotes only from repositories of its own namespace or of no resource', () => {
    expect(sourceRefusal('team-a', 'team-a', 'team-a/team-a')).toBeUndefined();
    expect(sourceRefusal('team-a', 'legacy', null)).toBeUndefined();
    expect(sourceRefusal('team-a', 'other', 'team-b/other')).toMatch(/declared in namespace team-b/);
  });

  it('tells transient errors from refusals', () => {
    expect(isTransient(new Error('connect ECONNREFUSED'))).toBe(true);
    expect(isTransient(new RegistryError('UNAVAILABLE'))).toBe(true);
    expect(isTransient(new RegistryError('TOOMANYREQUESTS'))).toBe(true);
    expect(isTransient(new RegistryError('MANIFEST_UNKNOWN'))).toBe(false);
    expect(isTransient(new RegistryError('DENIED'))).toBe(false);
    expect(isTransient(new RegistryError('CONFLICT', 'changed while being prepared', { retry: true }))).toBe(true);
    expect(isTransient(new RegistryError('CONFLICT', 'request id used for another promotion'))).toBe(false);
  });
});
