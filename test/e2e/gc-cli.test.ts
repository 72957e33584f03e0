/**
 * `drydock gc` against a running drydock sharing its PostgreSQL database and
 * blob root: the server keeps serving while the collector runs next to it.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { runDrydockCli, startDrydock, stopAllDrydocks, type DrydockProcess } from '../helpers/drydock-process.js';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js';

const sha256 = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

let db: TestDatabase;
let p: DrydockProcess;

beforeAll(async () => {
  db = await createTestDatabase();
  p = await startDrydock({ databaseUrl: db.url });
}, 90_000);

afterAll(async () => {
  await stopAllDrydocks();
  await db?.drop();
});

function call(path: string, init: RequestInit = {}): Promise<Response> {
  return fetch(`${p.url}${path}`, { ...init, headers: { authorization: p.authorization, ...(init.headers as object) } });
}

async function pushBlob(name: string, data: Buffer): Promise<{ digest: string; size: number }> {
  const digest = sha256(data);
  const r = await call(`/v2/${name}/blobs/uploads/?digest=${digest}`, { method: 'POST', body: new Uint8Array(data) });
  expect(r.status).toBe(201);
  return { digest, size: data.length };
}

async function gc(args: string[]): Promise<Record<string, number | boolean>> {
  const r = await runDrydockCli(['gc', ...args], {
    env: { DATABASE_URL: db.url, DRYDOCK_DATA_DIR: p.dataDir, DRYDOCK_LOG_LEVEL: 'silent' },
  });
  expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
  const line = r.stdout.trim().split('\n').pop()!;
  return JSON.parse(line) as Record<string, number | boolean>;
}

describe('drydock gc', () => {
  it('reports with --dry-run, then collects, while the server keeps serving', async () => {
    const name = 'docker-local/gc-e2e';
    const config = await pushBlob(name, Buffer.from('{"architecture":"amd64","os":"linux"}'));
    const layer = await pushBlob(name, Buffer.from(`layer ${Math.random()}`));
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
        layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...layer }],
      }),
    );
    const put = await call(`/v2/${name}/manifests/v1`, {
      method: 'PUT',
      body: new Uint8Array(manifest),
      headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
    });
    expect(put.status).toBe(201);
    const orphan = await pushBlob(name, Buffer.from(`orphan ${Math.random()}`));
    await new Promise((resolve) => setTimeout(resolve, 20));

    const dry = await gc(['--dry-run', '--grace', '0']);
    expect(dry).toMatchObject({ dryRun: true, blobsExamined: 3, blobsDeleted: 1, manifestsDeleted: 0 });
    expect((await call(`/v2/${name}/blobs/${orphan.digest}`)).status).toBe(200);

    const real = await gc(['--grace', '0', '--batch', '10', '--rate', '1000']);
    expect(real).toMatchObject({ dryRun: false, blobsExamined: 3, blobsDeleted: 1, bytesFreed: orphan.size, batchErrors: 0 });
    expect(typeof real.blobsDeletedPerSec).toBe('number');
    expect((await call(`/v2/${name}/blobs/${orphan.digest}`)).status).toBe(404);
    for (const d of [config.digest, layer.digest]) {
      const r = await call(`/v2/${name}/blobs/${d}`);
      expect(r.status).toBe(200);
      expect(sha256(Buffer.from(await r.arrayBuffer()))).toBe(d);
    }

    // The default grace window (an hour) keeps a fresh orphan.
    const fresh = await pushBlob(name, Buffer.from(`fresh ${Math.random()}`));
    expect(await gc([])).toMatchObject({ blobsDeleted: 0 });
    expect((await call(`/v2/${name}/blobs/${fresh.digest}`)).status).toBe(200);
  }, 90_000);

  it('rejects an unknown option with exit code 2', async () => {
    const r = await runDrydockCli(['gc', '--bogus'], { env: { DATABASE_URL: db.url, DRYDOCK_DATA_DIR: p.dataDir } });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('unknown gc option: --bogus');
  });
});
