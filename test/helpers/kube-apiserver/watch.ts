/** Watch history and open watches: replay from a resourceVersion, 410 Expired after compaction, bookmarks, selector-aware delivery. */
import { badRequest } from './errors.js';
import { clone, type Obj } from './json.js';
import { groupVersion, present, type ResourceType, typeKey } from './resources.js';
import { type FieldRequirement, type LabelRequirement, matchesFields, matchesLabels } from './selectors.js';
import { KubeApiError, type KubeObject, type KubeStatus } from './types.js';

export type EventType = 'ADDED' | 'MODIFIED' | 'DELETED';

interface HistoryEntry {
  rv: number;
  type: EventType;
  key: string;
  object: KubeObject;
  previous?: KubeObject;
}

interface WatchEvent {
  type: EventType | 'BOOKMARK' | 'ERROR';
  object: unknown;
}

export interface Watcher {
  type: ResourceType;
  version: string;
  namespace?: string;
  labels: LabelRequirement[];
  fields: FieldRequirement[];
  bookmarks: boolean;
  send(event: WatchEvent): void;
  close(): void;
}

/** The events kept for replay (until compaction, as etcd keeps them) and the watches they are delivered to. */
export class WatchHub {
  /** Watches from a resourceVersion below this get 410 Expired. */
  private compactedRv = 0;
  private history: HistoryEntry[] = [];
  readonly watchers = new Set<Watcher>();

  constructor(
    private readonly historyLimit: number,
    private readonly currentRv: () => number,
  ) {}

  /** Records a committed change for replay and tells the watchers of its type. */
  record(entry: HistoryEntry): void {
    this.history.push(entry);
    if (this.history.length > this.historyLimit) {
      const dropped = this.history.splice(0, this.history.length - this.historyLimit);
      this.compactedRv = dropped[dropped.length - 1]?.rv ?? this.compactedRv;
    }
    for (const w of [...this.watchers]) if (typeKey(w.type) === entry.key) this.deliver(w, entry);
  }

  private deliver(w: Watcher, entry: HistoryEntry): void {
    if (entry.object.metadata.namespace !== w.namespace && w.namespace !== undefined) return;
    const matches = (o: KubeObject | undefined): boolean => !!o && matchesLabels(o, w.labels) && matchesFields(o, w.fields);
    const nowIn = matches(entry.object);
    const wasIn = entry.type === 'ADDED' ? false : matches(entry.previous);
    let type: EventType | undefined;
    let object = entry.object;
    if (entry.type === 'DELETED') type = wasIn || nowIn ? 'DELETED' : undefined;
    else if (nowIn) type = wasIn || entry.type === 'ADDED' ? entry.type : 'ADDED';
    else if (wasIn) {
      // Leaving the selector looks like a deletion of the old state, at the new resourceVersion.
      type = 'DELETED';
      object = { ...clone(entry.previous as KubeObject), metadata: { ...clone((entry.previous as KubeObject).metadata), resourceVersion: String(entry.rv) } };
    }
    if (type) w.send({ type, object: present(w.type, w.version, object) });
  }

  /**
   * Replays the history after `resourceVersion` to a new watch.
   * Returns false after sending a 410 Expired ERROR event (the caller ends the stream).
   */
  replay(w: Watcher, resourceVersion: string): boolean {
    const from = Number(resourceVersion);
    if (!Number.isInteger(from) || from < 0) throw badRequest(`invalid resource version: ${resourceVersion}`);
    if (from < this.compactedRv) {
      w.send({ type: 'ERROR', object: this.expired(from) });
      return false;
    }
    for (const e of this.history) if (e.rv > from && e.key === typeKey(w.type)) this.deliver(w, e);
    return true;
  }

  private expired(from: number): KubeStatus {
    return new KubeApiError(410, 'Expired', `too old resource version: ${from} (${this.compactedRv + 1})`).status;
  }

  bookmark(w: Watcher, annotations?: Record<string, string>): WatchEvent {
    const metadata: Obj = { resourceVersion: String(this.currentRv()), creationTimestamp: null };
    if (annotations) metadata.annotations = annotations;
    return { type: 'BOOKMARK', object: { kind: w.type.kind, apiVersion: groupVersion(w.type.group, w.version), metadata } };
  }

  /** Forgets the history: a watch from an older resourceVersion gets 410 Expired. */
  compact(): void {
    this.history = [];
    this.compactedRv = this.currentRv();
  }
}
