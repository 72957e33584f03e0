import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createMetrics } from '../../src/core/metrics.js';
import { silentLogger } from '../../src/core/log.js';
import { parseDigest } from '../../src/core/oci/digest.js';
import { openMetadataStore } from '../../src/metadata/pg/store.js';
import type { MetadataStore } from '../../src/metadata/store.js';
import { GarbageCollector, type GcOptions, type GcSummary } from '../../src/registry/service/gc.js';
import { blobKey } from '../../src/storage/layout.js';
import { bytesOf, desc, MediaTypes, ociIndex, ociManifest, pushBlob, pushImage, putManifest, sha256, uniqueImage } from '../helpers/oci-client.js';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';
import { startS3rver, type TestS3rver } from '../helpers/s3rver.js';
import { S3Driver } from '../../src/storage/s3.js';

// A PostgreSQL server, not PGlite: pushes and the sweep then really run
// concurrently on separate connections, which is what the stress test is about.
let db: TestDatabase;
let store: MetadataStore;
let reg: TestRegistry;
let gc: GarbageCollector;
const metrics = createMetrics();

const run = (opts: Partial<GcOptions> = {}): Promise<GcSummary> =>
  gc.run({ graceSecs: 0, untaggedRetentionSecs: 3600, batchSize: 50, ...opts });

beforeAll(async () => {
  db = await createTestDatabase();
  store = await openMetadataStore({ databaseUrl: db.url, poolSize: 12 });
  reg = await startTestRegistry({ store });
  const { services } = reg.running;
  gc = new GarbageCollector({
    store,
    driver: services.driver,
    log: silentLogger(),
    metrics,
    expireUploads: (before) => services.uploads.expireStale(before),
  });
}, 30_000);

