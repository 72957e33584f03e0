#!/usr/bin/env node
import { loadConfig, isConfigError } from './core/config/index.js';
import { createLogger } from './core/log.js';
import { openDb } from './metadata/pg/db.js';
import { migrate } from './metadata/migrations.js';
import { startServer } from './registry/server.js';

const USAGE = `usage: drydock <command>

commands:
  serve     run the registry (default)
  migrate   apply database migrations and exit

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
    default:
      console.error(`unknown command: ${command}\n\n${USAGE}`);
      return 2;
  }
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
