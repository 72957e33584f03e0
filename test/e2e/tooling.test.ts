/**
 * Validates the test/bench tooling (layout builder, skopeo/buildah helpers,
 * CNCF registry launcher) against the CNCF distribution registry, which speaks
 * the protocol drydock implements.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { run } from '../../bench/proc.mjs';
import { pushManifestListWithBuildah } from '../helpers/buildah.js';
import { startCncfRegistry, type CncfRegistry } from '../helpers/cncf-registry.js';
import { freePort } from '../helpers/free-port.js';
import { buildImage, buildIndex, MEDIA_TYPES, readBlob, REF_NAME_ANNOTATION, sha256Digest } from '../helpers/oci-layout.js';
import { skopeo, skopeoCopy, skopeoInspectRaw, skopeoLogin } from '../helpers/skopeo.js';

const CREDS = { user: 'tester', pass: 'pa:ss w0rd' };

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { os: string; architecture: string; variant?: string };
  annotations?: Record<string, string>;
}
interface ImageManifest {
  mediaType: string;
  config: Descriptor;
  layers: Descriptor[];
}
interface IndexManifest {
  mediaType: string;
  manifests: Descriptor[];
}
interface ImageConfig {
  created: string;
  os: string;
  architecture: string;
  variant?: string;
  config: { Labels?: Record<string, string> };
  rootfs: { type: string; diff_ids: string[] };
  history?: Array<{ created_by?: string; empty_layer?: boolean }>;
}

async function readJson<T>(path: string): Promise<T> {
  return JSON.parse(await readFile(path, 'utf8')) as T;
}

async function blobJson<T>(dir: string, digest: string): Promise<T> {
  return JSON.parse((await readBlob(dir, digest)).toString('utf8')) as T;
}

function taggedDigest(index: IndexManifest, tag: string): string | undefined {
  return index.manifests.find((d) => d.annotations?.[REF_NAME_ANNOTATION] === tag)?.digest;
}

let tmp = '';
let open: CncfRegistry | undefined;
let secured: CncfRegistry | undefined;

function openRegistry(): CncfRegistry {
  if (!open) throw new Error('registry not started');
  return open;
}
function securedRegistry(): CncfRegistry {
  if (!secured) throw new Error('registry not started');
  return secured;
}

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'tooling-test-'));
  [open, secured] = await Promise.all([startCncfRegistry(), startCncfRegistry({ htpasswd: CREDS })]);
});

afterAll(async () => {
  await Promise.all([open?.stop(), secured?.stop()]);
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('oci-layout builder', () => {
  it('writes a valid layout: gzip ustar layers, diff_ids, history, labels', async () => {
    const dir = join(tmp, 'layout-basic');
    const img = await buildImage(dir, {
      tag: 'v1',
      layers: 3,
      layerSize: 40_000,
      labels: { 'org.example.team': 'drydock' },
      history: true,
      seed: 'basic',
    });
    expect(await readJson(join(dir, 'oci-layout'))).toEqual({ imageLayoutVersion: '1.0.0' });
    expect(taggedDigest(await readJson<IndexManifest>(join(dir, 'index.json')), 'v1')).toBe(img.manifestDigest);

    // every blob is stored under its own digest
    const names = await readdir(join(dir, 'blobs', 'sha256'));
    for (const name of names) expect(sha256Digest(await readFile(join(dir, 'blobs', 'sha256', name)))).toBe(`sha256:${name}`);

    const manifest = await blobJson<ImageManifest>(dir, img.manifestDigest);
    expect(manifest.mediaType).toBe(MEDIA_TYPES.ociManifest);
    expect(manifest.config.digest).toBe(img.configDigest);
    expect(manifest.layers.map((l) => l.digest)).toEqual(img.layerDigests);
    expect(manifest.layers.every((l) => l.mediaType === MEDIA_TYPES.ociLayerGzip)).toBe(true);

    const config = await blobJson<ImageConfig>(dir, img.configDigest);
    expect(config).toMatchObject({ os: 'linux', architecture: 'amd64', rootfs: { type: 'layers' } });
    expect(Number.isNaN(Date.parse(config.created))).toBe(false);
    expect(config.config.Labels).toEqual({ 'org.example.team': 'drydock' });
    const history = config.history ?? [];
    expect(history.filter((h) => !h.empty_layer)).toHaveLength(3);
    expect(history.filter((h) => h.empty_layer)).toHaveLength(1);

    for (const [i, layer] of manifest.layers.entries()) {
      const gz = await readBlob(dir, layer.digest);
      expect(gz.length).toBe(layer.size);
      expect(sha256Digest(gunzipSync(gz))).toBe(config.rootfs.diff_ids[i]);
      // GNU tar accepts the archive (header checksums, sizes, padding)
      const { stdout } = await run('tar', ['-tvzf', join(dir, 'blobs', 'sha256', layer.digest.slice(7))]);
      expect(stdout).toMatch(new RegExp(`^d.* layer${i}/$`, 'm'));
      expect(stdout).toMatch(new RegExp(` 30000 .* layer${i}/data-0\\.bin$`, 'm'));
      expect(stdout).toMatch(new RegExp(` 10000 .* layer${i}/data-1\\.bin$`, 'm'));
    }
  });

  it('is deterministic for a seed and unique without one', async () => {
    const a = await buildImage(join(tmp, 'det-a'), { tag: 'x', layers: 2, seed: 'same' });
    const b = await buildImage(join(tmp, 'det-b'), { tag: 'x', layers: 2, seed: 'same' });
    const c = await buildImage(join(tmp, 'det-c'), { tag: 'x', layers: 2 });
    expect(b).toEqual(a);
    expect(c.manifestDigest).not.toBe(a.manifestDigest);
    expect(c.layerDigests.some((d) => a.layerDigests.includes(d))).toBe(false);
  });

  it('takes layer contents as Buffers and keeps several tags in one layout', async () => {
    const dir = join(tmp, 'layout-buffers');
    const img = await buildImage(dir, { tag: 'one', layers: [Buffer.from('first\n'), Buffer.from('second\n')] });
    const other = await buildImage(dir, { tag: 'two', layers: 1, layerSize: 100 });
    const again = await buildImage(dir, { tag: 'one', layers: 1, layerSize: 100 });
    const { stdout } = await run('tar', ['-xzOf', join(dir, 'blobs', 'sha256', img.layerDigests[1].slice(7)), 'layer1/file.bin']);
    expect(stdout).toBe('second\n');
    const index = await readJson<IndexManifest>(join(dir, 'index.json'));
    expect(index.manifests).toHaveLength(2);
    expect(taggedDigest(index, 'one')).toBe(again.manifestDigest);
    expect(taggedDigest(index, 'two')).toBe(other.manifestDigest);
  });

  it('streams a large incompressible layer', async () => {
    const dir = join(tmp, 'layout-large');
    const img = await buildImage(dir, { tag: 'big', layers: 1, layerSize: 20 * 1024 * 1024 });
    expect(img.layerSizes[0]).toBeGreaterThan(20 * 1024 * 1024);
    await rm(dir, { recursive: true, force: true });
  });

  it('builds a multi-platform index', async () => {
    const dir = join(tmp, 'layout-index');
    const platforms = [
      { os: 'linux', architecture: 'amd64' },
      { os: 'linux', architecture: 'arm64', variant: 'v8' },
    ];
    const built = await buildIndex(dir, { tag: 'multi', platforms, layers: 2, seed: 'idx' });
    expect(taggedDigest(await readJson<IndexManifest>(join(dir, 'index.json')), 'multi')).toBe(built.indexDigest);
    const index = await blobJson<IndexManifest>(dir, built.indexDigest);
    expect(index.mediaType).toBe(MEDIA_TYPES.ociIndex);
    expect(index.manifests.map((m) => m.platform)).toEqual(platforms);
    for (const [i, entry] of index.manifests.entries()) {
      expect(entry.digest).toBe(built.manifests[i].digest);
      const manifest = await blobJson<ImageManifest>(dir, entry.digest);
      expect(manifest.layers).toHaveLength(2);
      const config = await blobJson<ImageConfig>(dir, manifest.config.digest);
      expect({ os: config.os, architecture: config.architecture, variant: config.variant }).toEqual({ variant: undefined, ...platforms[i] });
    }
  });
});

describe('skopeo against the CNCF registry', () => {
  it('pushes an image, inspects the same digest, pulls it back', async () => {
    const reg = openRegistry();
    const dir = join(tmp, 'push-image');
    const img = await buildImage(dir, { tag: '1.0', layers: 3, layerSize: 32 * 1024, history: true });
    await skopeoCopy(`oci:${dir}:1.0`, `docker://${reg.host}/team/app:1.0`);

    const remote = await skopeoInspectRaw(`${reg.host}/team/app:1.0`);
    expect(remote.digest).toBe(img.manifestDigest);
    expect(remote.raw.equals(await readBlob(dir, img.manifestDigest))).toBe(true);
    expect(remote.mediaType).toBe(MEDIA_TYPES.ociManifest);

    const pulled = join(tmp, 'pull-image');
    await skopeoCopy(`docker://${reg.host}/team/app@${img.manifestDigest}`, `oci:${pulled}:pulled`);
    expect(taggedDigest(await readJson<IndexManifest>(join(pulled, 'index.json')), 'pulled')).toBe(img.manifestDigest);
    for (const d of [img.configDigest, ...img.layerDigests]) {
      expect(sha256Digest(await readBlob(pulled, d))).toBe(d);
    }
  });

  it('pushes a multi-platform index with --all and pulls it back', async () => {
    const reg = openRegistry();
    const dir = join(tmp, 'push-index');
    const built = await buildIndex(dir, {
      tag: 'multi',
      platforms: [
        { os: 'linux', architecture: 'amd64' },
        { os: 'linux', architecture: 'arm64', variant: 'v8' },
      ],
    });
    await skopeoCopy(`oci:${dir}:multi`, `docker://${reg.host}/team/multi:1`, { all: true });

    const remote = await skopeoInspectRaw(`docker://${reg.host}/team/multi:1`);
    expect(remote.digest).toBe(built.indexDigest);
    expect(remote.mediaType).toBe(MEDIA_TYPES.ociIndex);
    const arm = await skopeoInspectRaw(`${reg.host}/team/multi@${built.manifests[1].digest}`);
    expect(arm.digest).toBe(built.manifests[1].digest);

    const pulled = join(tmp, 'pull-index');
    await skopeoCopy(`docker://${reg.host}/team/multi:1`, `oci:${pulled}:back`, { all: true });
    expect(taggedDigest(await readJson<IndexManifest>(join(pulled, 'index.json')), 'back')).toBe(built.indexDigest);
    for (const m of built.manifests) {
      for (const d of [m.digest, m.configDigest, ...m.layerDigests]) expect(sha256Digest(await readBlob(pulled, d))).toBe(d);
    }
  });

  it('authenticates with creds or a login auth file, and reports failures with stderr', async () => {
    const reg = securedRegistry();
    const dir = join(tmp, 'push-auth');
    const img = await buildImage(dir, { tag: 'a', layers: 1, layerSize: 1024 });
    await expect(skopeoCopy(`oci:${dir}:a`, `docker://${reg.host}/team/private:a`)).rejects.toThrow(
      /unauthorized|authentication required/i,
    );

    await skopeoCopy(`oci:${dir}:a`, `docker://${reg.host}/team/private:a`, { creds: CREDS });
    expect((await skopeoInspectRaw(`${reg.host}/team/private:a`, CREDS)).digest).toBe(img.manifestDigest);

    const authfile = join(tmp, 'auth', 'auth.json');
    await skopeoLogin(reg.host, CREDS.user, CREDS.pass, authfile);
    expect(existsSync(authfile)).toBe(true);
    await skopeoCopy(`docker://${reg.host}/team/private:a`, `docker://${reg.host}/team/converted:a`, {
      authfile,
      format: 'v2s2',
    });
    const converted = await skopeoInspectRaw(`${reg.host}/team/converted:a`, undefined, { authfile });
    expect(converted.mediaType).toBe('application/vnd.docker.distribution.manifest.v2+json');
    expect(converted.digest).not.toBe(img.manifestDigest);
    const { stdout } = await skopeo(['inspect', '--tls-verify=false', `docker://${reg.host}/team/converted:a`], { authfile });
    expect(JSON.parse(stdout)).toMatchObject({ Digest: converted.digest, Os: 'linux', Architecture: 'amd64' });
  });
});

describe('buildah against the CNCF registry', () => {
  it.each(['v2s2', 'oci'] as const)('pushes a two-platform manifest list (%s)', async (format) => {
    const reg = securedRegistry();
    const work = join(tmp, `buildah-${format}`);
    const digest = await pushManifestListWithBuildah(reg.host, `team/list:${format}`, CREDS, work, { format });
    const remote = await skopeoInspectRaw(`${reg.host}/team/list:${format}`, CREDS);
    expect(remote.digest).toBe(digest);
    expect(remote.mediaType).toBe(
      format === 'v2s2' ? 'application/vnd.docker.distribution.manifest.list.v2+json' : MEDIA_TYPES.ociIndex,
    );
    const list = remote.manifest as unknown as IndexManifest;
    expect(list.manifests.map((m) => `${m.platform?.os}/${m.platform?.architecture}`).sort()).toEqual(['linux/amd64', 'linux/arm64']);
    await rm(work, { recursive: true, force: true });
  });
});

describe('CNCF registry launcher', () => {
  it('reports RSS, answers /v2/ and cleans up on stop', async () => {
    const port = await freePort();
    expect(port).toBeGreaterThan(0);
    const reg = await startCncfRegistry();
    expect(reg.rssKiB()).toBeGreaterThan(1000);
    expect(reg.hwmKiB()).toBeGreaterThanOrEqual(reg.rssKiB());
    const res = await fetch(`${reg.url}/v2/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('docker-distribution-api-version')).toBe('registry/2.0');
    const dir = dirname(reg.dataDir);
    expect(existsSync(dir)).toBe(true);
    await reg.stop();
    expect(existsSync(dir)).toBe(false);
    expect(reg.rssKiB()).toBe(0);
    expect(existsSync(`/proc/${reg.pid}`)).toBe(false);
  });

  it('requires the htpasswd user when asked to', async () => {
    const reg = securedRegistry();
    expect((await fetch(`${reg.url}/v2/`)).status).toBe(401);
    const auth = 'Basic ' + Buffer.from(`${CREDS.user}:${CREDS.pass}`).toString('base64');
    expect((await fetch(`${reg.url}/v2/`, { headers: { authorization: auth } })).status).toBe(200);
    const wrong = 'Basic ' + Buffer.from(`${CREDS.user}:nope`).toString('base64');
    expect((await fetch(`${reg.url}/v2/`, { headers: { authorization: wrong } })).status).toBe(401);
  });
});