afterAll(async () => {
  await reg?.close();
  await store?.close();
  await db?.drop();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function objectExists(digest: string): Promise<boolean> {
  return (await reg.running.services.driver.stat(blobKey(parseDigest(digest)))) !== undefined;
}

async function blobReadable(name: string, digest: string): Promise<boolean> {
  const r = await reg.fetch(`/v2/${name}/blobs/${digest}`);
  if (r.status !== 200) {
    await r.body?.cancel();
    return false;
  }
  return sha256(await bytesOf(r)) === digest;
}

describe('online garbage collection', () => {
  it('deletes orphans past the grace window and keeps everything live', async () => {
    const name = 'docker-local/' + uniqueImage('gc-live');
    const tagged = await pushImage(reg, name, 'v1');

    // An index (tagged) over an untagged child image.
    const childName = 'docker-local/' + uniqueImage('gc-index');
    const child = await pushImage(reg, childName);
    const index = ociIndex([{ ...child.descriptor, platform: { os: 'linux', architecture: 'arm64' } }]);
    expect((await putManifest(reg, childName, 'multi', index, MediaTypes.ociIndex)).status).toBe(201);

    // A referrer (untagged) of the tagged image, with blobs of its own.
    const sigConfig = await pushBlob(reg, name, '{"signature":"config"}');
    const sigLayer = await pushBlob(reg, name, `signature of ${tagged.digest}`);
    const sig = ociManifest(desc('application/vnd.example.sig.config+json', sigConfig), [desc('application/vnd.example.sig', sigLayer)], {
      subject: tagged.descriptor,
    });
    expect((await putManifest(reg, name, sha256(sig), sig)).status).toBe(201);

    // A young untagged manifest, a protected orphan, an orphan, an open upload.
    const untaggedName = 'docker-local/' + uniqueImage('gc-untagged');
    const untagged = await pushImage(reg, untaggedName);
    const protectedBlob = await pushBlob(reg, name, `protected ${Math.random()}`);
    await store.gc.protect({ digest: protectedBlob.digest, reason: 'running', pod: 'default/app-0' });
    const orphan = await pushBlob(reg, name, `orphan ${Math.random()}`);
    const start = await reg.fetch(`/v2/${name}/blobs/uploads/`, { method: 'POST' });
    expect(start.status).toBe(202);
    const location = start.headers.get('location')!;
    const part1 = Buffer.from(`first half ${Math.random()} `);
    const patched = await reg.fetch(location, { method: 'PATCH', body: part1, headers: { 'content-type': 'application/octet-stream' } });
    expect(patched.status).toBe(202);
    await sleep(10);

    const summary = await run();
    expect(summary).toMatchObject({ dryRun: false, batchErrors: 0, manifestsDeleted: 0 });
    expect(summary.blobsDeleted).toBeGreaterThanOrEqual(1);
    expect(summary.blobsExamined).toBeGreaterThanOrEqual(summary.blobsDeleted);

    expect(await blobReadable(name, orphan.digest)).toBe(false);
    expect(await objectExists(orphan.digest)).toBe(false);

    for (const [n, d] of [
      [name, tagged.config.digest],
      [name, tagged.layer.digest],
      [childName, child.config.digest],
      [childName, child.layer.digest],
      [name, sigConfig.digest],
      [name, sigLayer.digest],
      [untaggedName, untagged.config.digest],
      [untaggedName, untagged.layer.digest],
      [name, protectedBlob.digest],
    ] as const) {
      expect(await blobReadable(n, d)).toBe(true);
    }
    expect((await reg.fetch(`/v2/${childName}/manifests/${child.digest}`)).status).toBe(200);
    expect((await reg.fetch(`/v2/${name}/manifests/${sha256(sig)}`)).status).toBe(200);

    // The open session's bytes are intact: it completes with the right digest.
    const part2 = Buffer.from('second half');
    const whole = Buffer.concat([part1, part2]);
    const sep = location.includes('?') ? '&' : '?';
    const put = await reg.fetch(`${location}${sep}digest=${sha256(whole)}`, { method: 'PUT', body: part2 });
    expect(put.status).toBe(201);
    expect(await blobReadable(name, sha256(whole))).toBe(true);

    // The admin API lists what the operator protected.
    const listed = await reg.fetch('/api/system/protected-digests');
    expect(listed.status).toBe(200);
    expect(((await listed.json()) as { digests: Array<{ digest: string; pod: string }> }).digests).toContainEqual(
      expect.objectContaining({ digest: protectedBlob.digest, pod: 'default/app-0' }),
    );
    expect((await reg.fetch('/api/system/protected-digests', { auth: null })).status).toBe(401);

    // With no retention, the untagged manifest (not a child, not a referrer of a live one) goes, and its blobs.
    const second = await run({ untaggedRetentionSecs: 0 });
    expect(second.manifestsDeleted).toBeGreaterThanOrEqual(1);
    expect((await reg.fetch(`/v2/${untaggedName}/manifests/${untagged.digest}`)).status).toBe(404);
    expect(await objectExists(untagged.layer.digest)).toBe(false);
    // What tags reach stays: the tagged image, the index and its child, the referrer.
    expect(await blobReadable(name, tagged.layer.digest)).toBe(true);
    expect(await blobReadable(childName, child.layer.digest)).toBe(true);
    expect(await blobReadable(name, sigLayer.digest)).toBe(true);
    expect(await blobReadable(name, protectedBlob.digest)).toBe(true);
    await store.gc.unprotect(protectedBlob.digest);
  }, 60_000);

  it('a dry run reports what would go and changes nothing', async () => {
    const name = 'docker-local/' + uniqueImage('gc-dry');
    const orphans = [await pushBlob(reg, name, `dry orphan 1 ${Math.random()}`), await pushBlob(reg, name, `dry orphan 2 ${Math.random()}`)];
    const untagged = await pushImage(reg, name);
    await sleep(10);
    const before = await store.gc.countBlobs();

    const dry = await run({ dryRun: true, untaggedRetentionSecs: 0 });
    expect(dry.dryRun).toBe(true);
    expect(dry.blobsExamined).toBe(before);
    // The orphans, and the untagged image's manifest and two blobs.
    expect(dry.blobsDeleted).toBeGreaterThanOrEqual(4);
    expect(dry.manifestsDeleted).toBeGreaterThanOrEqual(1);
    expect(dry.bytesFreed).toBeGreaterThan(0);
    expect(await store.gc.countBlobs()).toBe(before);
    for (const o of orphans) expect(await blobReadable(name, o.digest)).toBe(true);
    expect((await reg.fetch(`/v2/${name}/manifests/${untagged.digest}`)).status).toBe(200);
    expect(await store.gc.pendingObjects(10)).toEqual([]);

    const real = await run({ untaggedRetentionSecs: 0 });
    expect(real.blobsDeleted).toBe(dry.blobsDeleted);
    expect(real.manifestsDeleted).toBe(dry.manifestsDeleted);
    for (const o of orphans) expect(await objectExists(o.digest)).toBe(false);
  }, 60_000);

  it('resumes objects an interrupted run left queued', async () => {
    const name = 'docker-local/' + uniqueImage('gc-resume');
    const orphan = await pushBlob(reg, name, `resume ${Math.random()}`);
    await sleep(10);
    // The first half of a sweep batch, as a run that crashed before deleting objects leaves it.
    await store.transaction(async (tx) => {
      await tx.gc.lockBlobs([orphan.digest]);
      expect((await tx.gc.collect([orphan.digest], 0)).map((b) => b.digest)).toEqual([orphan.digest]);
    });
    expect(await objectExists(orphan.digest)).toBe(true);
    const summary = await run();
    expect(summary.resumedObjects).toBe(1);
    expect(await objectExists(orphan.digest)).toBe(false);
  });

  it('applies the rate limit', async () => {
    const name = 'docker-local/' + uniqueImage('gc-rate');
    for (let i = 0; i < 6; i++) await pushBlob(reg, name, `rate ${i} ${Math.random()}`);
    await sleep(10);
    const started = Date.now();
    const summary = await run({ rate: 20, batchSize: 2 });
    expect(summary.blobsDeleted).toBe(6);
    // 6 blobs at 20/s: at least ~300 ms.
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
  });

  it('never deletes a blob a racing push references (4 pushers × 30 images, GC looping with grace 0)', async () => {
    const pushers = 4;
    const perPusher = 30;
    const shared = Array.from({ length: 3 }, (_, i) => Buffer.from(`shared layer ${i} ${Math.random()}`));
    let stop = false;
    let runs = 0;
    let examined = 0;
    let deleted = 0;
    let gcSecs = 0;
    let batchErrors = 0;
    let retries = 0;
    const refusals = new Map<string, number>();

    const loop = (async () => {
      while (!stop) {
        const s = await run({ batchSize: 20 });
        runs++;
        examined += s.blobsExamined;
        deleted += s.blobsDeleted;
        gcSecs += s.durationSecs;
        batchErrors += s.batchErrors;
        // Pauses long enough for a push (three blobs, then the manifest) to fit
        // between runs now and then; grace 0 would otherwise starve every push.
        await sleep(50 + Math.random() * 100);
      }
    })();

    /** A client's push: skips blobs the registry says it has, as docker does, and retries a refused manifest. */
    async function pushOnce(name: string, blobs: Buffer[], tag: string): Promise<{ digest: string; blobs: string[] }> {
      const descs = blobs.map((b) => ({ digest: sha256(b), size: b.length }));
      const manifest = ociManifest(desc(MediaTypes.ociConfig, descs[0]!), descs.slice(1).map((d) => desc('application/vnd.oci.image.layer.v1.tar', d)));
      for (let attempt = 1; ; attempt++) {
        await Promise.all(
          blobs.map(async (b) => {
            const head = await reg.fetch(`/v2/${name}/blobs/${sha256(b)}`, { method: 'HEAD' });
            if (head.status === 200 && attempt === 1) return;
            const r = await reg.fetch(`/v2/${name}/blobs/uploads/?digest=${sha256(b)}`, { method: 'POST', body: b });
            expect(r.status).toBe(201);
          }),
        );
        const put = await putManifest(reg, name, tag, manifest);
        const body = await put.text();
        if (put.status === 201) return { digest: sha256(manifest), blobs: descs.map((d) => d.digest) };
        const code = `${put.status} ${(JSON.parse(body) as { errors: Array<{ code: string }> }).errors[0]!.code}`;
        refusals.set(code, (refusals.get(code) ?? 0) + 1);
        // The sweep won a race for one of the blobs: the registry refused the
        // manifest (never stored it pointing at a deleted blob). Push again.
        expect([400, 404, 409, 500, 503]).toContain(put.status);
        retries++;
        if (attempt >= 200) throw new Error(`push of ${name}:${tag} kept failing: ${put.status} ${body}`);
      }
    }

    const pushed: Array<{ name: string; tag: string; digest: string; blobs: string[] }> = [];
    try {
      await Promise.all(
      Array.from({ length: pushers }, async (_, p) => {
        const name = 'docker-local/' + uniqueImage(`gc-stress-${p}`);
        for (let i = 0; i < perPusher; i++) {
          const tag = `t${i}`;
          const own = [Buffer.from(`{"pusher":${p},"image":${i},"r":${Math.random()}}`), Buffer.from(`layer ${p}/${i} ${Math.random()}`)];
          const result = await pushOnce(name, [...own, shared[(p + i) % shared.length]!], tag);
          pushed.push({ name, tag, ...result });
        }
      }),
    );
    } finally {
      stop = true;
      await loop;
    }
    // One more run after the last push: it must not take anything either.
    const final = await run({ batchSize: 20 });
    runs++;
    examined += final.blobsExamined;
    deleted += final.blobsDeleted;
    gcSecs += final.durationSecs;

    expect(pushed).toHaveLength(pushers * perPusher);
    let checked = 0;
    for (const img of pushed) {
      const m = await reg.fetch(`/v2/${img.name}/manifests/${img.tag}`, { headers: { accept: MediaTypes.ociManifest } });
      expect(m.status).toBe(200);
      expect(sha256(await bytesOf(m))).toBe(img.digest);
      for (const b of img.blobs) {
        expect(await blobReadable(img.name, b)).toBe(true);
        expect(await objectExists(b)).toBe(true);
        checked++;
      }
    }
    expect(checked).toBe(pushers * perPusher * 3);
    expect(runs).toBeGreaterThan(1);
    const rate = gcSecs > 0 ? Math.round(examined / gcSecs) : examined;
    console.log(
      `gc: ${runs} runs during ${pushers}×${perPusher} pushes; examined ${examined} blobs, deleted ${deleted}, ${rate} blobs/s examined; ` +
        `${retries} manifest pushes refused and retried (${JSON.stringify(Object.fromEntries(refusals))}), ${batchErrors} batches rolled back; ${checked} referenced blobs verified`,
    );
  }, 180_000);

  it('sweeps a backlog of orphans in batches (throughput)', async () => {
    const n = 2000;
    const driver = reg.running.services.driver;
    const digests: string[] = [];
    for (let i = 0; i < n; i += 100) {
      await Promise.all(
        Array.from({ length: Math.min(100, n - i) }, async (_, j) => {
          const data = Buffer.from(`backlog ${i + j} ${Math.random()}`);
          const digest = sha256(data);
          const key = blobKey(parseDigest(digest));
          await driver.write(key, Readable.from([data]));
          await store.blobs.put({ digest, size: data.length, storageKey: key });
          digests.push(digest);
        }),
      );
    }
    await sleep(10);
    const summary = await run({ batchSize: 500 });
    expect(summary.blobsDeleted).toBeGreaterThanOrEqual(n);
    for (const d of digests.slice(0, 20)) expect(await objectExists(d)).toBe(false);
    console.log(
      `gc throughput: examined ${summary.blobsExamined} blobs, deleted ${summary.blobsDeleted} in ${summary.durationSecs.toFixed(2)} s ` +
        `(${summary.blobsExaminedPerSec} examined/s, ${summary.blobsDeletedPerSec} deleted/s, batch 500, filesystem storage, PostgreSQL)`,
    );
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/drydock_gc_blobs_deleted_total\{dry_run="false"\} \d+/);
  }, 120_000);
});

describe('online garbage collection on s3rver', () => {
  let s3db: TestDatabase;
  let s3store: MetadataStore;
  let s3: TestS3rver;
  let driver: S3Driver;

  beforeAll(async () => {
    s3db = await createTestDatabase();
    s3store = await openMetadataStore({ databaseUrl: s3db.url });
    s3 = await startS3rver();
    driver = new S3Driver({ ...s3.settings, prefix: `gc-${Date.now()}`, redirect: { mode: 'none', ttlSecs: 300 }, multipartPartSize: 8 * 1024 * 1024 });
  }, 60_000);
  afterAll(async () => {
    await s3?.close();
    await s3store?.close();
    await s3db?.drop();
  });

  it('sweeps a backlog of orphans with batched DeleteObjects (throughput)', async () => {
    const n = 1000;
    const digests: string[] = [];
    for (let i = 0; i < n; i += 50) {
      await Promise.all(
        Array.from({ length: Math.min(50, n - i) }, async (_, j) => {
          const data = Buffer.from(`s3 backlog ${i + j} ${Math.random()}`);
          const digest = sha256(data);
          const key = blobKey(parseDigest(digest));
          await driver.write(key, Readable.from([data]));
          await s3store.blobs.put({ digest, size: data.length, storageKey: key });
          digests.push(digest);
        }),
      );
    }
    const collector = new GarbageCollector({ store: s3store, driver, log: silentLogger(), metrics: createMetrics(), expireUploads: async () => 0 });
    await sleep(10);
    const summary = await collector.run({ graceSecs: 0, untaggedRetentionSecs: 3600, batchSize: 500 });
    expect(summary.blobsDeleted).toBe(n);
    for (const d of digests.slice(0, 20)) expect(await driver.stat(blobKey(parseDigest(d)))).toBeUndefined();
    console.log(
      `gc throughput on s3rver: examined ${summary.blobsExamined} blobs, deleted ${summary.blobsDeleted} in ${summary.durationSecs.toFixed(2)} s ` +
        `(${summary.blobsExaminedPerSec} examined/s, ${summary.blobsDeletedPerSec} deleted/s, batch 500, DeleteObjects, PostgreSQL)`,
    );
  }, 120_000);
});
