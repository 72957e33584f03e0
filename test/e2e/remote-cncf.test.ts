/**
 * A drydock process with remote repositories whose upstream is the CNCF
 * distribution registry (`docker-registry`) on loopback — anonymous, behind a
 * counting proxy that sees every upstream request, and with htpasswd for Basic
 * auth — pulled through with skopeo and plain HTTP: byte-for-byte pulls of an
 * image and a 2-platform index, manifests and tags stored on the first ask
 * (HEAD included) with children and blobs fetched lazily, tag revalidation with
 * HEAD after `retrievalCachePeriodSecs`, the cache serving with the upstream
 * stopped, `offline`, pushes refused, cache-only deletes, foreign layers and
 * the `?ns=` transparent mirror.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import http, { type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { REGISTRY_BINARY } from '../../bench/cncf-registry.mjs';
import { freePort, stopChild, waitForHttp } from '../../bench/proc.mjs';
import { registryConfigYaml, startCncfRegistry, type CncfRegistry } from '../helpers/cncf-registry.js';
import { startCountingProxy, type CountingProxy } from '../helpers/counting-proxy.js';
import { startDrydock, stopAllDrydocks, type DrydockProcess } from '../helpers/drydock-process.js';
import { basic, expectOciError, MediaTypes, sha256 } from '../helpers/oci-client.js';
import { buildImage, buildIndex, readBlob, REF_NAME_ANNOTATION, type BuiltImage, type BuiltIndex } from '../helpers/oci-layout.js';
import { skopeoCopy, skopeoInspectRaw } from '../helpers/skopeo.js';

const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
const DOCKER_CONFIG = 'application/vnd.docker.container.image.v1+json';
const DOCKER_LAYER = 'application/vnd.docker.image.rootfs.diff.tar.gzip';
const FOREIGN_LAYER = 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip';
const CNCF_USER = 'puller';
const CNCF_PASS = 'htpasswd-pass-77';
/** The revalidation period of the `cncf` remote. */
const PERIOD_SECS = 3;

let tmp = '';
let cncf: CncfRegistry;
let cncfAuth: CncfRegistry;
/** In front of `cncf`: the upstream of most remotes here. */
let px: CountingProxy;
/** Also in front of `cncf`, but no remote names it: `?ns=` for it must never reach it. */
let unregistered: CountingProxy;
let dd: DrydockProcess;
let appDir = '';
let app: BuiltImage;
let multiDir = '';
let multi: BuiltIndex;

/** A web server for foreign layers' `urls`: counts what it serves. */
let foreign: { server: Server; port: number; hits: string[]; bytes: Buffer };

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'e2e-remote-cncf-'));
  appDir = join(tmp, 'app');
  multiDir = join(tmp, 'multi');
  const bytes = randomBytes(64 * 1024);
  const server = http.createServer((req, res) => {
    foreign.hits.push(req.url ?? '');
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(bytes.length) });
    res.end(bytes);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  foreign = { server, port: (server.address() as AddressInfo).port, hits: [], bytes };

  // Each assigned as soon as it runs, so afterAll stops it even when another fails to start.
  await Promise.all([
    startCncfRegistry().then((r) => (cncf = r)),
    startCncfRegistry({ htpasswd: { user: CNCF_USER, pass: CNCF_PASS } }).then((r) => (cncfAuth = r)),
    startDrydock().then((p) => (dd = p)),
    buildImage(appDir, { tag: 'v1', layers: 3, layerSize: 16 * 1024 }).then((b) => (app = b)),
    buildIndex(multiDir, {
      tag: 'multi',
      platforms: [
        { os: 'linux', architecture: 'amd64' },
        { os: 'linux', architecture: 'arm64', variant: 'v8' },
      ],
      layers: 1,
    }).then((b) => (multi = b)),
  ]);
  px = await startCountingProxy(cncf.url);
  unregistered = await startCountingProxy(cncf.url);
  await Promise.all([
    skopeoCopy(`oci:${appDir}:v1`, `docker://${cncf.host}/team/app:v1`),
    skopeoCopy(`oci:${multiDir}:multi`, `docker://${cncf.host}/team/multi:1`, { all: true }),
    skopeoCopy(`oci:${multiDir}:multi`, `docker://${cncf.host}/team/lazy:1`, { all: true }),
    skopeoCopy(`oci:${appDir}:v1`, `docker://${cncfAuth.host}/team/private:v1`, { destCreds: `${CNCF_USER}:${CNCF_PASS}` }),
  ]);
  await createRepo('cncf', { url: px.url, retrievalCachePeriodSecs: PERIOD_SECS });
});

