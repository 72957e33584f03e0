/** The resource type model (one served kind: names, scope, versions, printer columns) and the naming helpers around it. */
import type { FieldError } from './errors.js';
import { clone } from './json.js';
import type { Schema } from './schema.js';
import type { KubeObject } from './types.js';

export interface PrinterColumn {
  name: string;
  type: string;
  format?: string;
  description?: string;
  priority?: number;
  jsonPath: string;
}

/** Per-kind behaviour of the built-in kinds the real server implements in Go. */
export interface BuiltinBehaviour {
  columns: PrinterColumn[];
  /** Field selector keys beyond metadata.name and metadata.namespace. */
  fieldSelectors?: string[];
  /** DELETE answers with the object rather than a Success Status. */
  returnDeletedObject?: boolean;
  /** Defaults set on create (after status is reset). */
  prepareCreate?(obj: KubeObject): void;
  /** Normalisation on every write (create and update). */
  normalize?(obj: KubeObject): void;
  validate?(obj: KubeObject, old: KubeObject | undefined): FieldError[];
  /** JSON Schema-ish definition name in OpenAPI. */
  definition: string;
}

interface CrdBehaviour {
  schemas: Map<string, Schema | undefined>;
  columns: Map<string, PrinterColumn[]>;
}

export interface ResourceType {
  group: string;
  /** Served versions, preferred first. */
  versions: string[];
  storageVersion: string;
  kind: string;
  listKind: string;
  plural: string;
  singular: string;
  namespaced: boolean;
  shortNames: string[];
  categories: string[];
  statusSubresource: boolean;
  builtin?: BuiltinBehaviour;
  crd?: CrdBehaviour;
}

export const VERBS = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];

export function typeKey(t: { group: string; plural: string }): string {
  return `${t.group}/${t.plural}`;
}

export function groupVersion(group: string, version: string): string {
  return group ? `${group}/${version}` : version;
}

export function splitApiVersion(apiVersion: string): { group: string; version: string } {
  const i = apiVersion.indexOf('/');
  return i < 0 ? { group: '', version: apiVersion } : { group: apiVersion.slice(0, i), version: apiVersion.slice(i + 1) };
}

/** `secrets` or `dockerrepositories.drydock.dev`, as error messages name a resource. */
export function qualifiedResource(t: ResourceType): string {
  return t.group ? `${t.plural}.${t.group}` : t.plural;
}

export function qualifiedKind(t: ResourceType): string {
  return t.group ? `${t.kind}.${t.group}` : t.kind;
}

export const AGE_COLUMN: PrinterColumn = {
  name: 'Age',
  type: 'date',
  jsonPath: '.metadata.creationTimestamp',
  description: 'CreationTimestamp is a timestamp representing the server time when this object was created.',
};

/** Kubernetes version order: v1 > v1beta2 > v1beta1 > v1alpha1 > anything else (alphabetical). */
export function compareKubeVersions(a: string, b: string): number {
  const rank = (v: string): [number, number, number, string] => {
    const m = /^v(\d+)(?:(alpha|beta)(\d+))?$/.exec(v);
    if (!m) return [3, 0, 0, v];
    const stability = m[2] === undefined ? 0 : m[2] === 'beta' ? 1 : 2;
    return [stability, -Number(m[1]), -Number(m[3] ?? 0), v];
  };
  const ra = rank(a);
  const rb = rank(b);
  for (let i = 0; i < 3; i++) if (ra[i] !== rb[i]) return (ra[i] as number) - (rb[i] as number);
  return ra[3] < rb[3] ? -1 : ra[3] > rb[3] ? 1 : 0;
}

/** The stored object as the client sees it in `version` (one copy is kept; only apiVersion is rewritten). */
export function present(type: ResourceType, version: string, obj: KubeObject): KubeObject {
  const out = clone(obj);
  out.apiVersion = groupVersion(type.group, version);
  return out;
}
