/**
 * TEST DOUBLE — an in-process EMULATOR of the Kubernetes API server, for tests.
 * It is not Kubernetes: one Node process, one plain-HTTP listener on
 * 127.0.0.1, everything in memory. It exists so the operator can be tested with
 * @kubernetes/client-node and the real `kubectl` (1.32) without a cluster.
 *
 * Emulated faithfully (wire format, status codes, Status bodies, messages):
 * - Discovery: `/version`, `/api`, `/api/v1`, `/apis`, `/apis/{g}`, `/apis/{g}/{v}`
 *   (legacy form; a request for aggregated discovery gets the legacy form with
 *   `Content-Type: application/json`, and client-go falls back to it), and
 *   OpenAPI v3 (`/openapi/v3` and one document per group-version) so that
 *   kubectl sees that every PATCH accepts `fieldValidation` and leaves field
 *   validation to the server. `/openapi/v2` answers 404 (kubectl copes).
 * - Built-in kinds: v1 namespaces, secrets, configmaps, pods, events,
 *   serviceaccounts, services; coordination.k8s.io/v1 leases; events.k8s.io/v1
 *   events; apiextensions.k8s.io/v1 customresourcedefinitions. Creating a CRD
 *   serves its resources at once (Established), deleting it deletes its objects.
 * - CRUD at the real paths: get, list, watch, create, update (PUT), patch
 *   (merge, JSON patch, strategic merge for built-ins, apply — see below),
 *   delete, deletecollection; the `status` subresource; `dryRun=All`.
 * - Object metadata: uid, creationTimestamp, generateName, one global
 *   etcd-like resourceVersion counter, `generation` bumped on changes other than
 *   metadata and (with a status subresource) status, optimistic concurrency
 *   (409 Conflict on a stale resourceVersion; custom resources require one on
 *   PUT), no-op updates that change nothing (no new resourceVersion, no event).
 * - Finalizers: DELETE sets deletionTimestamp and waits for the last finalizer
 *   to be removed; no new finalizers once deleting (422).
 * - Watch: newline-delimited JSON events, replay from a resourceVersion, 410
 *   Expired ERROR event after `compactHistory()`, BOOKMARKs
 *   (`allowWatchBookmarks`), `timeoutSeconds`, `sendInitialEvents`, label and
 *   field selectors (an object leaving the selector is seen as DELETED).
 * - Custom resources validated against the CRD's openAPIV3Schema: type,
 *   required, enum, pattern, minimum/maximum (+exclusive), multipleOf,
 *   min/maxLength, min/maxItems, uniqueItems, min/maxProperties, nullable,
 *   allOf/anyOf/oneOf/not; structural pruning of unknown fields (unless
 *   `x-kubernetes-preserve-unknown-fields`) with `fieldValidation`
 *   Strict (400 "strict decoding error"), Warn (Warning header, the default)
 *   and Ignore; defaults applied.
 * - Table output (`Accept: application/json;as=Table;g=meta.k8s.io;v=v1`) with
 *   the CRD's additionalPrinterColumns (simple JSONPath incl. `[?(@.k=="v")]`
 *   filters), Age as a human duration, `includeObject`.
 * - Printer columns follow the real server: a CRD version that declares
 *   additionalPrinterColumns gets Name + those columns (no automatic Age); one
 *   that declares none gets Name + Age. Built-ins: Name, a few columns, Age.
 * - Errors are `Status` objects (NotFound, AlreadyExists, Conflict, Invalid
 *   with causes, BadRequest, MethodNotAllowed, UnsupportedMediaType, Expired).
 *
 * NOT emulated:
 * - authentication and authorization (any token, or none, is accepted), TLS,
 *   admission (no webhooks, no quotas), API aggregation, conversion webhooks
 *   (a multi-version CRD keeps one copy and only rewrites apiVersion);
 * - CEL: of `x-kubernetes-validations` only the transition rule
 *   `self == oldSelf` (immutability) is evaluated; every other rule is
 *   accepted unevaluated. `format` is not checked;
 * - schemas of built-in kinds: they are not validated or pruned (a Pod needs
 *   named containers with images, a Namespace a DNS label, nothing more) and
 *   only a few defaults are set (see builtinTypes());
 * - protobuf and CBOR: responses are always JSON; protobuf request bodies are
 *   decoded only for Namespace, Secret, ConfigMap and ServiceAccount, the kinds
 *   kubectl's `create` generators send that way;
 * - server-side apply is approximated (create, or merge the body into the
 *   object): no field ownership, no managedFields;
 * - strategic merge patch (built-ins only; custom resources get 415, as on a
 *   real server) is a JSON merge patch plus `$patch` and
 *   `$deleteFromPrimitiveList`: lists are replaced, never merged by key;
 * - namespaces are deleted at once with their contents (no Terminating phase);
 *   v1 and events.k8s.io/v1 events are separate stores; `limit`/`continue`
 *   are ignored (one page); a list is always the latest state whatever its
 *   `resourceVersion`/`resourceVersionMatch`.
 *
 * Usage:
 *   const kube = await startKubeApiServer({ crdFiles: ['crds/dockerrepositories.yaml'] });
 *   kc.loadFromFile(kube.kubeconfigPath);           // @kubernetes/client-node
 *   await kubectl(kube, ['get', 'dr', '-A']);        // ./kubectl.ts
 *   kube.create({...}); kube.patchStatus(ref, {...}); kube.compactHistory();
 *   await kube.close();
 */
import { createHash, randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml, parseAllDocuments, stringify as stringifyYaml } from 'yaml';

// ---------------------------------------------------------------------------
// Public API

export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  deletionGracePeriodSeconds?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  ownerReferences?: unknown[];
  [field: string]: unknown;
}

/** Any Kubernetes object as JSON. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  [field: string]: unknown;
}

/** The `Status` body of every error (and of some successful deletes). */
export interface KubeStatus {
  kind: 'Status';
  apiVersion: 'v1';
  metadata: Record<string, never>;
  status: 'Failure' | 'Success';
  message?: string;
  reason?: string;
  details?: StatusDetails;
  code: number;
}
export interface StatusDetails {
  name?: string;
  group?: string;
  kind?: string;
  uid?: string;
  causes?: StatusCause[];
}
export interface StatusCause {
  reason: string;
  message: string;
  field: string;
}

/** What the in-process methods throw: the Status the HTTP API would have answered. */
export class KubeApiError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    readonly details?: StatusDetails,
  ) {
    super(message);
    this.name = 'KubeApiError';
  }
  get status(): KubeStatus {
    const s: KubeStatus = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: this.message, reason: this.reason, code: this.code };
    if (this.details) s.details = this.details;
    return s;
  }
}

/** Names one object for the in-process methods; `kind` may also be the plural resource name. */
export interface ObjectRef {
  apiVersion: string;
  kind: string;
  name: string;
  /** Omit for cluster-scoped kinds. */
  namespace?: string;
}

export interface ListQuery {
  apiVersion: string;
  kind: string;
  /** Omit to list across all namespaces. */
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
}

export interface RequestLogEntry {
  method: string;
  /** Path without the query string. */
  path: string;
  query: string;
  accept: string;
  contentType: string;
  status: number;
}

export interface KubeApiServer {
  /** `http://127.0.0.1:PORT` */
  url: string;
  /** A kubeconfig in a temp dir: cluster `server: url`, `insecure-skip-tls-verify`, a dummy token, current-context set. */
  kubeconfigPath: string;
  kubeconfigYaml: string;
  /** Every HTTP request, in order, with its response status. */
  requests: RequestLogEntry[];

  // In-process access for test setup and assertions. Same semantics as the HTTP
  // API (validation, resourceVersion, watch events); they throw KubeApiError.
  get(ref: ObjectRef): KubeObject | undefined;
  list(query: ListQuery): KubeObject[];
  create(obj: KubeObject): KubeObject;
  /** PUT of the main resource (custom resources need metadata.resourceVersion, as on a real server). */
  update(obj: KubeObject): KubeObject;
  /** PUT of the status subresource. */
  updateStatus(obj: KubeObject): KubeObject;
  /** PATCH of the main resource; merge patch unless `type` says otherwise. */
  patch(ref: ObjectRef, patch: unknown, type?: PatchType): KubeObject;
  /** Merge-patches `.status` through the status subresource. */
  patchStatus(ref: ObjectRef, status: Record<string, unknown>): KubeObject;
  /** DELETE; returns the object (with deletionTimestamp if finalizers hold it), undefined if absent. */
  delete(ref: ObjectRef): KubeObject | undefined;
  /** The current global resourceVersion. */
  resourceVersion(): string;

  /** Forget the watch history: a watch from an older resourceVersion gets a 410 Expired ERROR event. */
  compactHistory(): void;
  /** End every open watch stream, as an API server restart or a timeout would. */
  closeWatches(): void;
  /** Send a BOOKMARK now on every watch that asked for bookmarks. */
  sendBookmarks(): void;
  /** Number of open watch streams. */
  watchCount(): number;
  close(): Promise<void>;
}

export interface KubeApiServerOptions {
  /** YAML files with CustomResourceDefinitions (multi-document) to install at start. */
  crdFiles?: string[];
  /** Interval of BOOKMARK events on watches that allow them; 0 disables the timer. Default 1000. */
  bookmarkIntervalMs?: number;
  /** Watch events kept for replay before the oldest are forgotten (as etcd compaction would). Default 10000. */
  historyLimit?: number;
}

export type PatchType = 'merge' | 'json' | 'strategic' | 'apply';

// ---------------------------------------------------------------------------
// JSON helpers

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function clone<T>(v: T): T {
  return structuredClone(v);
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((x, i) => deepEqual(x, b[i]));
  if (isObj(a) && isObj(b)) {
    const ka = Object.keys(a).filter((k) => a[k] !== undefined);
    const kb = Object.keys(b).filter((k) => b[k] !== undefined);
    return ka.length === kb.length && ka.every((k) => deepEqual(a[k], b[k]));
  }
  return false;
}

