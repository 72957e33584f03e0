/** The emulator's public types: objects, Status bodies, the error the in-process methods throw, and the server handle. */

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
