/** Table output (`as=Table`) with printer columns, and PartialObjectMetadata. */
import { clone, isObj, type Obj } from './json.js';
import { evalJsonPath } from './jsonpath.js';
import { AGE_COLUMN, type PrinterColumn, type ResourceType } from './resources.js';
import type { KubeObject } from './types.js';

/** apimachinery's HumanDuration: the AGE kubectl prints. */
function humanDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < -1) return '<invalid>';
  if (seconds < 0) return '0s';
  if (seconds < 120) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 10) return seconds % 60 === 0 ? `${minutes}m` : `${minutes}m${seconds % 60}s`;
  if (minutes < 180) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 8) return minutes % 60 === 0 ? `${hours}h` : `${hours}h${minutes % 60}m`;
  if (hours < 48) return `${hours}h`;
  if (hours < 24 * 8) return hours % 24 === 0 ? `${Math.floor(hours / 24)}d` : `${Math.floor(hours / 24)}d${hours % 24}h`;
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24)}d`;
  const days = Math.floor(hours / 24);
  if (hours < 24 * 365 * 8) return days % 365 === 0 ? `${Math.floor(days / 365)}y` : `${Math.floor(days / 365)}y${days % 365}d`;
  return `${Math.floor(days / 365)}y`;
}

function cellFor(column: PrinterColumn, obj: KubeObject): unknown {
  const [value] = evalJsonPath(obj, column.jsonPath);
  if (value === undefined || value === null) return null;
  switch (column.type) {
    case 'date':
      return typeof value === 'string' && !Number.isNaN(Date.parse(value)) ? humanDuration(Date.now() - Date.parse(value)) : null;
    case 'integer':
      return typeof value === 'number' && Number.isInteger(value) ? value : null;
    case 'number':
      return typeof value === 'number' ? value : null;
    case 'boolean':
      return typeof value === 'boolean' ? value : null;
    default:
      return typeof value === 'string' ? value : isObj(value) || Array.isArray(value) ? JSON.stringify(value) : String(value);
  }
}

function columnsOf(type: ResourceType, version: string): PrinterColumn[] {
  if (type.crd) return type.crd.columns.get(version) ?? [AGE_COLUMN];
  return [...(type.builtin?.columns ?? []), AGE_COLUMN];
}

export type IncludeObject = 'None' | 'Metadata' | 'Object';

export function partialObjectMetadata(obj: KubeObject, tableVersion: string): KubeObject {
  return { kind: 'PartialObjectMetadata', apiVersion: `meta.k8s.io/${tableVersion}`, metadata: clone(obj.metadata) };
}

export function toTable(type: ResourceType, version: string, objs: KubeObject[], include: IncludeObject, rv: string, tableVersion: string): Obj {
  const columns = columnsOf(type, version);
  return {
    kind: 'Table',
    apiVersion: `meta.k8s.io/${tableVersion}`,
    metadata: { resourceVersion: rv },
    columnDefinitions: [
      { name: 'Name', type: 'string', format: 'name', description: 'Name must be unique within a namespace.', priority: 0 },
      ...columns.map((c) => ({ name: c.name, type: c.type, format: c.format ?? '', description: c.description ?? '', priority: c.priority ?? 0 })),
    ],
    rows: objs.map((o) => {
      const row: Obj = { cells: [o.metadata.name, ...columns.map((c) => cellFor(c, o))] };
      if (include === 'Object') row.object = o;
      else if (include === 'Metadata') row.object = partialObjectMetadata(o, tableVersion);
      return row;
    }),
  };
}
