/**
 * A cache of one kind of object kept current by list + watch: list once, then
 * watch from the list's resourceVersion, resuming from the last version seen
 * (bookmarks included) when a stream ends, and listing again when the server
 * says that version is gone (410). Each change, and a periodic resync of every
 * cached object, is handed to `onChange`.
 */
import type { Logger } from '../core/log.js';
import type { KubeClient, WatchEvent, WatchHandle } from './kube.js';
import { KubeApiError } from './kube.js';
import { objectKey, type KubeObject, type ResourceType } from './resources.js';

export interface InformerOptions {
  client: KubeClient;
  type: ResourceType;
  /** Namespaces to watch; undefined or empty for all. */
  namespaces?: readonly string[];
  log: Logger;
  /** Every cached object is handed to `onChange` again this often (0: never). */
  resyncMs?: number;
  /** Called with the object's key, the object (undefined once deleted) and the previous version. */
  onChange: (key: string, obj: KubeObject | undefined, previous: KubeObject | undefined) => void;
  /** Delay before retrying a failed list or watch. */
  retryMs?: number;
  /** Called on each full re-list after the server expired our resourceVersion. */
  onRelist?: () => void;
  /**
   * Trims each object before it is cached: the operator watches Secrets and
   * Pods cluster-wide, and keeping whole ones (Helm release Secrets run to
   * megabytes) would cost memory for fields it never reads.
   */
  transform?: (obj: KubeObject) => KubeObject;
}

export class Informer {
  private readonly cache = new Map<string, KubeObject>();
  private readonly watches = new Set<WatchHandle>();
  private stopped = false;
  private resync?: NodeJS.Timeout;
  private readonly loops: Promise<void>[] = [];
  /** Counts re-lists after 410 Gone (tests and metrics read it). */
  relists = 0;

  constructor(private readonly opts: InformerOptions) {}

  /** Starts the list-watch loops; resolves once every scope has been listed. */
  async start(): Promise<void> {
    const scopes = this.opts.namespaces?.length ? [...this.opts.namespaces] : [undefined];
    const synced = scopes.map(
      (ns) =>
        new Promise<void>((resolve) => {
          this.loops.push(this.run(ns, resolve));
        }),
    );
    await Promise.all(synced);
    if (this.opts.resyncMs) {
      this.resync = setInterval(() => {
        for (const [key, obj] of this.cache) this.opts.onChange(key, obj, obj);
      }, this.opts.resyncMs);
      this.resync.unref();
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.resync) clearInterval(this.resync);
    for (const w of this.watches) w.stop();
    await Promise.allSettled(this.loops);
  }

  get(key: string): KubeObject | undefined {
    return this.cache.get(key);
  }

  list(): KubeObject[] {
    return [...this.cache.values()];
  }

  private inScope(obj: KubeObject, ns: string | undefined): boolean {
    return ns === undefined || obj.metadata.namespace === ns;
  }

  private async run(ns: string | undefined, synced: () => void): Promise<void> {
    const { client, type, log } = this.opts;
    const retryMs = this.opts.retryMs ?? 2000;
    while (!this.stopped) {
      let version: string;
      try {
        const listed = await client.list(type, ns);
        this.replace(ns, listed.items);
        version = listed.resourceVersion;
        synced();
      } catch (err) {
        log.warn({ err, resource: type.plural, namespace: ns }, 'list failed; retrying');
        await sleep(retryMs);
        continue;
      }
      // Watch until the server says our version is too old.
      while (!this.stopped) {
        let gone = false;
        try {
          let handle: WatchHandle | undefined;
          handle = await client.watch(type, ns, version, (e) => {
            const next = this.apply(e);
            if (next === 'gone') {
              gone = true;
              handle?.stop();
            } else if (next) version = next;
          });
          this.watches.add(handle);
          // stop() may have run while this watch was being opened: it could not end it then.
          if (gone || this.stopped) handle.stop();
          try {
            await handle.done;
          } finally {
            this.watches.delete(handle);
          }
        } catch (err) {
          if (err instanceof KubeApiError && err.status === 410) gone = true;
          else if ((err as { statusCode?: number }).statusCode === 410) gone = true;
          else if (!this.stopped) {
            log.warn({ err, resource: type.plural, namespace: ns }, 'watch failed; resuming');
            await sleep(retryMs);
          }
        }
        if (gone) {
          this.relists++;
          this.opts.onRelist?.();
          log.info({ resource: type.plural, namespace: ns }, 'resource version expired; listing again');
          break;
        }
      }
    }
  }

  /** Applies one watch event; resolves the version to resume from, or 'gone' on 410. */
  private apply(e: WatchEvent): string | 'gone' | undefined {
    if (e.type === 'ERROR') {
      return e.object.code === 410 ? 'gone' : undefined;
    }
    const version = e.object.metadata?.resourceVersion;
    if (e.type === 'BOOKMARK') return version;
    const obj = this.trim({ apiVersion: this.typeApiVersion(), kind: this.opts.type.kind, ...e.object });
    const key = objectKey(obj);
    const previous = this.cache.get(key);
    if (e.type === 'DELETED') {
      this.cache.delete(key);
      this.opts.onChange(key, undefined, previous);
    } else {
      this.cache.set(key, obj);
      this.opts.onChange(key, obj, previous);
    }
    return version;
  }

  private trim(obj: KubeObject): KubeObject {
    return this.opts.transform ? this.opts.transform(obj) : obj;
  }

  private typeApiVersion(): string {
    const t = this.opts.type;
    return t.group ? `${t.group}/${t.version}` : t.version;
  }

  /** Makes the cache (within one scope) equal to a fresh list, reporting what changed. */
  private replace(ns: string | undefined, items: KubeObject[]): void {
    const seen = new Set<string>();
    for (const item of items) {
      const obj = this.trim(item);
      const key = objectKey(obj);
      seen.add(key);
      const previous = this.cache.get(key);
      this.cache.set(key, obj);
      if (previous?.metadata.resourceVersion !== obj.metadata.resourceVersion || !previous) this.opts.onChange(key, obj, previous);
    }
    for (const [key, obj] of [...this.cache]) {
      if (this.inScope(obj, ns) && !seen.has(key)) {
        this.cache.delete(key);
        this.opts.onChange(key, undefined, obj);
      }
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}
