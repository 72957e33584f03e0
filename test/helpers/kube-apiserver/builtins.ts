/** The built-in kinds and their per-kind behaviour (defaults, normalisation, validation) the real server implements in Go. */
import { setCrdStatus, validateCrd } from './crds.js';
import { fieldErr, type FieldError } from './errors.js';
import { isObj, type Obj } from './json.js';
import type { BuiltinBehaviour, PrinterColumn, ResourceType } from './resources.js';
import type { KubeObject } from './types.js';

function builtin(
  group: string,
  kind: string,
  plural: string,
  extra: Partial<Pick<ResourceType, 'namespaced' | 'shortNames' | 'categories' | 'statusSubresource'>> & Partial<BuiltinBehaviour> & { definition: string },
): ResourceType {
  const { namespaced = true, shortNames = [], categories = [], statusSubresource = false, ...behaviour } = extra;
  return {
    group,
    versions: ['v1'],
    storageVersion: 'v1',
    kind,
    listKind: `${kind}List`,
    plural,
    singular: kind.toLowerCase(),
    namespaced,
    shortNames,
    categories,
    statusSubresource,
    builtin: { columns: [], ...behaviour },
  };
}

function col(name: string, jsonPath: string, type = 'string'): PrinterColumn {
  return { name, type, jsonPath };
}

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

function validateNamespaceName(obj: KubeObject): FieldError[] {
  const name = obj.metadata.name ?? '';
  if (name.length <= 63 && DNS1123_LABEL.test(name)) return [];
  return [
    fieldErr.invalid(
      'metadata.name',
      name,
      "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
    ),
  ];
}

function validatePod(obj: KubeObject): FieldError[] {
  const spec = isObj(obj.spec) ? obj.spec : {};
  const containers = spec.containers;
  if (!Array.isArray(containers) || containers.length === 0) return [fieldErr.required('spec.containers')];
  const errors: FieldError[] = [];
  containers.forEach((c, i) => {
    const c2 = isObj(c) ? c : {};
    if (typeof c2.name !== 'string' || !c2.name) errors.push(fieldErr.required(`spec.containers[${i}].name`));
    if (typeof c2.image !== 'string' || !c2.image) errors.push(fieldErr.required(`spec.containers[${i}].image`));
  });
  return errors;
}

/** A Secret's stringData is write-only: it is merged into data, base64-encoded. */
function normalizeSecret(obj: KubeObject): void {
  obj.type ??= 'Opaque';
  if (!isObj(obj.stringData)) return;
  const data: Obj = isObj(obj.data) ? obj.data : {};
  for (const [k, v] of Object.entries(obj.stringData)) data[k] = Buffer.from(String(v)).toString('base64');
  obj.data = data;
  delete obj.stringData;
}

let nextClusterIp = 1;

export function builtinTypes(): ResourceType[] {
  return [
    builtin('', 'Namespace', 'namespaces', {
      namespaced: false,
      shortNames: ['ns'],
      statusSubresource: true,
      columns: [col('Status', '.status.phase')],
      definition: 'io.k8s.api.core.v1.Namespace',
      validate: validateNamespaceName,
      prepareCreate(obj) {
        obj.spec = { finalizers: ['kubernetes'], ...(isObj(obj.spec) ? obj.spec : {}) };
        obj.status = { phase: 'Active' };
      },
      normalize(obj) {
        obj.metadata.labels = { ...obj.metadata.labels, 'kubernetes.io/metadata.name': obj.metadata.name ?? '' };
      },
    }),
    builtin('', 'Secret', 'secrets', {
      columns: [col('Type', '.type')],
      fieldSelectors: ['type'],
      definition: 'io.k8s.api.core.v1.Secret',
      normalize: normalizeSecret,
    }),
    builtin('', 'ConfigMap', 'configmaps', { shortNames: ['cm'], definition: 'io.k8s.api.core.v1.ConfigMap' }),
    builtin('', 'Pod', 'pods', {
      shortNames: ['po'],
      categories: ['all'],
      statusSubresource: true,
      returnDeletedObject: true,
      columns: [col('Status', '.status.phase')],
      fieldSelectors: ['spec.nodeName', 'spec.restartPolicy', 'spec.schedulerName', 'spec.serviceAccountName', 'spec.hostNetwork', 'status.phase', 'status.podIP', 'status.nominatedNodeName'],
      definition: 'io.k8s.api.core.v1.Pod',
      validate: validatePod,
      prepareCreate(obj) {
        obj.status = { phase: 'Pending', qosClass: 'BestEffort' };
      },
    }),
    builtin('', 'Event', 'events', {
      shortNames: ['ev'],
      columns: [col('Type', '.type'), col('Reason', '.reason'), col('Message', '.message')],
      fieldSelectors: [
        'involvedObject.kind',
        'involvedObject.namespace',
        'involvedObject.name',
        'involvedObject.uid',
        'involvedObject.apiVersion',
        'involvedObject.resourceVersion',
        'involvedObject.fieldPath',
        'reason',
        'reportingComponent',
        'source',
        'type',
      ],
      definition: 'io.k8s.api.core.v1.Event',
    }),
    builtin('', 'ServiceAccount', 'serviceaccounts', { shortNames: ['sa'], definition: 'io.k8s.api.core.v1.ServiceAccount' }),
    builtin('', 'Service', 'services', {
      shortNames: ['svc'],
      categories: ['all'],
      statusSubresource: true,
      columns: [col('Type', '.spec.type'), col('Cluster-IP', '.spec.clusterIP')],
      definition: 'io.k8s.api.core.v1.Service',
      prepareCreate(obj) {
        const spec: Obj = isObj(obj.spec) ? obj.spec : {};
        spec.type ??= 'ClusterIP';
        spec.sessionAffinity ??= 'None';
        if (spec.clusterIP === undefined && spec.type !== 'ExternalName') {
          const n = nextClusterIp++;
          spec.clusterIP = `10.96.${Math.floor(n / 250)}.${(n % 250) + 1}`;
          spec.clusterIPs = [spec.clusterIP];
        }
        obj.spec = spec;
        obj.status = { loadBalancer: {} };
      },
    }),
    builtin('coordination.k8s.io', 'Lease', 'leases', { columns: [col('Holder', '.spec.holderIdentity')], definition: 'io.k8s.api.coordination.v1.Lease' }),
    builtin('events.k8s.io', 'Event', 'events', {
      fieldSelectors: ['regarding.kind', 'regarding.namespace', 'regarding.name', 'regarding.uid', 'reason', 'reportingController', 'type'],
      definition: 'io.k8s.api.events.v1.Event',
    }),
    builtin('apiextensions.k8s.io', 'CustomResourceDefinition', 'customresourcedefinitions', {
      namespaced: false,
      shortNames: ['crd', 'crds'],
      categories: ['api-extensions'],
      statusSubresource: true,
      returnDeletedObject: true,
      columns: [col('Created At', '.metadata.creationTimestamp')],
      definition: 'io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition',
      validate: validateCrd,
      prepareCreate: setCrdStatus,
    }),
  ];
}
