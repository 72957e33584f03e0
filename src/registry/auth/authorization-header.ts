/** Credentials carried by an `Authorization` header. */
export type Credentials = { scheme: 'basic'; user: string; password: string } | { scheme: 'bearer'; token: string };

/**
 * Parses `Basic <base64(user:password)>` and `Bearer <token>` (scheme names
 * case-insensitive). Undefined without a header; `'invalid'` for anything
 * malformed or of another scheme.
 */
export function parseAuthorization(header: string | undefined): Credentials | 'invalid' | undefined {
  if (header === undefined || header === '') return undefined;
  const m = /^\s*([A-Za-z]+)\s+(\S+)\s*$/.exec(header);
  if (!m) return 'invalid';
  const scheme = m[1]!.toLowerCase();
  const value = m[2]!;
  if (scheme === 'bearer') return { scheme, token: value };
  if (scheme !== 'basic') return 'invalid';
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(value)) return 'invalid';
  const decoded = Buffer.from(value, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0) return 'invalid';
  return { scheme, user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}