afterAll(async () => {
  await stopAllDrydocks();
  await Promise.all([px?.close(), unregistered?.close()]);
  await Promise.all([cncf?.stop(), cncfAuth?.stop()]);
  if (foreign) await new Promise<void>((resolve) => foreign.server.close(() => resolve()));
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

// ---------------------------------------------------------------- helpers

function ddFetch(path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  if (!headers.has('authorization')) headers.set('authorization', dd.authorization);
  return fetch(`${dd.url}${path}`, { ...init, headers, redirect: 'manual' });
}

async function createRepo(key: string, body: Record<string, unknown>): Promise<void> {
  const r = await ddFetch(`/api/repositories/${key}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ key, rclass: 'remote', ...body }),
  });
  expect({ key, status: r.status, body: await r.text() }).toEqual({ key, status: 200, body: `Successfully created repository '${key}'` });
}

async function updateRepo(key: string, body: Record<string, unknown>): Promise<void> {
  const r = await ddFetch(`/api/repositories/${key}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  expect({ status: r.status, body: await r.text() }).toEqual({ status: 200, body: `Repository ${key} update successful.` });
}

/** GET (or HEAD) through drydock: status, digest header, and the sha256 of the body. */
async function pull(path: string, method = 'GET'): Promise<{ status: number; digest: string | null; bodyDigest: string; body: Buffer }> {
  const r = await ddFetch(path, { method });
  const body = Buffer.from(await r.arrayBuffer());
  return { status: r.status, digest: r.headers.get('docker-content-digest'), bodyDigest: sha256(body), body };
}

/** The digest and bytes a blob or manifest GET answered, checked against `digest`. */
async function expectServed(path: string, digest: string): Promise<void> {
  const got = await pull(path);
  expect({ path, status: got.status, digest: got.digest, bodyDigest: got.bodyDigest }).toEqual({ path, status: 200, digest, bodyDigest: digest });
}

/** Pushes a blob straight to a registry (POST, then PUT with the whole body). */
async function upstreamBlob(base: string, name: string, data: Buffer): Promise<{ digest: string; size: number }> {
  const digest = sha256(data);
  const start = await fetch(`${base}/v2/${name}/blobs/uploads/`, { method: 'POST' });
  expect(start.status).toBe(202);
  const location = new URL(start.headers.get('location')!, base);
  location.searchParams.set('digest', digest);
  const put = await fetch(location, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, body: new Uint8Array(data) });
  expect(put.status).toBe(201);
  return { digest, size: data.length };
}

async function upstreamManifest(base: string, name: string, ref: string, body: Buffer, mediaType: string): Promise<string> {
  const r = await fetch(`${base}/v2/${name}/manifests/${ref}`, { method: 'PUT', headers: { 'content-type': mediaType }, body: new Uint8Array(body) });
  expect({ status: r.status, body: r.status === 201 ? '' : await r.text() }).toEqual({ status: 201, body: '' });
  return sha256(body);
}

/** A one-layer OCI image pushed straight to the CNCF registry; returns its digests. */
async function upstreamImage(name: string, tag: string): Promise<{ digest: string; config: string; layer: string; manifest: Buffer }> {
  const config = await upstreamBlob(cncf.url, name, Buffer.from(JSON.stringify({ os: 'linux', architecture: 'amd64', salt: randomBytes(8).toString('hex') })));
  const layer = await upstreamBlob(cncf.url, name, randomBytes(2048));
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaTypes.ociManifest,
      config: { mediaType: MediaTypes.ociConfig, digest: config.digest, size: config.size },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layer.digest, size: layer.size }],
    }),
  );
  const digest = await upstreamManifest(cncf.url, name, tag, manifest, MediaTypes.ociManifest);
  return { digest, config: config.digest, layer: layer.digest, manifest };
}

