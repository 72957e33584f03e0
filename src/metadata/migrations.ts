import { existsSync, readdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Db } from './pg/db.js';

/**
 * Where the `*.sql` files are. tsc compiles this module to
 * `dist/metadata/migrations.js` but does not copy the .sql files, so look
 * next to the module first (running from `src/` under jest or tsx, or a build
 * step that copied them) and then in `../../src/metadata/migrations`
 * relative to it (a plain `dist/` build inside the source tree).
 */
const CANDIDATE_DIRS = [
  new URL('./migrations/', import.meta.url),
  new URL('../../src/metadata/migrations/', import.meta.url),
].map((u) => fileURLToPath(u));

export function defaultMigrationsDir(): string {
  const found = CANDIDATE_DIRS.find((dir) => existsSync(dir) && readdirSync(dir).some((f) => f.endsWith('.sql')));
  if (!found) throw new Error(`no metadata migrations found in ${CANDIDATE_DIRS.join(' or ')}`);
  return found;
}

// Two-key advisory locks live in a keyspace apart from the one-key locks that
// MetadataStore.lock(name) takes, so no lock name can collide with this one.
const LOCK_SQL = "SELECT 1 FROM pg_advisory_xact_lock(hashtext('drydock'), hashtext('schema_migrations'))";

/**
 * Applies the migrations (`NNN-name.sql`, in file-name order) that
 * `schema_migrations` does not record yet, each in its own transaction
 * together with its record. Every step holds a transaction-scoped advisory
 * lock, so processes starting at once apply each migration exactly once (the
 * later ones wait, then find it recorded). Idempotent: a second run applies
 * nothing. Resolves the versions (file names without `.sql`) applied by this call.
 */
export async function migrate(db: Db, opts: { dir?: string } = {}): Promise<{ applied: string[] }> {
  const dir = opts.dir ?? defaultMigrationsDir();
  const versions = readdirSync(dir)
    .filter((f) => f.endsWith('.sql'))
    .sort()
    .map((f) => f.slice(0, -'.sql'.length));

  const recorded = await db.transaction(async (tx) => {
    await lockMigrations(tx);
    // Checked under the lock: concurrent CREATE TABLE IF NOT EXISTS can still collide.
    const { rows } = await tx.query<{ present: boolean }>("SELECT to_regclass('schema_migrations') IS NOT NULL AS present");
    if (!rows[0]?.present) {
      await tx.query('CREATE TABLE schema_migrations (version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())');
      return new Set<string>();
    }
    const applied = await tx.query<{ version: string }>('SELECT version FROM schema_migrations');
    return new Set(applied.rows.map((r) => r.version));
  });

  const applied: string[] = [];
  for (const version of versions) {
    if (recorded.has(version)) continue;
    const sql = await readFile(join(dir, `${version}.sql`), 'utf8');
    const ran = await db.transaction(async (tx) => {
      await lockMigrations(tx);
      // Another process may have applied it between our listing and this lock.
      const seen = await tx.query('SELECT 1 FROM schema_migrations WHERE version = $1', [version]);
      if (seen.rowCount > 0) return false;
      await tx.exec(sql);
      await tx.query('INSERT INTO schema_migrations (version) VALUES ($1)', [version]);
      return true;
    });
    if (ran) applied.push(version);
  }
  return { applied };
}

async function lockMigrations(tx: Db): Promise<void> {
  // DDL and waiting for another process's migration may outlast the pool's statement_timeout.
  await tx.query('SET LOCAL statement_timeout = 0');
  await tx.query(LOCK_SQL);
}
