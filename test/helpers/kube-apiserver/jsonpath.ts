/** Evaluates the JSONPath of a printer column against an object. */
import { isObj } from './json.js';

type PathStep = { field: string } | { index: number } | { wildcard: true } | { filter: { path: string[]; op: '==' | '!='; value: string } };

/** The JSONPath subset printer columns use: `.a.b`, `['a']`, `[0]`, `[*]`, `[?(@.k=="v")]`. */
function parseJsonPath(expr: string): PathStep[] {
  const steps: PathStep[] = [];
  let s = expr.trim().replace(/^\{(.*)\}$/, '$1').replace(/^\$/, '');
  while (s.length) {
    let m: RegExpExecArray | null;
    if ((m = /^\.([A-Za-z0-9_-]+)/.exec(s))) steps.push({ field: m[1] as string });
    else if ((m = /^\[['"]([^'"]+)['"]\]/.exec(s))) steps.push({ field: m[1] as string });
    else if ((m = /^\[(\d+)\]/.exec(s))) steps.push({ index: Number(m[1]) });
    else if ((m = /^\[\*\]/.exec(s))) steps.push({ wildcard: true });
    else if ((m = /^\[\?\(@((?:\.[A-Za-z0-9_-]+)+)\s*(==|!=)\s*(?:"([^"]*)"|'([^']*)'|([^)\s]+))\)\]/.exec(s))) {
      steps.push({ filter: { path: (m[1] as string).slice(1).split('.'), op: m[2] as '==' | '!=', value: m[3] ?? m[4] ?? m[5] ?? '' } });
    } else return [];
    s = s.slice(m[0].length);
  }
  return steps;
}

/** All values the path selects (empty when the path is unsupported or matches nothing). */
export function evalJsonPath(root: unknown, expr: string): unknown[] {
  let cur: unknown[] = [root];
  for (const step of parseJsonPath(expr)) {
    const next: unknown[] = [];
    for (const v of cur) {
      if ('field' in step) {
        if (isObj(v) && v[step.field] !== undefined) next.push(v[step.field]);
      } else if ('index' in step) {
        if (Array.isArray(v) && step.index < v.length) next.push(v[step.index]);
      } else if ('wildcard' in step) {
        if (Array.isArray(v)) next.push(...v);
        else if (isObj(v)) next.push(...Object.values(v));
      } else if (Array.isArray(v)) {
        const { path, op, value } = step.filter;
        for (const item of v) {
          const got = path.reduce<unknown>((c, k) => (isObj(c) ? c[k] : undefined), item);
          if (got !== undefined && (String(got) === value) === (op === '==')) next.push(item);
        }
      }
    }
    cur = next;
  }
  return cur;
}
