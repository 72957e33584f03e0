/** Inclusive byte range resolved against a known size. */
export interface ResolvedRange {
  start: number;
  end: number;
}

/**
 * Parses a `Range: bytes=…` header against an object of `size` bytes (RFC 9110).
 * Returns `undefined` when the whole object should be sent (no header, another
 * unit, several ranges, a suffix range of an empty object — serving all of it
 * is allowed), `'unsatisfiable'` for a range outside the object (→ 416), or the
 * inclusive range to send.
 */
export function parseRangeHeader(header: string | undefined, size: number): ResolvedRange | 'unsatisfiable' | undefined {
  if (!header) return undefined;
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header);
  if (!m) return undefined;
  const [, a, b] = m;
  if (a === '' && b === '') return undefined;
  if (a === '') {
    // Suffix range: the last N bytes.
    const n = Number(b);
    if (n === 0) return 'unsatisfiable';
    // RFC 9110 §14.1.1: a non-zero suffix is satisfiable even on an empty
    // representation, but no 206 can describe zero bytes: send the (empty) whole.
    if (size === 0) return undefined;
    return { start: Math.max(size - n, 0), end: size - 1 };
  }
  const start = Number(a);
  const end = b === '' ? size - 1 : Math.min(Number(b), size - 1);
  if (start >= size || (b !== '' && Number(b) < start)) return 'unsatisfiable';
  return { start, end };
}

/**
 * Parses an upload PATCH's `Content-Range: <start>-<end>` (the distribution
 * spec's form, without the `bytes ` unit, though that is accepted too).
 */
export function parseContentRange(header: string | undefined): { start: number; end: number } | 'invalid' | undefined {
  if (header === undefined || header === '') return undefined;
  const m = /^\s*(?:bytes\s+)?(\d+)-(\d+)(?:\/(?:\d+|\*))?\s*$/i.exec(header);
  if (!m) return 'invalid';
  const start = Number(m[1]);
  const end = Number(m[2]);
  if (end < start) return 'invalid';
  return { start, end };
}
