/**
 * Status conditions as Kubernetes tools read them (`kubectl wait --for=condition=Ready`):
 * one entry per type, `lastTransitionTime` moving only when the status flips,
 * so watchers see a stable history instead of a timestamp churning on every resync.
 */
export type ConditionStatus = 'True' | 'False' | 'Unknown';

export interface Condition {
  type: string;
  status: ConditionStatus;
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration?: number;
}

export type ConditionInput = Omit<Condition, 'lastTransitionTime'>;

/** The conditions with `next` set, keeping the transition time when the status did not change. */
export function setCondition(conditions: readonly Condition[] | undefined, next: ConditionInput, now: Date): Condition[] {
  const list = [...(conditions ?? [])];
  const i = list.findIndex((c) => c.type === next.type);
  const previous = i >= 0 ? list[i] : undefined;
  const lastTransitionTime =
    previous && previous.status === next.status && previous.lastTransitionTime ? previous.lastTransitionTime : now.toISOString();
  const condition: Condition = { ...next, lastTransitionTime };
  if (i >= 0) list[i] = condition;
  else list.push(condition);
  return list;
}

/** Applies several conditions in order. */
export function setConditions(conditions: readonly Condition[] | undefined, next: readonly ConditionInput[], now: Date): Condition[] {
  return next.reduce<Condition[]>((list, c) => setCondition(list, c, now), [...(conditions ?? [])]);
}

export function findCondition(conditions: readonly Condition[] | undefined, type: string): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}
