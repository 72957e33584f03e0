/**
 * Leader election on a `coordination.k8s.io/v1` Lease, so that of several
 * operator replicas exactly one reconciles. As client-go does, expiry is judged
 * by this process's clock from when it last saw the Lease change — never by
 * comparing another machine's `renewTime` with ours — and every write carries
 * the resourceVersion it read, so two candidates cannot both win a race.
 */
import type { Logger } from '../core/log.js';
import { isConflict, type KubeClient } from './kube.js';
import { LEASES, type KubeObject } from './resources.js';

interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

export interface LeaderElectorOptions {
  client: KubeClient;
  namespace: string;
  name?: string;
  /** This candidate; the pod name in a cluster. */
  identity: string;
  leaseDurationSecs?: number;
  renewEveryMs?: number;
  retryMs?: number;
  log: Logger;
  onStartedLeading: () => void;
  onStoppedLeading: () => void;
}

/** Kubernetes MicroTime: RFC 3339 with microseconds. */
function microTime(d: Date): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

export class LeaderElector {
  private leader = false;
  private stopped = false;
  private observed?: { resourceVersion?: string; holder?: string; at: number };
  private lastRenew = 0;
  private loop?: Promise<void>;
  private wake?: () => void;

  constructor(private readonly opts: LeaderElectorOptions) {}

  get isLeader(): boolean {
    return this.leader;
  }

  start(): void {
    this.loop ??= this.run();
  }

  /** Stops campaigning; a leader gives the Lease up so a standby takes over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.loop;
    if (this.leader) {
      this.leader = false;
      await this.release().catch((err: unknown) => this.opts.log.warn({ err }, 'could not release the leader Lease'));
      this.opts.onStoppedLeading();
    }
  }

  private get durationMs(): number {
    return (this.opts.leaseDurationSecs ?? 15) * 1000;
  }

  private async run(): Promise<void> {
    const { log } = this.opts;
    while (!this.stopped) {
      let held = false;
      try {
        held = await this.tryAcquireOrRenew();
      } catch (err) {
        log.warn({ err }, 'leader election: the Lease could not be read or written');
      }
      const now = Date.now();
      if (held) {
        this.lastRenew = now;
        if (!this.leader) {
          this.leader = true;
          log.info({ identity: this.opts.identity, lease: `${this.opts.namespace}/${this.name}` }, 'became the leader');
          this.opts.onStartedLeading();
        }
      } else if (this.leader && (now - this.lastRenew > this.durationMs || this.observed?.holder !== this.opts.identity)) {
        // Past the renew deadline another replica may already lead: stop before it starts.
        this.leader = false;
        log.warn({ identity: this.opts.identity }, 'lost the leadership');
        this.opts.onStoppedLeading();
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, this.leader ? (this.opts.renewEveryMs ?? this.durationMs / 3) : (this.opts.retryMs ?? 2000));
        t.unref();
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  }

  private get name(): string {
    return this.opts.name ?? 'drydock-operator';
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const { client, namespace, identity } = this.opts;
    const now = new Date();
    const lease = await client.get(LEASES, namespace, this.name);
    const fresh: LeaseSpec = {
      holderIdentity: identity,
      leaseDurationSeconds: Math.round(this.durationMs / 1000),
      acquireTime: microTime(now),
      renewTime: microTime(now),
      leaseTransitions: 0,
    };
    if (!lease) {
      try {
        const created = await client.create(LEASES, { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: this.name, namespace }, spec: fresh });
        this.observe(created);
        return true;
      } catch (e) {
        if (isConflict(e)) return false;
        throw e;
      }
    }
    const spec = (lease.spec ?? {}) as LeaseSpec;
    const changed = !this.observed || this.observed.resourceVersion !== lease.metadata.resourceVersion;
    if (changed) this.observe(lease);
    const holder = spec.holderIdentity;
    const expired = Date.now() - this.observed!.at > (spec.leaseDurationSeconds ?? 15) * 1000;
    if (holder && holder !== identity && !expired) return false;
    const next: LeaseSpec =
      holder === identity
        ? { ...spec, renewTime: microTime(now), leaseDurationSeconds: fresh.leaseDurationSeconds }
        : { ...fresh, leaseTransitions: (spec.leaseTransitions ?? 0) + 1 };
    try {
      const written = await client.replace(LEASES, { ...lease, spec: next });
      this.observe(written);
      return true;
    } catch (e) {
      if (isConflict(e)) return false;
      throw e;
    }
  }

  private observe(lease: KubeObject): void {
    this.observed = { resourceVersion: lease.metadata.resourceVersion, holder: (lease.spec as LeaseSpec | undefined)?.holderIdentity, at: Date.now() };
  }

  private async release(): Promise<void> {
    const lease = await this.opts.client.get(LEASES, this.opts.namespace, this.name);
    if (!lease || (lease.spec as LeaseSpec | undefined)?.holderIdentity !== this.opts.identity) return;
    await this.opts.client.replace(LEASES, { ...lease, spec: { ...(lease.spec as LeaseSpec), holderIdentity: '', leaseDurationSeconds: 1 } });
  }
}
