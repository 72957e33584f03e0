/**
 * Remote repositories in an in-process drydock, with the CNCF registry as the
 * upstream behind a counting proxy (test/helpers/counting-proxy.ts) that sees
 * every request drydock makes upstream and can be told to fail: one upstream
 * fetch for concurrent cold pulls, streaming of a cold pull (time to first
 * byte against a warm one), a client that goes away mid-pull, stale copies
 * served on 5xx/429, read vs write rights for cache fills, Basic upstream
 * credentials encrypted at rest, virtual repositories over a local and the
 * remote, and Docker Hub's `library/` prefix.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createHash, randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { remoteRepositorySchema } from '../../src/core/config/repository.js';
import { mirrorsHost, RemoteRepository, type RemoteDeps } from '../../src/registry/repos/remote.js';
import { startCncfRegistry, type CncfRegistry } from '../helpers/cncf-registry.js';
import { startCountingProxy, type CountingProxy } from '../helpers/counting-proxy.js';
import { basic, expectOciError, MediaTypes, sha256, uniqueImage } from '../helpers/oci-client.js';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';

const MiB = 1024 * 1024;
const CNCF_USER = 'mirror-bot';
const CNCF_PASS = 'upstream-s3cret-pass';

let cncf: CncfRegistry;
let cncfAuth: CncfRegistry;
let px: CountingProxy;
let reg: TestRegistry;
let readerAuth: string;
let writerAuth: string;

beforeAll(async () => {
  // Each assigned as soon as it runs, so afterAll stops it even when another fails to start.
  await Promise.all([
    startCncfRegistry().then((r) => (cncf = r)),
    startCncfRegistry({ htpasswd: { user: CNCF_USER, pass: CNCF_PASS } }).then((r) => (cncfAuth = r)),
    startTestRegistry().then((r) => (reg = r)),
  ]);
  px = await startCountingProxy(cncf.url);
  await createRepo('up', { rclass: 'remote', url: px.url });
  readerAuth = await createUser('reader', 'reader-password-1', { up: ['read'] });
  writerAuth = await createUser('writer', 'writer-password-1', { up: ['read', 'write'] });
});

afterAll(async () => {
  await reg?.close();
  await px?.close();
  await Promise.all([cncf?.stop(), cncfAuth?.stop()]);
});

// ---------------------------------------------------------------- helpers

async function api(method: string, path: string, body: unknown): Promise<Response> {
  return reg.fetch(path, { method, body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
}

async function createRepo(key: string, body: Record<string, unknown>): Promise<void> {
  const r = await api('PUT', `/api/repositories/${key}`, { key, ...body });
  expect({ key, status: r.status, body: await r.text() }).toEqual({ key, status: 200, body: `Successfully created repository '${key}'` });
}

/** A user whose only rights are `grants` (repository → actions). */
async function createUser(name: string, password: string, grants: Record<string, string[]>): Promise<string> {
  expect((await api('PUT', `/api/security/users/${name}`, { password, email: `${name}@example.com` })).status).toBe(201);
  for (const [repo, actions] of Object.entries(grants)) {
    const target = `${name}-${repo}`;
    const r = await api('PUT', `/api/v2/security/permissions/${target}`, {
      name: target,
      repo: { repositories: [repo], include_patterns: ['**'], exclude_patterns: [], actions: { users: { [name]: actions } } },
    });
    expect(r.status).toBeLessThan(300);
  }
  return basic(name, password);
}

interface Blob {
  digest: string;
  size: number;
  data: Buffer;
}

interface UpImage {
  digest: string;
  manifest: Buffer;
  config: Blob;
  layers: Blob[];
}

/** Uploads a blob to a registry the spec's way (POST, then PUT with the whole body). */
async function upstreamBlob(base: string, name: string, data: Buffer, auth?: string): Promise<Blob> {
  const digest = sha256(data);
  const headers: Record<string, string> = auth ? { authorization: auth } : {};
  const start = await fetch(`${base}/v2/${name}/blobs/uploads/`, { method: 'POST', headers });
  expect(start.status).toBe(202);
  const location = new URL(start.headers.get('location')!, base);
  location.searchParams.set('digest', digest);
  const put = await fetch(location, {
    method: 'PUT',
    headers: { ...headers, 'content-type': 'application/octet-stream' },
    body: new Uint8Array(data),
  });
  expect(put.status).toBe(201);
  return { digest, size: data.length, data };
}