async function taggedDigest(layout: string, tag: string): Promise<string | undefined> {
  const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string; annotations?: Record<string, string> }> };
  return index.manifests.find((d) => d.annotations?.[REF_NAME_ANNOTATION] === tag)?.digest;
}

/** Every blob of `digests` is in `pulled` with the same bytes as in `source`. */
async function expectSameBlobs(source: string, pulled: string, digests: string[]): Promise<void> {
  for (const d of digests) {
    const bytes = await readBlob(pulled, d);
    expect([d, sha256(bytes)]).toEqual([d, d]);
    expect(bytes.equals(await readBlob(source, d))).toBe(true);
  }
}

/**
 * A CNCF registry that accepts manifests with foreign-layer URLs: distribution
 * refuses any URL in a pushed manifest unless `validation.manifests.urls.allow`
 * lets it in, which the shared helper does not configure.
 */
async function startForeignCapableCncf(dir: string): Promise<{ url: string; port: number; stop(): Promise<void> }> {
  await mkdir(dir, { recursive: true });
  const port = await freePort();
  const config = join(dir, 'config.yml');
  const allow = ['validation:', '  manifests:', '    urls:', '      allow:', "        - '^https?://'"].join('\n');
  await writeFile(config, `${registryConfigYaml({ port, rootDir: join(dir, 'data') })}${allow}\n`);
  const child = spawn(REGISTRY_BINARY, ['serve', config], { stdio: 'ignore' });
  const stop = () => stopChild(child);
  try {
    await waitForHttp(`http://127.0.0.1:${port}/v2/`, { statuses: [200], child, describe: 'docker-registry (foreign layers)', timeoutMs: 15_000 });
  } catch (e) {
    await stop();
    throw e;
  }
  return { url: `http://127.0.0.1:${port}`, port, stop };
}

const blobPaths = (image: string) => new RegExp(`^/v2/${image}/blobs/`);

// ---------------------------------------------------------------- pull-through

describe('pull-through with skopeo', () => {
  it('pulls a 3-layer image byte-for-byte; each blob is fetched upstream once', async () => {
    px.reset();
    const out = join(tmp, 'app-pulled');
    await skopeoCopy(`docker://${dd.host}/cncf/team/app:v1`, `oci:${out}:v1`, { srcCreds: dd.creds });
    expect(await taggedDigest(out, 'v1')).toBe(app.manifestDigest);
    await expectSameBlobs(appDir, out, [app.manifestDigest, app.configDigest, ...app.layerDigests]);
    for (const d of [app.configDigest, ...app.layerDigests]) expect([d, px.count('GET', `/v2/team/app/blobs/${d}`)]).toEqual([d, 1]);

    // Pulled again: everything from the cache (the tag is within its revalidation period).
    px.reset();
    const again = join(tmp, 'app-pulled-again');
    await skopeoCopy(`docker://${dd.host}/cncf/team/app:v1`, `oci:${again}:v1`, { srcCreds: dd.creds });
    await expectSameBlobs(appDir, again, [app.manifestDigest, app.configDigest, ...app.layerDigests]);
    expect(px.countAll(blobPaths('team/app'))).toBe(0);
  });

  it('pulls a 2-platform index with --all: the index digest and every child are the upstream ones', async () => {
    const out = join(tmp, 'multi-pulled');
    await skopeoCopy(`docker://${dd.host}/cncf/team/multi:1`, `oci:${out}:1`, { srcCreds: dd.creds, all: true });
    expect(await taggedDigest(out, '1')).toBe(multi.indexDigest);
    await expectSameBlobs(multiDir, out, [multi.indexDigest]);
    for (const child of multi.manifests) await expectSameBlobs(multiDir, out, [child.digest, child.configDigest, ...child.layerDigests]);
    const upstream = await skopeoInspectRaw(`${cncf.host}/team/multi:1`);
    const through = await skopeoInspectRaw(`${dd.host}/cncf/team/multi:1`, dd.creds);
    expect(through.digest).toBe(upstream.digest);
    expect(through.raw.equals(upstream.raw)).toBe(true);
  });
});

