/** Label and field selectors: parsing the query strings and matching objects. */
import { badRequest } from './errors.js';
import { isObj } from './json.js';
import type { ResourceType } from './resources.js';
import type { KubeObject } from './types.js';

export interface LabelRequirement {
  key: string;
  op: 'exists' | 'notexists' | 'eq' | 'neq' | 'in' | 'notin';
  values: string[];
}

function splitOutsideParens(s: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of s) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      parts.push(cur);
      cur = '';
    } else cur += ch;
  }
  parts.push(cur);
  return parts.map((p) => p.trim()).filter((p) => p !== '');
}

export function parseLabelSelector(selector: string | null | undefined): LabelRequirement[] {
  if (!selector) return [];
  return splitOutsideParens(selector).map((term) => {
    let m = /^(!)?\s*([A-Za-z0-9._/-]+)$/.exec(term);
    if (m) return { key: m[2] as string, op: m[1] ? 'notexists' : 'exists', values: [] };
    m = /^([A-Za-z0-9._/-]+)\s*(==|=|!=)\s*([A-Za-z0-9._-]*)$/.exec(term);
    if (m) return { key: m[1] as string, op: m[2] === '!=' ? 'neq' : 'eq', values: [m[3] as string] };
    m = /^([A-Za-z0-9._/-]+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(term);
    if (m) return { key: m[1] as string, op: m[2] as 'in' | 'notin', values: (m[3] as string).split(',').map((v) => v.trim()) };
    throw badRequest(`unable to parse requirement: found '${term}', expected: in, notin, =, ==, !=, gt, lt`);
  });
}

export function matchesLabels(obj: KubeObject, reqs: LabelRequirement[]): boolean {
  const labels = obj.metadata.labels ?? {};
  return reqs.every((r) => {
    const has = Object.hasOwn(labels, r.key);
    const v = labels[r.key];
    switch (r.op) {
      case 'exists':
        return has;
      case 'notexists':
        return !has;
      case 'eq':
      case 'in':
        return has && r.values.includes(v as string);
      case 'neq':
      case 'notin':
        return !has || !r.values.includes(v as string);
    }
  });
}

export interface FieldRequirement {
  key: string;
  negate: boolean;
  value: string;
}

export function parseFieldSelector(selector: string | null | undefined, type: ResourceType): FieldRequirement[] {
  if (!selector) return [];
  const allowed = new Set(['metadata.name', 'metadata.namespace', ...(type.builtin?.fieldSelectors ?? [])]);
  return splitOutsideParens(selector).map((term) => {
    const m = /^([^=!]+)(==|=|!=)(.*)$/.exec(term);
    if (!m) throw badRequest(`invalid selector: '${selector}'; can't understand '${term}'`);
    const key = (m[1] as string).trim();
    if (!allowed.has(key)) throw badRequest(`field label not supported: ${key}`);
    return { key, negate: m[2] === '!=', value: (m[3] as string).trim() };
  });
}

function fieldValue(obj: KubeObject, key: string): string {
  const v = key.split('.').reduce<unknown>((cur, k) => (isObj(cur) ? cur[k] : undefined), obj);
  return v === undefined || v === null ? '' : String(v);
}

export function matchesFields(obj: KubeObject, reqs: FieldRequirement[]): boolean {
  return reqs.every((r) => (fieldValue(obj, r.key) === r.value) !== r.negate);
}

export interface Selection {
  labels: LabelRequirement[];
  fields: FieldRequirement[];
}
