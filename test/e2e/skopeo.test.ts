/**
 * skopeo (containers/image) against a real drydock process: push and pull
 * images and indexes byte-for-byte, Docker schema 2 conversion, login, pushing
 * what is already there, and registry-to-registry copies (cross-repository mount).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDrydock, stopAllDrydocks, type DrydockProcess } from '../helpers/drydock-process.js';
import { buildImage, buildIndex, MEDIA_TYPES, readBlob, REF_NAME_ANNOTATION, sha256Digest } from '../helpers/oci-layout.js';
import { skopeo, skopeoCopy, skopeoInspectRaw, skopeoLogin } from '../helpers/skopeo.js';

const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
const DOCKER_CONFIG = 'application/vnd.docker.container.image.v1+json';
const DOCKER_LAYER = 'application/vnd.docker.image.rootfs.diff.tar.gzip';

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { os: string; architecture: string; variant?: string };
  annotations?: Record<string, string>;
}
interface ImageManifest {
  mediaType?: string;
  config: Descriptor;
  layers: Descriptor[];
}
interface IndexManifest {
  mediaType?: string;
  manifests: Descriptor[];
}

let tmp = '';
let dd: DrydockProcess | undefined;

function drydock(): DrydockProcess {
  if (!dd) throw new Error('drydock not started');
  return dd;
}

async function taggedDigest(layout: string, tag: string): Promise<string | undefined> {
  const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as IndexManifest;
  return index.manifests.find((d) => d.annotations?.[REF_NAME_ANNOTATION] === tag)?.digest;
}

async function blobJson<T>(layout: string, digest: string): Promise<T> {
  return JSON.parse((await readBlob(layout, digest)).toString('utf8')) as T;
}

/** Every blob the manifest names is in `layout` with the right bytes, and the same bytes as in `source`. */
async function expectSameImage(source: string, pulled: string, manifestDigest: string): Promise<void> {
  const raw = await readBlob(pulled, manifestDigest);
  expect(sha256Digest(raw)).toBe(manifestDigest);
  expect(raw.equals(await readBlob(source, manifestDigest))).toBe(true);
  const manifest = JSON.parse(raw.toString('utf8')) as ImageManifest;
  for (const d of [manifest.config, ...manifest.layers]) {
    const bytes = await readBlob(pulled, d.digest);
    expect(sha256Digest(bytes)).toBe(d.digest);
    expect(bytes.length).toBe(d.size);
    expect(bytes.equals(await readBlob(source, d.digest))).toBe(true);
  }
}

/** The debug access-log lines (JSON) of the drydock process. */
function accessLog(p: DrydockProcess): Array<{ method: string; url: string; status: number }> {
  return p
    .stdout()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { msg?: string; method?: string; url?: string; status?: number })
    .filter((e) => e.msg === 'request')
    .map((e) => ({ method: e.method ?? '', url: e.url ?? '', status: e.status ?? 0 }));
}

/**
 * The access log from entry `from` on, once it holds an entry matching `last`: the
 * server logs a request when its response has been sent, and the line crosses a
 * pipe, so a client can exit before its last request is in the log.
 */
async function accessLogThrough(
  p: DrydockProcess,
  from: number,
  last: (r: { method: string; url: string; status: number }) => boolean,
): Promise<Array<{ method: string; url: string; status: number }>> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const entries = accessLog(p).slice(from);
    if (entries.some(last) || Date.now() > deadline) return entries;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'e2e-skopeo-'));
  dd = await startDrydock({
    config: { repositories: [{ key: 'staging', rclass: 'local' }] },
    env: { DRYDOCK_LOG_LEVEL: 'debug' },
  });
});