async function upstreamManifest(base: string, name: string, ref: string, body: Buffer, mediaType: string, auth?: string): Promise<void> {
  const r = await fetch(`${base}/v2/${name}/manifests/${ref}`, {
    method: 'PUT',
    headers: { 'content-type': mediaType, ...(auth ? { authorization: auth } : {}) },
    body: new Uint8Array(body),
  });
  expect(r.status).toBe(201);
}

/** Pushes an OCI image (config + the given layers) to `base` under `name:tag`. */
async function upstreamImage(base: string, name: string, tag: string, layers: Buffer[], auth?: string): Promise<UpImage> {
  const config = await upstreamBlob(base, name, Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', salt: randomBytes(8).toString('hex') })), auth);
  const pushed: Blob[] = [];
  for (const l of layers) pushed.push(await upstreamBlob(base, name, l, auth));
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaTypes.ociManifest,
      config: { mediaType: MediaTypes.ociConfig, digest: config.digest, size: config.size },
      layers: pushed.map((b) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: b.digest, size: b.size })),
    }),
  );
  await upstreamManifest(base, name, tag, manifest, MediaTypes.ociManifest, auth);
  return { digest: sha256(manifest), manifest, config, layers: pushed };
}

interface Timed {
  status: number;
  ttfbMs: number;
  totalMs: number;
  digest: string;
  size: number;
}

/** GETs `path` from drydock, timing the first body chunk and the end; hashes what arrives. */
async function timedGet(path: string, auth?: string): Promise<Timed> {
  const t0 = performance.now();
  const r = await reg.fetch(path, { auth });
  const reader = r.body!.getReader();
  const hash = createHash('sha256');
  let size = 0;
  let ttfbMs = -1;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (ttfbMs < 0) ttfbMs = performance.now() - t0;
    hash.update(value);
    size += value.length;
  }
  return { status: r.status, ttfbMs, totalMs: performance.now() - t0, digest: `sha256:${hash.digest('hex')}`, size };
}

/**
 * Waits until a fill is committed: a client gets the last byte of a cold pull
 * just before the cache entry becomes visible (its digest verified, then stored).
 */
async function untilCached(repoKey: string, image: string, digest: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!(await reg.running.services.store.blobs.getLinked(repoKey, image, digest))) {
    if (Date.now() > deadline) throw new Error(`${repoKey}/${image}@${digest} was never cached`);
    await sleep(10);
  }
}

async function manifestDigest(path: string, auth?: string, method = 'GET'): Promise<{ status: number; digest: string | null }> {
  const r = await reg.fetch(path, { auth, method });
  await r.arrayBuffer();
  return { status: r.status, digest: r.headers.get('docker-content-digest') };
}

// ---------------------------------------------------------------- one upstream fetch, streaming

