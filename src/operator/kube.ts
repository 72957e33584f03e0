/**
 * The operator's Kubernetes I/O, and the only module that imports
 * @kubernetes/client-node: it loads the connection (`KUBECONFIG`, else the
 * in-cluster service account), applies its credentials (tokens, client
 * certificates, exec plugins) to each request, and streams watches. Objects
 * travel as plain JSON so the rest of the operator sees what the API server
 * sent, status subresource included.
 */
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest, type RequestOptions } from 'node:https';
import { KubeConfig, Watch } from '@kubernetes/client-node';
import { apiVersionOf, type KubeObject, type ResourceType } from './resources.js';

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';

export interface WatchEvent {
  type: WatchEventType;
  object: KubeObject & { code?: number; reason?: string; message?: string };
}

export interface WatchHandle {
  /** Settles when the stream ends: resolves on a clean close, rejects on a connection error. */
  done: Promise<void>;
  stop(): void;
}

/** A failed API call: the HTTP status and the `Status` object's reason and message. */
export class KubeApiError extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    message: string,
  ) {
    super(message);
    this.name = 'KubeApiError';
  }
}

export function isConflict(e: unknown): boolean {
  return e instanceof KubeApiError && e.status === 409;
}

export function isNotFound(e: unknown): boolean {
  return e instanceof KubeApiError && e.status === 404;
}

/** What the operator needs from the API server; tests may substitute their own. */
export interface KubeClient {
  list(type: ResourceType, namespace?: string): Promise<{ items: KubeObject[]; resourceVersion: string }>;
  watch(type: ResourceType, namespace: string | undefined, resourceVersion: string, onEvent: (e: WatchEvent) => void): Promise<WatchHandle>;
  get(type: ResourceType, namespace: string | undefined, name: string): Promise<KubeObject | undefined>;
  create(type: ResourceType, obj: KubeObject): Promise<KubeObject>;
  /** PUT: fails with 409 when `metadata.resourceVersion` is stale. */
  replace(type: ResourceType, obj: KubeObject): Promise<KubeObject>;
  /** PUT of the status subresource. */
  replaceStatus(type: ResourceType, obj: KubeObject): Promise<KubeObject>;
}

function collectionPath(type: ResourceType, namespace?: string): string {
  const root = type.group ? `/apis/${type.group}/${type.version}` : `/api/${type.version}`;
  return namespace && type.namespaced ? `${root}/namespaces/${encodeURIComponent(namespace)}/${type.plural}` : `${root}/${type.plural}`;
}

function objectPath(type: ResourceType, namespace: string | undefined, name: string): string {
  return `${collectionPath(type, namespace)}/${encodeURIComponent(name)}`;
}

/** Loads the connection the way kubectl would: `KUBECONFIG` (or ~/.kube/config), else in-cluster. */
export function loadKubeConfig(opts: { kubeconfig?: string } = {}): KubeConfig {
  const kc = new KubeConfig();
  if (opts.kubeconfig) kc.loadFromFile(opts.kubeconfig);
  else kc.loadFromDefault();
  if (!kc.getCurrentCluster()) throw new Error('no Kubernetes cluster configured (set KUBECONFIG, or run in a cluster)');
  return kc;
}

export class HttpKubeClient implements KubeClient {
  private readonly server: URL;
  private readonly watcher: Watch;

  constructor(
    private readonly kc: KubeConfig,
    private readonly opts: { requestTimeoutMs?: number } = {},
  ) {
    this.server = new URL(kc.getCurrentCluster()!.server);
    this.watcher = new Watch(kc);
  }

  async list(type: ResourceType, namespace?: string): Promise<{ items: KubeObject[]; resourceVersion: string }> {
    const body = (await this.call('GET', collectionPath(type, namespace))) as { items?: KubeObject[]; metadata?: { resourceVersion?: string } };
    // Lists leave apiVersion and kind off their items; the cache wants whole objects.
    const items = (body.items ?? []).map((item) => ({ apiVersion: apiVersionOf(type), kind: type.kind, ...item }));
    return { items, resourceVersion: body.metadata?.resourceVersion ?? '' };
  }

  async watch(type: ResourceType, namespace: string | undefined, resourceVersion: string, onEvent: (e: WatchEvent) => void): Promise<WatchHandle> {
    let settle!: { resolve: () => void; reject: (e: unknown) => void };
    const done = new Promise<void>((resolve, reject) => (settle = { resolve, reject }));
    const controller = await this.watcher.watch(
      collectionPath(type, namespace),
      { resourceVersion, allowWatchBookmarks: true, timeoutSeconds: 300 },
      (phase: string, object: WatchEvent['object']) => onEvent({ type: phase as WatchEventType, object }),
      (err: unknown) => {
        // Aborting our own request is a clean end, not an error.
        if (!err || (err as { name?: string }).name === 'AbortError') settle.resolve();
        else settle.reject(err);
      },
    );
    return { done, stop: () => controller.abort() };
  }

  async get(type: ResourceType, namespace: string | undefined, name: string): Promise<KubeObject | undefined> {
    try {
      return (await this.call('GET', objectPath(type, namespace, name))) as KubeObject;
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }

  async create(type: ResourceType, obj: KubeObject): Promise<KubeObject> {
    return (await this.call('POST', collectionPath(type, obj.metadata.namespace), obj)) as KubeObject;
  }

  async replace(type: ResourceType, obj: KubeObject): Promise<KubeObject> {
    return (await this.call('PUT', objectPath(type, obj.metadata.namespace, obj.metadata.name), obj)) as KubeObject;
  }

  async replaceStatus(type: ResourceType, obj: KubeObject): Promise<KubeObject> {
    return (await this.call('PUT', `${objectPath(type, obj.metadata.namespace, obj.metadata.name)}/status`, obj)) as KubeObject;
  }

  /** One JSON request with the kubeconfig's credentials; a non-2xx answer becomes a KubeApiError. */
  private async call(method: string, path: string, body?: unknown): Promise<unknown> {
    const base = this.server.pathname.replace(/\/$/, '');
    const opts: RequestOptions = {
      method,
      protocol: this.server.protocol,
      hostname: this.server.hostname,
      port: this.server.port || undefined,
      path: base + path,
      headers: { Accept: 'application/json', ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}) },
      timeout: this.opts.requestTimeoutMs ?? 30_000,
    };
    await this.kc.applyToHTTPSOptions(opts);
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      const send = this.server.protocol === 'https:' ? httpsRequest : httpRequest;
      const req = send(opts, resolve);
      req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer from the Kubernetes API server`)));
      req.on('error', reject);
      req.end(payload);
    });
    const chunks: Buffer[] = [];
    for await (const chunk of res) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : {};
    } catch {
      json = { message: text };
    }
    const status = res.statusCode ?? 500;
    if (status >= 200 && status < 300) return json;
    const s = json as { reason?: string; message?: string };
    throw new KubeApiError(status, s.reason ?? 'Unknown', `${method} ${path}: ${status} ${s.message ?? text}`);
  }
}
