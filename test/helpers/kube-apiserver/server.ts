/** Start-up: the HTTP listener, the kubeconfig, CRD files, and the in-process methods of the KubeApiServer handle. */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments, stringify as stringifyYaml } from 'yaml';
import { PAGE_NOT_FOUND } from './errors.js';
import { ApiHandler } from './handler.js';
import { isObj } from './json.js';
import { parseFieldSelector, parseLabelSelector } from './selectors.js';
import { Store, type Target } from './store.js';
import { KubeApiError, type KubeApiServer, type KubeApiServerOptions, type ObjectRef, type RequestLogEntry } from './types.js';
import { sendJson } from './wire.js';

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
    for (const w of [...store.watches.watchers]) w.close();
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
    compactHistory: () => store.watches.compact(),
    closeWatches,
    sendBookmarks: () => {
      for (const w of store.watches.watchers) if (w.bookmarks) w.send(store.watches.bookmark(w));
    },
    watchCount: () => store.watches.watchers.size,
    close: async () => {
      closeWatches();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of sockets) s.destroy();
      await closed;
      await rm(dir, { recursive: true, force: true });
    },
  };
}
