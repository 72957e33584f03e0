/**
 * Kubernetes Events on the resources the operator acts on (what
 * `kubectl describe` shows). Best effort: an Event that cannot be written is
 * logged, never a reason to fail a reconcile. A repeat of the same event for the
 * same object within a short window is dropped, as the API server's own
 * aggregation would fold it anyway.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from '../core/log.js';
import type { KubeClient } from './kube.js';
import { EVENTS, type KubeObject } from './resources.js';

export interface EventRecorder {
  record(obj: KubeObject, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void>;
}

export class KubeEventRecorder implements EventRecorder {
  private readonly recent = new Map<string, number>();

  constructor(
    private readonly opts: { client: KubeClient; component: string; instance: string; log: Logger; dedupMs?: number },
  ) {}

  async record(obj: KubeObject, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void> {
    const { metadata } = obj;
    const fingerprint = `${metadata.uid ?? `${metadata.namespace}/${metadata.name}`}|${type}|${reason}|${message}`;
    const now = Date.now();
    const last = this.recent.get(fingerprint);
    if (last !== undefined && now - last < (this.opts.dedupMs ?? 60_000)) return;
    this.recent.set(fingerprint, now);
    if (this.recent.size > 10_000) this.recent.clear();
    const at = new Date(now).toISOString();
    const event: KubeObject = {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { name: `${metadata.name}.${randomBytes(8).toString('hex')}`, namespace: metadata.namespace ?? 'default' },
      involvedObject: {
        apiVersion: obj.apiVersion,
        kind: obj.kind,
        name: metadata.name,
        namespace: metadata.namespace,
        uid: metadata.uid,
        resourceVersion: metadata.resourceVersion,
      },
      type,
      reason,
      message: message.slice(0, 1024),
      source: { component: this.opts.component },
      reportingComponent: this.opts.component,
      reportingInstance: this.opts.instance,
      firstTimestamp: at,
      lastTimestamp: at,
      count: 1,
    };
    try {
      await this.opts.client.create(EVENTS, event);
    } catch (err) {
      this.opts.log.warn({ err, reason, object: `${metadata.namespace}/${metadata.name}` }, 'could not record an event');
    }
  }
}