/** RFC 3339 with seconds, as the API server writes timestamps. */
function nowTimestamp(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function jsonTypeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

// ---------------------------------------------------------------------------
// Field errors, formatted as k8s.io/apimachinery's field.Error

interface FieldError {
  reason: 'FieldValueRequired' | 'FieldValueNotSupported' | 'FieldValueInvalid' | 'FieldValueTypeInvalid' | 'FieldValueTooLong' | 'FieldValueTooMany' | 'FieldValueForbidden' | 'FieldValueDuplicate';
  field: string;
  message: string;
}

function showValue(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean' || v === null) return String(v);
  return JSON.stringify(v);
}

const fieldErr = {
  required: (field: string, detail = ''): FieldError => ({ reason: 'FieldValueRequired', field, message: detail ? `Required value: ${detail}` : 'Required value' }),
  invalid: (field: string, value: unknown, detail: string): FieldError => ({ reason: 'FieldValueInvalid', field, message: `Invalid value: ${showValue(value)}: ${detail}` }),
  typeInvalid: (field: string, value: unknown, detail: string): FieldError => ({ reason: 'FieldValueTypeInvalid', field, message: `Invalid value: ${showValue(value)}: ${detail}` }),
  notSupported: (field: string, value: unknown, allowed: unknown[]): FieldError => ({
    reason: 'FieldValueNotSupported',
    field,
    message: `Unsupported value: ${showValue(value)}: supported values: ${allowed.map(showValue).join(', ')}`,
  }),
  tooLong: (field: string, max: number): FieldError => ({ reason: 'FieldValueTooLong', field, message: `Too long: may not be more than ${max} bytes` }),
  tooMany: (field: string, n: number, max: number): FieldError => ({ reason: 'FieldValueTooMany', field, message: `Too many: ${n}: must have at most ${max} items` }),
  forbidden: (field: string, detail: string): FieldError => ({ reason: 'FieldValueForbidden', field, message: `Forbidden: ${detail}` }),
  duplicate: (field: string, value: unknown): FieldError => ({ reason: 'FieldValueDuplicate', field, message: `Duplicate value: ${showValue(value)}` }),
};

function joinPath(path: string, key: string): string {
  return path ? `${path}.${key}` : key;
}

// ---------------------------------------------------------------------------
// Resource types

interface PrinterColumn {
  name: string;
  type: string;
  format?: string;
  description?: string;
  priority?: number;
  jsonPath: string;
}

/** Per-kind behaviour of the built-in kinds the real server implements in Go. */
interface BuiltinBehaviour {
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

interface ResourceType {
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

const VERBS = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];

function typeKey(t: { group: string; plural: string }): string {
  return `${t.group}/${t.plural}`;
}

function groupVersion(group: string, version: string): string {
  return group ? `${group}/${version}` : version;
}

function splitApiVersion(apiVersion: string): { group: string; version: string } {
  const i = apiVersion.indexOf('/');
  return i < 0 ? { group: '', version: apiVersion } : { group: apiVersion.slice(0, i), version: apiVersion.slice(i + 1) };
}

/** `secrets` or `dockerrepositories.drydock.dev`, as error messages name a resource. */
function qualifiedResource(t: ResourceType): string {
  return t.group ? `${t.plural}.${t.group}` : t.plural;
}

function qualifiedKind(t: ResourceType): string {
  return t.group ? `${t.kind}.${t.group}` : t.kind;
}

const AGE_COLUMN: PrinterColumn = {
  name: 'Age',
  type: 'date',
  jsonPath: '.metadata.creationTimestamp',
  description: 'CreationTimestamp is a timestamp representing the server time when this object was created.',
};

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
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

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

function builtinTypes(): ResourceType[] {
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

/** Kubernetes version order: v1 > v1beta2 > v1beta1 > v1alpha1 > anything else (alphabetical). */
function compareKubeVersions(a: string, b: string): number {
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

// ---------------------------------------------------------------------------
// CustomResourceDefinitions

interface Schema {
  type?: string;
  properties?: Record<string, Schema>;
  additionalProperties?: Schema | boolean;
  items?: Schema;
  required?: string[];
  enum?: unknown[];
  pattern?: string;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: boolean;
  exclusiveMaximum?: boolean;
  multipleOf?: number;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  uniqueItems?: boolean;
  minProperties?: number;
  maxProperties?: number;
  nullable?: boolean;
  default?: unknown;
  format?: string;
  allOf?: Schema[];
  anyOf?: Schema[];
  oneOf?: Schema[];
  not?: Schema;
  'x-kubernetes-preserve-unknown-fields'?: boolean;
  'x-kubernetes-embedded-resource'?: boolean;
  'x-kubernetes-int-or-string'?: boolean;
  'x-kubernetes-validations'?: Array<{ rule: string; message?: string; fieldPath?: string; reason?: string }>;
  $ref?: string;
}

interface CrdVersion {
  name: string;
  served?: boolean;
  storage?: boolean;
  schema?: { openAPIV3Schema?: Schema };
  subresources?: { status?: unknown };
  additionalPrinterColumns?: PrinterColumn[];
}

interface CrdSpec {
  group: string;
  scope: string;
  names: { kind: string; listKind?: string; plural: string; singular?: string; shortNames?: string[]; categories?: string[] };
  versions: CrdVersion[];
}

function crdSpec(obj: KubeObject): CrdSpec {
  return obj.spec as CrdSpec;
}

/** The real server requires structural schemas; these are the rules a generated schema most often breaks. */
function structuralErrors(s: unknown, path: string, errors: FieldError[]): void {
  if (!isObj(s)) return;
  const schema = s as Schema;
  const intOrString = schema['x-kubernetes-int-or-string'] === true;
  const preserve = schema['x-kubernetes-preserve-unknown-fields'] === true;
  if (!schema.type && !intOrString && !preserve) {
    errors.push(fieldErr.required(`${path}.type`, 'must not be empty for specified object fields'));
  }
  if (schema.properties && schema.additionalProperties !== undefined) {
    errors.push(fieldErr.forbidden(`${path}.additionalProperties`, 'additionalProperties and properties are mutual exclusive'));
  }
  if (schema.$ref !== undefined) errors.push(fieldErr.forbidden(`${path}.$ref`, '$ref is not supported'));
  if ('const' in schema) errors.push(fieldErr.forbidden(`${path}.const`, 'const is not supported'));
  for (const [k, v] of Object.entries(schema.properties ?? {})) structuralErrors(v, `${path}.properties[${k}]`, errors);
  if (schema.items) structuralErrors(schema.items, `${path}.items`, errors);
  if (isObj(schema.additionalProperties)) structuralErrors(schema.additionalProperties, `${path}.additionalProperties`, errors);
}

function validateCrd(obj: KubeObject, old: KubeObject | undefined): FieldError[] {
  const errors: FieldError[] = [];
  const spec = isObj(obj.spec) ? (obj.spec as Partial<CrdSpec>) : {};
  const names = isObj(spec.names) ? spec.names : undefined;
  if (!spec.group) errors.push(fieldErr.required('spec.group'));
  if (!names?.plural) errors.push(fieldErr.required('spec.names.plural'));
  if (!names?.kind) errors.push(fieldErr.required('spec.names.kind'));
  if (spec.scope !== 'Namespaced' && spec.scope !== 'Cluster') errors.push(fieldErr.notSupported('spec.scope', spec.scope ?? '', ['Cluster', 'Namespaced']));
  if (spec.group && names?.plural && obj.metadata.name !== `${names.plural}.${spec.group}`) {
    errors.push(fieldErr.invalid('metadata.name', obj.metadata.name ?? '', `must be spec.names.plural+"."+spec.group`));
  }
  const versions = Array.isArray(spec.versions) ? spec.versions : [];
  if (versions.length === 0) errors.push(fieldErr.required('spec.versions', 'must have exactly one version marked as storage version'));
  else if (versions.filter((v) => v.storage).length !== 1) errors.push(fieldErr.invalid('spec.versions', versions.length, 'must have exactly one version marked as storage version'));
  versions.forEach((v, i) => {
    const schema = v.schema?.openAPIV3Schema;
    if (!schema) errors.push(fieldErr.required(`spec.versions[${i}].schema.openAPIV3Schema`, 'schemas are required'));
    else structuralErrors(schema, `spec.versions[${i}].schema.openAPIV3Schema`, errors);
  });
  if (old) {
    const before = crdSpec(old);
    if (spec.group !== before.group) errors.push(fieldErr.invalid('spec.group', spec.group ?? '', 'field is immutable'));
    if (names?.plural !== before.names.plural) errors.push(fieldErr.invalid('status.acceptedNames.plural', names?.plural ?? '', 'field is immutable'));
  }
  return errors;
}

/** What the apiextensions controllers would write at once: names accepted, Established. */
function setCrdStatus(obj: KubeObject): void {
  const spec = crdSpec(obj);
  // An invalid CRD is refused by validation right after this; leave it alone here.
  if (!isObj(spec) || !isObj(spec.names) || !Array.isArray(spec.versions)) return;
  const now = nowTimestamp();
  const storage = spec.versions.find((v) => v.storage)?.name;
  const condition = (type: string, reason: string, message: string): Obj => ({ type, status: 'True', lastTransitionTime: now, reason, message });
  obj.status = {
    conditions: [condition('NamesAccepted', 'NoConflicts', 'no conflicts found'), condition('Established', 'InitialNamesAccepted', 'the initial names have been accepted')],
    acceptedNames: { ...spec.names, listKind: spec.names.listKind ?? `${spec.names.kind}List`, singular: spec.names.singular ?? spec.names.kind.toLowerCase() },
    storedVersions: storage ? [storage] : [],
  };
}

function typeFromCrd(crd: KubeObject): ResourceType {
  const spec = crdSpec(crd);
  const served = spec.versions.filter((v) => v.served !== false);
  const schemas = new Map<string, Schema | undefined>();
  const columns = new Map<string, PrinterColumn[]>();
  for (const v of served) {
    schemas.set(v.name, v.schema?.openAPIV3Schema);
    // As the real server: Age is the only column of a version that declares none.
    columns.set(v.name, v.additionalPrinterColumns?.length ? v.additionalPrinterColumns : [AGE_COLUMN]);
  }
  const storage = spec.versions.find((v) => v.storage)?.name ?? spec.versions[0]?.name ?? 'v1';
  return {
    group: spec.group,
    versions: served.map((v) => v.name).sort(compareKubeVersions),
    storageVersion: storage,
    kind: spec.names.kind,
    listKind: spec.names.listKind ?? `${spec.names.kind}List`,
    plural: spec.names.plural,
    singular: spec.names.singular ?? spec.names.kind.toLowerCase(),
    namespaced: spec.scope !== 'Cluster',
    shortNames: spec.names.shortNames ?? [],
    categories: spec.names.categories ?? [],
    // The real server enables the subresource per version; one flag per kind covers single-version CRDs.
    statusSubresource: served.some((v) => v.subresources?.status !== undefined),
    crd: { schemas, columns },
  };
}

// ---------------------------------------------------------------------------
// Structural schemas: pruning, defaulting, validation

const OBJECT_META_FIELDS = new Set([
  'name',
  'generateName',
  'namespace',
  'selfLink',
  'uid',
  'resourceVersion',
  'generation',
  'creationTimestamp',
  'deletionTimestamp',
  'deletionGracePeriodSeconds',
  'labels',
  'annotations',
  'ownerReferences',
  'finalizers',
  'managedFields',
]);

function pruneMetadata(meta: unknown, path: string, unknown: string[]): void {
  if (!isObj(meta)) return;
  for (const key of Object.keys(meta)) {
    if (OBJECT_META_FIELDS.has(key)) continue;
    unknown.push(joinPath(path, key));
    delete meta[key];
  }
}

/** Drops fields the schema does not declare, recording their paths (for Strict/Warn field validation). */
function prune(value: unknown, schema: Schema | undefined, path: string, unknown: string[], embedded: boolean): void {
  if (!schema) return;
  if (Array.isArray(value)) {
    if (schema.items) value.forEach((item, i) => prune(item, schema.items, `${path}[${i}]`, unknown, schema.items?.['x-kubernetes-embedded-resource'] === true));
    return;
  }
  if (!isObj(value)) return;
  const preserve = schema['x-kubernetes-preserve-unknown-fields'] === true;
  for (const key of Object.keys(value)) {
    if (embedded && (key === 'apiVersion' || key === 'kind')) continue;
    if (embedded && key === 'metadata') {
      pruneMetadata(value.metadata, joinPath(path, 'metadata'), unknown);
      continue;
    }
    const prop = schema.properties?.[key] ?? (isObj(schema.additionalProperties) ? (schema.additionalProperties as Schema) : undefined);
    const childPath = schema.properties?.[key] ? joinPath(path, key) : `${path}[${key}]`;
    if (prop) prune(value[key], prop, childPath, unknown, prop['x-kubernetes-embedded-resource'] === true);
    else if (!(preserve || schema.additionalProperties === true)) {
      unknown.push(joinPath(path, key));
      delete value[key];
    }
  }
}

function applyDefaults(value: unknown, schema: Schema | undefined): void {
  if (!schema) return;
  if (Array.isArray(value)) {
    const items = schema.items;
    if (!items) return;
    value.forEach((item, i) => {
      if (item === null && items.default !== undefined && !items.nullable) value[i] = clone(items.default);
      applyDefaults(value[i], items);
    });
    return;
  }
  if (!isObj(value)) return;
  for (const [key, prop] of Object.entries(schema.properties ?? {})) {
    const absent = !(key in value) || (value[key] === null && !prop.nullable);
    if (absent && prop.default !== undefined) value[key] = clone(prop.default);
    if (key in value) applyDefaults(value[key], prop);
  }
  if (isObj(schema.additionalProperties)) {
    for (const key of Object.keys(value)) if (!schema.properties?.[key]) applyDefaults(value[key], schema.additionalProperties as Schema);
  }
}

/** Marks "there is no old value here" for transition rules (create, or a field new in this update). */
const ABSENT = Symbol('absent');
type OldValue = unknown | typeof ABSENT;

function typeMatches(value: unknown, schema: Schema): boolean {
  if (schema['x-kubernetes-int-or-string']) return typeof value === 'string' || (typeof value === 'number' && Number.isInteger(value));
  switch (schema.type) {
    case 'object':
      return isObj(value);
    case 'array':
      return Array.isArray(value);
    case 'string':
      return typeof value === 'string';
    case 'integer':
      return typeof value === 'number' && Number.isInteger(value);
    case 'number':
      return typeof value === 'number';
    case 'boolean':
      return typeof value === 'boolean';
    default:
      return true;
  }
}

/** Normalised CEL rules this emulator evaluates; every other rule is accepted unevaluated (see header). */
const IMMUTABILITY_RULES = new Set(['self==oldSelf', 'oldSelf==self']);

function evaluateRules(value: unknown, old: OldValue, schema: Schema, path: string, errors: FieldError[]): void {
  for (const rule of schema['x-kubernetes-validations'] ?? []) {
    if (!IMMUTABILITY_RULES.has(rule.rule.replace(/\s+/g, ''))) continue;
    if (old === ABSENT || deepEqual(value, old)) continue;
    const field = rule.fieldPath ? joinPath(path, rule.fieldPath.replace(/^\./, '')) : path;
    const message = rule.message ?? `failed rule: ${rule.rule}`;
    const err = fieldErr.invalid(field, schema.type ?? 'object', message);
    if (rule.reason) err.reason = rule.reason as FieldError['reason'];
    errors.push(err);
  }
}

function validateAgainst(value: unknown, schema: Schema, path: string, old: OldValue): FieldError[] {
  const errors: FieldError[] = [];
  validateNode(value, schema, path, old, errors);
  return errors;
}

function validateNode(value: unknown, schema: Schema, path: string, old: OldValue, errors: FieldError[]): void {
  const shown = path || '<root>';
  if (value === null) {
    if (schema.nullable || (!schema.type && !schema['x-kubernetes-int-or-string'])) return;
    errors.push(fieldErr.typeInvalid(path, 'null', `${shown} in body must be of type ${schema.type ?? 'int-or-string'}: "null"`));
    return;
  }
  if (!typeMatches(value, schema)) {
    const expected = schema['x-kubernetes-int-or-string'] ? 'integer,string' : schema.type;
    errors.push(fieldErr.typeInvalid(path, jsonTypeName(value), `${shown} in body must be of type ${expected}: "${jsonTypeName(value)}"`));
    return;
  }
  if (schema.enum && !schema.enum.some((e) => deepEqual(e, value))) errors.push(fieldErr.notSupported(path, value, schema.enum));
  if (typeof value === 'string') validateString(value, schema, path, shown, errors);
  if (typeof value === 'number') validateNumber(value, schema, path, shown, errors);
  if (Array.isArray(value)) validateArray(value, schema, path, shown, errors);
  if (isObj(value)) validateObject(value, schema, path, old, errors);
  validateCombinators(value, schema, path, shown, errors);
  evaluateRules(value, old, schema, path, errors);
}

function validateString(value: string, schema: Schema, path: string, shown: string, errors: FieldError[]): void {
  if (schema.maxLength !== undefined && value.length > schema.maxLength) errors.push(fieldErr.tooLong(path, schema.maxLength));
  if (schema.minLength !== undefined && value.length < schema.minLength) {
    errors.push(fieldErr.invalid(path, value, `${shown} in body should be at least ${schema.minLength} chars long`));
  }
  if (schema.pattern !== undefined && !new RegExp(schema.pattern, 'u').test(value)) {
    errors.push(fieldErr.invalid(path, value, `${shown} in body should match '${schema.pattern}'`));
  }
}

function validateNumber(value: number, schema: Schema, path: string, shown: string, errors: FieldError[]): void {
  if (schema.minimum !== undefined) {
    const bad = schema.exclusiveMinimum ? value <= schema.minimum : value < schema.minimum;
    if (bad) errors.push(fieldErr.invalid(path, value, `${shown} in body should be greater than ${schema.exclusiveMinimum ? '' : 'or equal to '}${schema.minimum}`));
  }
  if (schema.maximum !== undefined) {
    const bad = schema.exclusiveMaximum ? value >= schema.maximum : value > schema.maximum;
    if (bad) errors.push(fieldErr.invalid(path, value, `${shown} in body should be less than ${schema.exclusiveMaximum ? '' : 'or equal to '}${schema.maximum}`));
  }
  if (schema.multipleOf !== undefined && value % schema.multipleOf !== 0) {
    errors.push(fieldErr.invalid(path, value, `${shown} in body should be a multiple of ${schema.multipleOf}`));
  }
}

function validateArray(value: unknown[], schema: Schema, path: string, shown: string, errors: FieldError[]): void {
  if (schema.minItems !== undefined && value.length < schema.minItems) {
    errors.push(fieldErr.invalid(path, value.length, `${shown} in body should have at least ${schema.minItems} items`));
  }
  if (schema.maxItems !== undefined && value.length > schema.maxItems) errors.push(fieldErr.tooMany(path, value.length, schema.maxItems));
  if (schema.uniqueItems) {
    value.forEach((v, i) => {
      if (value.slice(0, i).some((w) => deepEqual(v, w))) errors.push(fieldErr.duplicate(`${path}[${i}]`, v));
    });
  }
  // Array elements are not correlated with the old list (atomic lists), so rules below see no oldSelf.
  if (schema.items) value.forEach((v, i) => validateNode(v, schema.items as Schema, `${path}[${i}]`, ABSENT, errors));
}

function validateObject(value: Obj, schema: Schema, path: string, old: OldValue, errors: FieldError[]): void {
  for (const key of schema.required ?? []) if (!(key in value)) errors.push(fieldErr.required(joinPath(path, key)));
  const n = Object.keys(value).length;
  if (schema.minProperties !== undefined && n < schema.minProperties) {
    errors.push(fieldErr.invalid(path, n, `${path || '<root>'} in body should have at least ${schema.minProperties} properties`));
  }
  if (schema.maxProperties !== undefined && n > schema.maxProperties) errors.push(fieldErr.tooMany(path, n, schema.maxProperties));
  const oldObj = old !== ABSENT && isObj(old) ? old : undefined;
  for (const [key, v] of Object.entries(value)) {
    const declared = schema.properties?.[key];
    const sub = declared ?? (isObj(schema.additionalProperties) ? (schema.additionalProperties as Schema) : undefined);
    if (!sub || (path === '' && key === 'metadata')) continue;
    const childOld: OldValue = oldObj && key in oldObj ? oldObj[key] : ABSENT;
    validateNode(v, sub, declared ? joinPath(path, key) : `${path}[${key}]`, childOld, errors);
  }
}

function validateCombinators(value: unknown, schema: Schema, path: string, shown: string, errors: FieldError[]): void {
  const passes = (s: Schema): boolean => validateAgainst(value, { type: undefined, ...s }, path, ABSENT).length === 0;
  for (const s of schema.allOf ?? []) validateNode(value, s, path, ABSENT, errors);
  if (schema.anyOf && !schema.anyOf.some(passes)) errors.push(fieldErr.invalid(path, jsonTypeName(value), `${shown} in body must match at least one schema in anyOf`));
  if (schema.oneOf && schema.oneOf.filter(passes).length !== 1) errors.push(fieldErr.invalid(path, jsonTypeName(value), `${shown} in body must match exactly one schema in oneOf`));
  if (schema.not && passes(schema.not)) errors.push(fieldErr.invalid(path, jsonTypeName(value), `${shown} in body should not match the schema in not`));
}

// ---------------------------------------------------------------------------
// Patches

function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isObj(patch)) return clone(patch);
  const out: Obj = isObj(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

/**
 * Strategic merge patch as a merge patch: enough for metadata, maps and
 * replaced lists. Lists that Kubernetes merges by key (containers, conditions)
 * are replaced here; see the header.
 */
function strategicPatch(target: unknown, patch: unknown): unknown {
  if (!isObj(patch)) return clone(patch);
  if (patch.$patch === 'delete') return undefined;
  const replace = patch.$patch === 'replace';
  const out: Obj = isObj(target) && !replace ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (k.startsWith('$deleteFromPrimitiveList/')) {
      const field = k.slice('$deleteFromPrimitiveList/'.length);
      const drop = Array.isArray(v) ? v : [];
      if (Array.isArray(out[field])) out[field] = (out[field] as unknown[]).filter((x) => !drop.some((d) => deepEqual(d, x)));
      continue;
    }
    if (k.startsWith('$')) continue;
    if (v === null) delete out[k];
    else {
      const next = strategicPatch(out[k], v);
      if (next === undefined) delete out[k];
      else out[k] = next;
    }
  }
  return out;
}

function parsePointer(pointer: string): string[] {
  if (pointer === '') return [];
  if (!pointer.startsWith('/')) throw badRequest(`invalid JSON pointer: ${JSON.stringify(pointer)}`);
  return pointer
    .slice(1)
    .split('/')
    .map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function pointerGet(doc: unknown, tokens: string[]): unknown {
  let cur = doc;
  for (const t of tokens) {
    if (Array.isArray(cur)) cur = cur[Number(t)];
    else if (isObj(cur)) cur = cur[t];
    else return undefined;
  }
  return cur;
}

function patchFailed(message: string): KubeApiError {
  return new KubeApiError(422, 'Invalid', `the server rejected our request due to an error in our request: ${message}`);
}

/** Applies one JSON Patch operation in place on `root` (a wrapper so the document itself can be replaced). */
function jsonPatchOp(root: { doc: unknown }, op: Obj): void {
  const path = parsePointer(String(op.path ?? ''));
  const parentTokens = path.slice(0, -1);
  const last = path[path.length - 1];
  const container = (): Obj | unknown[] => {
    const p = pointerGet(root.doc, parentTokens);
    if (!isObj(p) && !Array.isArray(p)) throw patchFailed(`doc is missing path: "${String(op.path)}"`);
    return p;
  };
  const setAt = (value: unknown, insert: boolean): void => {
    if (last === undefined) {
      root.doc = value;
      return;
    }
    const c = container();
    if (Array.isArray(c)) {
      const i = last === '-' ? c.length : Number(last);
      if (!Number.isInteger(i) || i < 0 || i > c.length || (!insert && i >= c.length)) throw patchFailed(`index out of range: "${String(op.path)}"`);
      if (insert) c.splice(i, 0, value);
      else c[i] = value;
    } else {
      if (!insert && !(last in c)) throw patchFailed(`doc is missing key: "${String(op.path)}"`);
      c[last] = value;
    }
  };
  const removeAt = (tokens: string[]): unknown => {
    const parent = pointerGet(root.doc, tokens.slice(0, -1));
    const key = tokens[tokens.length - 1] ?? '';
    if (Array.isArray(parent) && Number(key) < parent.length) return parent.splice(Number(key), 1)[0];
    if (isObj(parent) && key in parent) {
      const v = parent[key];
      delete parent[key];
      return v;
    }
    throw patchFailed(`unable to remove nonexistent key: ${key}`);
  };
  switch (op.op) {
    case 'add':
      return setAt(clone(op.value), true);
    case 'replace':
      return setAt(clone(op.value), false);
    case 'remove':
      removeAt(path);
      return;
    case 'move':
      return setAt(removeAt(parsePointer(String(op.from ?? ''))), true);
    case 'copy':
      return setAt(clone(pointerGet(root.doc, parsePointer(String(op.from ?? '')))), true);
    case 'test':
      if (!deepEqual(pointerGet(root.doc, path), op.value)) throw patchFailed(`testing value ${String(op.path)} failed`);
      return;
    default:
      throw badRequest(`Unexpected kind: ${String(op.op)}`);
  }
}

function jsonPatch(doc: unknown, ops: unknown): unknown {
  if (!Array.isArray(ops)) throw badRequest('json: cannot unmarshal object into Go value of type jsonpatch.Patch');
  const root = { doc: clone(doc) };
  for (const op of ops) jsonPatchOp(root, isObj(op) ? op : {});
  return root.doc;
}

// ---------------------------------------------------------------------------
// Selectors

interface LabelRequirement {
  key: string;
  op: 'exists' | 'notexists' | 'eq' | 'neq' | 'in' | 'notin';
  values: string[];
}

function badRequest(message: string): KubeApiError {
  return new KubeApiError(400, 'BadRequest', message);
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

function parseLabelSelector(selector: string | null | undefined): LabelRequirement[] {
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

function matchesLabels(obj: KubeObject, reqs: LabelRequirement[]): boolean {
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

interface FieldRequirement {
  key: string;
  negate: boolean;
  value: string;
}

function parseFieldSelector(selector: string | null | undefined, type: ResourceType): FieldRequirement[] {
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

function matchesFields(obj: KubeObject, reqs: FieldRequirement[]): boolean {
  return reqs.every((r) => (fieldValue(obj, r.key) === r.value) !== r.negate);
}

// ---------------------------------------------------------------------------
// Table output

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
function evalJsonPath(root: unknown, expr: string): unknown[] {
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

type IncludeObject = 'None' | 'Metadata' | 'Object';

function partialObjectMetadata(obj: KubeObject, tableVersion: string): KubeObject {
  return { kind: 'PartialObjectMetadata', apiVersion: `meta.k8s.io/${tableVersion}`, metadata: clone(obj.metadata) };
}

function toTable(type: ResourceType, version: string, objs: KubeObject[], include: IncludeObject, rv: string, tableVersion: string): Obj {
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

// ---------------------------------------------------------------------------
// Store: objects, resourceVersions, history, watches

type EventType = 'ADDED' | 'MODIFIED' | 'DELETED';

interface HistoryEntry {
  rv: number;
  type: EventType;
  key: string;
  object: KubeObject;
  previous?: KubeObject;
}

interface WatchEvent {
  type: EventType | 'BOOKMARK' | 'ERROR';
  object: unknown;
}

interface Watcher {
  type: ResourceType;
  version: string;
  namespace?: string;
  labels: LabelRequirement[];
  fields: FieldRequirement[];
  bookmarks: boolean;
  send(event: WatchEvent): void;
  close(): void;
}

interface WriteOptions {
  dryRun?: boolean;
  fieldValidation?: string;
  /** Collects Warning headers (unknown fields under fieldValidation=Warn). */
  warnings?: string[];
}

interface Target {
  type: ResourceType;
  version: string;
  namespace?: string;
  name?: string;
  subresource?: 'status';
}

interface Selection {
  labels: LabelRequirement[];
  fields: FieldRequirement[];
}

/** Kinds that do not bump generation (no spec; as for ConfigMaps and Secrets on a real server). */
const NO_GENERATION = new Set(['/configmaps', '/secrets', '/serviceaccounts', '/events', 'events.k8s.io/events']);

function objectKey(namespace: string | undefined, name: string): string {
  return `${namespace ?? ''}/${name}`;
}

const GENERATE_NAME_CHARS = 'bcdfghjklmnpqrstvwxz2456789';

function randomSuffix(): string {
  let s = '';
  for (let i = 0; i < 5; i++) s += GENERATE_NAME_CHARS[Math.floor(Math.random() * GENERATE_NAME_CHARS.length)];
  return s;
}

class Store {
  readonly types = new Map<string, ResourceType>();
  private readonly data = new Map<string, Map<string, KubeObject>>();
  private rv = 0;
  /** Watches from a resourceVersion below this get 410 Expired. */
  private compactedRv = 0;
  private history: HistoryEntry[] = [];
  readonly watchers = new Set<Watcher>();

  constructor(private readonly historyLimit: number) {
    for (const t of builtinTypes()) this.types.set(typeKey(t), t);
    for (const ns of ['default', 'kube-system', 'kube-public', 'kube-node-lease']) {
      this.create(this.target('v1', 'Namespace'), { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } }, {});
    }
  }

  currentRv(): string {
    return String(this.rv);
  }

  // --- type lookup

  /** By URL: group, version and plural resource name. */
  findType(group: string, version: string, plural: string): ResourceType | undefined {
    const t = this.types.get(`${group}/${plural}`);
    return t && t.versions.includes(version) ? t : undefined;
  }

  /** By apiVersion and kind (or plural, singular, short name), for the in-process API. */
  target(apiVersion: string, kind: string, namespace?: string, name?: string): Target {
    const { group, version } = splitApiVersion(apiVersion);
    const lower = kind.toLowerCase();
    for (const t of this.types.values()) {
      if (t.group !== group || !t.versions.includes(version)) continue;
      if (t.kind === kind || t.plural === lower || t.singular === lower || t.shortNames.includes(lower)) {
        return { type: t, version, namespace: t.namespaced ? namespace : undefined, name };
      }
    }
    throw new KubeApiError(404, 'NotFound', `the server could not find the requested resource (${kind} in ${apiVersion})`);
  }

  // --- reads

  private bucket(type: ResourceType): Map<string, KubeObject> {
    let b = this.data.get(typeKey(type));
    if (!b) this.data.set(typeKey(type), (b = new Map()));
    return b;
  }

  /** The stored object as the client sees it in `version`, or undefined. */
  peek(t: Target): KubeObject | undefined {
    const obj = this.bucket(t.type).get(objectKey(t.namespace, t.name ?? ''));
    return obj && this.present(t.type, t.version, obj);
  }

  get(t: Target): KubeObject {
    const obj = this.peek(t);
    if (!obj) throw this.notFound(t.type, t.name ?? '');
    return obj;
  }

  list(t: Target, sel: Selection): KubeObject[] {
    return [...this.bucket(t.type).entries()]
      .filter(([, o]) => t.namespace === undefined || o.metadata.namespace === t.namespace)
      .filter(([, o]) => matchesLabels(o, sel.labels) && matchesFields(o, sel.fields))
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([, o]) => this.present(t.type, t.version, o));
  }

  present(type: ResourceType, version: string, obj: KubeObject): KubeObject {
    const out = clone(obj);
    out.apiVersion = groupVersion(type.group, version);
    return out;
  }

  // --- errors

  notFound(type: ResourceType, name: string): KubeApiError {
    return new KubeApiError(404, 'NotFound', `${qualifiedResource(type)} "${name}" not found`, { name, group: type.group, kind: type.plural });
  }

  private invalid(type: ResourceType, name: string, errors: FieldError[]): KubeApiError {
    const causes = errors.map((e) => ({ reason: e.reason, message: e.message, field: e.field }));
    const listed = errors.map((e) => `${e.field}: ${e.message}`);
    const summary = listed.length === 1 ? listed[0] : `[${listed.join(', ')}]`;
    return new KubeApiError(422, 'Invalid', `${qualifiedKind(type)} "${name}" is invalid: ${summary}`, { name, group: type.group, kind: type.kind, causes });
  }

  private conflict(type: ResourceType, name: string, why: string): KubeApiError {
    return new KubeApiError(409, 'Conflict', `Operation cannot be fulfilled on ${qualifiedResource(type)} "${name}": ${why}`, { name, group: type.group, kind: type.plural });
  }

  // --- the write pipeline

  /** Checks apiVersion/kind of a request body against the URL; built-ins default them as the real decoder does. */
  private decodeBody(t: Target, body: unknown): KubeObject {
    if (!isObj(body)) throw badRequest('the body of the request was not a JSON object');
    const expected = groupVersion(t.type.group, t.version);
    if (body.kind === undefined || body.kind === '') {
      if (t.type.crd) throw badRequest(`Object 'Kind' is missing in '${JSON.stringify(body)}'`);
      body.kind = t.type.kind;
    }
    body.apiVersion ??= expected;
    if (body.apiVersion !== expected && !(t.type.crd && t.type.versions.includes(splitApiVersion(String(body.apiVersion)).version))) {
      throw badRequest(`the API version in the data (${String(body.apiVersion)}) does not match the expected API version (${expected})`);
    }
    if (body.kind !== t.type.kind) throw badRequest(`the kind in the data (${String(body.kind)}) does not match the expected kind (${t.type.kind})`);
    if (body.metadata === undefined) body.metadata = {};
    if (!isObj(body.metadata)) throw badRequest(`${t.type.kind} in version "${t.version}" cannot be handled as a ${t.type.kind}: metadata must be an object`);
    return clone(body) as KubeObject;
  }

  /** Structural pruning and defaulting of a custom resource, with fieldValidation handling. */
  private shape(t: Target, obj: KubeObject, opts: WriteOptions): void {
    const schema = t.type.crd?.schemas.get(t.version);
    const unknown: string[] = [];
    if (schema) prune(obj, schema, '', unknown, true);
    else pruneMetadata(obj.metadata, 'metadata', unknown);
    if (unknown.length && opts.fieldValidation === 'Strict') {
      const list = unknown.map((p) => `unknown field "${p}"`).join(', ');
      throw badRequest(`${t.type.kind} in version "${t.version}" cannot be handled as a ${t.type.kind}: strict decoding error: ${list}`);
    }
    if (opts.fieldValidation !== 'Ignore') for (const p of unknown) opts.warnings?.push(`unknown field "${p}"`);
    if (schema) applyDefaults(obj, schema);
  }

  private validate(t: Target, obj: KubeObject, old: KubeObject | undefined): void {
    const errors: FieldError[] = [];
    const name = obj.metadata.name ?? '';
    if (t.type.kind !== 'Namespace' && !(name.length <= 253 && DNS1123_SUBDOMAIN.test(name))) {
      errors.push(
        fieldErr.invalid(
          'metadata.name',
          name,
          "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
        ),
      );
    }
    const schema = t.type.crd?.schemas.get(t.version);
    if (schema) validateNode(obj, schema, '', old ?? ABSENT, errors);
    errors.push(...(t.type.builtin?.validate?.(obj, old) ?? []));
    if (errors.length) throw this.invalid(t.type, name, errors);
  }

  private requireNamespace(t: Target): void {
    if (!t.type.namespaced) return;
    const ns = this.types.get('/namespaces');
    if (!ns || !this.bucket(ns).has(objectKey(undefined, t.namespace ?? ''))) throw this.notFound(ns ?? t.type, t.namespace ?? '');
  }

  create(t: Target, body: unknown, opts: WriteOptions): KubeObject {
    const obj = this.decodeBody(t, body);
    const meta = obj.metadata;
    if (t.type.namespaced) {
      if (meta.namespace && meta.namespace !== t.namespace) throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
      meta.namespace = t.namespace;
    } else delete meta.namespace;
    if (!meta.name) {
      if (!meta.generateName) throw this.invalid(t.type, '', [fieldErr.required('metadata.name', 'name or generateName is required')]);
      meta.name = `${meta.generateName}${randomSuffix()}`;
    }
    this.shape(t, obj, opts);
    // The status subresource owns .status: a create cannot set it (built-ins set their own initial status).
    if (t.type.statusSubresource) delete obj.status;
    t.type.builtin?.prepareCreate?.(obj);
    t.type.builtin?.normalize?.(obj);
    for (const k of ['uid', 'resourceVersion', 'deletionTimestamp', 'deletionGracePeriodSeconds', 'selfLink', 'managedFields']) delete meta[k];
    meta.uid = randomUUID();
    meta.creationTimestamp = nowTimestamp();
    if (!NO_GENERATION.has(typeKey(t.type))) meta.generation = 1;
    else delete meta.generation;
    const target = { ...t, name: meta.name, namespace: meta.namespace };
    this.validate(target, obj, undefined);
    this.requireNamespace(target);
    if (this.bucket(t.type).has(objectKey(meta.namespace, meta.name))) {
      throw new KubeApiError(409, 'AlreadyExists', `${qualifiedResource(t.type)} "${meta.name}" already exists`, { name: meta.name, group: t.type.group, kind: t.type.plural });
    }
    obj.apiVersion = groupVersion(t.type.group, t.type.storageVersion);
    if (opts.dryRun) return this.present(t.type, t.version, { ...obj, metadata: { ...meta, resourceVersion: '' } });
    return this.present(t.type, t.version, this.commit(t.type, 'ADDED', obj, undefined));
  }

  update(t: Target, body: unknown, opts: WriteOptions): KubeObject {
    const current = this.get(t);
    const incoming = this.decodeBody(t, body);
    const name = t.name ?? '';
    if (incoming.metadata.name !== undefined && incoming.metadata.name !== name) {
      throw badRequest(`the name of the object (${incoming.metadata.name}) does not match the name on the URL (${name})`);
    }
    if (t.type.namespaced && incoming.metadata.namespace && incoming.metadata.namespace !== t.namespace) {
      throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
    }
    const rv = incoming.metadata.resourceVersion;
    if (rv !== undefined && rv !== '' && rv !== current.metadata.resourceVersion) {
      throw this.conflict(t.type, name, 'the object has been modified; please apply your changes to the latest version and try again');
    }
    if (!rv && t.type.crd) {
      throw this.invalid(t.type, name, [fieldErr.invalid('metadata.resourceVersion', 0, 'must be specified for an update')]);
    }
    this.shape(t, incoming, opts);
    const next = t.subresource === 'status' ? { ...clone(current), status: incoming.status } : this.mergeForMainUpdate(t, incoming, current);
    if (next.status === undefined) delete next.status;
    t.type.builtin?.normalize?.(next);
    return this.finishUpdate(t, next, current, opts);
  }

  /** A write to the main resource keeps what the server owns: identity, deletion state, and status behind a subresource. */
  private mergeForMainUpdate(t: Target, incoming: KubeObject, current: KubeObject): KubeObject {
    const next = incoming;
    const meta: Obj = next.metadata;
    for (const k of ['uid', 'creationTimestamp', 'deletionTimestamp', 'deletionGracePeriodSeconds', 'generation', 'resourceVersion', 'name', 'namespace'] as const) {
      if (current.metadata[k] === undefined) delete meta[k];
      else meta[k] = current.metadata[k];
    }
    if (t.type.statusSubresource) next.status = clone(current.status);
    return next;
  }

  private finishUpdate(t: Target, next: KubeObject, current: KubeObject, opts: WriteOptions): KubeObject {
    const name = t.name ?? '';
    if (current.metadata.deletionTimestamp) {
      const added = (next.metadata.finalizers ?? []).filter((f) => !(current.metadata.finalizers ?? []).includes(f));
      if (added.length) {
        throw this.invalid(t.type, name, [fieldErr.forbidden('metadata.finalizers', `no new finalizers can be added if the object is being deleted, found new finalizers []string{${added.map((f) => JSON.stringify(f)).join(', ')}}`)]);
      }
    }
    if (next.metadata.finalizers?.length === 0) delete next.metadata.finalizers;
    this.validate(t, next, current);
    if (next.metadata.generation !== undefined && this.specChanged(t.type, next, current)) next.metadata.generation = (current.metadata.generation ?? 0) + 1;
    next.apiVersion = current.apiVersion;
    const stored = { ...next, apiVersion: groupVersion(t.type.group, t.type.storageVersion) };
    const before = { ...current, apiVersion: stored.apiVersion };
    // etcd skips a write that changes nothing: same resourceVersion, no event.
    if (deepEqual(stored, before)) return current;
    if (opts.dryRun) return this.present(t.type, t.version, stored);
    if (stored.metadata.deletionTimestamp && !stored.metadata.finalizers?.length) {
      return this.present(t.type, t.version, this.commit(t.type, 'DELETED', stored, before));
    }
    return this.present(t.type, t.version, this.commit(t.type, 'MODIFIED', stored, before));
  }

  /** Generation follows everything but metadata (and status, when a subresource owns it). */
  private specChanged(type: ResourceType, a: KubeObject, b: KubeObject): boolean {
    const strip = (o: KubeObject): Obj => {
      const { metadata: _m, apiVersion: _a, status, ...rest } = o;
      return type.statusSubresource ? rest : { ...rest, status };
    };
    return !deepEqual(strip(a), strip(b));
  }

  patch(t: Target, patchType: PatchType, body: unknown, opts: WriteOptions & { force?: boolean }): { object: KubeObject; created: boolean } {
    if (patchType === 'strategic' && t.type.crd) {
      throw new KubeApiError(
        415,
        'UnsupportedMediaType',
        'the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml',
      );
    }
    const current = this.peek(t);
    if (!current) {
      if (patchType !== 'apply' || t.subresource) throw this.notFound(t.type, t.name ?? '');
      return { object: this.create({ ...t, name: undefined }, body, opts), created: true };
    }
    const patched = this.applyPatch(patchType, current, body);
    if (!isObj(patched)) throw badRequest('the patch result is not an object');
    const patchedMeta = isObj(patched.metadata) ? patched.metadata : {};
    if (patchedMeta.resourceVersion === undefined) patched.metadata = { ...patchedMeta, resourceVersion: current.metadata.resourceVersion };
    return { object: this.update(t, patched, opts), created: false };
  }

  private applyPatch(patchType: PatchType, current: KubeObject, body: unknown): unknown {
    switch (patchType) {
      case 'json':
        return jsonPatch(current, body);
      case 'strategic':
        return strategicPatch(current, body);
      case 'apply':
      case 'merge':
        if (!isObj(body)) throw badRequest('the patch is not a JSON object');
        return mergePatch(current, body);
    }
  }

  remove(t: Target, options: Obj, opts: WriteOptions): { object: KubeObject; deleted: boolean } {
    const current = this.get(t);
    const name = t.name ?? '';
    const pre = isObj(options.preconditions) ? options.preconditions : {};
    if (pre.uid !== undefined && pre.uid !== null && pre.uid !== current.metadata.uid) {
      throw this.conflict(t.type, name, `Precondition failed: UID in precondition: ${String(pre.uid)}, UID in object meta: ${current.metadata.uid ?? ''}`);
    }
    if (pre.resourceVersion !== undefined && pre.resourceVersion !== null && pre.resourceVersion !== current.metadata.resourceVersion) {
      throw this.conflict(t.type, name, `Precondition failed: ResourceVersion in precondition: ${String(pre.resourceVersion)}, ResourceVersion in object meta: ${current.metadata.resourceVersion ?? ''}`);
    }
    const stored = this.bucket(t.type).get(objectKey(t.namespace, name)) as KubeObject;
    if (current.metadata.finalizers?.length) {
      if (current.metadata.deletionTimestamp) return { object: current, deleted: false };
      const marked = clone(stored);
      marked.metadata.deletionTimestamp = nowTimestamp();
      marked.metadata.deletionGracePeriodSeconds = 0;
      if (opts.dryRun) return { object: this.present(t.type, t.version, marked), deleted: false };
      return { object: this.present(t.type, t.version, this.commit(t.type, 'MODIFIED', marked, stored)), deleted: false };
    }
    if (opts.dryRun) return { object: current, deleted: true };
    return { object: this.present(t.type, t.version, this.commit(t.type, 'DELETED', clone(stored), stored)), deleted: true };
  }

  /** Stores a new state under a fresh resourceVersion, records it for watch replay, and tells the watchers. */
  private commit(type: ResourceType, event: EventType, obj: KubeObject, previous: KubeObject | undefined): KubeObject {
    this.rv++;
    obj.metadata.resourceVersion = String(this.rv);
    const key = objectKey(obj.metadata.namespace, obj.metadata.name ?? '');
    if (event === 'DELETED') this.bucket(type).delete(key);
    else this.bucket(type).set(key, obj);
    const entry: HistoryEntry = { rv: this.rv, type: event, key: typeKey(type), object: clone(obj), previous: previous && clone(previous) };
    this.history.push(entry);
    if (this.history.length > this.historyLimit) {
      const dropped = this.history.splice(0, this.history.length - this.historyLimit);
      this.compactedRv = dropped[dropped.length - 1]?.rv ?? this.compactedRv;
    }
    for (const w of [...this.watchers]) if (typeKey(w.type) === entry.key) this.deliver(w, entry);
    this.afterCommit(type, event, obj, previous);
    return obj;
  }

  /** The controllers the real server runs beside the store: CRD registration and cleanup, namespace cleanup. */
  private afterCommit(type: ResourceType, event: EventType, obj: KubeObject, previous: KubeObject | undefined): void {
    if (type.kind === 'CustomResourceDefinition' && type.group === 'apiextensions.k8s.io') {
      if (event === 'DELETED') {
        const gone = typeFromCrd(obj);
        this.deleteAll(gone, () => true);
        this.types.delete(typeKey(gone));
        for (const w of [...this.watchers]) if (typeKey(w.type) === typeKey(gone)) w.close();
      } else if (!obj.metadata.deletionTimestamp) {
        const t = typeFromCrd(obj);
        this.types.set(typeKey(t), t);
      }
    }
    if (type.kind === 'Namespace' && type.group === '' && event === 'DELETED' && previous) {
      for (const t of this.types.values()) if (t.namespaced) this.deleteAll(t, (o) => o.metadata.namespace === obj.metadata.name);
    }
  }

  private deleteAll(type: ResourceType, which: (o: KubeObject) => boolean): void {
    for (const o of [...this.bucket(type).values()]) if (which(o)) this.commit(type, 'DELETED', clone(o), o);
    this.data.delete(typeKey(type));
  }

  // --- watch

  private deliver(w: Watcher, entry: HistoryEntry): void {
    if (entry.object.metadata.namespace !== w.namespace && w.namespace !== undefined) return;
    const matches = (o: KubeObject | undefined): boolean => !!o && matchesLabels(o, w.labels) && matchesFields(o, w.fields);
    const nowIn = matches(entry.object);
    const wasIn = entry.type === 'ADDED' ? false : matches(entry.previous);
    let type: EventType | undefined;
    let object = entry.object;
    if (entry.type === 'DELETED') type = wasIn || nowIn ? 'DELETED' : undefined;
    else if (nowIn) type = wasIn || entry.type === 'ADDED' ? entry.type : 'ADDED';
    else if (wasIn) {
      // Leaving the selector looks like a deletion of the old state, at the new resourceVersion.
      type = 'DELETED';
      object = { ...clone(entry.previous as KubeObject), metadata: { ...clone((entry.previous as KubeObject).metadata), resourceVersion: String(entry.rv) } };
    }
    if (type) w.send({ type, object: this.present(w.type, w.version, object) });
  }

  /**
   * Starts a watch: initial ADDED events (no resourceVersion, "0", or
   * sendInitialEvents) or a replay of the history after `resourceVersion`.
   * Returns false after sending a 410 Expired ERROR event (the caller ends the stream).
   */
  startWatch(w: Watcher, resourceVersion: string | null, sendInitialEvents: boolean): boolean {
    if (sendInitialEvents || !resourceVersion || resourceVersion === '0') {
      for (const o of this.list({ type: w.type, version: w.version, namespace: w.namespace }, w)) w.send({ type: 'ADDED', object: o });
      if (sendInitialEvents && w.bookmarks) w.send(this.bookmark(w, { 'k8s.io/initial-events-end': 'true' }));
    } else {
      const from = Number(resourceVersion);
      if (!Number.isInteger(from) || from < 0) throw badRequest(`invalid resource version: ${resourceVersion}`);
      if (from < this.compactedRv) {
        w.send({ type: 'ERROR', object: this.expired(from) });
        return false;
      }
      for (const e of this.history) if (e.rv > from && e.key === typeKey(w.type)) this.deliver(w, e);
    }
    this.watchers.add(w);
    return true;
  }

  expired(from: number): KubeStatus {
    return new KubeApiError(410, 'Expired', `too old resource version: ${from} (${this.compactedRv + 1})`).status;
  }

  bookmark(w: Watcher, annotations?: Record<string, string>): WatchEvent {
    const metadata: Obj = { resourceVersion: this.currentRv(), creationTimestamp: null };
    if (annotations) metadata.annotations = annotations;
    return { type: 'BOOKMARK', object: { kind: w.type.kind, apiVersion: groupVersion(w.type.group, w.version), metadata } };
  }

  compact(): void {
    this.history = [];
    this.compactedRv = this.rv;
  }
}

// ---------------------------------------------------------------------------
// Discovery and OpenAPI documents

function apiResourceList(store: Store, group: string, version: string): Obj | undefined {
  const types = [...store.types.values()].filter((t) => t.group === group && t.versions.includes(version));
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

function apiGroups(store: Store): Obj[] {
  const groups = new Map<string, Set<string>>();
  for (const t of store.types.values()) {
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

function openApiV3Document(store: Store, group: string, version: string): Obj | undefined {
  const types = [...store.types.values()].filter((t) => t.group === group && t.versions.includes(version));
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

function openApiV3Root(store: Store): Obj {
  const paths: Obj = {};
  const gvs = new Set<string>();
  for (const t of store.types.values()) for (const v of t.versions) gvs.add(t.group ? `apis/${t.group}/${v}` : `api/${v}`);
  for (const gv of [...gvs].sort()) {
    const [, group, version] = gv.startsWith('api/') ? ['', '', gv.slice(4)] : (gv.split('/') as [string, string, string]);
    const doc = openApiV3Document(store, group, version);
    const hash = createHash('sha512').update(JSON.stringify(doc)).digest('hex').toUpperCase().slice(0, 128);
    paths[gv] = { serverRelativeURL: `/openapi/v3/${gv}?hash=${hash}` };
  }
  return { paths };
}

// ---------------------------------------------------------------------------
// Protobuf request bodies
//
// kubectl's generators (`kubectl create namespace|secret|configmap|serviceaccount`)
// use typed clients that send protobuf. Responses are always JSON (those clients
// accept it); request bodies of these kinds are decoded here. Field numbers are
// those of k8s.io/api's generated.proto.

type ProtoKind = 'string' | 'bytes' | 'int' | 'bool' | 'time' | { map: 'string' | 'bytes' } | ProtoMessage;
interface ProtoField {
  name: string;
  kind: ProtoKind;
  repeated?: boolean;
}
interface ProtoMessage {
  fields: Record<number, ProtoField>;
}

const msg = (fields: Record<number, ProtoField>): ProtoMessage => ({ fields });
const f = (name: string, kind: ProtoKind, repeated = false): ProtoField => ({ name, kind, repeated });

const PROTO_OWNER_REFERENCE = msg({ 1: f('kind', 'string'), 3: f('name', 'string'), 4: f('uid', 'string'), 5: f('apiVersion', 'string'), 6: f('controller', 'bool'), 7: f('blockOwnerDeletion', 'bool') });
const PROTO_OBJECT_META = msg({
  1: f('name', 'string'),
  2: f('generateName', 'string'),
  3: f('namespace', 'string'),
  5: f('uid', 'string'),
  6: f('resourceVersion', 'string'),
  7: f('generation', 'int'),
  8: f('creationTimestamp', 'time'),
  9: f('deletionTimestamp', 'time'),
  10: f('deletionGracePeriodSeconds', 'int'),
  11: f('labels', { map: 'string' }),
  12: f('annotations', { map: 'string' }),
  13: f('ownerReferences', PROTO_OWNER_REFERENCE, true),
  14: f('finalizers', 'string', true),
});
const PROTO_OBJECT_REFERENCE = msg({ 1: f('kind', 'string'), 2: f('namespace', 'string'), 3: f('name', 'string'), 4: f('uid', 'string'), 5: f('apiVersion', 'string') });
const PROTO_KINDS: Record<string, ProtoMessage> = {
  'v1/Namespace': msg({ 1: f('metadata', PROTO_OBJECT_META), 2: f('spec', msg({ 1: f('finalizers', 'string', true) })), 3: f('status', msg({ 1: f('phase', 'string') })) }),
  'v1/Secret': msg({ 1: f('metadata', PROTO_OBJECT_META), 2: f('data', { map: 'bytes' }), 3: f('type', 'string'), 4: f('stringData', { map: 'string' }), 5: f('immutable', 'bool') }),
  'v1/ConfigMap': msg({ 1: f('metadata', PROTO_OBJECT_META), 2: f('data', { map: 'string' }), 3: f('binaryData', { map: 'bytes' }), 4: f('immutable', 'bool') }),
  'v1/ServiceAccount': msg({
    1: f('metadata', PROTO_OBJECT_META),
    2: f('secrets', PROTO_OBJECT_REFERENCE, true),
    3: f('imagePullSecrets', msg({ 1: f('name', 'string') }), true),
    4: f('automountServiceAccountToken', 'bool'),
  }),
};

class ProtoReader {
  pos = 0;
  constructor(private readonly buf: Buffer) {}
  done(): boolean {
    return this.pos >= this.buf.length;
  }
  varint(): number {
    let result = 0;
    let scale = 1;
    for (;;) {
      const b = this.buf[this.pos++];
      if (b === undefined) throw badRequest('truncated protobuf body');
      result += (b & 0x7f) * scale;
      if (b < 0x80) return result;
      scale *= 128;
    }
  }
  bytes(): Buffer {
    const n = this.varint();
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  skip(wireType: number): void {
    if (wireType === 0) this.varint();
    else if (wireType === 1) this.pos += 8;
    else if (wireType === 2) this.bytes();
    else if (wireType === 5) this.pos += 4;
    else throw badRequest(`unsupported protobuf wire type ${wireType}`);
  }
}

/** Go's JSON of the decoded struct drops empty strings and zero numbers (omitempty); messages are kept. */
function decodeProtoMessage(buf: Buffer, desc: ProtoMessage): Obj {
  const r = new ProtoReader(buf);
  const out: Obj = {};
  while (!r.done()) {
    const key = r.varint();
    const field = desc.fields[Math.floor(key / 8)];
    const wireType = key & 7;
    if (!field) {
      r.skip(wireType);
      continue;
    }
    const value = decodeProtoValue(r, wireType, field.kind);
    if (value === undefined) continue;
    if (isObj(value) && typeof field.kind === 'object' && 'map' in field.kind) out[field.name] = { ...(isObj(out[field.name]) ? (out[field.name] as Obj) : {}), ...value };
    else if (field.repeated) out[field.name] = [...(Array.isArray(out[field.name]) ? (out[field.name] as unknown[]) : []), value];
    else out[field.name] = value;
  }
  return out;
}

function decodeProtoValue(r: ProtoReader, wireType: number, kind: ProtoKind): unknown {
  if (kind === 'int' || kind === 'bool') {
    const n = wireType === 0 ? r.varint() : (r.skip(wireType), 0);
    return kind === 'bool' ? n !== 0 : n === 0 ? undefined : n;
  }
  const bytes = r.bytes();
  if (kind === 'string') return bytes.length ? bytes.toString('utf8') : undefined;
  if (kind === 'bytes') return bytes.toString('base64');
  if (kind === 'time') {
    const t = decodeProtoMessage(bytes, msg({ 1: f('seconds', 'int') }));
    return typeof t.seconds === 'number' ? new Date(t.seconds * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z') : undefined;
  }
  if ('map' in kind) {
    const entry = decodeProtoMessage(bytes, msg({ 1: f('key', 'string'), 2: f('value', kind.map) }));
    return { [String(entry.key ?? '')]: entry.value ?? '' };
  }
  return decodeProtoMessage(bytes, kind);
}

/** The `k8s\0` + runtime.Unknown envelope: typeMeta (1), raw (2). */
function decodeProtobufBody(raw: Buffer): Obj {
  if (raw.subarray(0, 4).toString('latin1') !== 'k8s\0') throw badRequest('protobuf body without the k8s envelope');
  const envelope = decodeProtoMessage(raw.subarray(4), msg({ 1: f('typeMeta', msg({ 1: f('apiVersion', 'string'), 2: f('kind', 'string') })), 2: f('raw', 'bytes') }));
  const typeMeta = isObj(envelope.typeMeta) ? envelope.typeMeta : {};
  const gvk = `${String(typeMeta.apiVersion)}/${String(typeMeta.kind)}`;
  const desc = PROTO_KINDS[gvk];
  if (!desc) {
    throw new KubeApiError(415, 'UnsupportedMediaType', `the emulator decodes protobuf only for ${Object.keys(PROTO_KINDS).join(', ')}; send ${gvk} as application/json`);
  }
  const obj = decodeProtoMessage(Buffer.from(String(envelope.raw ?? ''), 'base64'), desc);
  return { apiVersion: typeMeta.apiVersion, kind: typeMeta.kind, ...obj };
}

// ---------------------------------------------------------------------------
// HTTP

const MAX_BODY = 3 * 1024 * 1024;

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw new KubeApiError(413, 'RequestEntityTooLarge', 'Request entity too large: limit is 3145728');
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

function decodeText(raw: Buffer, contentType: string): unknown {
  if (contentType.startsWith('application/vnd.kubernetes.protobuf') && raw.length) return decodeProtobufBody(raw);
  const text = raw.toString('utf8');
  if (text.trim() === '') return undefined;
  try {
    return /yaml/.test(contentType) ? parseYaml(text) : JSON.parse(text);
  } catch (e) {
    throw badRequest(`couldn't get version/kind; json parse error: ${e instanceof Error ? e.message : String(e)}`);
  }
}

function sendJson(res: ServerResponse, code: number, body: unknown, warnings: string[] = []): void {
  const text = JSON.stringify(body);
  const headers: Record<string, string | string[]> = { 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(text)) };
  if (warnings.length) headers.Warning = warnings.map((w) => `299 - ${JSON.stringify(w)}`);
  res.writeHead(code, headers);
  res.end(text);
}

const PAGE_NOT_FOUND = (): KubeApiError => new KubeApiError(404, 'NotFound', 'the server could not find the requested resource', {});
const METHOD_NOT_ALLOWED = (): KubeApiError => new KubeApiError(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource', {});

interface ResourceRoute {
  group: string;
  version: string;
  plural: string;
  namespace?: string;
  name?: string;
  subresource?: string;
}

/** Splits `/api/v1/...` and `/apis/{g}/{v}/...` below the group-version into the resource coordinates. */
function parseResourcePath(group: string, version: string, rest: string[]): ResourceRoute | undefined {
  if (rest.length === 0) return undefined;
  // /namespaces/{ns}/{plural}... unless it is the namespace's own subresource (/namespaces/{ns}/status).
  if (rest[0] === 'namespaces' && rest.length >= 3 && rest[2] !== 'status' && rest[2] !== 'finalize') {
    const [, namespace, plural, name, subresource, ...extra] = rest;
    if (extra.length) return undefined;
    return { group, version, plural: plural as string, namespace, name, subresource };
  }
  const [plural, name, subresource, ...extra] = rest;
  if (extra.length) return undefined;
  return { group, version, plural: plural as string, name, subresource };
}

function patchTypeOf(contentType: string): PatchType {
  const ct = contentType.split(';')[0]?.trim();
  switch (ct) {
    case 'application/merge-patch+json':
      return 'merge';
    case 'application/json-patch+json':
      return 'json';
    case 'application/strategic-merge-patch+json':
      return 'strategic';
    case 'application/apply-patch+yaml':
      return 'apply';
    default:
      throw new KubeApiError(
        415,
        'UnsupportedMediaType',
        `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json`,
      );
  }
}

/** What kind of answer the Accept header asks for. */
interface Rendering {
  as: 'object' | 'Table' | 'PartialObjectMetadata';
  metaVersion: string;
}

function renderingOf(accept: string): Rendering {
  for (const part of accept.split(',')) {
    const params = new Map(
      part
        .split(';')
        .slice(1)
        .map((p) => p.trim().split('=') as [string, string]),
    );
    const as = params.get('as');
    if (params.get('g') !== 'meta.k8s.io') continue;
    const v = params.get('v') ?? 'v1';
    if (as === 'Table') return { as: 'Table', metaVersion: v };
    if (as === 'PartialObjectMetadata' || as === 'PartialObjectMetadataList') return { as: 'PartialObjectMetadata', metaVersion: v };
  }
  return { as: 'object', metaVersion: 'v1' };
}

interface HttpContext {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  store: Store;
  streams: Set<ServerResponse>;
  bookmarkIntervalMs: number;
}

class ApiHandler {
  constructor(private readonly c: HttpContext) {}

  async handle(): Promise<void> {
    const { url, req } = this.c;
    const segs = url.pathname.split('/').filter((s) => s !== '');
    const method = req.method ?? 'GET';
    if (segs[0] === 'api' || segs[0] === 'apis') {
      const core = segs[0] === 'api';
      const group = core ? '' : segs[1];
      const version = core ? segs[1] : segs[2];
      const rest = segs.slice(core ? 2 : 3);
      if (group === undefined || (core && version === undefined)) return this.discoveryRoot(core);
      if (version === undefined) return this.discoveryGroup(group);
      const route = parseResourcePath(group, version, rest);
      if (!route) return this.discoveryVersion(group, version);
      return this.resource(route, method);
    }
    if (method !== 'GET') throw METHOD_NOT_ALLOWED();
    const path = url.pathname.replace(/\/+$/, '');
    if (path === '/version') return this.ok(VERSION_INFO);
    if (['/healthz', '/livez', '/readyz'].includes(path)) {
      this.c.res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' });
      this.c.res.end('ok');
      return;
    }
    if (path === '/openapi/v3') return this.ok(openApiV3Root(this.c.store));
    if (path.startsWith('/openapi/v3/')) {
      const gv = path.slice('/openapi/v3/'.length).split('/');
      const doc = gv[0] === 'api' ? openApiV3Document(this.c.store, '', gv[1] ?? '') : openApiV3Document(this.c.store, gv[1] ?? '', gv[2] ?? '');
      if (!doc) throw PAGE_NOT_FOUND();
      return this.ok(doc);
    }
    throw PAGE_NOT_FOUND();
  }

  private ok(body: unknown, code = 200, warnings: string[] = []): void {
    sendJson(this.c.res, code, body, warnings);
  }

  private discoveryRoot(core: boolean): void {
    if (core) {
      const host = this.c.req.headers.host ?? '127.0.0.1';
      return this.ok({ kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: host }] });
    }
    this.ok({ kind: 'APIGroupList', apiVersion: 'v1', groups: apiGroups(this.c.store) });
  }

  private discoveryGroup(group: string): void {
    const g = apiGroups(this.c.store).find((x) => x.name === group);
    if (!g) throw PAGE_NOT_FOUND();
    this.ok({ kind: 'APIGroup', apiVersion: 'v1', ...g });
  }

  private discoveryVersion(group: string, version: string): void {
    const list = apiResourceList(this.c.store, group, version);
    if (!list) throw PAGE_NOT_FOUND();
    this.ok(list);
  }

  private writeOptions(): WriteOptions & { warnings: string[] } {
    const q = this.c.url.searchParams;
    const dryRun = q.getAll('dryRun');
    if (dryRun.some((d) => d !== 'All')) throw badRequest(`Invalid dry run value: ${dryRun.join(',')}`);
    const fieldValidation = q.get('fieldValidation') ?? 'Warn';
    if (!['Strict', 'Warn', 'Ignore'].includes(fieldValidation)) throw badRequest(`fieldValidation must be one of "Ignore", "Warn", or "Strict", got "${fieldValidation}"`);
    return { dryRun: dryRun.length > 0, fieldValidation, warnings: [] };
  }

  private async body(): Promise<unknown> {
    return decodeText(await readBody(this.c.req), this.c.req.headers['content-type'] ?? 'application/json');
  }

  private async resource(route: ResourceRoute, method: string): Promise<void> {
    const { store } = this.c;
    const type = store.findType(route.group, route.version, route.plural);
    if (!type) throw PAGE_NOT_FOUND();
    if (route.namespace !== undefined && !type.namespaced) throw PAGE_NOT_FOUND();
    if (route.name !== undefined && type.namespaced && route.namespace === undefined) throw PAGE_NOT_FOUND();
    if (route.subresource !== undefined && !(route.subresource === 'status' && type.statusSubresource)) throw PAGE_NOT_FOUND();
    const t: Target = { type, version: route.version, namespace: route.namespace, name: route.name, subresource: route.subresource as 'status' | undefined };
    if (route.name === undefined) return this.collection(t, method);
    return this.item(t, method);
  }

  private selection(t: Target): Selection {
    const q = this.c.url.searchParams;
    return { labels: parseLabelSelector(q.get('labelSelector')), fields: parseFieldSelector(q.get('fieldSelector'), t.type) };
  }

  private async collection(t: Target, method: string): Promise<void> {
    const q = this.c.url.searchParams;
    if (method === 'GET') {
      if (q.get('watch') === 'true' || q.get('watch') === '1') return this.watch(t);
      return this.renderList(t, this.c.store.list(t, this.selection(t)));
    }
    if (method === 'POST' && (t.namespace !== undefined || !t.type.namespaced)) {
      const opts = this.writeOptions();
      const created = this.c.store.create(t, await this.body(), opts);
      return this.renderObject(t, created, 201, opts.warnings);
    }
    if (method === 'DELETE' && (t.namespace !== undefined || !t.type.namespaced)) {
      const opts = this.writeOptions();
      const options = await this.body();
      const items = this.c.store.list(t, this.selection(t));
      const results = items.map((o) => this.c.store.remove({ ...t, name: o.metadata.name, namespace: o.metadata.namespace }, isObj(options) ? options : {}, opts).object);
      return this.renderList(t, results);
    }
    throw METHOD_NOT_ALLOWED();
  }

  private async item(t: Target, method: string): Promise<void> {
    const { store } = this.c;
    switch (method) {
      case 'GET':
        return this.renderObject(t, store.get(t), 200);
      case 'PUT': {
        const opts = this.writeOptions();
        return this.renderObject(t, store.update(t, await this.body(), opts), 200, opts.warnings);
      }
      case 'PATCH': {
        const opts = this.writeOptions();
        const patchType = patchTypeOf(this.c.req.headers['content-type'] ?? '');
        const { object, created } = store.patch(t, patchType, await this.body(), opts);
        return this.renderObject(t, object, created ? 201 : 200, opts.warnings);
      }
      case 'DELETE': {
        if (t.subresource) throw METHOD_NOT_ALLOWED();
        const opts = this.writeOptions();
        const options = await this.body();
        const { object, deleted } = store.remove(t, isObj(options) ? options : {}, opts);
        if (deleted && !t.type.crd && !t.type.builtin?.returnDeletedObject) {
          return this.ok({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', details: { name: t.name, group: t.type.group, kind: t.type.plural, uid: object.metadata.uid } });
        }
        return this.renderObject(t, object, 200);
      }
      default:
        throw METHOD_NOT_ALLOWED();
    }
  }

  private includeObject(): IncludeObject {
    const v = this.c.url.searchParams.get('includeObject');
    return v === 'None' || v === 'Object' ? v : 'Metadata';
  }

  private renderObject(t: Target, obj: KubeObject, code: number, warnings: string[] = []): void {
    const r = renderingOf(String(this.c.req.headers.accept ?? ''));
    if (r.as === 'Table') return this.ok(toTable(t.type, t.version, [obj], this.includeObject(), this.c.store.currentRv(), r.metaVersion), code, warnings);
    if (r.as === 'PartialObjectMetadata') return this.ok(partialObjectMetadata(obj, r.metaVersion), code, warnings);
    this.ok(obj, code, warnings);
  }

  private renderList(t: Target, items: KubeObject[]): void {
    const rv = this.c.store.currentRv();
    const r = renderingOf(String(this.c.req.headers.accept ?? ''));
    if (r.as === 'Table') return this.ok(toTable(t.type, t.version, items, this.includeObject(), rv, r.metaVersion));
    if (r.as === 'PartialObjectMetadata') {
      return this.ok({ kind: 'PartialObjectMetadataList', apiVersion: `meta.k8s.io/${r.metaVersion}`, metadata: { resourceVersion: rv }, items: items.map((o) => partialObjectMetadata(o, r.metaVersion)) });
    }
    // Typed lists of built-ins carry no per-item apiVersion/kind; lists of custom resources do.
    const shown = t.type.crd ? items : items.map(({ apiVersion: _a, kind: _k, ...rest }) => rest);
    this.ok({ kind: t.type.listKind, apiVersion: groupVersion(t.type.group, t.version), metadata: { resourceVersion: rv }, items: shown });
  }

  private watch(t: Target): void {
    const { res, req, store, streams } = this.c;
    const q = this.c.url.searchParams;
    const sel = this.selection(t);
    const rendering = renderingOf(String(req.headers.accept ?? ''));
    const include = this.includeObject();
    const timers: NodeJS.Timeout[] = [];
    const from = q.get('resourceVersion');
    // Refuse a malformed resourceVersion before the stream starts, as the real server does.
    if (from && !/^\d+$/.test(from)) throw badRequest(`invalid resource version: ${from}`);
    res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked', 'Cache-Control': 'no-cache, private' });
    res.flushHeaders();
    streams.add(res);
    const finish = (): void => {
      timers.forEach(clearTimeout);
      timers.forEach(clearInterval);
      store.watchers.delete(watcher);
      streams.delete(res);
      if (!res.writableEnded) res.end();
    };
    const watcher: Watcher = {
      type: t.type,
      version: t.version,
      namespace: t.namespace,
      ...sel,
      bookmarks: q.get('allowWatchBookmarks') === 'true',
      send: (event) => {
        if (res.writableEnded) return;
        const isObject = event.type !== 'BOOKMARK' && event.type !== 'ERROR';
        const object = isObject && rendering.as === 'Table' ? toTable(t.type, t.version, [event.object as KubeObject], include, store.currentRv(), rendering.metaVersion) : event.object;
        res.write(`${JSON.stringify({ type: event.type, object })}\n`);
      },
      close: finish,
    };
    req.on('close', finish);
    res.on('close', finish);
    if (!store.startWatch(watcher, from, q.get('sendInitialEvents') === 'true')) return finish();
    const timeout = Number(q.get('timeoutSeconds') ?? 0);
    if (timeout > 0) timers.push(setTimeout(finish, timeout * 1000));
    if (watcher.bookmarks && this.c.bookmarkIntervalMs > 0) timers.push(setInterval(() => watcher.send(store.bookmark(watcher)), this.c.bookmarkIntervalMs));
  }
}

const VERSION_INFO = {
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

// ---------------------------------------------------------------------------
// Start-up

function kubeconfig(url: string): string {
  return stringifyYaml({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'emulator', cluster: { server: url, 'insecure-skip-tls-verify': true } }],
    users: [{ name: 'emulator', user: { token: 'emulator-token' } }],
    contexts: [{ name: 'emulator', context: { cluster: 'emulator', user: 'emulator', namespace: 'default' } }],
    'current-context': 'emulator',
    preferences: {},
  });
}

async function loadCrdFiles(store: Store, files: string[]): Promise<void> {
  for (const file of files) {
    for (const doc of parseAllDocuments(await readFile(file, 'utf8'))) {
      const obj: unknown = doc.toJS();
      if (!isObj(obj)) continue;
      if (obj.kind !== 'CustomResourceDefinition') throw new Error(`${file}: not a CustomResourceDefinition (kind ${String(obj.kind)})`);
      store.create(store.target(String(obj.apiVersion), 'CustomResourceDefinition'), obj, { fieldValidation: 'Strict' });
    }
  }
}

/** Starts the emulator on 127.0.0.1 (random port) and writes its kubeconfig. */
export async function startKubeApiServer(opts: KubeApiServerOptions = {}): Promise<KubeApiServer> {
  const store = new Store(opts.historyLimit ?? 10_000);
  await loadCrdFiles(store, opts.crdFiles ?? []);
  const requests: RequestLogEntry[] = [];
  const streams = new Set<ServerResponse>();
  const sockets = new Set<Socket>();
  const bookmarkIntervalMs = opts.bookmarkIntervalMs ?? 1000;

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const entry: RequestLogEntry = {
      method: req.method ?? 'GET',
      path: url.pathname,
      query: url.search,
      accept: String(req.headers.accept ?? ''),
      contentType: String(req.headers['content-type'] ?? ''),
      status: 0,
    };
    requests.push(entry);
    res.on('finish', () => (entry.status = res.statusCode));
    res.on('close', () => (entry.status ||= res.statusCode));
    new ApiHandler({ req, res, url, store, streams, bookmarkIntervalMs }).handle().catch((e: unknown) => {
      const err = e instanceof KubeApiError ? e : new KubeApiError(500, 'InternalError', `Internal error occurred: ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
      if (res.headersSent) res.end();
      else sendJson(res, err.code, err.status);
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const dir = await mkdtemp(join(tmpdir(), 'kube-apiserver-'));
  const kubeconfigPath = join(dir, 'kubeconfig');
  const kubeconfigYaml = kubeconfig(url);
  await writeFile(kubeconfigPath, kubeconfigYaml);

  const ref = (r: ObjectRef): Target => store.target(r.apiVersion, r.kind, r.namespace, r.name);
  const closeWatches = (): void => {
    for (const w of [...store.watchers]) w.close();
    for (const s of [...streams]) s.end();
  };
  return {
    url,
    kubeconfigPath,
    kubeconfigYaml,
    requests,
    get: (r) => store.peek(ref(r)),
    list: (q) => store.list(store.target(q.apiVersion, q.kind, q.namespace), { labels: parseLabelSelector(q.labelSelector), fields: parseFieldSelector(q.fieldSelector, ref({ ...q, name: '' }).type) }),
    create: (obj) => store.create(store.target(obj.apiVersion, obj.kind, obj.metadata.namespace), obj, {}),
    update: (obj) => store.update(store.target(obj.apiVersion, obj.kind, obj.metadata.namespace, obj.metadata.name), obj, {}),
    updateStatus: (obj) => store.update({ ...store.target(obj.apiVersion, obj.kind, obj.metadata.namespace, obj.metadata.name), subresource: 'status' }, obj, {}),
    patch: (r, patch, type = 'merge') => store.patch(ref(r), type, patch, {}).object,
    patchStatus: (r, status) => {
      const t = ref(r);
      if (!t.type.statusSubresource) throw PAGE_NOT_FOUND();
      return store.patch({ ...t, subresource: 'status' }, 'merge', { status }, {}).object;
    },
    delete: (r) => {
      const t = ref(r);
      return store.peek(t) ? store.remove(t, {}, {}).object : undefined;
    },
    resourceVersion: () => store.currentRv(),
    compactHistory: () => store.compact(),
    closeWatches,
    sendBookmarks: () => {
      for (const w of store.watchers) if (w.bookmarks) w.send(store.bookmark(w));
    },
    watchCount: () => store.watchers.size,
    close: async () => {
      closeWatches();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of sockets) s.destroy();
      await closed;
      await rm(dir, { recursive: true, force: true });
    },
  };
}
