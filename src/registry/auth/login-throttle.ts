import { RegistryError } from '../../core/errors.js';

export interface ThrottleLimits {
  /** Failures allowed per user name within the window. */
  perUser: number;
  /** Failures allowed per client address within the window. */
  perAddress: number;
  windowMs: number;
}

export const DEFAULT_THROTTLE: ThrottleLimits = { perUser: 10, perAddress: 100, windowMs: 5 * 60_000 };

/**
 * Slows password guessing: after too many failed logins for one user name, or
 * from one client address, within a sliding window, further attempts are
 * refused with 429 TOOMANYREQUESTS and a Retry-After until the oldest failure
 * leaves the window. Per process: each pod counts on its own.
 */
export class LoginThrottle {
  private readonly failures = new Map<string, number[]>();

  constructor(private readonly limits: ThrottleLimits = DEFAULT_THROTTLE) {}

  /** Throws TOOMANYREQUESTS when either key is over its limit. */
  check(user: string, address: string | undefined, now = Date.now()): void {
    const wait = Math.max(this.waitMs(`u:${user}`, this.limits.perUser, now), address ? this.waitMs(`a:${address}`, this.limits.perAddress, now) : 0);
    if (wait > 0) {
      const seconds = Math.ceil(wait / 1000);
      throw new RegistryError('TOOMANYREQUESTS', `too many failed logins; try again in ${seconds} s`, undefined, { 'Retry-After': String(seconds) });
    }
  }

  fail(user: string, address: string | undefined, now = Date.now()): void {
    this.push(`u:${user}`, now);
    if (address) this.push(`a:${address}`, now);
    if (this.failures.size > 100_000) this.prune(now);
  }

  /** A successful login clears the user's failures (not the address's: one account may be guessed from many). */
  succeed(user: string): void {
    this.failures.delete(`u:${user}`);
  }

  private waitMs(key: string, limit: number, now: number): number {
    const list = this.recent(key, now);
    if (list.length < limit) return 0;
    return list[list.length - limit]! + this.limits.windowMs - now;
  }

  private push(key: string, now: number): void {
    const list = this.recent(key, now);
    list.push(now);
    this.failures.set(key, list);
  }

  private recent(key: string, now: number): number[] {
    const list = this.failures.get(key);
    if (!list) return [];
    const kept = list.filter((t) => now - t < this.limits.windowMs);
    if (kept.length) this.failures.set(key, kept);
    else this.failures.delete(key);
    return kept;
  }

  private prune(now: number): void {
    for (const key of [...this.failures.keys()]) this.recent(key, now);
  }
}