afterAll(async () => {
  await stopAllDrydocks();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('skopeo against drydock', () => {
  let appDir = '';
  let app: Awaited<ReturnType<typeof buildImage>> | undefined;

  it('pushes a 3-layer image with labels and history, serves its manifest byte-for-byte and pulls it back', async () => {
    const p = drydock();
    appDir = join(tmp, 'app');
    app = await buildImage(appDir, {
      tag: '1.0',
      layers: 3,
      layerSize: 24 * 1024,
      labels: { 'org.opencontainers.image.title': 'app', 'dev.drydock.team': 'e2e' },
      history: true,
    });
    await skopeoCopy(`oci:${appDir}:1.0`, `docker://${p.host}/docker-local/team/app:1.0`, { destCreds: p.creds });

    const remote = await skopeoInspectRaw(`${p.host}/docker-local/team/app:1.0`, p.creds);
    expect(remote.digest).toBe(app.manifestDigest);
    expect(remote.raw.equals(await readBlob(appDir, app.manifestDigest))).toBe(true);
    expect(remote.mediaType).toBe(MEDIA_TYPES.ociManifest);

    const { stdout } = await skopeo(['inspect', '--tls-verify=false', '--creds', p.creds, `docker://${p.host}/docker-local/team/app:1.0`]);
    const info = JSON.parse(stdout) as { Digest: string; Labels: Record<string, string>; Layers: string[]; Os: string; Architecture: string };
    expect(info).toMatchObject({
      Digest: app.manifestDigest,
      Labels: { 'org.opencontainers.image.title': 'app', 'dev.drydock.team': 'e2e' },
      Layers: app.layerDigests,
      Os: 'linux',
      Architecture: 'amd64',
    });

    const byTag = join(tmp, 'app-pulled-tag');
    await skopeoCopy(`docker://${p.host}/docker-local/team/app:1.0`, `oci:${byTag}:back`, { srcCreds: p.creds });
    expect(await taggedDigest(byTag, 'back')).toBe(app.manifestDigest);
    await expectSameImage(appDir, byTag, app.manifestDigest);
    const manifest = await blobJson<ImageManifest>(byTag, app.manifestDigest);
    expect(manifest.config.digest).toBe(app.configDigest);
    expect(manifest.layers.map((l) => l.digest)).toEqual(app.layerDigests);
    const config = await blobJson<{ history: unknown[]; rootfs: { diff_ids: string[] } }>(byTag, app.configDigest);
    expect(config.rootfs.diff_ids).toEqual(app.diffIds);
    expect(config.history).toHaveLength(4);

    const byDigest = join(tmp, 'app-pulled-digest');
    await skopeoCopy(`docker://${p.host}/docker-local/team/app@${app.manifestDigest}`, `oci:${byDigest}:back`, { srcCreds: p.creds });
    await expectSameImage(appDir, byDigest, app.manifestDigest);
  });

  it('pushes a 2-platform index with --all and pulls every platform back', async () => {
    const p = drydock();
    const dir = join(tmp, 'multi');
    const built = await buildIndex(dir, {
      tag: 'multi',
      platforms: [
        { os: 'linux', architecture: 'amd64' },
        { os: 'linux', architecture: 'arm64', variant: 'v8' },
      ],
      layers: 2,
    });
    await skopeoCopy(`oci:${dir}:multi`, `docker://${p.host}/docker-local/team/multi:2.0`, { all: true, destCreds: p.creds });

    const remote = await skopeoInspectRaw(`${p.host}/docker-local/team/multi:2.0`, p.creds);
    expect(remote.digest).toBe(built.indexDigest);
    expect(remote.raw.equals(await readBlob(dir, built.indexDigest))).toBe(true);
    expect(remote.mediaType).toBe(MEDIA_TYPES.ociIndex);
    const list = remote.manifest as unknown as IndexManifest;
    expect(list.manifests.map((m) => m.platform)).toEqual([
      { os: 'linux', architecture: 'amd64' },
      { os: 'linux', architecture: 'arm64', variant: 'v8' },
    ]);
    for (const child of built.manifests) {
      const got = await skopeoInspectRaw(`${p.host}/docker-local/team/multi@${child.digest}`, p.creds);
      expect(got.digest).toBe(child.digest);
      expect(got.raw.equals(await readBlob(dir, child.digest))).toBe(true);
    }

    const pulled = join(tmp, 'multi-pulled');
    await skopeoCopy(`docker://${p.host}/docker-local/team/multi:2.0`, `oci:${pulled}:back`, { all: true, srcCreds: p.creds });
    expect(await taggedDigest(pulled, 'back')).toBe(built.indexDigest);
    expect((await readBlob(pulled, built.indexDigest)).equals(await readBlob(dir, built.indexDigest))).toBe(true);
    for (const child of built.manifests) await expectSameImage(dir, pulled, child.digest);
  });

  it('pushes as Docker schema 2 (--format v2s2) and serves it with that media type', async () => {
    const p = drydock();
    if (!app) throw new Error('the first test did not build the image');
    await skopeoCopy(`oci:${appDir}:1.0`, `docker://${p.host}/docker-local/team/app-docker:1.0`, {
      destCreds: p.creds,
      format: 'v2s2',
    });
    const remote = await skopeoInspectRaw(`${p.host}/docker-local/team/app-docker:1.0`, p.creds);
    expect(remote.mediaType).toBe(DOCKER_MANIFEST);
    expect(remote.digest).not.toBe(app.manifestDigest);
    const manifest = remote.manifest as unknown as ImageManifest;
    expect(manifest.config.mediaType).toBe(DOCKER_CONFIG);
    expect(manifest.layers.map((l) => l.mediaType)).toEqual([DOCKER_LAYER, DOCKER_LAYER, DOCKER_LAYER]);
    // Only the manifest (and config media type) changes: the layers are the same blobs.
    expect(manifest.layers.map((l) => l.digest)).toEqual(app.layerDigests);

    const res = await fetch(`${p.url}/v2/docker-local/team/app-docker/manifests/1.0`, {
      headers: { authorization: p.authorization, accept: `${DOCKER_MANIFEST}, ${MEDIA_TYPES.ociManifest}` },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe(DOCKER_MANIFEST);
    expect(res.headers.get('docker-content-digest')).toBe(remote.digest);
    expect(Buffer.from(await res.arrayBuffer()).equals(remote.raw)).toBe(true);

    const pulled = join(tmp, 'app-docker-pulled');
    await skopeoCopy(`docker://${p.host}/docker-local/team/app-docker:1.0`, `dir:${pulled}`, { srcCreds: p.creds });
    expect(sha256Digest(await readFile(join(pulled, 'manifest.json')))).toBe(remote.digest);
    for (const d of app.layerDigests) expect(sha256Digest(await readFile(join(pulled, d.slice('sha256:'.length))))).toBe(d);
  });

  it('logs in with skopeo login, then pushes without --dest-creds; a wrong password does not log in', async () => {
    const p = drydock();
    if (!app) throw new Error('the first test did not build the image');
    const authfile = join(tmp, 'login', 'auth.json');
    await expect(skopeoLogin(p.host, 'admin', 'not-the-password', authfile)).rejects.toThrow(/unauthorized|invalid username\/password|authentication required/i);
    await skopeoLogin(p.host, 'admin', p.adminPassword, authfile);
    const auths = (JSON.parse(await readFile(authfile, 'utf8')) as { auths: Record<string, unknown> }).auths;
    expect(Object.keys(auths)).toEqual([p.host]);

    await skopeoCopy(`oci:${appDir}:1.0`, `docker://${p.host}/docker-local/team/logged-in:1.0`, { authfile });
    const remote = await skopeoInspectRaw(`${p.host}/docker-local/team/logged-in:1.0`, undefined, { authfile });
    expect(remote.digest).toBe(app.manifestDigest);
    // Without the login, the same push is refused.
    await expect(skopeoCopy(`oci:${appDir}:1.0`, `docker://${p.host}/docker-local/team/anonymous:1.0`)).rejects.toThrow(
      /unauthorized|authentication required/i,
    );
  });

  it('pushes the same image twice: every blob already exists and the tag still resolves', async () => {
    const p = drydock();
    if (!app) throw new Error('the first test did not build the image');
    const before = accessLog(p).length;
    await skopeoCopy(`oci:${appDir}:1.0`, `docker://${p.host}/docker-local/team/app:1.0`, { destCreds: p.creds });
    const requests = await accessLogThrough(p, before, (r) => r.method === 'PUT');
    // skopeo asks about each blob (HEAD → 200) and uploads nothing.
    for (const d of [app.configDigest, ...app.layerDigests]) {
      expect(requests).toContainEqual({ method: 'HEAD', url: `/v2/docker-local/team/app/blobs/${d}`, status: 200 });
    }
    expect(requests.filter((r) => r.url.includes('/blobs/uploads/'))).toEqual([]);
    expect(requests.filter((r) => r.method === 'PUT').map((r) => r.status)).toEqual([201]);
    expect((await skopeoInspectRaw(`${p.host}/docker-local/team/app:1.0`, p.creds)).digest).toBe(app.manifestDigest);
  });

  it('copies registry to registry between two repositories of one drydock, mounting the blobs', async () => {
    const p = drydock();
    if (!app) throw new Error('the first test did not build the image');
    const before = accessLog(p).length;
    await skopeoCopy(`docker://${p.host}/docker-local/team/app:1.0`, `docker://${p.host}/staging/team/app:1.0`, { creds: p.creds });
    const remote = await skopeoInspectRaw(`${p.host}/staging/team/app:1.0`, p.creds);
    expect(remote.digest).toBe(app.manifestDigest);
    expect(remote.raw.equals(await readBlob(appDir, app.manifestDigest))).toBe(true);

    // containers/image mounts the layers it has seen in another repository of the
    // same registry (the config blob it always uploads, after a HEAD).
    const requests = await accessLogThrough(p, before, (r) => r.method === 'PUT' && r.url === '/v2/staging/team/app/manifests/1.0');
    const query = (url: string) => new URL(url, p.url).searchParams;
    const mounts = requests.filter((r) => r.method === 'POST' && r.url.startsWith('/v2/staging/team/app/blobs/uploads/?') && query(r.url).has('mount'));
    expect(mounts.map((r) => query(r.url).get('mount')).sort()).toEqual([...app.layerDigests].sort());
    // From wherever skopeo last saw the blob: one of the docker-local images pushed above.
    for (const r of mounts) {
      expect(r.status).toBe(201);
      expect(query(r.url).get('from')).toMatch(/^docker-local\/team\//);
    }
    const uploaded = requests
      .filter((r) => r.method === 'PUT' && r.url.includes('/blobs/uploads/'))
      .map((r) => query(r.url).get('digest') ?? '');
    const layers = app.layerDigests;
    expect(uploaded.filter((d) => layers.includes(d))).toEqual([]);

    const pulled = join(tmp, 'staging-pulled');
    await skopeoCopy(`docker://${p.host}/staging/team/app:1.0`, `oci:${pulled}:back`, { srcCreds: p.creds });
    await expectSameImage(appDir, pulled, app.manifestDigest);

    // And the same within one repository, to another image name.
    await skopeoCopy(`docker://${p.host}/docker-local/team/app:1.0`, `docker://${p.host}/docker-local/other/app:copy`, { creds: p.creds });
    expect((await skopeoInspectRaw(`${p.host}/docker-local/other/app:copy`, p.creds)).digest).toBe(app.manifestDigest);
  });
});
