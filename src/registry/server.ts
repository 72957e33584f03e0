import { createServer, type Server, type ServerResponse } from 'node:http';
import { mkdir } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import type { Config } from '../core/config/index.js';
import { createLogger, type Logger } from '../core/log.js';
import { createMetrics, type Metrics } from '../core/metrics.js';
import { openMetadataStore } from '../metadata/pg/store.js';
import type { MetadataStore } from '../metadata/store.js';
import type { BlobDriver } from '../storage/driver.js';
import { FilesystemDriver } from '../storage/filesystem.js';
import { S3Driver } from '../storage/s3.js';
import { GcsDriver } from '../storage/gcs.js';
import { InstrumentedDriver } from '../storage/instrumented.js';
import { loadSigningKeys, TokenSigner } from './auth/tokens.js';
import { bootstrap } from './bootstrap.js';
import { SecretBox } from '../core/secrets.js';
import { createApp } from './http/app.js';
import { PORT_REPOSITORY } from './http/v2/addressing.js';
import { applyChange, CHANGES_CHANNEL, createServices, type Services } from './services.js';

export interface RunningServer {
  server: Server;
  services: Services;
  /** `http://host:port` actually bound. */
  url: string;
  port: number;
  /** Stops accepting, finishes in-flight requests (up to the shutdown timeout), closes pools. */
  close(): Promise<void>;
}

export interface StartOptions {
  config: Config;
  log?: Logger;
  metrics?: Metrics;
  /** Use these instead of opening the configured ones (tests). They are not closed by `close()`. */
  store?: MetadataStore;
  driver?: BlobDriver;
}

/** Opens the database and storage, bootstraps, and listens. */
export async function startServer(opts: StartOptions): Promise<RunningServer> {
  const { config } = opts;
  const log = opts.log ?? createLogger(config.log.level);
  const metrics = opts.metrics ?? createMetrics({ defaults: true });
  const ownStore = !opts.store;
  const store =
    opts.store ??
    (await openMetadataStore({
      databaseUrl: config.database.url,
      dataDir: `${config.dataDir}/metadata`,
      poolSize: config.database.poolSize,
      statementTimeoutMs: config.database.statementTimeoutMs,
    }));
  if (!opts.driver && config.storage.driver === 'filesystem') {
    // A fresh install has no blob root until its first write, and /readyz requires
    // one: create it, or no pod of a new installation would ever become ready.
    await mkdir(config.storage.filesystem.root, { recursive: true }).catch((err: unknown) =>
      log.warn({ err, root: config.storage.filesystem.root }, 'could not create the storage root'),
    );
  }
  const driver = new InstrumentedDriver(opts.driver ?? openDriver(config), metrics.storageDuration);
  const signer = new TokenSigner(await loadSigningKeys(store, config.auth.tokenSigningKey));
  const secrets = await SecretBox.fromSettings(store);
  const services = createServices({ config, store, driver, log, metrics, signer, secrets });
  await bootstrap(services, config, log);
  // Changes made by other processes on the same database reach this one within
  // moments; the caches' short TTLs are the fallback when a notification is lost.
  const unsubscribe = await services.store
    .subscribe(CHANGES_CHANNEL, (payload) => applyChange(services, payload))
    .catch((err: unknown) => {
      log.warn({ err }, 'could not subscribe to configuration changes; relying on cache expiry');
      return async () => undefined;
    });

  const app = createApp(services);
  const server = createServer({ keepAliveTimeout: 65_000, requestTimeout: 0 }, app);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.server.port, config.server.host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  // Port method (SPEC §3): a repository with `port` is also served at the root of that port.
  const portServers: Server[] = [];
  for (const repo of await services.repositories.list()) {
    if (!repo.port) continue;
    const key = repo.key;
    const extra = createServer({ keepAliveTimeout: 65_000, requestTimeout: 0 }, (req, res) => {
      (req as typeof req & { [PORT_REPOSITORY]?: string })[PORT_REPOSITORY] = key;
      app(req, res);
    });
    await new Promise<void>((resolve, reject) => {
      extra.once('error', reject);
      extra.listen(repo.port, config.server.host, () => resolve());
    });
    portServers.push(extra);
    log.info({ repo: key, port: repo.port }, 'serving a repository on its own port');
  }
  const host = config.server.host === '0.0.0.0' || config.server.host === '::' ? '127.0.0.1' : config.server.host;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  log.info({ url, database: config.database.url ? 'postgresql' : 'embedded', storage: driver.name }, 'drydock is serving');

  const housekeeping = setInterval(() => {
    services.uploads.sweepIdleHashers();
    services.uploads
      .expireStale(new Date(Date.now() - config.uploads.staleAfterSecs * 1000))
      .catch((err: unknown) => log.warn({ err }, 'expiring stale uploads failed'));
  }, 60_000);
  housekeeping.unref();

  let closing: Promise<void> | undefined;
  // Once closing, a connection is closed as soon as its in-flight request is answered:
  // an idle keep-alive connection would otherwise hold the process until the shutdown timeout.
  for (const srv of [server, ...portServers]) {
    srv.on('request', (_req, res: ServerResponse) => {
      res.once('finish', () => {
        if (closing) setImmediate(() => srv.closeIdleConnections());
      });
    });
  }
  const close = () =>
    (closing ??= (async () => {
      clearInterval(housekeeping);
      await unsubscribe().catch(() => undefined);
      const closed = Promise.all(
        [server, ...portServers].map((srv) => {
          const done = new Promise<void>((resolve) => srv.close(() => resolve()));
          srv.closeIdleConnections();
          return done;
        }),
      );
      const timer = setTimeout(() => [server, ...portServers].forEach((srv) => srv.closeAllConnections()), config.server.shutdownTimeoutMs);
      await closed;
      clearTimeout(timer);
      if (ownStore) await store.close();
      log.info('drydock stopped');
    })());
  return { server, services, url, port, close };
}

export function openDriver(config: Config): BlobDriver {
  switch (config.storage.driver) {
    case 'filesystem':
      return new FilesystemDriver(config.storage.filesystem.root);
    case 's3': {
      // The schema requires the section for this driver; checked again for the type.
      const s3 = config.storage.s3;
      if (!s3) throw new Error('storage.s3 is required when storage.driver is s3');
      return new S3Driver({ ...s3, redirect: { ...s3.redirect } });
    }
    case 'gcs': {
      const gcs = config.storage.gcs;
      if (!gcs) throw new Error('storage.gcs is required when storage.driver is gcs');
      return new GcsDriver({ ...gcs, redirect: { ...gcs.redirect } });
    }
  }
}
