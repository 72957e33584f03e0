import { describe, expect, it } from '@jest/globals';
import { CircuitBreaker, type BreakerState } from '../../src/registry/repos/upstream-health.js';

function breaker(threshold = 3, openMillis = 1000) {
  let now = 0;
  const changes: BreakerState[] = [];
  const b = new CircuitBreaker({ failureThreshold: threshold, openMillis }, () => now, (s) => changes.push(s));
  return { b, changes, advance: (ms: number) => (now += ms) };
}

describe('CircuitBreaker', () => {
  it('opens after the threshold of consecutive failures and refuses calls for the period', () => {
    const { b, changes } = breaker();
    for (let i = 0; i < 2; i++) b.failure(b.admit()!);
    expect(b.isDown()).toBe(false);
    expect(b.state).toBe('closed');
    b.failure(b.admit()!);
    expect(b.state).toBe('open');
    expect(b.isDown()).toBe(true);
    expect(b.admit()).toBeUndefined();
    expect(changes).toEqual(['open']);
  });

  it('counts only consecutive failures: a success in between resets the count', () => {
    const { b } = breaker();
    b.failure(b.admit()!);
    b.failure(b.admit()!);
    b.success(b.admit()!);
    b.failure(b.admit()!);
    b.failure(b.admit()!);
    expect(b.state).toBe('closed');
  });

  it('after the period lets exactly one probe through; its success closes the breaker', () => {
    const { b, advance, changes } = breaker();
    for (let i = 0; i < 3; i++) b.failure(b.admit()!);
    advance(999);
    expect(b.admit()).toBeUndefined();
    advance(1);
    expect(b.isDown()).toBe(false);
    const probe = b.admit()!;
    expect(probe.probe).toBe(true);
    expect(b.state).toBe('half-open');
    expect(b.isDown()).toBe(true);
    expect(b.admit()).toBeUndefined();
    b.success(probe);
    expect(b.state).toBe('closed');
    expect(b.admit()).toEqual({ probe: false });
    expect(changes).toEqual(['open', 'half-open', 'closed']);
  });

  it("a failed probe opens it for another full period", () => {
    const { b, advance } = breaker();
    for (let i = 0; i < 3; i++) b.failure(b.admit()!);
    advance(1000);
    b.failure(b.admit()!);
    expect(b.state).toBe('open');
    advance(999);
    expect(b.admit()).toBeUndefined();
    advance(1);
    expect(b.admit()?.probe).toBe(true);
  });

  it('a released probe (caller aborted) frees the slot for the next call', () => {
    const { b, advance } = breaker();
    for (let i = 0; i < 3; i++) b.failure(b.admit()!);
    advance(1000);
    b.release(b.admit()!);
    expect(b.state).toBe('half-open');
    expect(b.admit()?.probe).toBe(true);
  });

  it('ignores late reports from calls admitted before it opened', () => {
    const { b } = breaker();
    const early = b.admit()!;
    for (let i = 0; i < 3; i++) b.failure(b.admit()!);
    b.success(early);
    expect(b.state).toBe('open');
    b.failure(early);
    expect(b.isDown()).toBe(true);
  });
});
