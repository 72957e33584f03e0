import { afterEach, describe, expect, it, jest } from '@jest/globals';
import { LruCache } from '../../src/core/lru.js';

afterEach(() => {
  jest.restoreAllMocks();
});

/** Freezes Date.now at `t.now`, which the test then moves by hand. */
function clock(start = 1_000_000): { now: number } {
  const t = { now: start };
  jest.spyOn(Date, 'now').mockImplementation(() => t.now);
  return t;
}

describe('LruCache', () => {
  it('stores, reads, overwrites and deletes', () => {
    const c = new LruCache<string, number>(10);
    expect(c.get('a')).toBeUndefined();
    c.set('a', 1);
    c.set('b', 2);
    expect(c.get('a')).toBe(1);
    c.set('a', 3);
    expect(c.get('a')).toBe(3);
    expect(c.size).toBe(2);
    c.delete('a');
    expect(c.get('a')).toBeUndefined();
    c.delete('not-there');
    expect(c.size).toBe(1);
  });

  it('keeps falsy values apart from absence', () => {
    const c = new LruCache<string, number | null | string>(10);
    c.set('zero', 0);
    c.set('null', null);
    c.set('empty', '');
    expect(c.get('zero')).toBe(0);
    expect(c.get('null')).toBeNull();
    expect(c.get('empty')).toBe('');
  });

  it('evicts the least recently used entry past maxEntries', () => {
    const c = new LruCache<string, number>(3);
    c.set('a', 1);
    c.set('b', 2);
    c.set('c', 3);
    c.set('d', 4);
    expect(c.size).toBe(3);
    expect(c.get('a')).toBeUndefined();
    expect([c.get('b'), c.get('c'), c.get('d')]).toEqual([2, 3, 4]);
  });

  it('a get makes an entry recently used', () => {
    const c = new LruCache<string, number>(3);
    c.set('a', 1);
    c.set('b', 2);
    c.set('c', 3);
    expect(c.get('a')).toBe(1);
    c.set('d', 4);
    expect(c.get('b')).toBeUndefined();
    expect(c.get('a')).toBe(1);
  });

  it('a set of an existing key makes it recently used without growing', () => {
    const c = new LruCache<string, number>(2);
    c.set('a', 1);
    c.set('b', 2);
    c.set('a', 10);
    expect(c.size).toBe(2);
    c.set('c', 3);
    expect(c.get('b')).toBeUndefined();
    expect(c.get('a')).toBe(10);
    expect(c.get('c')).toBe(3);
  });

  it('with maxEntries 1 keeps only the last entry', () => {
    const c = new LruCache<string, number>(1);
    c.set('a', 1);
    c.set('b', 2);
    expect(c.size).toBe(1);
    expect(c.get('a')).toBeUndefined();
    expect(c.get('b')).toBe(2);
  });

  it('entries expire after the TTL', () => {
    const t = clock();
    const c = new LruCache<string, number>(10, 1000);
    c.set('a', 1);
    t.now += 1000;
    expect(c.get('a')).toBe(1);
    t.now += 1;
    expect(c.get('a')).toBeUndefined();
    // An expired entry is dropped on read.
    expect(c.size).toBe(0);
  });

  it('reading does not extend the TTL; setting again does', () => {
    const t = clock();
    const c = new LruCache<string, number>(10, 1000);
    c.set('a', 1);
    t.now += 900;
    expect(c.get('a')).toBe(1);
    t.now += 200;
    expect(c.get('a')).toBeUndefined();
    c.set('a', 2);
    t.now += 900;
    c.set('a', 3);
    t.now += 900;
    expect(c.get('a')).toBe(3);
  });

  it('without a TTL entries never expire', () => {
    const t = clock();
    const c = new LruCache<string, number>(10);
    c.set('a', 1);
    t.now += 1e12;
    expect(c.get('a')).toBe(1);
  });

  it('deleteWhere drops the matching keys only', () => {
    const c = new LruCache<string, number>(10);
    c.set('repo-a\0img\0d1', 1);
    c.set('repo-a\0img\0d2', 2);
    c.set('repo-ab\0img\0d1', 3);
    c.deleteWhere((k) => k.startsWith('repo-a\0'));
    expect(c.size).toBe(1);
    expect(c.get('repo-ab\0img\0d1')).toBe(3);
  });

  it('clear empties it', () => {
    const c = new LruCache<number, string>(10);
    c.set(1, 'x');
    c.set(2, 'y');
    c.clear();
    expect(c.size).toBe(0);
    expect(c.get(1)).toBeUndefined();
  });
});
