/**
 * Two registry processes (`node dist/cli.js serve`, as two pods) sharing one
 * PostgreSQL database and one s3rver bucket: a chunked upload alternating
 * between them, a repository created through one served by the other, a cold
 * remote pull asked of both at once, and a skopeo push to one pulled from the other.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startCncfRegistry } from '../helpers/cncf-registry.js';
import { startCountingProxy } from '../helpers/counting-proxy.js';
import { startDrydock, stopAllDrydocks, type DrydockProcess } from '../helpers/drydock-process.js';
import { buildImage } from '../helpers/oci-layout.js';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js';
import { startS3rver, type TestS3rver } from '../helpers/s3rver.js';
import { skopeoCopy, skopeoInspectRaw } from '../helpers/skopeo.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

let db: TestDatabase;
let s3: TestS3rver;
let a: DrydockProcess;
let b: DrydockProcess;
let tmp: string;

function call(p: DrydockProcess, path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  headers.set('authorization', p.authorization);
  return fetch(`${p.url}${path}`, { ...init, headers });
}

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'drydock-pods-'));
  db = await createTestDatabase();
  s3 = await startS3rver('pods');
  const config = { storage: { driver: 's3', s3: { ...s3.settings, prefix: 'pods' } } };
  const env = { DRYDOCK_ADMIN_PASSWORD: 'pods-admin' };
  // One after the other: the first applies the migrations and creates the defaults.
  a = await startDrydock({ databaseUrl: db.url, config, env });
  b = await startDrydock({ databaseUrl: db.url, config, env });
}, 120_000);

afterAll(async () => {
  await stopAllDrydocks();
  await s3?.close();
  await db?.drop();
  await rm(tmp, { recursive: true, force: true });
});

describe('two registry processes, one database, one bucket', () => {
  it('a chunked upload alternating between them completes with the right digest', async () => {
    const data = randomBytes(3 * 1024 * 1024);
    const digest = sha256(data);
    const start = await call(a, '/v2/docker-local/pods/blobs/uploads/', { method: 'POST' });
    expect(start.status).toBe(202);
    const location = start.headers.get('location')!;
    const chunk = 1024 * 1024;
    for (let i = 0; i < 3; i++) {
      const p = i % 2 === 0 ? b : a;
      const r = await call(p, location, {
        method: 'PATCH',
        body: new Uint8Array(data.subarray(i * chunk, (i + 1) * chunk)),
        headers: { 'content-range': `${i * chunk}-${(i + 1) * chunk - 1}` },
      });
      expect({ chunk: i, status: r.status }).toEqual({ chunk: i, status: 202 });
    }
    expect((await call(b, `${location}?digest=${digest}`, { method: 'PUT' })).status).toBe(201);
    const got = Buffer.from(await (await call(a, `/v2/docker-local/pods/blobs/${digest}`)).arrayBuffer());
    expect(sha256(got)).toBe(digest);
  });

  it('a repository created through one is served by the other within a second', async () => {
    expect((await call(b, '/v2/pods-new/app/blobs/uploads/', { method: 'POST' })).status).toBe(404);
    const t0 = Date.now();
    const created = await call(a, '/api/repositories/pods-new', { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{"rclass":"local"}' });
    expect(created.status).toBe(200);
    let after = -1;
    while (Date.now() - t0 < 3000) {
      if ((await call(b, '/v2/pods-new/app/blobs/uploads/', { method: 'POST' })).status === 202) {
        after = Date.now() - t0;
        break;
      }
      await sleep(20);
    }
    console.log(`two processes: repository created on A served by B after ${after} ms`);
    expect(after).toBeGreaterThanOrEqual(0);
    expect(after).toBeLessThan(1000);
  });

  it('a cold remote pull asked of both at once makes one upstream fetch', async () => {
    const upstream = await startCncfRegistry();
    const proxy = await startCountingProxy(upstream.url);
    try {
      const data = randomBytes(8 * 1024 * 1024);
      const digest = sha256(data);
      const started = await fetch(`${upstream.url}/v2/cold/blobs/uploads/`, { method: 'POST' });
      const loc = new URL(started.headers.get('location')!, upstream.url);
      loc.searchParams.set('digest', digest);
      expect((await fetch(loc, { method: 'PUT', body: new Uint8Array(data) })).status).toBe(201);
      const created = await call(a, '/api/repositories/pods-remote', {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ rclass: 'remote', url: proxy.url }),
      });
      expect(created.status).toBe(200);
      await sleep(1100);
      proxy.reset();
      const path = `/v2/pods-remote/cold/blobs/${digest}`;
      const got = await Promise.all([a, b, a, b].map(async (p) => sha256(Buffer.from(await (await call(p, path)).arrayBuffer()))));
      for (const g of got) expect(g).toBe(digest);
      const fetches = proxy.count('GET', `/v2/cold/blobs/${digest}`);
      console.log(`two processes: cold remote pull by 4 clients across both, upstream blob GETs: ${fetches}`);
      expect(fetches).toBe(1);
    } finally {
      await proxy.close();
      await upstream.stop();
    }
  }, 60_000);

  it('an image pushed with skopeo to one is pulled from the other', async () => {
    const layout = join(tmp, 'layout');
    const built = await buildImage(layout, { tag: '1.0', layers: 3, layerSize: 1024 * 1024 });
    await skopeoCopy(`oci:${layout}:1.0`, `docker://${a.host}/docker-local/pods/app:1.0`, { destCreds: a.creds });
    const inspected = await skopeoInspectRaw(`docker://${b.host}/docker-local/pods/app:1.0`, b.creds);
    expect(inspected.digest).toBe(built.manifestDigest);
    await skopeoCopy(`docker://${b.host}/docker-local/pods/app:1.0`, `oci:${join(tmp, 'pulled')}:1.0`, { srcCreds: b.creds });
  }, 60_000);
});
