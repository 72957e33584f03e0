/**
 * A circuit breaker for one upstream: after `failureThreshold` consecutive
 * failed requests the upstream is "down" for `openMillis`, and calls are refused
 * without dialing — a dead upstream then costs a pull nothing, and the remote
 * repository serves its cache at once instead of after retries and timeouts.
 * When the period ends one request goes through (half-open): its success closes
 * the breaker, its failure opens it for another period.
 */
export interface BreakerOptions {
  /** Consecutive failures that open the breaker; default 5. */
  failureThreshold?: number;
  /** How long it stays open; default 30 s. */
  openMillis?: number;
}

export type BreakerState = 'closed' | 'open' | 'half-open';

/** Handed out by `admit`; report the outcome with it exactly once. */
export interface Permit {
  readonly probe: boolean;
}

export class CircuitBreaker {
  readonly failureThreshold: number;
  readonly openMillis: number;
  private failures = 0;
  private openUntil = 0;
  private current: BreakerState = 'closed';
  private probeOut = false;

  constructor(
    opts: BreakerOptions,
    private readonly now: () => number,
    private readonly onChange: (state: BreakerState, failures: number) => void = () => undefined,
  ) {
    this.failureThreshold = opts.failureThreshold ?? 5;
    this.openMillis = opts.openMillis ?? 30_000;
  }

  get state(): BreakerState {
    return this.current;
  }

  /** True while calls are refused: open and within the period, or half-open with the probe out. */
  isDown(): boolean {
    if (this.current === 'open') return this.now() < this.openUntil;
    return this.current === 'half-open' && this.probeOut;
  }

  /** A permit to make a request, or undefined when the upstream is down. */
  admit(): Permit | undefined {
    if (this.current === 'closed') return { probe: false };
    if (this.current === 'open') {
      if (this.now() < this.openUntil) return undefined;
      this.set('half-open');
    }
    if (this.probeOut) return undefined;
    this.probeOut = true;
    return { probe: true };
  }

  /** The upstream answered (any status that is not a failure, 404 and 401 included). */
  success(permit: Permit): void {
    if (permit.probe) {
      this.probeOut = false;
      this.failures = 0;
      this.set('closed');
    } else if (this.current === 'closed') {
      this.failures = 0;
    }
  }

  /** The request failed after its retries (network error, timeout, 5xx, 429). */
  failure(permit: Permit): void {
    if (permit.probe) {
      this.probeOut = false;
      this.open();
      return;
    }
    // A call admitted before the breaker opened reports late; it changes nothing then.
    if (this.current !== 'closed') return;
    this.failures++;
    if (this.failures >= this.failureThreshold) this.open();
  }

  /** Neither outcome (the caller aborted, or a non-network error): a probe's slot is freed for the next call. */
  release(permit: Permit): void {
    if (permit.probe) this.probeOut = false;
  }

  private open(): void {
    this.openUntil = this.now() + this.openMillis;
    this.set('open');
  }

  private set(state: BreakerState): void {
    const changed = state !== this.current || state === 'open';
    this.current = state;
    if (changed) this.onChange(state, this.failures);
  }
}
