import { describe, expect, it } from '@jest/globals';
import { parseContentRange, parseRangeHeader } from '../../src/core/http-range.js';

describe('parseRangeHeader (Range: bytes=…, RFC 9110)', () => {
  it.each([
    ['bytes=0-4', 10, { start: 0, end: 4 }],
    ['bytes=3-3', 10, { start: 3, end: 3 }],
    ['bytes=9-9', 10, { start: 9, end: 9 }],
    ['bytes=5-', 10, { start: 5, end: 9 }],
    ['bytes=0-', 10, { start: 0, end: 9 }],
    ['bytes=-3', 10, { start: 7, end: 9 }],
    ['bytes=-10', 10, { start: 0, end: 9 }],
    ['bytes=-1000', 10, { start: 0, end: 9 }],
    ['bytes=2-1000', 10, { start: 2, end: 9 }],
    ['bytes=0-0', 1, { start: 0, end: 0 }],
    ['bytes=-1', 1, { start: 0, end: 0 }],
    ['BYTES = 1 - 2', 10, { start: 1, end: 2 }],
    [' bytes=1-2 ', 10, { start: 1, end: 2 }],
    ['bytes=0-9007199254740990', 10, { start: 0, end: 9 }],
  ])('%s of %d bytes → %j', (header, size, range) => {
    expect(parseRangeHeader(header, size)).toEqual(range);
  });

  it.each([
    ['bytes=10-', 10],
    ['bytes=10-10', 10],
    ['bytes=100-200', 10],
    ['bytes=5-4', 10],
    ['bytes=-0', 10],
    ['bytes=0-', 0],
    ['bytes=0-0', 0],
    ['bytes=-0', 0],
  ])('%s of %d bytes is unsatisfiable', (header, size) => {
    expect(parseRangeHeader(header, size)).toBe('unsatisfiable');
  });

  it.each([
    [undefined, 10],
    ['', 10],
    ['bytes=-', 10],
    ['items=0-5', 10],
    ['bytes=0-1,3-4', 10],
    ['bytes=a-b', 10],
    ['bytes 0-1', 10],
    ['0-1', 10],
    ['bytes=-1-2', 10],
    // A non-zero suffix on an empty representation is satisfiable, but no 206 can
    // describe zero bytes: the (empty) whole representation is sent instead.
    ['bytes=-5', 0],
  ])('%p of %d bytes → the whole object (undefined)', (header, size) => {
    expect(parseRangeHeader(header, size)).toBeUndefined();
  });
});

describe('parseContentRange (upload PATCH Content-Range)', () => {
  it.each([
    ['0-99', { start: 0, end: 99 }],
    ['100-100', { start: 100, end: 100 }],
    ['bytes 0-99', { start: 0, end: 99 }],
    ['bytes 0-99/200', { start: 0, end: 99 }],
    ['bytes 0-99/*', { start: 0, end: 99 }],
    ['0-99/200', { start: 0, end: 99 }],
    [' 5-9 ', { start: 5, end: 9 }],
    ['BYTES 1-2', { start: 1, end: 2 }],
  ])('%p → %j', (header, range) => {
    expect(parseContentRange(header)).toEqual(range);
  });

  it.each([undefined, ''])('%p (absent) → undefined', (header) => {
    expect(parseContentRange(header)).toBeUndefined();
  });

  it.each(['bytes=0-99', '99-0', '-5', '5-', 'abc', '0-1-2', '0-99/', 'bytes 0-99/x', '0 - 99', '1,2'])('%p is invalid', (header) => {
    expect(parseContentRange(header)).toBe('invalid');
  });
});
