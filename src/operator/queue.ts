/**
 * A work queue of object keys, as controllers keep them: a key is queued at
 * most once however many events name it, never worked on by two workers at
 * once (an event during its run queues it again for after), and retried with
 * exponential backoff when its work fails.
 */
export interface WorkResult {
  /** Come back after this long even without an event (polling something outside Kubernetes). */
  requeueAfterMs?: number;
  /** The work failed in a way it retries on its own (counted apart from successes). */
  retrying?: boolean;
}

export interface WorkQueueOptions {
  worker: (key: string) => Promise<WorkResult | void>;
  concurrency?: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Called when the work for a key failed (it is retried). */
  onError?: (key: string, err: unknown, failures: number) => void;
}

export class WorkQueue {
  private readonly pending: string[] = [];
  private readonly queued = new Set<string>();
  private readonly running = new Set<string>();
  private readonly dirty = new Set<string>();
  private readonly failures = new Map<string, number>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly idle: Array<() => void> = [];
  private stopped = false;

  constructor(private readonly opts: WorkQueueOptions) {}

  /** Queues `key` now (a pending delayed add is superseded). */
  add(key: string): void {
    if (this.stopped) return;
    this.clearTimer(key);
    if (this.running.has(key)) {
      this.dirty.add(key);
      return;
    }
    if (this.queued.has(key)) return;
    this.queued.add(key);
    this.pending.push(key);
    this.pump();
  }

  /** Queues `key` after `ms`, unless something queues it sooner. */
  addAfter(key: string, ms: number): void {
    if (this.stopped) return;
    if (this.timers.has(key) || this.queued.has(key)) return;
    const timer = setTimeout(() => {
      this.timers.delete(key);
      this.add(key);
    }, ms);
    timer.unref();
    this.timers.set(key, timer);
  }

  /** Keys waiting (not counting those being worked on). */
  depth(): number {
    return this.pending.length;
  }

  /** The delay before the `failures`-th retry. */
  backoff(failures: number): number {
    const base = this.opts.baseDelayMs ?? 500;
    const max = this.opts.maxDelayMs ?? 5 * 60_000;
    return Math.min(max, base * 2 ** Math.max(0, failures - 1));
  }

  /** How many times the work for `key` failed in a row. */
  failuresOf(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  /** Stops taking work; resolves when the runs in progress end. */
  async shutdown(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    this.pending.length = 0;
    this.queued.clear();
    if (this.running.size) await new Promise<void>((resolve) => this.idle.push(resolve));
  }

  private clearTimer(key: string): void {
    const t = this.timers.get(key);
    if (t) {
      clearTimeout(t);
      this.timers.delete(key);
    }
  }

  private pump(): void {
    const concurrency = this.opts.concurrency ?? 2;
    while (!this.stopped && this.running.size < concurrency && this.pending.length) {
      const key = this.pending.shift()!;
      this.queued.delete(key);
      this.running.add(key);
      void this.run(key);
    }
  }

  private async run(key: string): Promise<void> {
    let next: number | undefined;
    try {
      const result = await this.opts.worker(key);
      this.failures.delete(key);
      next = result?.requeueAfterMs;
    } catch (err) {
      const n = (this.failures.get(key) ?? 0) + 1;
      this.failures.set(key, n);
      this.opts.onError?.(key, err, n);
      next = this.backoff(n);
    }
    this.running.delete(key);
    if (this.dirty.delete(key)) this.add(key);
    else if (next !== undefined) this.addAfter(key, next);
    if (this.stopped && this.running.size === 0) this.idle.splice(0).forEach((resolve) => resolve());
    this.pump();
  }
}
