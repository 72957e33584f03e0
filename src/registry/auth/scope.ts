/** A Docker token scope: `repository:docker-local/team/app:pull,push`, `registry:catalog:*`. */
export interface Scope {
  type: string;
  name: string;
  actions: string[];
}

const TYPE_RE = /^[a-z0-9]+(?:\([a-z0-9]+\))?$/;

/**
 * Parses one scope. The name may itself contain `:` (a host with a port), so
 * the type ends at the first `:` and the actions start after the last one.
 * Undefined when malformed.
 */
export function parseScope(s: string): Scope | undefined {
  const first = s.indexOf(':');
  const last = s.lastIndexOf(':');
  if (first <= 0 || last === first) return undefined;
  const type = s.slice(0, first).replace(/\(.*\)$/, '');
  if (!TYPE_RE.test(s.slice(0, first))) return undefined;
  const name = s.slice(first + 1, last);
  if (name === '' || /\s/.test(name)) return undefined;
  const actions = s
    .slice(last + 1)
    .split(',')
    .map((a) => a.trim())
    .filter((a) => a !== '');
  if (actions.length === 0 || actions.some((a) => !/^[a-z*]+$/.test(a))) return undefined;
  return { type, name, actions: [...new Set(actions)] };
}

/** Parses every `scope` query value (each may hold several space-separated scopes); malformed ones are dropped. */
export function parseScopes(values: readonly string[]): Scope[] {
  const out: Scope[] = [];
  for (const v of values) {
    for (const part of v.split(' ')) {
      if (part === '') continue;
      const s = parseScope(part);
      if (s) out.push(s);
    }
  }
  return out;
}

export function formatScope(s: Scope): string {
  return `${s.type}:${s.name}:${s.actions.join(',')}`;
}