describe('lazy caching', () => {
  it('a HEAD for a new tag stores the index and its tag; children and blobs are fetched only when asked for', async () => {
    px.reset();
    const head = await pull('/v2/cncf/team/lazy/manifests/1', 'HEAD');
    expect({ status: head.status, digest: head.digest }).toEqual({ status: 200, digest: multi.indexDigest });
    expect(px.countAll('/v2/team/lazy/manifests/1')).toBe(1);
    expect(px.countAll(/^\/v2\/team\/lazy\/manifests\/sha256:/)).toBe(0);
    expect(px.countAll(blobPaths('team/lazy'))).toBe(0);

    const catalog = await ddFetch('/api/docker/cncf/v2/_catalog');
    expect(catalog.status).toBe(200);
    expect(((await catalog.json()) as { repositories: string[] }).repositories).toContain('team/lazy');

    // The tag is in drydock's cache: it resolves with the upstream down.
    await px.stop();
    try {
      await expectServed('/v2/cncf/team/lazy/manifests/1', multi.indexDigest);
    } finally {
      await px.resume();
    }

    // One platform pulled: exactly its manifest and its blobs go upstream.
    px.reset();
    const [amd64, arm64] = multi.manifests;
    await expectServed(`/v2/cncf/team/lazy/manifests/${amd64!.digest}`, amd64!.digest);
    const wanted = [amd64!.configDigest, ...amd64!.layerDigests];
    for (const d of wanted) await expectServed(`/v2/cncf/team/lazy/blobs/${d}`, d);
    expect(px.count('GET', `/v2/team/lazy/manifests/${amd64!.digest}`)).toBe(1);
    expect(px.countAll(`/v2/team/lazy/manifests/${arm64!.digest}`)).toBe(0);
    expect(px.countAll(blobPaths('team/lazy'))).toBe(wanted.length);
    for (const d of wanted) expect(px.count('GET', `/v2/team/lazy/blobs/${d}`)).toBe(1);
  });
});

describe('revalidation', () => {
  it('tags are revalidated with one HEAD after retrievalCachePeriodSecs, never within it; digests never', async () => {
    const first = await upstreamImage('team/reval', 'latest');
    // Pushed before the period starts, so the re-push within it is one quick manifest PUT.
    const second = await upstreamImage('team/reval', 'next');
    px.reset();
    const filledAt = Date.now();
    await expectServed('/v2/cncf/team/reval/manifests/latest', first.digest);
    expect(px.count('GET', '/v2/team/reval/manifests/latest')).toBe(1);

    // Re-pushed upstream; within the period drydock answers from its cache without asking.
    await upstreamManifest(cncf.url, 'team/reval', 'latest', second.manifest, MediaTypes.ociManifest);
    px.reset();
    await expectServed('/v2/cncf/team/reval/manifests/latest', first.digest);
    await expectServed(`/v2/cncf/team/reval/manifests/${first.digest}`, first.digest);
    expect(Date.now() - filledAt).toBeLessThan(PERIOD_SECS * 1000);
    expect(px.requests).toEqual([]);

    // After the period: one HEAD sees the new digest, one GET fetches the new manifest.
    await sleep(PERIOD_SECS * 1000 - (Date.now() - filledAt) + 200);
    px.reset();
    await expectServed('/v2/cncf/team/reval/manifests/latest', second.digest);
    expect(px.requests.map((r) => `${r.method} ${r.path}`)).toEqual(['HEAD /v2/team/reval/manifests/latest', 'GET /v2/team/reval/manifests/latest']);

    // A cached digest is never revalidated, however old.
    px.reset();
    await expectServed(`/v2/cncf/team/reval/manifests/${first.digest}`, first.digest);
    await expectServed(`/v2/cncf/team/reval/manifests/${second.digest}`, second.digest);
    expect(px.requests).toEqual([]);

    // After another period with the upstream unchanged: a HEAD only.
    await sleep(PERIOD_SECS * 1000 + 200);
    px.reset();
    await expectServed('/v2/cncf/team/reval/manifests/latest', second.digest);
    expect(px.requests.map((r) => `${r.method} ${r.path}`)).toEqual(['HEAD /v2/team/reval/manifests/latest']);
  });
});

