/**
 * Promotion controller: moves each Promotion through its phases with the same
 * promotion service the REST API uses, keyed by the resource's uid so that a
 * run repeated after a crash returns the recorded result (see promotion.ts).
 */
import { RegistryError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { PromotionService } from '../registry/service/promotion.js';
import type { EventRecorder } from './events.js';
import type { Informer } from './informer.js';
import { isConflict, type KubeClient } from './kube.js';
import { measured, type OperatorMetrics } from './metrics.js';
import { nextPromotionStep, promotionOutcome, sourceRefusal, type PromotionResource } from './promotion.js';
import type { WorkResult } from './queue.js';
import { OPERATOR_IDENTITY } from './repository-controller.js';
import { PROMOTIONS } from './resources.js';

export interface PromotionControllerDeps {
  client: KubeClient;
  promotions: Pick<Informer, 'get'>;
  promotion: Pick<PromotionService, 'promote'>;
  /** Who manages a repository (`namespace/name`), for the namespace rule; null when no resource does. */
  managerOf: (repoKey: string) => Promise<string | null | undefined>;
  recorder: EventRecorder;
  metrics: OperatorMetrics;
  log: Logger;
  /** Delay before the n-th retry of a transiently failed promotion. */
  backoff: (attempt: number) => number;
}

/** Database outages, races and upstream trouble pass; a refusal (unknown tag, no right) does not. */
export function isTransient(e: unknown): boolean {
  if (e instanceof RegistryError) {
    return e.status >= 500 || e.code === 'TOOMANYREQUESTS' || (e.detail as { retry?: unknown } | undefined)?.retry === true;
  }
  return true;
}

export class PromotionController {
  /** Per resource uid: attempts so far and when the next may start. */
  private readonly attempts = new Map<string, { count: number; notBefore: number }>();

  constructor(private readonly deps: PromotionControllerDeps) {}

  reconcile(key: string): Promise<WorkResult | void> {
    return measured(this.deps.metrics, 'Promotion', () => this.reconcileOnce(key), isConflict);
  }

  private async reconcileOnce(key: string): Promise<WorkResult | void> {
    const { client, recorder, log } = this.deps;
    const resource = this.deps.promotions.get(key) as PromotionResource | undefined;
    if (!resource) return;
    const step = nextPromotionStep(resource, new Date());
    if (step.kind === 'done') {
      if (resource.metadata.uid) this.attempts.delete(resource.metadata.uid);
      return;
    }
    if (step.kind === 'status') {
      await client.replaceStatus(PROMOTIONS, { ...resource, status: step.status });
      if (step.event) await recorder.record(resource, step.event.type, step.event.reason, step.event.message);
      return;
    }
    // Our own status writes bring the resource back at once; a retry waits out its backoff.
    const state = this.attempts.get(step.requestId) ?? { count: 0, notBefore: 0 };
    const wait = state.notBefore - Date.now();
    if (wait > 0) return { requeueAfterMs: wait };
    const attempt = state.count + 1;
    let outcome: Parameters<typeof promotionOutcome>[1];
    try {
      const refusal = sourceRefusal(resource.metadata.namespace ?? '', step.request.sourceRepo, await this.deps.managerOf(step.request.sourceRepo));
      if (refusal) throw new RegistryError('DENIED', refusal);
      const result = await this.deps.promotion.promote(step.request, { identity: OPERATOR_IDENTITY, requestId: step.requestId });
      outcome = { ok: true, result };
    } catch (e) {
      log.warn({ err: e, promotion: key, attempt }, 'promotion failed');
      outcome = { ok: false, message: e instanceof Error ? e.message : String(e), transient: isTransient(e), attempt };
    }
    const verdict = promotionOutcome(resource, outcome, new Date());
    if (verdict.retry) {
      const delay = this.deps.backoff(attempt);
      this.attempts.set(step.requestId, { count: attempt, notBefore: Date.now() + delay });
      await client.replaceStatus(PROMOTIONS, { ...resource, status: verdict.status });
      await recorder.record(resource, verdict.event.type, verdict.event.reason, verdict.event.message);
      return { requeueAfterMs: delay, retrying: true };
    }
    // A conflict here throws: the retry runs the promotion again, which returns the recorded result.
    await client.replaceStatus(PROMOTIONS, { ...resource, status: verdict.status });
    this.attempts.delete(step.requestId);
    await recorder.record(resource, verdict.event.type, verdict.event.reason, verdict.event.message);
  }
}