describe('cache fills', () => {
  it('8 concurrent cold GETs of one 20 MiB blob make exactly one upstream GET, and every client gets the right bytes', async () => {
    const image = uniqueImage('conc');
    const blob = await upstreamBlob(cncf.url, image, randomBytes(20 * MiB));
    px.reset();
    const path = `/v2/up/${image}/blobs/${blob.digest}`;
    const results = await Promise.all(Array.from({ length: 8 }, () => timedGet(path)));
    for (const r of results) expect({ status: r.status, digest: r.digest, size: r.size }).toEqual({ status: 200, digest: blob.digest, size: blob.size });
    const upstreamGets = px.count('GET', `/v2/${image}/blobs/${blob.digest}`);
    console.log(`concurrent cold pulls: ${results.length} clients, upstream blob GETs: ${upstreamGets}`);
    expect(upstreamGets).toBe(1);
    // Cached now: more pulls never go upstream.
    expect((await timedGet(path)).digest).toBe(blob.digest);
    expect(px.count('GET', `/v2/${image}/blobs/${blob.digest}`)).toBe(1);
  });

  it('8 concurrent cold GETs of one manifest, by tag and by digest, make one upstream manifest GET each', async () => {
    const image = uniqueImage('conc-m');
    const img = await upstreamImage(cncf.url, image, 'v1', [randomBytes(1024)]);
    px.reset();
    const byTag = await Promise.all(Array.from({ length: 8 }, () => manifestDigest(`/v2/up/${image}/manifests/v1`)));
    for (const r of byTag) expect(r).toEqual({ status: 200, digest: img.digest });
    expect(px.count('GET', `/v2/${image}/manifests/v1`)).toBe(1);
    const other = await upstreamImage(cncf.url, image, 'v2', [randomBytes(1024)]);
    px.reset();
    const byDigest = await Promise.all(Array.from({ length: 8 }, () => manifestDigest(`/v2/up/${image}/manifests/${other.digest}`)));
    for (const r of byDigest) expect(r).toEqual({ status: 200, digest: other.digest });
    expect(px.count('GET', `/v2/${image}/manifests/${other.digest}`)).toBe(1);
  });

  it('a cold 100 MiB blob streams to the client while it is cached (time to first byte well below the total)', async () => {
    const image = uniqueImage('big');
    const blob = await upstreamBlob(cncf.url, image, randomBytes(100 * MiB));
    px.reset();
    const path = `/v2/up/${image}/blobs/${blob.digest}`;
    const cold = await timedGet(path);
    // Warm = served from the cache: once the fill has committed (a request before that waits for it).
    await untilCached('up', image, blob.digest);
    const warm = await timedGet(path);
    const f = (ms: number) => ms.toFixed(1);
    console.log(
      `cold 100 MiB blob: ttfb ${f(cold.ttfbMs)} ms, total ${f(cold.totalMs)} ms; warm: ttfb ${f(warm.ttfbMs)} ms, total ${f(warm.totalMs)} ms`,
    );
    for (const r of [cold, warm]) expect({ status: r.status, digest: r.digest, size: r.size }).toEqual({ status: 200, digest: blob.digest, size: blob.size });
    expect(px.count('GET', `/v2/${image}/blobs/${blob.digest}`)).toBe(1);
    // Streaming, not "download first, then serve": the first bytes arrive long before the last.
    expect(cold.ttfbMs * 4).toBeLessThan(cold.totalMs);
  });

  it('a client that disconnects after the first chunk leaves the fill running; no half-written blob is ever visible', async () => {
    const image = uniqueImage('abort');
    const blob = await upstreamBlob(cncf.url, image, randomBytes(48 * MiB));
    px.reset();
    const path = `/v2/up/${image}/blobs/${blob.digest}`;
    const ac = new AbortController();
    const r = await reg.fetch(path, { signal: ac.signal });
    expect(r.status).toBe(200);
    const reader = r.body!.getReader();
    const first = await reader.read();
    expect(first.done).toBe(false);
    ac.abort();
    await reader.cancel().catch(() => undefined);

    // A reader cannot fill the cache: it sees the blob absent (404) or complete, never partial.
    const deadline = Date.now() + 10_000;
    let complete = false;
    while (!complete && Date.now() < deadline) {
      const head = await reg.fetch(path, { method: 'HEAD', auth: readerAuth });
      if (head.status === 200) {
        expect(head.headers.get('content-length')).toBe(String(blob.size));
        complete = true;
      } else {
        expect(head.status).toBe(404);
        const stored = await reg.running.services.store.blobs.getLinked('up', image, blob.digest);
        expect(stored).toBeUndefined();
        await sleep(20);
      }
    }
    expect(complete).toBe(true);
    const got = await timedGet(path, readerAuth);
    expect({ status: got.status, digest: got.digest, size: got.size }).toEqual({ status: 200, digest: blob.digest, size: blob.size });
    // The fill that completed was the first one: no second upstream GET.
    expect(px.count('GET', `/v2/${image}/blobs/${blob.digest}`)).toBe(1);
    const stored = await reg.running.services.store.blobs.getLinked('up', image, blob.digest);
    expect(stored?.size).toBe(blob.size);
  });
});

// ---------------------------------------------------------------- upstream failures

