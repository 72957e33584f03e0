/**
 * What the operator does about one `Promotion` resource (SPEC §8): pure
 * functions from the resource (and, after a run, its outcome) to the next
 * status. A Promotion runs once: Pending → Running → Succeeded | Failed.
 *
 * Exactly-once across operator restarts rests on two things: the run happens
 * only after `Running` is stored on the resource, and the promotion service
 * records the resource's uid with the promotion in one transaction — a run
 * repeated after a crash (status still `Running`) gets the recorded result
 * back instead of promoting again.
 */
import { formatZodIssues } from '../core/config/repository.js';
import type { PromotionRequest, PromotionResult } from '../registry/service/promotion.js';
import { setCondition, type Condition } from './conditions.js';
import { promotionSpecSchema } from './crd-schema.js';
import type { KubeObject } from './resources.js';

export type PromotionPhase = 'Pending' | 'Running' | 'Succeeded' | 'Failed';

export interface PromotionStatus {
  phase?: PromotionPhase;
  digest?: string;
  message?: string;
  completionTime?: string;
  conditions?: Condition[];
  observedGeneration?: number;
}

export interface PromotionResource extends KubeObject {
  status?: PromotionStatus;
}

export interface PromotionEvent {
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
}

export type PromotionStep =
  | { kind: 'done' }
  /** Store this status, then come back (the watch brings the resource again). */
  | { kind: 'status'; status: PromotionStatus; event?: PromotionEvent }
  | { kind: 'run'; request: PromotionRequest; requestId: string };

/** Transient failures are retried this many times before the Promotion fails. */
export const MAX_ATTEMPTS = 8;

/** A short human description: `team-a/app:1.4.2 → prod/app:1.4.2`. */
export function describeRequest(r: PromotionRequest): string {
  const src = `${r.sourceRepo}/${r.dockerRepository}${r.tag ? `:${r.tag}` : ''}`;
  const dst = `${r.targetRepo}/${r.targetDockerRepository ?? r.dockerRepository}${r.targetTag ?? r.tag ? `:${r.targetTag ?? r.tag}` : ''}`;
  return `${src} → ${dst}`;
}

function withPhase(resource: PromotionResource, phase: PromotionPhase, now: Date, fields: Partial<PromotionStatus> & { message: string }): PromotionStatus {
  const succeeded = phase === 'Succeeded' ? 'True' : phase === 'Failed' ? 'False' : 'Unknown';
  return {
    ...(resource.status ?? {}),
    ...fields,
    phase,
    observedGeneration: resource.metadata.generation,
    conditions: setCondition(resource.status?.conditions, { type: 'Succeeded', status: succeeded, reason: phase, message: fields.message, observedGeneration: resource.metadata.generation }, now),
  };
}

/** The next thing to do for a Promotion, from its stored status. */
export function nextPromotionStep(resource: PromotionResource, now: Date): PromotionStep {
  const phase = resource.status?.phase;
  if (phase === 'Succeeded' || phase === 'Failed') return { kind: 'done' };
  if (resource.metadata.deletionTimestamp) return { kind: 'done' };
  const parsed = promotionSpecSchema.safeParse(resource.spec ?? {});
  if (!parsed.success) {
    const message = `invalid spec: ${formatZodIssues(parsed.error, 'spec').join('; ')}`;
    return {
      kind: 'status',
      status: withPhase(resource, 'Failed', now, { message, completionTime: now.toISOString() }),
      event: { type: 'Warning', reason: 'InvalidSpec', message },
    };
  }
  const s = parsed.data;
  const request: PromotionRequest = {
    sourceRepo: s.sourceRepo,
    targetRepo: s.targetRepo,
    dockerRepository: s.dockerRepository,
    ...(s.targetDockerRepository ? { targetDockerRepository: s.targetDockerRepository } : {}),
    ...(s.tag ? { tag: s.tag } : {}),
    ...(s.targetTag ? { targetTag: s.targetTag } : {}),
    copy: s.copy,
  };
  if (!phase) {
    return { kind: 'status', status: withPhase(resource, 'Pending', now, { message: `waiting to promote ${describeRequest(request)}` }) };
  }
  if (phase === 'Pending') {
    return {
      kind: 'status',
      status: withPhase(resource, 'Running', now, { message: `promoting ${describeRequest(request)}` }),
      event: { type: 'Normal', reason: 'Started', message: `promoting ${describeRequest(request)}` },
    };
  }
  return { kind: 'run', request, requestId: resource.metadata.uid ?? `${resource.metadata.namespace}/${resource.metadata.name}` };
}

export type PromotionOutcome =
  | { ok: true; result: PromotionResult }
  | { ok: false; message: string; transient: boolean; attempt: number };

export interface PromotionVerdict {
  status: PromotionStatus;
  event: PromotionEvent;
  /** Retry later (with backoff): the failure was transient and attempts remain. */
  retry: boolean;
}

/** The status after a run. */
export function promotionOutcome(resource: PromotionResource, outcome: PromotionOutcome, now: Date): PromotionVerdict {
  if (outcome.ok) {
    const r = outcome.result;
    const tags = r.tags.map((t) => (t.tag === t.targetTag ? t.tag : `${t.tag}→${t.targetTag}`)).join(', ');
    const message = `${r.copy ? 'copied' : 'moved'} ${r.sourceRepo}/${r.image}${tags ? ` (${tags})` : ''} to ${r.targetRepo}/${r.targetImage}`;
    return {
      status: withPhase(resource, 'Succeeded', now, { message, digest: r.digest, completionTime: now.toISOString() }),
      event: { type: 'Normal', reason: 'Succeeded', message },
      retry: false,
    };
  }
  if (outcome.transient && outcome.attempt < MAX_ATTEMPTS) {
    const message = `attempt ${outcome.attempt} of ${MAX_ATTEMPTS} failed, retrying: ${outcome.message}`;
    return { status: withPhase(resource, 'Running', now, { message }), event: { type: 'Warning', reason: 'Retrying', message }, retry: true };
  }
  const message = outcome.transient ? `gave up after ${outcome.attempt} attempts: ${outcome.message}` : outcome.message;
  return {
    status: withPhase(resource, 'Failed', now, { message, completionTime: now.toISOString() }),
    event: { type: 'Warning', reason: 'Failed', message },
    retry: false,
  };
}

/**
 * Why a Promotion in `namespace` may not take images from its source, if so.
 * Namespaces are the cluster's tenancy line: a team's Promotion may promote
 * from repositories declared in its own namespace, or declared by no resource
 * (created through the REST API or the config file), never from another
 * namespace's repository — a move would delete that team's images.
 */
export function sourceRefusal(namespace: string, sourceRepo: string, sourceManagedBy: string | null | undefined): string | undefined {
  if (!sourceManagedBy) return undefined;
  const owner = sourceManagedBy.slice(0, sourceManagedBy.indexOf('/'));
  if (owner === namespace) return undefined;
  return `source repository '${sourceRepo}' is declared in namespace ${owner} (DockerRepository ${sourceManagedBy}); a Promotion in ${namespace} may promote only from repositories declared in ${namespace}`;
}