describe('upstream down', () => {
  it('with the upstream registry stopped, cached content is served (skopeo pull, tag, digest, blobs); an uncached blob is 503', async () => {
    const gone = await startCncfRegistry();
    let stopped = false;
    try {
      await skopeoCopy(`oci:${appDir}:v1`, `docker://${gone.host}/team/app:v1`);
      const extra = await upstreamBlob(gone.url, 'team/app', randomBytes(4096));
      // Period 0: every tag request tries to revalidate, so the outage is met on each.
      await createRepo('gone', { url: gone.url, retrievalCachePeriodSecs: 0 });
      await skopeoCopy(`docker://${dd.host}/gone/team/app:v1`, `oci:${join(tmp, 'gone-1')}:v1`, { srcCreds: dd.creds });
      // HEADs wait for fills still being committed.
      for (const d of [app.configDigest, ...app.layerDigests]) expect((await pull(`/v2/gone/team/app/blobs/${d}`, 'HEAD')).status).toBe(200);

      await gone.stop();
      stopped = true;
      const out = join(tmp, 'gone-2');
      await skopeoCopy(`docker://${dd.host}/gone/team/app:v1`, `oci:${out}:v1`, { srcCreds: dd.creds });
      expect(await taggedDigest(out, 'v1')).toBe(app.manifestDigest);
      await expectSameBlobs(appDir, out, [app.manifestDigest, app.configDigest, ...app.layerDigests]);
      await expectServed('/v2/gone/team/app/manifests/v1', app.manifestDigest);
      await expectServed(`/v2/gone/team/app/manifests/${app.manifestDigest}`, app.manifestDigest);
      await expectServed(`/v2/gone/team/app/blobs/${app.layerDigests[1]!}`, app.layerDigests[1]!);

      const err = await expectOciError(await ddFetch(`/v2/gone/team/app/blobs/${extra.digest}`), 503, 'UNAVAILABLE');
      expect(err.message).toMatch(/upstream of remote repository 'gone' is unavailable/);
      expect((await pull(`/v2/gone/team/app/blobs/${extra.digest}`, 'HEAD')).status).toBe(503);
      await expectOciError(await ddFetch('/v2/gone/team/app/manifests/never-pulled'), 503, 'UNAVAILABLE');
    } finally {
      if (!stopped) await gone.stop();
    }
  });

  it('offline: true serves only the cache and never contacts the upstream', async () => {
    const a = await upstreamImage('team/off', 'a');
    const b = await upstreamImage('team/off', 'b');
    await createRepo('cncf-off', { url: px.url, retrievalCachePeriodSecs: 0 });
    await expectServed('/v2/cncf-off/team/off/manifests/a', a.digest);
    await expectServed(`/v2/cncf-off/team/off/blobs/${a.layer}`, a.layer);
    expect((await pull(`/v2/cncf-off/team/off/blobs/${a.layer}`, 'HEAD')).status).toBe(200);

    await updateRepo('cncf-off', { offline: true });
    px.reset();
    await expectServed('/v2/cncf-off/team/off/manifests/a', a.digest);
    await expectServed(`/v2/cncf-off/team/off/manifests/${a.digest}`, a.digest);
    await expectServed(`/v2/cncf-off/team/off/blobs/${a.layer}`, a.layer);
    await expectOciError(await ddFetch('/v2/cncf-off/team/off/manifests/b'), 404, 'MANIFEST_UNKNOWN');
    await expectOciError(await ddFetch(`/v2/cncf-off/team/off/manifests/${b.digest}`), 404, 'MANIFEST_UNKNOWN');
    await expectOciError(await ddFetch(`/v2/cncf-off/team/off/blobs/${a.config}`), 404, 'BLOB_UNKNOWN');
    expect((await pull(`/v2/cncf-off/team/off/blobs/${b.layer}`, 'HEAD')).status).toBe(404);
    const tags = await ddFetch('/v2/cncf-off/team/off/tags/list');
    expect(await tags.json()).toEqual({ name: 'cncf-off/team/off', tags: ['a'] });
    expect(px.requests).toEqual([]);
  });
});