describe('upstream failures', () => {
  let img: UpImage;
  let image: string;

  beforeAll(async () => {
    image = uniqueImage('flaky');
    img = await upstreamImage(cncf.url, image, '1', [randomBytes(1024), randomBytes(2048)]);
  });

  afterAll(() => px.pass());

  it.each([
    ['flaky-503', 503, undefined],
    ['flaky-502', 502, undefined],
    ['flaky-429-retry-after', 429, '30'],
    ['flaky-429', 429, undefined],
  ])('%s: the cached manifest and blob are served while the upstream fails', async (key, status, retryAfter) => {
    // Tags revalidated on every request (period 0): each tag GET asks the upstream. One remote per
    // case, so one case's failures (the circuit breaker) do not decide the next.
    await createRepo(key, { rclass: 'remote', url: px.url, retrievalCachePeriodSecs: 0 });
    expect(await manifestDigest(`/v2/${key}/${image}/manifests/1`)).toEqual({ status: 200, digest: img.digest });
    expect((await timedGet(`/v2/${key}/${image}/blobs/${img.layers[0]!.digest}`)).digest).toBe(img.layers[0]!.digest);
    px.reset();
    px.fail(status, { retryAfter });
    try {
      expect(await manifestDigest(`/v2/${key}/${image}/manifests/1`)).toEqual({ status: 200, digest: img.digest });
      expect(await manifestDigest(`/v2/${key}/${image}/manifests/1`, undefined, 'HEAD')).toEqual({ status: 200, digest: img.digest });
      expect(await manifestDigest(`/v2/${key}/${image}/manifests/${img.digest}`)).toEqual({ status: 200, digest: img.digest });
      const blob = await timedGet(`/v2/${key}/${image}/blobs/${img.layers[0]!.digest}`);
      expect({ status: blob.status, digest: blob.digest }).toEqual({ status: 200, digest: img.layers[0]!.digest });
      // Nothing cached: the client learns the upstream is unavailable.
      await expectOciError(await reg.fetch(`/v2/${key}/${image}/blobs/${img.layers[1]!.digest}`), 503, 'UNAVAILABLE');
    } finally {
      px.pass();
    }
    // The tag was revalidated with a HEAD (which failed, with status), never with a GET; digests and cached blobs never went upstream.
    expect(px.count('HEAD', `/v2/${image}/manifests/1`)).toBeGreaterThanOrEqual(1);
    expect(px.requests.filter((r) => r.path === `/v2/${image}/manifests/1`).every((r) => r.method === 'HEAD' && r.status === status)).toBe(true);
    expect(px.countAll(`/v2/${image}/manifests/${img.digest}`)).toBe(0);
    expect(px.countAll(`/v2/${image}/blobs/${img.layers[0]!.digest}`)).toBe(0);
  });

  it('an upstream that accepts requests and never answers: after socketTimeoutMillis the cached copy is served', async () => {
    await createRepo('flaky-stall', { rclass: 'remote', url: px.url, retrievalCachePeriodSecs: 0, socketTimeoutMillis: 300, retries: 0 });
    expect(await manifestDigest(`/v2/flaky-stall/${image}/manifests/1`)).toEqual({ status: 200, digest: img.digest });
    px.reset();
    px.stall();
    try {
      const t0 = performance.now();
      expect(await manifestDigest(`/v2/flaky-stall/${image}/manifests/1`)).toEqual({ status: 200, digest: img.digest });
      expect(performance.now() - t0).toBeLessThan(5000);
      await expectOciError(await reg.fetch(`/v2/flaky-stall/${image}/blobs/${img.layers[1]!.digest}`), 503, 'UNAVAILABLE');
    } finally {
      px.pass();
    }
    expect(px.count('HEAD', `/v2/${image}/manifests/1`)).toBe(1);
    expect(px.requests.every((r) => r.status === undefined)).toBe(true);
  });

  it('once the upstream answers again, the uncached blob is fetched', async () => {
    px.reset();
    const got = await timedGet(`/v2/flaky-503/${image}/blobs/${img.layers[1]!.digest}`);
    expect({ status: got.status, digest: got.digest }).toEqual({ status: 200, digest: img.layers[1]!.digest });
    expect(px.count('GET', `/v2/${image}/blobs/${img.layers[1]!.digest}`)).toBe(1);
  });
});

// ---------------------------------------------------------------- rights

