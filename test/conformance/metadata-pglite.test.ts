import { readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { defaultMigrationsDir, migrate } from '../../src/metadata/migrations.js';
import { openDb, type Db } from '../../src/metadata/pg/db.js';
import { PgMetadataStore, openMetadataStore } from '../../src/metadata/pg/store.js';
import type { MetadataStore } from '../../src/metadata/store.js';
import { truncateTables } from '../helpers/postgres.js';
import { describeMetadataStore, digestOf } from './metadata-store.js';

// One PGlite per file: creating a database takes seconds. Tests start from
// emptied tables instead. It lives in a data dir so the last test can reopen it.
let dir: string;
let db: Db;
let store: PgMetadataStore;
let firstMigration: { applied: string[] };
/** Whatever store is open at the end (the reopen test swaps it). */
let open: MetadataStore | undefined;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'drydock-pglite-'));
  db = await openDb({ dataDir: join(dir, 'pgdata') });
  firstMigration = await migrate(db);
  store = new PgMetadataStore(db);
  open = store;
});

afterAll(async () => {
  await open?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describeMetadataStore('PGlite', async () => {
  await truncateTables(db);
  return { store, cleanup: async () => undefined };
});

describe('PGlite specifics', () => {
  const allVersions = readdirSync(defaultMigrationsDir())
    .filter((f) => f.endsWith('.sql'))
    .sort()
    .map((f) => f.replace(/\.sql$/, ''));

  it('migrate applied every migration on the new database; a second run is a no-op', async () => {
    expect(allVersions.length).toBeGreaterThan(0);
    expect(firstMigration.applied).toEqual(allVersions);
    expect(await migrate(db)).toEqual({ applied: [] });
    const { rows } = await db.query<{ version: string; applied_at: Date }>('SELECT version, applied_at FROM schema_migrations ORDER BY version');
    expect(rows.map((r) => r.version)).toEqual(allVersions);
    expect(rows[0]!.applied_at).toBeInstanceOf(Date);
  });

  it('a statement sent while a transaction is open waits for it instead of running inside it', async () => {
    await truncateTables(db);
    let outside: Promise<void> | undefined;
    await expect(
      store.transaction(async (tx) => {
        await tx.settings.set('inside', 1);
        outside = store.settings.set('outside', 1);
        await sleep(20);
        throw new Error('roll back');
      }),
    ).rejects.toThrow('roll back');
    await outside;
    expect(await store.settings.get('inside')).toBeUndefined();
    expect(await store.settings.get('outside')).toBe(1);
  });

  it('returns node-postgres shapes: Buffer, number, Date', async () => {
    const { rows } = await db.query<{ b: unknown; n: unknown; t: unknown; big: unknown }>(
      "SELECT '\\x00ff'::bytea AS b, 42::int8 AS n, now() AS t, 9007199254740991::int8 AS big",
    );
    expect(Buffer.isBuffer(rows[0]!.b)).toBe(true);
    expect(rows[0]).toEqual({ b: Buffer.from([0, 255]), n: 42, t: expect.any(Date), big: Number.MAX_SAFE_INTEGER });
  });

  it('a constraint violation keeps its SQLSTATE', async () => {
    await truncateTables(db);
    await store.repositories.create({ key: 'r', rclass: 'local', config: {} });
    await expect(store.tags.set('r', 'img', 'latest', digestOf('nope'))).rejects.toMatchObject({ code: '23503' });
  });

  // Last: it closes the shared database.
  it('keeps its data in the data dir across a reopen', async () => {
    await truncateTables(db);
    await store.settings.set('persisted', { yes: true });
    await store.close();
    open = undefined;
    const started = Date.now();
    open = await openMetadataStore({ dataDir: join(dir, 'pgdata') });
    // Reopening an existing data dir is fast; creating one takes seconds.
    expect(Date.now() - started).toBeLessThan(5000);
    expect(await open.settings.get('persisted')).toEqual({ yes: true });
  });
});

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
