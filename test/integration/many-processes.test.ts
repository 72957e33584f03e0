/**
 * Two registry processes (in-process servers with their own caches) sharing one
 * PostgreSQL database and one s3rver bucket, as two pods would; and a database
 * restart in the middle of traffic.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { openMetadataStore } from '../../src/metadata/pg/store.js';
import { startCncfRegistry } from '../helpers/cncf-registry.js';
import { startCountingProxy } from '../helpers/counting-proxy.js';
import { startS3rver, type TestS3rver } from '../helpers/s3rver.js';
import type { MetadataStore } from '../../src/metadata/store.js';
import { pushImage, uniqueImage } from '../helpers/oci-client.js';
import { createTestDatabase } from '../helpers/postgres.js';
import { startPrivatePostgres, type PrivatePostgres } from '../helpers/private-postgres.js';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('two processes on one database and one S3 bucket', () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let s3: TestS3rver;
  let storeA: MetadataStore;
  let storeB: MetadataStore;
  let a: TestRegistry;
  let b: TestRegistry;

  beforeAll(async () => {
    db = await createTestDatabase();
    s3 = await startS3rver();
    storeA = await openMetadataStore({ databaseUrl: db.url });
    storeB = await openMetadataStore({ databaseUrl: db.url });
    // Small parts, so the 3 MiB upload below really spans several multipart parts across the two processes.
    const config = { database: { url: db.url }, storage: { driver: 's3', s3: { ...s3.settings, prefix: `pods-${randomUUID()}`, multipartPartSize: 5 * 1024 * 1024 } } };
    a = await startTestRegistry({ store: storeA, config });
    b = await startTestRegistry({ store: storeB, config });
  }, 60_000);
  afterAll(async () => {
    await b?.close();
    await a?.close();
    await storeA?.close();
    await storeB?.close();
    await s3?.close();
    await db?.drop();
  });

  it('a repository created through one is served by the other within a second', async () => {
    // Warm B's cache with the key's absence first, so only a notification (or expiry) can fix it.
    expect((await b.fetch('/v2/shared-new/app/tags/list')).status).toBe(404);
    const t0 = Date.now();
    const created = await a.fetch('/api/repositories/shared-new', {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: '{"rclass":"local"}',
    });
    expect(created.status).toBe(200);
    let seenAfter = -1;
    while (Date.now() - t0 < 3000) {
      const r = await b.fetch('/v2/shared-new/app/blobs/uploads/', { method: 'POST' });
      if (r.status === 202) {
        seenAfter = Date.now() - t0;
        break;
      }
      await sleep(20);
    }
    console.log(`repository created on process A served by process B after ${seenAfter} ms`);
    expect(seenAfter).toBeGreaterThanOrEqual(0);
    expect(seenAfter).toBeLessThan(1000);
  });

  it('a cold remote pull asked of both processes at once makes one upstream fetch', async () => {
    const upstream = await startCncfRegistry();
    const proxy = await startCountingProxy(upstream.url);
    try {
      const image = uniqueImage('cold');
      const data = randomBytes(4 * 1024 * 1024);
      const digest = `sha256:${createHash('sha256').update(data).digest('hex')}`;
      // CNCF 2.8 takes a monolithic upload as POST then PUT with the body.
      const started = await fetch(`${upstream.url}/v2/${image}/blobs/uploads/`, { method: 'POST' });
      const loc = new URL(started.headers.get('location')!, upstream.url);
      loc.searchParams.set('digest', digest);
      expect((await fetch(loc, { method: 'PUT', body: new Uint8Array(data) })).status).toBe(201);
      const created = await a.fetch('/api/repositories/shared-remote', {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ rclass: 'remote', url: proxy.url }),
      });
      expect(created.status).toBe(200);
      await sleep(1100);
      proxy.reset();
      const path = `/v2/shared-remote/${image}/blobs/${digest}`;
      const got = await Promise.all([a, b, a, b].map(async (p) => createHash('sha256').update(Buffer.from(await (await p.fetch(path)).arrayBuffer())).digest('hex')));
      for (const g of got) expect(`sha256:${g}`).toBe(digest);
      const fetches = proxy.count('GET', `/v2/${image}/blobs/${digest}`);
      console.log(`cold remote pull asked of two processes (4 clients): upstream blob GETs: ${fetches}`);
      expect(fetches).toBe(1);
    } finally {
      await proxy.close();
      await upstream.stop();
    }
  }, 60_000);

  it('a chunked upload alternating between the processes completes with the right digest', async () => {
    const data = Buffer.alloc(3 * 1024 * 1024);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7) % 251;
    const digest = `sha256:${createHash('sha256').update(data).digest('hex')}`;
    const start = await a.fetch('/v2/docker-local/alternating/blobs/uploads/', { method: 'POST' });
    const location = start.headers.get('location')!;
    const chunk = 1024 * 1024;
    const hosts = [b, a, b];
    for (let i = 0; i < 3; i++) {
      const r = await hosts[i]!.fetch(location, {
        method: 'PATCH',
        body: data.subarray(i * chunk, (i + 1) * chunk),
        headers: { 'content-range': `${i * chunk}-${(i + 1) * chunk - 1}` },
      });
      expect(r.status).toBe(202);
    }
    const done = await a.fetch(`${location}?digest=${digest}`, { method: 'PUT' });
    expect(done.status).toBe(201);
    const got = await b.fetch(`/v2/docker-local/alternating/blobs/${digest}`);
    expect(createHash('sha256').update(Buffer.from(await got.arrayBuffer())).digest('hex')).toBe(digest.slice(7));
  });
});

describe('a database restart during traffic', () => {
  let pg: PrivatePostgres;
  let store: MetadataStore;
  let reg: TestRegistry;

  beforeAll(async () => {
    pg = await startPrivatePostgres();
    store = await openMetadataStore({ databaseUrl: pg.url });
    reg = await startTestRegistry({ store, config: { database: { url: pg.url } } });
  }, 60_000);
  afterAll(async () => {
    await reg?.close();
    await store?.close();
    await pg?.destroy();
  });

  it('answers 503 UNAVAILABLE while the database is down, reconnects by itself, and loses nothing acknowledged', async () => {
    const name = `docker-local/${uniqueImage('restart')}`;
    const before = await pushImage(reg, name, 'v1');
    await pg.stop();
    // Requests that need the database fail cleanly, with the spec's shape.
    const during = await reg.fetch(`/v2/docker-local/${uniqueImage('down')}/manifests/v1`);
    expect(during.status).toBe(503);
    expect(((await during.json()) as { errors: Array<{ code: string }> }).errors[0]!.code).toBe('UNAVAILABLE');
    const ready = await reg.fetch('/readyz', { auth: null });
    expect(ready.status).toBe(503);
    await pg.start();
    // Back without a restart of the registry.
    let status = 0;
    for (let i = 0; i < 50 && status !== 200; i++) {
      status = (await reg.fetch('/readyz', { auth: null })).status;
      if (status !== 200) await sleep(100);
    }
    expect(status).toBe(200);
    const after = await reg.fetch(`/v2/${name}/manifests/v1`);
    expect(after.status).toBe(200);
    expect(Buffer.from(await after.arrayBuffer()).equals(before.manifest)).toBe(true);
    await pushImage(reg, name, 'v2');
    expect((await reg.fetch(`/v2/${name}/manifests/v2`)).status).toBe(200);
  }, 60_000);
});