describe('writes', () => {
  it('pushes are refused with 405 UNSUPPORTED (upload POST, manifest PUT; skopeo fails), and nothing reaches the upstream', async () => {
    px.reset();
    const data = Buffer.from('not for a cache');
    for (const path of ['/v2/cncf/team/pushed/blobs/uploads/', `/v2/cncf/team/pushed/blobs/uploads/?digest=${sha256(data)}`]) {
      const err = await expectOciError(await ddFetch(path, { method: 'POST', body: new Uint8Array(data) }), 405, 'UNSUPPORTED');
      expect(err.message).toMatch(/'cncf' is a remote repository/);
    }
    const manifest = await readBlob(appDir, app.manifestDigest);
    await expectOciError(
      await ddFetch('/v2/cncf/team/pushed/manifests/1', { method: 'PUT', headers: { 'content-type': MediaTypes.ociManifest }, body: new Uint8Array(manifest) }),
      405,
      'UNSUPPORTED',
    );
    await expect(skopeoCopy(`oci:${appDir}:v1`, `docker://${dd.host}/cncf/team/pushed:1`, { destCreds: dd.creds })).rejects.toThrow(/remote repository|unsupported|405/i);
    expect(px.requests.filter((r) => r.method !== 'GET' && r.method !== 'HEAD')).toEqual([]);
  });

  it('DELETE removes a manifest and a blob from the cache only; the next pull fetches them again', async () => {
    const img = await upstreamImage('team/del', '1');
    await expectServed('/v2/cncf/team/del/manifests/1', img.digest);
    await expectServed(`/v2/cncf/team/del/blobs/${img.layer}`, img.layer);
    expect((await pull(`/v2/cncf/team/del/blobs/${img.layer}`, 'HEAD')).status).toBe(200);

    px.reset();
    expect((await ddFetch(`/v2/cncf/team/del/manifests/${img.digest}`, { method: 'DELETE' })).status).toBe(202);
    expect((await ddFetch(`/v2/cncf/team/del/blobs/${img.layer}`, { method: 'DELETE' })).status).toBe(202);
    expect(px.requests).toEqual([]);
    const catalog = (await (await ddFetch('/api/docker/cncf/v2/_catalog')).json()) as { repositories: string[] };
    expect(catalog.repositories).not.toContain('team/del');
    // The upstream still has both.
    expect((await fetch(`${cncf.url}/v2/team/del/manifests/${img.digest}`, { method: 'HEAD', headers: { accept: MediaTypes.ociManifest } })).status).toBe(200);
    expect((await fetch(`${cncf.url}/v2/team/del/blobs/${img.layer}`, { method: 'HEAD' })).status).toBe(200);

    await expectServed(`/v2/cncf/team/del/manifests/${img.digest}`, img.digest);
    await expectServed(`/v2/cncf/team/del/blobs/${img.layer}`, img.layer);
    expect(px.count('GET', `/v2/team/del/manifests/${img.digest}`)).toBe(1);
    expect(px.count('GET', `/v2/team/del/blobs/${img.layer}`)).toBe(1);
  });
});

// ---------------------------------------------------------------- upstream auth

