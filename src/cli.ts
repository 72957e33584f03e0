#!/usr/bin/env node
import { loadConfig, isConfigError } from './core/config/index.js';
import { createLogger } from './core/log.js';
import { openDb } from './metadata/pg/db.js';
import { migrate } from './metadata/migrations.js';
import { openDriver, startServer } from './registry/server.js';
import { createMetrics } from './core/metrics.js';
import { openMetadataStore } from './metadata/pg/store.js';
import { GarbageCollector } from './registry/service/gc.js';
import { UploadService } from './registry/service/uploads.js';
import { parseNamespaces, podNamespace, startOperator } from './operator/main.js';

const USAGE = `usage: drydock <command>

commands:
  serve     run the registry (default)
  operator  reconcile DockerRepository and Promotion resources (SPEC §8):
            KUBECONFIG (or in-cluster), DATABASE_URL, DRYDOCK_WATCH_NAMESPACES,
            DRYDOCK_NAMESPACE, DRYDOCK_OPERATOR_PORT (default 8080),
            DRYDOCK_IMAGE_COUNT_REFRESH_SECS (default 30)
  migrate   apply database migrations and exit
  gc        collect unreferenced blobs online and print a JSON summary
            [--dry-run] [--grace <secs>] [--batch <n>] [--rate <blobs/s>]

configuration: drydock.config.yaml (or DRYDOCK_CONFIG), overridden by
DRYDOCK_PORT, DRYDOCK_HOST, DRYDOCK_DATA_DIR, DRYDOCK_ADMIN_PASSWORD,
DATABASE_URL, DRYDOCK_BASE_URL; see config/drydock.example.yaml`;

async function main(argv: string[]): Promise<number> {
  const command = argv[0] ?? 'serve';
  if (command === '-h' || command === '--help' || command === 'help') {
    console.log(USAGE);
    return 0;
  }
  let config;
  try {
    config = await loadConfig({ env: process.env });
  } catch (e) {
    if (isConfigError(e)) {
      console.error(e.message);
      return 2;
    }
    throw e;
  }
  const log = createLogger(config.log.level);
  switch (command) {
    case 'serve': {
      const running = await startServer({ config, log });
      closeOnSignals(running, log);
      return -1;
    }
    case 'operator': {
      const portText = process.env.DRYDOCK_OPERATOR_PORT ?? '8080';
      if (!/^\d+$/.test(portText) || Number(portText) > 65535) {
        console.error(`DRYDOCK_OPERATOR_PORT: not a port number: ${JSON.stringify(portText)}`);
        return 2;
      }
      const refreshText = process.env.DRYDOCK_IMAGE_COUNT_REFRESH_SECS ?? '30';
      if (!/^\d+(\.\d+)?$/.test(refreshText) || Number(refreshText) <= 0) {
        console.error(`DRYDOCK_IMAGE_COUNT_REFRESH_SECS: not a positive number of seconds: ${JSON.stringify(refreshText)}`);
        return 2;
      }
      if (!config.database.url) {
        console.error('drydock operator writes to the database the registry pods use: set DATABASE_URL');
        return 2;
      }
      let running;
      try {
        running = await startOperator({
          config,
          log,
          namespaces: parseNamespaces(process.env.DRYDOCK_WATCH_NAMESPACES),
          leaseNamespace: process.env.DRYDOCK_NAMESPACE || podNamespace() || 'drydock',
          port: Number(portText),
          identity: process.env.POD_NAME || undefined,
          imageCountRefreshMs: Number(refreshText) * 1000,
        });
      } catch (e) {
        // Nothing reachable to run against (no kubeconfig, no database): say which, without a stack.
        console.error(`drydock operator: ${(e as Error).message}`);
        return 1;
      }
      closeOnSignals(running, log);
      return -1;
    }
    case 'migrate': {
      const db = await openDb({ databaseUrl: config.database.url, dataDir: `${config.dataDir}/metadata` });
      try {
        const { applied } = await migrate(db);
        log.info({ applied }, applied.length ? 'migrations applied' : 'database is up to date');
      } finally {
        await db.close();
      }
      return 0;
    }
    case 'gc': {
      let flags: GcFlags;
      try {
        flags = parseGcFlags(argv.slice(1));
      } catch (e) {
        console.error(`${(e as Error).message}\n\n${USAGE}`);
        return 2;
      }
      const store = await openMetadataStore({
        databaseUrl: config.database.url,
        dataDir: `${config.dataDir}/metadata`,
        poolSize: 2,
        statementTimeoutMs: config.database.statementTimeoutMs,
      });
      try {
        const driver = openDriver(config);
        const metrics = createMetrics();
        const uploads = new UploadService({ store, driver, log, metrics });
        const gc = new GarbageCollector({ store, driver, log, metrics, expireUploads: (before) => uploads.expireStale(before) });
        const summary = await gc.run({
          dryRun: flags.dryRun,
          graceSecs: flags.grace ?? config.gc.graceSecs,
          untaggedRetentionSecs: config.gc.untaggedRetentionSecs,
          batchSize: flags.batch ?? config.gc.batchSize,
          rate: flags.rate,
          staleUploadSecs: config.uploads.staleAfterSecs,
        });
        console.log(JSON.stringify(summary));
      } finally {
        await store.close();
      }
      return 0;
    }
    default:
      console.error(`unknown command: ${command}\n\n${USAGE}`);
      return 2;
  }
}

/** SIGTERM (Kubernetes) or SIGINT (a terminal): finish what is in flight, then exit. */
function closeOnSignals(running: { close(): Promise<void> }, log: ReturnType<typeof createLogger>): void {
  const stop = (signal: string) => {
    log.info({ signal }, 'shutting down');
    running.close().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}

interface GcFlags {
  dryRun: boolean;
  grace?: number;
  batch?: number;
  rate?: number;
}

function parseGcFlags(args: string[]): GcFlags {
  const flags: GcFlags = { dryRun: false };
  const number = (name: string, value: string | undefined, min: number): number => {
    const n = Number(value);
    if (value === undefined || !Number.isFinite(n) || n < min) throw new Error(`${name} needs a number >= ${min}`);
    return n;
  };
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--dry-run') flags.dryRun = true;
    else if (a === '--grace') flags.grace = number(a, args[++i], 0);
    else if (a === '--batch') flags.batch = Math.min(1000, Math.floor(number(a, args[++i], 1)));
    else if (a === '--rate') flags.rate = number(a, args[++i], 0);
    else throw new Error(`unknown gc option: ${a}`);
  }
  return flags;
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (err: unknown) => {
    console.error(err instanceof Error ? (err.stack ?? err.message) : err);
    process.exit(1);
  },
);
