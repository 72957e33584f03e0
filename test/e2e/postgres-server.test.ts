/**
 * drydock with its metadata on the PostgreSQL server (DATABASE_URL): a skopeo
 * push and pull through the spawned process, and `drydock migrate` against a
 * fresh database (applies everything, then a second run is a no-op).
 */
import { defaultMigrationsDir } from '../../src/metadata/migrations.js';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { runDrydockCli, startDrydock, stopAllDrydocks, type DrydockProcess } from '../helpers/drydock-process.js';
import { buildImage, readBlob, REF_NAME_ANNOTATION, sha256Digest } from '../helpers/oci-layout.js';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js';
import { skopeoCopy, skopeoInspectRaw } from '../helpers/skopeo.js';

let tmp = '';
const databases: TestDatabase[] = [];

async function freshDatabase(): Promise<TestDatabase> {
  const db = await createTestDatabase();
  databases.push(db);
  return db;
}

async function query<T extends pg.QueryResultRow>(url: string, text: string, params: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(text, params)).rows;
  } finally {
    await client.end();
  }
}

/** The JSON log lines a command printed on stdout. */
function logLines(stdout: string): Array<Record<string, unknown>> {
  return stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'e2e-postgres-'));
});

afterAll(async () => {
  await stopAllDrydocks();
  await Promise.all(databases.map((db) => db.drop()));
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('drydock on the PostgreSQL server', () => {
  it('serves a skopeo push and pull with its metadata in PostgreSQL', async () => {
    const db = await freshDatabase();
    const p: DrydockProcess = await startDrydock({ databaseUrl: db.url });
    expect(logLines(p.stdout()).find((l) => l.msg === 'drydock is serving')).toMatchObject({ database: 'postgresql' });
    // Nothing embedded: the data dir holds no PGlite database.
    expect(await readdir(p.dataDir).catch(() => [])).not.toContain('metadata');

    const dir = join(tmp, 'image');
    const img = await buildImage(dir, { tag: '1.0', layers: 2, layerSize: 8 * 1024, history: true });
    await skopeoCopy(`oci:${dir}:1.0`, `docker://${p.host}/docker-local/team/pg-app:1.0`, { destCreds: p.creds });
    const remote = await skopeoInspectRaw(`${p.host}/docker-local/team/pg-app:1.0`, p.creds);
    expect(remote.digest).toBe(img.manifestDigest);
    expect(remote.raw.equals(await readBlob(dir, img.manifestDigest))).toBe(true);

    const pulled = join(tmp, 'pulled');
    await skopeoCopy(`docker://${p.host}/docker-local/team/pg-app:1.0`, `oci:${pulled}:back`, { srcCreds: p.creds });
    const index = JSON.parse(await readFile(join(pulled, 'index.json'), 'utf8')) as {
      manifests: Array<{ digest: string; annotations?: Record<string, string> }>;
    };
    expect(index.manifests.find((m) => m.annotations?.[REF_NAME_ANNOTATION] === 'back')?.digest).toBe(img.manifestDigest);
    for (const d of [img.manifestDigest, img.configDigest, ...img.layerDigests]) expect(sha256Digest(await readBlob(pulled, d))).toBe(d);

    // The tag and the blobs are rows of the server's database.
    const tags = await query<{ digest: string }>(db.url, 'SELECT digest FROM tags WHERE repo_key = $1 AND image = $2 AND name = $3', [
      'docker-local',
      'team/pg-app',
      '1.0',
    ]);
    expect(tags).toEqual([{ digest: img.manifestDigest }]);
    const blobs = await query<{ digest: string }>(db.url, 'SELECT digest FROM blobs WHERE digest = ANY($1)', [[img.configDigest, ...img.layerDigests]]);
    expect(blobs).toHaveLength(3);
    expect(await p.stop()).toBe(0);
  });

  it('`drydock migrate` applies the migrations to a fresh database, and a second run is a no-op', async () => {
    const db = await freshDatabase();
    const cwd = join(tmp, 'migrate-cwd');
    const env = { DATABASE_URL: db.url, DRYDOCK_DATA_DIR: join(tmp, 'migrate-data') };

    await mkdir(cwd, { recursive: true });
    const first = await runDrydockCli(['migrate'], { cwd, env });
    expect(first.code).toBe(0);
    const applied = logLines(first.stdout).find((l) => l.msg === 'migrations applied');
    const all = (await readdir(defaultMigrationsDir())).filter((f) => f.endsWith('.sql')).map((f) => f.replace(/\.sql$/, '')).sort();
    expect(all.length).toBeGreaterThan(1);
    expect(applied?.applied).toEqual(all);
    const versions = await query<{ version: string }>(db.url, 'SELECT version FROM schema_migrations ORDER BY version');
    expect(versions.map((v) => v.version)).toEqual(all);
    const tables = await query<{ name: string }>(db.url, "SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public'");
    expect(tables.map((t) => t.name)).toEqual(expect.arrayContaining(['repositories', 'blobs', 'manifests', 'tags', 'uploads', 'users']));

    const second = await runDrydockCli(['migrate'], { cwd, env });
    expect(second.code).toBe(0);
    expect(logLines(second.stdout).find((l) => l.msg === 'database is up to date')).toMatchObject({ applied: [] });
    expect(await query(db.url, 'SELECT version FROM schema_migrations')).toHaveLength(all.length);
  });
});
