import { readdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import pg from 'pg';
import { MetadataUnavailableError } from '../../src/metadata/errors.js';
import { defaultMigrationsDir, migrate } from '../../src/metadata/migrations.js';
import { openDb, type Db } from '../../src/metadata/pg/db.js';
import { PgMetadataStore, openMetadataStore } from '../../src/metadata/pg/store.js';
import { createTestDatabase, truncateTables, type TestDatabase } from '../helpers/postgres.js';
import { describeMetadataStore, digestOf } from './metadata-store.js';

// One database per file (created fresh, dropped at the end); tests start from
// emptied tables. If the server is down, createTestDatabase rejects and every
// test here fails with a message saying how to start it.
let testDb: TestDatabase;
let db: Db;
let store: PgMetadataStore;
let firstMigration: { applied: string[] };

beforeAll(async () => {
  testDb = await createTestDatabase();
  db = await openDb({ databaseUrl: testDb.url, poolSize: 5 });
  firstMigration = await migrate(db);
  store = new PgMetadataStore(db);
});

afterAll(async () => {
  await db?.close();
  await testDb?.drop();
});

describeMetadataStore('PostgreSQL server', async () => {
  await truncateTables(db);
  return { store, cleanup: async () => undefined };
});

describe('PostgreSQL specifics', () => {
  const allVersions = readdirSync(defaultMigrationsDir())
    .filter((f) => f.endsWith('.sql'))
    .sort()
    .map((f) => f.replace(/\.sql$/, ''));

  it('migrate applied every migration on the new database; a second run is a no-op', async () => {
    expect(allVersions.length).toBeGreaterThan(0);
    expect(firstMigration.applied).toEqual(allVersions);
    expect(await migrate(db)).toEqual({ applied: [] });
    const { rows } = await db.query<{ version: string }>('SELECT version FROM schema_migrations ORDER BY version');
    expect(rows.map((r) => r.version)).toEqual(allVersions);
  });

  it('two processes migrating one fresh database at once apply each migration exactly once', async () => {
    const fresh = await createTestDatabase();
    // Separate pools stand in for separate processes: separate sessions.
    const dbs = await Promise.all([1, 2, 3].map(() => openDb({ databaseUrl: fresh.url, poolSize: 2 })));
    try {
      const results = await Promise.all(dbs.map((d) => migrate(d)));
      const applied = results.flatMap((r) => r.applied).sort();
      expect(applied).toEqual(allVersions);
      const { rows } = await dbs[0]!.query<{ version: string }>('SELECT version FROM schema_migrations ORDER BY version');
      expect(rows.map((r) => r.version)).toEqual(allVersions);
      // The schema works.
      const migrated = new PgMetadataStore(dbs[0]!);
      await migrated.settings.set('k', 1);
      expect(await migrated.settings.get('k')).toBe(1);
    } finally {
      await Promise.all(dbs.map((d) => d.close()));
      await fresh.drop();
    }
  });

  it('openMetadataStore migrates (a no-op here) and resolves a working store', async () => {
    const opened = await openMetadataStore({ databaseUrl: testDb.url, poolSize: 1 });
    try {
      await opened.ping();
    } finally {
      await opened.close();
    }
  });

  it('a transaction is invisible to other sessions until it commits', async () => {
    await truncateTables(db);
    let release!: () => void;
    const holding = new Promise<void>((resolve) => (release = resolve));
    let written!: () => void;
    const wrote = new Promise<void>((resolve) => (written = resolve));
    const tx = store.transaction(async (t) => {
      await t.settings.set('pending', 1);
      written();
      await holding;
    });
    await wrote;
    expect(await store.settings.get('pending')).toBeUndefined();
    release();
    await tx;
    expect(await store.settings.get('pending')).toBe(1);
  });

  it('locks with different names do not block each other', async () => {
    let bHolds!: () => void;
    const bLocked = new Promise<void>((resolve) => (bHolds = resolve));
    const a = store.transaction(async (tx) => {
      await tx.lock('one');
      // Would deadlock (and time out) if 'two' waited for 'one'.
      await bLocked;
    });
    const b = store.transaction(async (tx) => {
      await tx.lock('two');
      bHolds();
    });
    await Promise.all([a, b]);
  });

  it('claims of different request ids, and a lock named like a request id, do not block each other', async () => {
    let bHolds!: () => void;
    const bClaimed = new Promise<void>((resolve) => (bHolds = resolve));
    let cHolds!: () => void;
    const cLocked = new Promise<void>((resolve) => (cHolds = resolve));
    const a = store.transaction(async (tx) => {
      await tx.promotions.claimRequest('uid-a');
      // Would deadlock (and time out) if either waited for this claim.
      await Promise.all([bClaimed, cLocked]);
    });
    const b = store.transaction(async (tx) => {
      await tx.promotions.claimRequest('uid-b');
      bHolds();
    });
    const c = store.transaction(async (tx) => {
      await tx.lock('uid-a');
      cHolds();
    });
    await Promise.all([a, b, c]);
  });

  it('parses int8 as a number for its own pool only', async () => {
    const { rows } = await db.query<{ n: unknown }>('SELECT 9007199254740991::int8 AS n');
    expect(rows[0]!.n).toBe(Number.MAX_SAFE_INTEGER);
    // The process-wide parser is untouched.
    expect(pg.types.getTypeParser(20, 'text')('12')).toBe('12');
  });

  it('a constraint violation keeps its SQLSTATE and is not "unavailable"', async () => {
    await truncateTables(db);
    await store.repositories.create({ key: 'r', rclass: 'local', config: {} });
    const error = await store.tags.set('r', 'img', 'latest', digestOf('nope')).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: '23503' });
    expect(error).not.toBeInstanceOf(MetadataUnavailableError);
  });

  describe('unavailability', () => {
    it('an unreachable server rejects with MetadataUnavailableError carrying the cause', async () => {
      // Port 1 on loopback: nothing listens, the connect is refused at once.
      const down = new PgMetadataStore(await openDb({ databaseUrl: 'postgres://postgres@127.0.0.1:1/none' }));
      try {
        const error = await down.ping().catch((e: unknown) => e);
        expect(error).toBeInstanceOf(MetadataUnavailableError);
        expect((error as Error).cause).toMatchObject({ code: 'ECONNREFUSED' });
        await expect(down.transaction((tx) => tx.settings.get('k'))).rejects.toBeInstanceOf(MetadataUnavailableError);
      } finally {
        await down.close();
      }
    });

    it('a statement past statement_timeout rejects with MetadataUnavailableError', async () => {
      const slow = await openDb({ databaseUrl: testDb.url, statementTimeoutMs: 100, poolSize: 1 });
      try {
        const error = await slow.query('SELECT pg_sleep(2)').catch((e: unknown) => e);
        expect(error).toBeInstanceOf(MetadataUnavailableError);
        expect((error as Error).cause).toMatchObject({ code: '57014' });
      } finally {
        await slow.close();
      }
    });

    it('a connection terminated by the server rejects with MetadataUnavailableError; the pool recovers', async () => {
      const victim = new PgMetadataStore(await openDb({ databaseUrl: testDb.url, poolSize: 1 }));
      try {
        const error = await victim
          .transaction(async (tx) => {
            await tx.settings.get('k');
            await db.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() AND application_name = $1 AND state LIKE $2', [
              'drydock',
              'idle in transaction%',
            ]);
            await tx.settings.get('k');
          })
          .catch((e: unknown) => e);
        expect(error).toBeInstanceOf(MetadataUnavailableError);
        // The broken client was discarded; the next statement gets a new connection.
        await victim.ping();
      } finally {
        await victim.close();
      }
    });
  });
});