describe('rights', () => {
  it('read serves the cache but never fills it; write fills it', async () => {
    const image = uniqueImage('rights');
    const cached = await upstreamImage(cncf.url, image, 'cached', [randomBytes(4096)]);
    const uncached = await upstreamImage(cncf.url, image, 'uncached', [randomBytes(4096)]);
    // The admin pulls one image through: it is in the cache.
    expect(await manifestDigest(`/v2/up/${image}/manifests/cached`)).toEqual({ status: 200, digest: cached.digest });
    expect((await timedGet(`/v2/up/${image}/blobs/${cached.layers[0]!.digest}`)).status).toBe(200);
    await untilCached('up', image, cached.layers[0]!.digest);
    px.reset();

    // read: cached content, by tag and digest, blobs too.
    expect(await manifestDigest(`/v2/up/${image}/manifests/cached`, readerAuth)).toEqual({ status: 200, digest: cached.digest });
    expect(await manifestDigest(`/v2/up/${image}/manifests/${cached.digest}`, readerAuth)).toEqual({ status: 200, digest: cached.digest });
    const blob = await timedGet(`/v2/up/${image}/blobs/${cached.layers[0]!.digest}`, readerAuth);
    expect({ status: blob.status, digest: blob.digest }).toEqual({ status: 200, digest: cached.layers[0]!.digest });
    // read: a cache miss is a miss, and the upstream is never asked.
    await expectOciError(await reg.fetch(`/v2/up/${image}/manifests/uncached`, { auth: readerAuth }), 404, 'MANIFEST_UNKNOWN');
    await expectOciError(await reg.fetch(`/v2/up/${image}/manifests/${uncached.digest}`, { auth: readerAuth }), 404, 'MANIFEST_UNKNOWN');
    await expectOciError(await reg.fetch(`/v2/up/${image}/blobs/${uncached.layers[0]!.digest}`, { auth: readerAuth }), 404, 'BLOB_UNKNOWN');
    const head = await reg.fetch(`/v2/up/${image}/blobs/${uncached.layers[0]!.digest}`, { method: 'HEAD', auth: readerAuth });
    expect(head.status).toBe(404);
    expect(px.requests).toEqual([]);

    // write: the same requests fill the cache.
    expect(await manifestDigest(`/v2/up/${image}/manifests/uncached`, writerAuth)).toEqual({ status: 200, digest: uncached.digest });
    const filled = await timedGet(`/v2/up/${image}/blobs/${uncached.layers[0]!.digest}`, writerAuth);
    expect({ status: filled.status, digest: filled.digest }).toEqual({ status: 200, digest: uncached.layers[0]!.digest });
    expect(px.count('GET', `/v2/${image}/manifests/uncached`)).toBe(1);
    expect(px.count('GET', `/v2/${image}/blobs/${uncached.layers[0]!.digest}`)).toBe(1);
    // ... and now the reader sees it.
    expect(await manifestDigest(`/v2/up/${image}/manifests/uncached`, readerAuth)).toEqual({ status: 200, digest: uncached.digest });
  });
});

// ---------------------------------------------------------------- upstream credentials

