/**
 * `drydock operator`: wires the controllers to Kubernetes and to the registry's
 * database. Every replica serves `/healthz` and `/metrics`; only the one holding
 * the Lease watches and reconciles.
 */
import { createServer, type Server } from 'node:http';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { Registry } from 'prom-client';
import type { Config } from '../core/config/index.js';
import type { Logger } from '../core/log.js';
import { createMetrics } from '../core/metrics.js';
import { SecretBox } from '../core/secrets.js';
import { openMetadataStore } from '../metadata/pg/store.js';
import type { MetadataStore } from '../metadata/store.js';
import { loadSigningKeys, TokenSigner } from '../registry/auth/tokens.js';
import { openDriver } from '../registry/server.js';
import { createServices, type Services } from '../registry/services.js';
import { KubeEventRecorder } from './events.js';
import { Informer } from './informer.js';
import { ImageCountRefresher } from './image-counts.js';
import { HttpKubeClient, loadKubeConfig, type KubeClient } from './kube.js';
import { LeaderElector } from './leader.js';
import { createOperatorMetrics, type OperatorMetrics } from './metrics.js';
import { PodProtector } from './pod-protector.js';
import { PromotionController } from './promotion-controller.js';
import { WorkQueue } from './queue.js';
import { RepositoryController, resourcesSharingKey, resourcesUsingSecret } from './repository-controller.js';
import { DOCKER_REPOSITORIES, PODS, PROMOTIONS, SECRETS, type KubeObject } from './resources.js';

export interface OperatorOptions {
  config: Config;
  log: Logger;
  /** Namespaces to watch (`DRYDOCK_WATCH_NAMESPACES`); empty for all. */
  namespaces: readonly string[];
  /** Where the leader Lease lives (`DRYDOCK_NAMESPACE`). */
  leaseNamespace: string;
  /** `/metrics` and `/healthz` (`DRYDOCK_OPERATOR_PORT`); 0 picks a free port. */
  port: number;
  host?: string;
  /** This replica's name in the Lease; the pod name in a cluster. */
  identity?: string;
  /** Kubernetes access; default: `KUBECONFIG` or the in-cluster service account. */
  client?: KubeClient;
  kubeconfig?: string;
  /** The registry's database; default: opened from the configuration. */
  store?: MetadataStore;
  resyncMs?: number;
  /** How often `status.imageCount` is compared with the database (`DRYDOCK_IMAGE_COUNT_REFRESH_SECS`); default 30 s. */
  imageCountRefreshMs?: number;
  leaseDurationSecs?: number;
}

export interface RunningOperator {
  url: string;
  port: number;
  isLeader(): boolean;
  close(): Promise<void>;
}