describe('Basic upstream auth (htpasswd)', () => {
  it('pulls through with the configured credentials; the REST API shows the password masked', async () => {
    await createRepo('cncf-basic', { url: cncfAuth.url, username: CNCF_USER, password: CNCF_PASS });
    const out = join(tmp, 'private-pulled');
    await skopeoCopy(`docker://${dd.host}/cncf-basic/team/private:v1`, `oci:${out}:v1`, { srcCreds: dd.creds });
    expect(await taggedDigest(out, 'v1')).toBe(app.manifestDigest);
    await expectSameBlobs(appDir, out, [app.manifestDigest, app.configDigest, ...app.layerDigests]);

    const shown = await ddFetch('/api/repositories/cncf-basic');
    const text = await shown.text();
    expect(shown.status).toBe(200);
    expect(JSON.parse(text)).toMatchObject({ key: 'cncf-basic', rclass: 'remote', url: cncfAuth.url, username: CNCF_USER, password: '************' });
    expect(text).not.toContain(CNCF_PASS);
    expect(text).not.toContain('enc:v1:');
    const listed = await (await ddFetch('/api/repositories?type=remote')).text();
    expect(listed).not.toContain(CNCF_PASS);
    // Without credentials the same upstream refuses drydock.
    await createRepo('cncf-nocreds', { url: cncfAuth.url });
    const err = await expectOciError(await ddFetch('/v2/cncf-nocreds/team/private/manifests/v1'), 503, 'UNAVAILABLE');
    expect(err.message).toMatch(/refused drydock's credentials \(401\)/);
    // Sanity: the upstream really wants them.
    expect((await fetch(`${cncfAuth.url}/v2/team/private/manifests/v1`, { headers: { authorization: basic(CNCF_USER, 'wrong') } })).status).toBe(401);
  });
});

// ---------------------------------------------------------------- foreign layers

describe('foreign layers', () => {
  let manifestDigest = '';
  let foreignDigest = '';
  let normalLayer = '';
  let upstream: { url: string; port: number; stop(): Promise<void> } | undefined;
  const name = 'team/windows';

  beforeAll(async () => {
    upstream = await startForeignCapableCncf(join(tmp, 'cncf-foreign'));
    const config = await upstreamBlob(upstream.url, name, Buffer.from(JSON.stringify({ os: 'windows', architecture: 'amd64' })));
    const layer = await upstreamBlob(upstream.url, name, randomBytes(1000));
    normalLayer = layer.digest;
    foreignDigest = sha256(foreign.bytes);
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: DOCKER_MANIFEST,
        config: { mediaType: DOCKER_CONFIG, digest: config.digest, size: config.size },
        layers: [
          {
            mediaType: FOREIGN_LAYER,
            digest: foreignDigest,
            size: foreign.bytes.length,
            urls: [`http://127.0.0.1:${foreign.port}/allowed/windows/base.tar.gz`],
          },
          { mediaType: DOCKER_LAYER, digest: layer.digest, size: layer.size },
        ],
      }),
    );
    // The upstream takes a foreign layer without its blob (it never serves it).
    manifestDigest = await upstreamManifest(upstream.url, name, 'ltsc', manifest, DOCKER_MANIFEST);
    expect((await fetch(`${upstream.url}/v2/${name}/blobs/${foreignDigest}`, { method: 'HEAD' })).status).toBe(404);
    await createRepo('fl-on', {
      url: upstream.url,
      externalDependenciesEnabled: true,
      externalDependenciesPatterns: [`**/127.0.0.1:${foreign.port}/allowed/**`],
    });
    await createRepo('fl-pattern', {
      url: upstream.url,
      externalDependenciesEnabled: true,
      externalDependenciesPatterns: ['**/mcr.microsoft.com/**', '**/other.example/**'],
    });
    await createRepo('fl-off', { url: upstream.url });
  });

  afterAll(async () => {
    await upstream?.stop();
  });

  it('enabled and matching: the foreign layer is downloaded from its URL through drydock and cached', async () => {
    foreign.hits.length = 0;
    await expectServed(`/v2/fl-on/${name}/manifests/ltsc`, manifestDigest);
    const got = await pull(`/v2/fl-on/${name}/blobs/${foreignDigest}`);
    expect({ status: got.status, digest: got.digest, bodyDigest: got.bodyDigest }).toEqual({ status: 200, digest: foreignDigest, bodyDigest: foreignDigest });
    expect(got.body.equals(foreign.bytes)).toBe(true);
    expect(foreign.hits).toEqual(['/allowed/windows/base.tar.gz']);
    await expectServed(`/v2/fl-on/${name}/blobs/${normalLayer}`, normalLayer);
    // Cached: served again without another download.
    expect((await pull(`/v2/fl-on/${name}/blobs/${foreignDigest}`, 'HEAD')).status).toBe(200);
    await expectServed(`/v2/fl-on/${name}/blobs/${foreignDigest}`, foreignDigest);
    expect(foreign.hits).toHaveLength(1);
  });

  it('enabled but no pattern matches the URL: 403 DENIED naming the URL and the patterns; nothing downloaded', async () => {
    foreign.hits.length = 0;
    await expectServed(`/v2/fl-pattern/${name}/manifests/ltsc`, manifestDigest);
    const err = await expectOciError(await ddFetch(`/v2/fl-pattern/${name}/blobs/${foreignDigest}`), 403, 'DENIED');
    expect(err.message).toContain(`http://127.0.0.1:${foreign.port}/allowed/windows/base.tar.gz`);
    expect(err.message).toContain('externalDependenciesPatterns');
    expect(err.message).toContain('**/mcr.microsoft.com/**');
    expect(err.message).toContain('**/other.example/**');
    expect(foreign.hits).toEqual([]);
    // Ordinary layers of the image still come through.
    await expectServed(`/v2/fl-pattern/${name}/blobs/${normalLayer}`, normalLayer);
  });

  it('disabled: refused with a message saying external dependencies are disabled', async () => {
    foreign.hits.length = 0;
    await expectServed(`/v2/fl-off/${name}/manifests/ltsc`, manifestDigest);
    const err = await expectOciError(await ddFetch(`/v2/fl-off/${name}/blobs/${foreignDigest}`), 403, 'DENIED');
    expect(err.message).toMatch(/foreign layer/);
    expect(err.message).toMatch(/external dependencies/);
    expect(err.message).toMatch(/externalDependenciesEnabled is false/);
    expect(foreign.hits).toEqual([]);
  });
});

