/** Discovery (`/version`, `/api`, `/apis`...) and the OpenAPI v3 documents, built from the served resource types. */
import { createHash } from 'node:crypto';
import type { Obj } from './json.js';
import { compareKubeVersions, groupVersion, type ResourceType, VERBS } from './resources.js';

export function apiResourceList(served: ReadonlyMap<string, ResourceType>, group: string, version: string): Obj | undefined {
  const types = [...served.values()].filter((t) => t.group === group && t.versions.includes(version));
  if (types.length === 0) return undefined;
  const resources: Obj[] = [];
  for (const t of types.sort((a, b) => (a.plural < b.plural ? -1 : 1))) {
    const r: Obj = { name: t.plural, singularName: t.singular, namespaced: t.namespaced, kind: t.kind, verbs: VERBS };
    if (t.shortNames.length) r.shortNames = t.shortNames;
    if (t.categories.length) r.categories = t.categories;
    r.storageVersionHash = createHash('sha256').update(`${t.group}/${t.storageVersion}/${t.kind}`).digest('base64').slice(0, 11);
    resources.push(r);
    if (t.statusSubresource) resources.push({ name: `${t.plural}/status`, singularName: '', namespaced: t.namespaced, kind: t.kind, verbs: ['get', 'patch', 'update'] });
  }
  return { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: groupVersion(group, version), resources };
}

export function apiGroups(served: ReadonlyMap<string, ResourceType>): Obj[] {
  const groups = new Map<string, Set<string>>();
  for (const t of served.values()) {
    if (!t.group) continue;
    const set = groups.get(t.group) ?? new Set<string>();
    for (const v of t.versions) set.add(v);
    groups.set(t.group, set);
  }
  return [...groups.entries()]
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([name, set]) => {
      const versions = [...set].sort(compareKubeVersions).map((v) => ({ groupVersion: `${name}/${v}`, version: v }));
      return { name, versions, preferredVersion: versions[0] };
    });
}

function openApiSchemaName(t: ResourceType, version: string): string {
  if (t.builtin) return t.builtin.definition;
  return `${t.group.split('.').reverse().join('.')}.${version}.${t.kind}`;
}

function openApiOperation(t: ResourceType, version: string, action: string, withBody: boolean, patch: boolean): Obj {
  const ref = { $ref: `#/components/schemas/${openApiSchemaName(t, version)}` };
  const op: Obj = {
    operationId: `${action}${t.kind}`,
    parameters: [
      { name: 'dryRun', in: 'query', schema: { type: 'string', uniqueItems: true } },
      { name: 'fieldManager', in: 'query', schema: { type: 'string', uniqueItems: true } },
      { name: 'fieldValidation', in: 'query', schema: { type: 'string', uniqueItems: true } },
    ],
    responses: { '200': { description: 'OK', content: { 'application/json': { schema: ref } } } },
    'x-kubernetes-action': action,
    'x-kubernetes-group-version-kind': { group: t.group, version, kind: t.kind },
  };
  if (withBody) {
    // No strategic-merge content type: kubectl then computes apply patches from its compiled-in types.
    const types = patch ? ['application/json-patch+json', 'application/merge-patch+json', 'application/apply-patch+yaml'] : ['application/json'];
    op.requestBody = { content: Object.fromEntries(types.map((c) => [c, { schema: patch ? { type: 'object' } : ref }])), required: true };
  }
  return op;
}

export function openApiV3Document(served: ReadonlyMap<string, ResourceType>, group: string, version: string): Obj | undefined {
  const types = [...served.values()].filter((t) => t.group === group && t.versions.includes(version));
  if (types.length === 0) return undefined;
  const paths: Obj = {};
  const schemas: Obj = {};
  for (const t of types) {
    const base = group ? `/apis/${group}/${version}` : `/api/${version}`;
    const collection = t.namespaced ? `${base}/namespaces/{namespace}/${t.plural}` : `${base}/${t.plural}`;
    paths[collection] = { get: openApiOperation(t, version, 'list', false, false), post: openApiOperation(t, version, 'post', true, false) };
    const item = {
      get: openApiOperation(t, version, 'get', false, false),
      put: openApiOperation(t, version, 'put', true, false),
      patch: openApiOperation(t, version, 'patch', true, true),
      delete: openApiOperation(t, version, 'delete', false, false),
    };
    paths[`${collection}/{name}`] = item;
    if (t.statusSubresource) paths[`${collection}/{name}/status`] = { get: item.get, put: item.put, patch: item.patch };
    const schema = t.crd?.schemas.get(version) ?? { type: 'object', 'x-kubernetes-preserve-unknown-fields': true };
    schemas[openApiSchemaName(t, version)] = { ...schema, 'x-kubernetes-group-version-kind': [{ group: t.group, version, kind: t.kind }] };
  }
  return { openapi: '3.0.0', info: { title: 'Kubernetes (emulator)', version: 'v1.32.0' }, paths, components: { schemas } };
}

export function openApiV3Root(served: ReadonlyMap<string, ResourceType>): Obj {
  const paths: Obj = {};
  const gvs = new Set<string>();
  for (const t of served.values()) for (const v of t.versions) gvs.add(t.group ? `apis/${t.group}/${v}` : `api/${v}`);
  for (const gv of [...gvs].sort()) {
    const [, group, version] = gv.startsWith('api/') ? ['', '', gv.slice(4)] : (gv.split('/') as [string, string, string]);
    const doc = openApiV3Document(served, group, version);
    const hash = createHash('sha512').update(JSON.stringify(doc)).digest('hex').toUpperCase().slice(0, 128);
    paths[gv] = { serverRelativeURL: `/openapi/v3/${gv}?hash=${hash}` };
  }
  return { paths };
}

export const VERSION_INFO = {
  major: '1',
  minor: '32',
  gitVersion: 'v1.32.0',
  gitCommit: '0000000000000000000000000000000000000000',
  gitTreeState: 'clean',
  buildDate: '2024-12-11T00:00:00Z',
  goVersion: 'go1.23.4',
  compiler: 'gc',
  platform: 'linux/amd64',
};
