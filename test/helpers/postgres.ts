import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { Db } from '../../src/metadata/pg/db.js';

/**
 * The PostgreSQL 15 server the tests use (see ../shared/TECH.md): a
 * maintenance connection that may CREATE and DROP databases.
 * Override with DRYDOCK_TEST_POSTGRES_URL.
 */
export const POSTGRES_ADMIN_URL = process.env.DRYDOCK_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export interface TestDatabase {
  /** Connection string of the new, empty database. */
  url: string;
  /** Drops the database, disconnecting whoever is still connected. Idempotent. */
  drop(): Promise<void>;
}

async function withAdmin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: POSTGRES_ADMIN_URL, connectionTimeoutMillis: 5000 });
  try {
    await client.connect();
  } catch (e) {
    // The server is a test prerequisite: fail loudly rather than skip.
    throw new Error(
      `PostgreSQL is not reachable at ${POSTGRES_ADMIN_URL} (${(e as Error).message}). ` +
        'These tests need the local server: start it with `pg_ctlcluster --skip-systemctl-redirect 15 main start` ' +
        'or point DRYDOCK_TEST_POSTGRES_URL at another one.',
      { cause: e },
    );
  }
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Creates a uniquely named empty database on the test server. Its default
 * collation is ICU `en-US` (linguistic, like many production clusters), so a
 * query that forgets `COLLATE "C"` orders differently and fails its test.
 * `synchronous_commit` is off: tests do not need durability and insert faster.
 * Rejects with a clear message when the server is not reachable.
 */
export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `drydock_test_${process.pid}_${randomBytes(4).toString('hex')}`;
  const url = new URL(POSTGRES_ADMIN_URL);
  url.pathname = `/${name}`;
  await withAdmin(async (client) => {
    // CREATE DATABASE copies its template and fails (55006) while anyone else is
    // connected to it; parallel test files can hit that briefly, so retry.
    for (let attempt = 1; ; attempt++) {
      try {
        await client.query(`CREATE DATABASE "${name}" TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US'`);
        break;
      } catch (e) {
        if ((e as { code?: string }).code !== '55006' || attempt >= 10) throw e;
        await new Promise((resolve) => setTimeout(resolve, 100 * attempt));
      }
    }
    await client.query(`ALTER DATABASE "${name}" SET synchronous_commit = off`);
  });
  let dropped = false;
  return {
    url: url.toString(),
    async drop() {
      if (dropped) return;
      dropped = true;
      await withAdmin((client) => client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`));
    },
  };
}

/**
 * Empties every table of the current schema except `schema_migrations`, so a
 * test starts from a migrated but empty database. Works on PGlite too.
 */
export async function truncateTables(db: Db): Promise<void> {
  const { rows } = await db.query<{ name: string }>(
    `SELECT quote_ident(tablename) AS name FROM pg_tables
     WHERE schemaname = current_schema() AND tablename <> 'schema_migrations'`,
  );
  if (rows.length > 0) await db.exec(`TRUNCATE ${rows.map((r) => r.name).join(', ')}`);
}
