/**
 * Keeps `protected_digests` equal to the digests running Pods use, so garbage
 * collection and tag retention never remove an image a node may pull again
 * (a restart, a new replica). Pod churn is bursty, so changes are folded into
 * one sync a moment later.
 */
import type { Logger } from '../core/log.js';
import type { MetadataStore } from '../metadata/store.js';
import { digestsInUse, imageHosts, POD_REASON, protectionChanges } from './in-use.js';
import type { Informer } from './informer.js';
import type { OperatorMetrics } from './metrics.js';

export class PodProtector {
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private again = false;

  constructor(
    private readonly deps: {
      pods: Pick<Informer, 'list'>;
      store: MetadataStore;
      log: Logger;
      metrics: OperatorMetrics;
      /**
       * Whether images pulled from a registry host count: drydock's own host, or an
       * upstream a remote repository mirrors. Undefined: every image counts.
       */
      counts?: (host: string) => Promise<boolean>;
      debounceMs?: number;
    },
  ) {}

  /** A Pod changed: sync soon. */
  poke(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.sync();
    }, this.deps.debounceMs ?? 500);
    this.timer.unref();
  }

  stop(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    return this.running ?? Promise.resolve();
  }

  /** Brings the table in line with the Pods now cached; one sync at a time. */
  async sync(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      do {
        this.again = false;
        try {
          await this.syncOnce();
        } catch (err) {
          this.deps.log.warn({ err }, 'could not update the digests protected for running Pods');
          this.poke();
        }
      } while (this.again);
    })().finally(() => (this.running = undefined));
    return this.running;
  }

  private async syncOnce(): Promise<void> {
    const { store, pods, counts, metrics } = this.deps;
    const running = pods.list();
    let hosts: string[] | undefined;
    if (counts) {
      hosts = [];
      for (const host of imageHosts(running)) if (await counts(host)) hosts.push(host);
    }
    const inUse = digestsInUse(running, hosts);
    const { protect, unprotect } = protectionChanges(inUse, await store.gc.listProtected());
    for (const p of protect) await store.gc.protect({ digest: p.digest, reason: POD_REASON, pod: p.pod });
    for (const digest of unprotect) await store.gc.unprotect(digest);
    metrics.protectedDigests.set(inUse.size);
    if (protect.length || unprotect.length) this.deps.log.info({ protected: protect.length, released: unprotect.length }, 'digests in use by Pods updated');
  }
}