// ---------------------------------------------------------------- transparent mirror

describe('transparent mirror (?ns=)', () => {
  let busybox: { digest: string; config: string; layer: string };

  beforeAll(async () => {
    await createRepo('mirror', { url: cncf.url });
    busybox = await upstreamImage('busybox', '1.36');
  });

  it('routes /v2/<image>/... with ?ns=<upstream host> to the remote for that host, with no repository key in the path', async () => {
    const ns = `ns=${encodeURIComponent(cncf.host)}`;
    await expectServed(`/v2/team/app/manifests/v1?${ns}`, app.manifestDigest);
    await expectServed(`/v2/team/app/manifests/${app.manifestDigest}?${ns}`, app.manifestDigest);
    await expectServed(`/v2/team/app/blobs/${app.configDigest}?${ns}`, app.configDigest);
    const head = await pull(`/v2/team/app/manifests/v1?${ns}`, 'HEAD');
    expect({ status: head.status, digest: head.digest }).toEqual({ status: 200, digest: app.manifestDigest });
    // A single-segment name too (containerd sends Docker Hub's official images as library/<name>; here the upstream has it bare).
    await expectServed(`/v2/busybox/manifests/1.36?${ns}`, busybox.digest);
    await expectServed(`/v2/busybox/blobs/${busybox.layer}?${ns}`, busybox.layer);
    // It went into the mirror remote's cache.
    await expectServed(`/v2/mirror/team/app/manifests/${app.manifestDigest}`, app.manifestDigest);
  });

  it('an unknown ns is NAME_UNKNOWN and drydock never dials it', async () => {
    unregistered.reset();
    const err = await expectOciError(await ddFetch(`/v2/team/app/manifests/v1?ns=${encodeURIComponent(unregistered.host)}`), 404, 'NAME_UNKNOWN');
    expect(err.message).toContain(unregistered.host);
    await expectOciError(await ddFetch(`/v2/team/app/blobs/${app.configDigest}?ns=${encodeURIComponent(unregistered.host)}`), 404, 'NAME_UNKNOWN');
    await expectOciError(await ddFetch('/v2/team/app/manifests/v1?ns=registry.example.invalid'), 404, 'NAME_UNKNOWN');
    expect(unregistered.requests).toEqual([]);
  });
});
