/** One HTTP request: routes discovery, OpenAPI and resource paths to the store and renders the answer (object, list, Table, watch stream). */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { apiGroups, apiResourceList, openApiV3Document, openApiV3Root, VERSION_INFO } from './discovery.js';
import { badRequest, METHOD_NOT_ALLOWED, PAGE_NOT_FOUND } from './errors.js';
import { isObj } from './json.js';
import { groupVersion } from './resources.js';
import { parseFieldSelector, parseLabelSelector, type Selection } from './selectors.js';
import type { Store, Target, WriteOptions } from './store.js';
import { type IncludeObject, partialObjectMetadata, toTable } from './table.js';
import type { KubeObject } from './types.js';
import type { Watcher } from './watch.js';
import { decodeText, patchTypeOf, readBody, renderingOf, sendJson } from './wire.js';

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

interface HttpContext {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  store: Store;
  streams: Set<ServerResponse>;
  bookmarkIntervalMs: number;
}

export class ApiHandler {
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
    if (path === '/openapi/v3') return this.ok(openApiV3Root(this.c.store.types));
    if (path.startsWith('/openapi/v3/')) {
      const gv = path.slice('/openapi/v3/'.length).split('/');
      const doc = gv[0] === 'api' ? openApiV3Document(this.c.store.types, '', gv[1] ?? '') : openApiV3Document(this.c.store.types, gv[1] ?? '', gv[2] ?? '');
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
    this.ok({ kind: 'APIGroupList', apiVersion: 'v1', groups: apiGroups(this.c.store.types) });
  }

  private discoveryGroup(group: string): void {
    const g = apiGroups(this.c.store.types).find((x) => x.name === group);
    if (!g) throw PAGE_NOT_FOUND();
    this.ok({ kind: 'APIGroup', apiVersion: 'v1', ...g });
  }

  private discoveryVersion(group: string, version: string): void {
    const list = apiResourceList(this.c.store.types, group, version);
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
      store.watches.watchers.delete(watcher);
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
    if (watcher.bookmarks && this.c.bookmarkIntervalMs > 0) timers.push(setInterval(() => watcher.send(store.watches.bookmark(watcher)), this.c.bookmarkIntervalMs));
  }
}