describe('Basic upstream credentials', () => {
  it('pulls from an htpasswd upstream; the password is stored encrypted and never returned', async () => {
    const image = uniqueImage('basic');
    const auth = basic(CNCF_USER, CNCF_PASS);
    const img = await upstreamImage(cncfAuth.url, image, '1', [randomBytes(3000)], auth);
    await createRepo('up-basic', { rclass: 'remote', url: cncfAuth.url, username: CNCF_USER, password: CNCF_PASS });

    expect(await manifestDigest(`/v2/up-basic/${image}/manifests/1`)).toEqual({ status: 200, digest: img.digest });
    const blob = await timedGet(`/v2/up-basic/${image}/blobs/${img.layers[0]!.digest}`);
    expect({ status: blob.status, digest: blob.digest }).toEqual({ status: 200, digest: img.layers[0]!.digest });

    const stored = await reg.running.services.store.repositories.get('up-basic');
    const storedConfig = stored!.config as { password?: string; username?: string };
    expect(storedConfig.username).toBe(CNCF_USER);
    expect(storedConfig.password).toMatch(/^enc:v1:/);
    expect(JSON.stringify(stored)).not.toContain(CNCF_PASS);

    const shown = await reg.fetch('/api/repositories/up-basic');
    expect(shown.status).toBe(200);
    const text = await shown.text();
    expect(text).not.toContain(CNCF_PASS);
    expect(text).not.toContain('enc:v1:');
    expect(JSON.parse(text)).toMatchObject({ key: 'up-basic', rclass: 'remote', username: CNCF_USER, password: '************' });

    // An update that sends the mask back keeps the stored password (and the upstream still lets us in).
    const update = await api('POST', '/api/repositories/up-basic', { password: '************', description: 'cncf with htpasswd' });
    expect(update.status).toBe(200);
    const again = await reg.running.services.store.repositories.get('up-basic');
    expect((again!.config as { password?: string }).password).toMatch(/^enc:v1:/);
    const second = await upstreamImage(cncfAuth.url, image, '2', [randomBytes(100)], auth);
    expect(await manifestDigest(`/v2/up-basic/${image}/manifests/2`)).toEqual({ status: 200, digest: second.digest });
  });

  it('wrong upstream credentials: 503 UNAVAILABLE saying the upstream refused them', async () => {
    const image = uniqueImage('badcreds');
    await upstreamImage(cncfAuth.url, image, '1', [randomBytes(10)], basic(CNCF_USER, CNCF_PASS));
    await createRepo('up-badcreds', { rclass: 'remote', url: cncfAuth.url, username: CNCF_USER, password: 'not-the-password' });
    const err = await expectOciError(await reg.fetch(`/v2/up-badcreds/${image}/manifests/1`), 503, 'UNAVAILABLE');
    expect(err.message).toMatch(/refused drydock's credentials/);
    expect(err.message).not.toContain('not-the-password');
  });
});

// ---------------------------------------------------------------- virtual repositories

describe('virtual over locals and the remote', () => {
  let image: string;
  let onlyUp: UpImage;
  let bothUp: UpImage;

  async function pushLocal(repo: string, tag: string): Promise<string> {
    // Pushed through drydock with admin credentials.
    const config = Buffer.from(`{"os":"linux","repo":"${repo}","tag":"${tag}","salt":"${randomBytes(6).toString('hex')}"}`);
    const configDigest = sha256(config);
    const r = await reg.fetch(`/v2/${repo}/${image}/blobs/uploads/?digest=${configDigest}`, { method: 'POST', body: config });
    expect(r.status).toBe(201);
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaTypes.ociManifest,
        config: { mediaType: MediaTypes.ociConfig, digest: configDigest, size: config.length },
        layers: [],
      }),
    );
    const put = await reg.fetch(`/v2/${repo}/${image}/manifests/${tag}`, {
      method: 'PUT',
      body: manifest,
      headers: { 'content-type': MediaTypes.ociManifest },
    });
    expect(put.status).toBe(201);
    return sha256(manifest);
  }

  beforeAll(async () => {
    image = uniqueImage('virt');
    await createRepo('vlocal', { rclass: 'local' });
    await createRepo('vlocal2', { rclass: 'local' });
    await createRepo('vremote', { rclass: 'remote', url: px.url });
    // The remote listed first: resolution still tries the locals first.
    await createRepo('vv', { rclass: 'virtual', repositories: ['vremote', 'vlocal', 'vlocal2'], defaultDeploymentRepo: 'vlocal' });
    await createRepo('vts', { rclass: 'virtual', repositories: ['vremote', 'vlocal', 'vlocal2'], resolveDockerTagsByTimestamp: true });
    onlyUp = await upstreamImage(cncf.url, image, 'only-upstream', [randomBytes(700)]);
    bothUp = await upstreamImage(cncf.url, image, 'both', [randomBytes(800)]);
  });

  it('a tag only upstream resolves through the virtual repository, and its blobs come through the remote', async () => {
    px.reset();
    expect(await manifestDigest(`/v2/vv/${image}/manifests/only-upstream`)).toEqual({ status: 200, digest: onlyUp.digest });
    const blob = await timedGet(`/v2/vv/${image}/blobs/${onlyUp.layers[0]!.digest}`);
    expect({ status: blob.status, digest: blob.digest }).toEqual({ status: 200, digest: onlyUp.layers[0]!.digest });
    expect(px.count('GET', `/v2/${image}/blobs/${onlyUp.layers[0]!.digest}`)).toBe(1);
    // Cached in the remote member, tag included.
    expect(await reg.running.services.store.tags.resolve('vremote', image, 'only-upstream')).toBe(onlyUp.digest);
    // Timestamp resolution with no local holding the tag: the remote answers.
    expect(await manifestDigest(`/v2/vts/${image}/manifests/only-upstream`)).toEqual({ status: 200, digest: onlyUp.digest });
  });

  it('locals first: a tag in a local and upstream resolves to the local one, without asking the upstream', async () => {
    const local = await pushLocal('vlocal', 'both');
    expect(local).not.toBe(bothUp.digest);
    px.reset();
    expect(await manifestDigest(`/v2/vv/${image}/manifests/both`)).toEqual({ status: 200, digest: local });
    expect(await manifestDigest(`/v2/vts/${image}/manifests/both`)).toEqual({ status: 200, digest: local });
    expect(px.countAll(`/v2/${image}/manifests/both`)).toBe(0);
    // The remote itself still has the upstream's.
    expect(await manifestDigest(`/v2/vremote/${image}/manifests/both`)).toEqual({ status: 200, digest: bothUp.digest });
  });

  it('resolveDockerTagsByTimestamp: the most recently pushed local wins; otherwise the listed order', async () => {
    const first = await pushLocal('vlocal', 'ts');
    await sleep(20);
    const later = await pushLocal('vlocal2', 'ts');
    expect(await manifestDigest(`/v2/vts/${image}/manifests/ts`)).toEqual({ status: 200, digest: later });
    expect(await manifestDigest(`/v2/vv/${image}/manifests/ts`)).toEqual({ status: 200, digest: first });
    // Re-pushed in the first local: now that one is the newest.
    await sleep(20);
    const newest = await pushLocal('vlocal', 'ts');
    expect(await manifestDigest(`/v2/vts/${image}/manifests/ts`)).toEqual({ status: 200, digest: newest });
  });

  it('a push through the virtual repository lands in its default deployment repository; without one it is refused', async () => {
    const digest = await pushLocal('vv', 'pushed');
    expect(await manifestDigest(`/v2/vlocal/${image}/manifests/pushed`)).toEqual({ status: 200, digest });
    await expectOciError(await reg.fetch(`/v2/vlocal2/${image}/manifests/pushed`), 404, 'MANIFEST_UNKNOWN');
    expect(await manifestDigest(`/v2/vv/${image}/manifests/pushed`)).toEqual({ status: 200, digest });
    await expectOciError(await reg.fetch(`/v2/vts/${image}/blobs/uploads/`, { method: 'POST' }), 405, 'UNSUPPORTED');
  });
});

