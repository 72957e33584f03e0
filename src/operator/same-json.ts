/**
 * Deep equality of JSON values regardless of key order: PostgreSQL's jsonb and
 * the Kubernetes API server both reorder object keys, so a byte comparison of
 * what was written with what is read back would see a change on every resync.
 * Keys holding `undefined` count as absent, as they do once serialised.
 */
export function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((v, i) => sameJson(v, b[i]));
  }
  if (a === null || b === null || typeof a !== 'object' || typeof b !== 'object') return false;
  const ao = a as Record<string, unknown>;
  const bo = b as Record<string, unknown>;
  const keys = new Set([...Object.keys(ao), ...Object.keys(bo)]);
  for (const k of keys) {
    if (!sameJson(ao[k], bo[k])) return false;
  }
  return true;
}
