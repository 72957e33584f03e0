/** The operator's own metrics, on the private registry its `/metrics` serves. */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export interface OperatorMetrics {
  reconciles: Counter<'kind' | 'result'>;
  reconcileDuration: Histogram<'kind'>;
  queueDepth: Gauge<'kind'>;
  leader: Gauge;
  relists: Counter<'kind'>;
  protectedDigests: Gauge;
}

export function createOperatorMetrics(registry: Registry): OperatorMetrics {
  const registers = [registry];
  return {
    reconciles: new Counter({
      name: 'drydock_operator_reconciles_total',
      help: 'Reconciles by resource kind and result (success, retry, conflict, error)',
      labelNames: ['kind', 'result'],
      registers,
    }),
    reconcileDuration: new Histogram({
      name: 'drydock_operator_reconcile_duration_seconds',
      help: 'Time spent reconciling one object, by resource kind',
      labelNames: ['kind'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    }),
    queueDepth: new Gauge({ name: 'drydock_operator_queue_depth', help: 'Objects waiting in the work queue, by kind', labelNames: ['kind'], registers }),
    leader: new Gauge({ name: 'drydock_operator_leader', help: '1 while this replica holds the leader Lease', registers }),
    relists: new Counter({ name: 'drydock_operator_relists_total', help: 'Full re-lists after a watch expired (410 Gone), by kind', labelNames: ['kind'], registers }),
    protectedDigests: new Gauge({ name: 'drydock_operator_protected_digests', help: 'Digests protected because running Pods use them', registers }),
  };
}

/** Runs one reconcile, counting it by result and timing it. */
export async function measured<T extends { retrying?: boolean } | void>(metrics: OperatorMetrics, kind: string, run: () => Promise<T>, isConflict: (e: unknown) => boolean): Promise<T> {
  const end = metrics.reconcileDuration.startTimer({ kind });
  try {
    const result = await run();
    metrics.reconciles.inc({ kind, result: result && result.retrying ? 'retry' : 'success' });
    return result;
  } catch (e) {
    metrics.reconciles.inc({ kind, result: isConflict(e) ? 'conflict' : 'error' });
    throw e;
  } finally {
    end();
  }
}