// ---------------------------------------------------------------- Docker Hub names

describe("Docker Hub's library/ prefix", () => {
  function remoteFor(url: string): RemoteRepository {
    const config = remoteRepositorySchema.parse({ key: 'hub', rclass: 'remote', url });
    // upstreamName and mirrorsHost use only the configuration.
    return new RemoteRepository(config, {} as RemoteDeps);
  }

  it('single-segment names get library/ on Docker Hub hosts only', () => {
    for (const url of ['https://registry-1.docker.io/', 'https://index.docker.io', 'https://docker.io/', 'https://registry.hub.docker.com']) {
      const hub = remoteFor(url);
      expect([url, hub.upstreamName('alpine')]).toEqual([url, 'library/alpine']);
      expect(hub.upstreamName('bitnami/redis')).toBe('bitnami/redis');
      expect(hub.upstreamName('library/nginx')).toBe('library/nginx');
    }
    for (const url of [px.url, 'https://ghcr.io/', 'https://quay.io']) {
      expect(remoteFor(url).upstreamName('alpine')).toBe('alpine');
    }
  });

  it('?ns= names of Docker Hub all map to a Docker Hub remote; other hosts only to themselves', () => {
    const hub = remoteRepositorySchema.parse({ key: 'hub', rclass: 'remote', url: 'https://registry-1.docker.io/' });
    expect(['docker.io', 'registry-1.docker.io', 'index.docker.io', 'Docker.IO'].map((ns) => mirrorsHost(hub, ns))).toEqual([true, true, true, true]);
    expect(mirrorsHost(hub, 'ghcr.io')).toBe(false);
    const local = remoteRepositorySchema.parse({ key: 'loc', rclass: 'remote', url: px.url });
    expect(mirrorsHost(local, px.host)).toBe(true);
    expect(mirrorsHost(local, cncf.host)).toBe(false);
  });
});