/** The namespace of the pod we run in, when in a cluster. */
export function podNamespace(): string | undefined {
  try {
    return readFileSync('/var/run/secrets/kubernetes.io/serviceaccount/namespace', 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

/** `DRYDOCK_WATCH_NAMESPACES`: a comma list; empty or unset means every namespace. */
export function parseNamespaces(value: string | undefined): string[] {
  return (value ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

/** What in-use protection reads of a Pod: its phase and the image ids it runs. */
export function trimPod(pod: KubeObject): KubeObject {
  const status = (pod.status ?? {}) as Record<string, unknown>;
  const ids = (list: unknown) => (Array.isArray(list) ? list.map((c: { imageID?: string }) => ({ imageID: c.imageID })) : undefined);
  return {
    apiVersion: pod.apiVersion,
    kind: pod.kind,
    metadata: { name: pod.metadata.name, namespace: pod.metadata.namespace, resourceVersion: pod.metadata.resourceVersion },
    status: {
      phase: status.phase,
      containerStatuses: ids(status.containerStatuses),
      initContainerStatuses: ids(status.initContainerStatuses),
      ephemeralContainerStatuses: ids(status.ephemeralContainerStatuses),
    },
  };
}

/**
 * In-use protection's host filter: drydock's own host, and any upstream host a
 * remote repository mirrors (containerd's mirror pulls record the upstream in
 * `imageID`, though the bytes came from drydock's cache).
 */
function registryOrMirrored(ownHost: string, resolver: Pick<Services['resolver'], 'remoteForHost'>): (host: string) => Promise<boolean> {
  const own = ownHost.toLowerCase();
  return async (host) => host === own || (await resolver.remoteForHost(host)) !== undefined;
}

/** Informers and queues, alive while this replica leads. */
class Controllers {
  private readonly informers: Informer[] = [];
  private readonly queues: WorkQueue[] = [];
  private protector?: PodProtector;
  private imageCounts?: ImageCountRefresher;
  synced = false;

  constructor(
    private readonly opts: OperatorOptions,
    private readonly client: KubeClient,
    private readonly services: Services,
    private readonly metrics: OperatorMetrics,
    private readonly identity: string,
  ) {}

  async start(): Promise<void> {
    const { log, config, namespaces } = this.opts;
    const { client, services, metrics } = this;
    const recorder = new KubeEventRecorder({ client, component: 'drydock-operator', instance: this.identity, log });
    const resync = this.opts.resyncMs ?? 10 * 60_000;
    const baseUrl = config.server.baseUrl ?? `http://localhost:${config.server.port}`;
    const queueFor = (kind: string, worker: (key: string) => Promise<{ requeueAfterMs?: number } | void>) => {
      const q = new WorkQueue({
        worker,
        concurrency: 2,
        onError: (key, err, failures) => log.warn({ err, kind, object: key, failures }, 'reconcile failed; retrying with backoff'),
      });
      this.queues.push(q);
      return q;
    };

    // Created before their controllers: the controllers read these caches.
    let repoQueue!: WorkQueue;
    const secrets = new Informer({
      client,
      type: SECRETS,
      namespaces,
      log,
      // Only to learn that a Secret changed: its data is read when a reconcile needs it.
      transform: (s) => ({ apiVersion: s.apiVersion, kind: s.kind, metadata: { name: s.metadata.name, namespace: s.metadata.namespace, resourceVersion: s.metadata.resourceVersion } }),
      onRelist: () => metrics.relists.inc({ kind: 'Secret' }),
      onChange: (key) => resourcesUsingSecret(repositories, key).forEach((k) => repoQueue.add(k)),
    });
    const repositories: Informer = new Informer({
      client,
      type: DOCKER_REPOSITORIES,
      namespaces,
      log,
      onRelist: () => metrics.relists.inc({ kind: 'DockerRepository' }),
      resyncMs: resync,
      onChange: (key, obj, previous) => {
        repoQueue.add(key);
        // A resource giving up a key (deleted, renamed key) may free it for a rival; a resync changes nothing.
        if (obj === previous) return;
        for (const o of [obj, previous]) if (o) resourcesSharingKey(repositories, o).forEach((k) => repoQueue.add(k));
      },
    });
    const repoController = new RepositoryController({
      client,
      repositories,
      readSecret: (namespace, name) => client.get(SECRETS, namespace, name),
      store: services.store,
      repositoryService: services.repositories,
      security: services.security,
      recorder,
      metrics,
      log: log.child({ controller: 'DockerRepository' }),
      baseUrl,
      namespaces,
    });
    repoQueue = queueFor('DockerRepository', (key) => repoController.reconcile(key));
    const imageCounts = new ImageCountRefresher({
      repositories,
      store: services.store,
      reconcile: (key) => repoQueue.add(key),
      log: log.child({ controller: 'DockerRepository' }),
      intervalMs: this.opts.imageCountRefreshMs ?? 30_000,
    });
    this.imageCounts = imageCounts;

    let promoQueue!: WorkQueue;
    const promotions = new Informer({ client, type: PROMOTIONS, namespaces, log, resyncMs: resync, onRelist: () => metrics.relists.inc({ kind: 'Promotion' }), onChange: (key) => promoQueue.add(key) });
    const promoController = new PromotionController({
      client,
      promotions,
      promotion: services.promotion,
      managerOf: async (key) => (await services.store.repositories.get(key))?.managedBy,
      recorder,
      metrics,
      log: log.child({ controller: 'Promotion' }),
      backoff: (attempt) => Math.min(60_000, 1000 * 2 ** (attempt - 1)),
    });
    promoQueue = queueFor('Promotion', (key) => promoController.reconcile(key));

    let protector!: PodProtector;
    const pods = new Informer({
      client,
      type: PODS,
      namespaces,
      log,
      transform: trimPod,
      onRelist: () => metrics.relists.inc({ kind: 'Pod' }),
      onChange: () => protector.poke(),
    });
    protector = new PodProtector({
      pods,
      store: services.store,
      log: log.child({ controller: 'Pod' }),
      metrics,
      counts: config.server.baseUrl ? registryOrMirrored(new URL(config.server.baseUrl).host, services.resolver) : undefined,
    });
    this.protector = protector;

    this.informers.push(secrets, repositories, promotions, pods);
    metrics.queueDepth.reset();
    await Promise.all([secrets.start(), repositories.start(), promotions.start(), pods.start()]);
    await protector.sync();
    imageCounts.start();
    this.synced = true;
    log.info({ namespaces: namespaces.length ? namespaces : 'all' }, 'operator caches synced; reconciling');
  }

  depths(): Array<[string, number]> {
    return [
      ['DockerRepository', this.queues[0]?.depth() ?? 0],
      ['Promotion', this.queues[1]?.depth() ?? 0],
    ];
  }

  async stop(): Promise<void> {
    this.synced = false;
    await this.imageCounts?.stop();
    await Promise.all(this.informers.map((i) => i.stop()));
    await Promise.all(this.queues.map((q) => q.shutdown()));
    await this.protector?.stop();
  }
}

export async function startOperator(opts: OperatorOptions): Promise<RunningOperator> {
  const { config, log } = opts;
  // Kubernetes first: a missing kubeconfig must fail before anything touches the database.
  const client = opts.client ?? new HttpKubeClient(loadKubeConfig({ kubeconfig: opts.kubeconfig }));
  const ownStore = !opts.store;
  if (ownStore && !config.database.url) {
    throw new Error('the operator writes to the registry database: set DATABASE_URL to the PostgreSQL server the registry pods use');
  }
  const store =
    opts.store ??
    (await openMetadataStore({
      databaseUrl: config.database.url,
      dataDir: `${config.dataDir}/metadata`,
      poolSize: 4,
      statementTimeoutMs: config.database.statementTimeoutMs,
    }));
  const registry = new Registry();
  const metrics = createOperatorMetrics(registry);
  const registryMetrics = createMetrics();
  const signer = new TokenSigner(await loadSigningKeys(store, config.auth.tokenSigningKey));
  const secrets = await SecretBox.fromSettings(store);
  // The same services as the registry pods, so changes are validated, audited and announced alike.
  const services = createServices({ config, store, driver: openDriver(config), log, metrics: registryMetrics, signer, secrets });
  const identity = opts.identity ?? `${hostname()}-${randomBytes(4).toString('hex')}`;

  let controllers: Controllers | undefined;
  let transition: Promise<void> = Promise.resolve();
  const elector = new LeaderElector({
    client,
    namespace: opts.leaseNamespace,
    identity,
    leaseDurationSecs: opts.leaseDurationSecs,
    log,
    onStartedLeading: () => {
      metrics.leader.set(1);
      transition = transition.then(async () => {
        controllers = new Controllers(opts, client, services, metrics, identity);
        await controllers.start().catch((err: unknown) => log.error({ err }, 'controllers failed to start'));
      });
    },
    onStoppedLeading: () => {
      metrics.leader.set(0);
      transition = transition.then(async () => {
        await controllers?.stop();
        controllers = undefined;
      });
    },
  });

  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/healthz' || path === '/readyz') {
      const body = { status: 'ok', leader: elector.isLeader, synced: controllers?.synced ?? false, identity };
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(body));
    } else if (path === '/metrics') {
      for (const [kind, depth] of controllers?.depths() ?? []) metrics.queueDepth.set({ kind }, depth);
      registry.metrics().then(
        (text) => res.writeHead(200, { 'Content-Type': registry.contentType }).end(text),
        (err: unknown) => res.writeHead(500).end(String(err)),
      );
    } else {
      res.writeHead(404, { 'Content-Type': 'application/json' }).end(JSON.stringify({ message: `no route ${path}; try /healthz or /metrics` }));
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host ?? '0.0.0.0', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  elector.start();
  log.info({ port, identity, lease: `${opts.leaseNamespace}/drydock-operator` }, 'operator started; campaigning for the leader Lease');

  let closing: Promise<void> | undefined;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    isLeader: () => elector.isLeader,
    close: () =>
      (closing ??= (async () => {
        await elector.stop();
        await transition;
        await new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeAllConnections();
        if (ownStore) await store.close();
      })()),
  };
}
