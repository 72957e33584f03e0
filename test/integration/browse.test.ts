import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { request } from 'node:http';
import { freePort } from '../helpers/free-port.js';
import { desc, MediaTypes, ociIndex, ociManifest, pushBlob, putManifest, uniqueImage } from '../helpers/oci-client.js';
import { ADMIN_AUTH, startTestRegistry, type TestRegistry } from '../helpers/registry.js';

let reg: TestRegistry;

beforeAll(async () => {
  reg = await startTestRegistry();
});
afterAll(async () => {
  await reg?.close();
});

/** An image whose config has known labels and a history with one empty step. */
async function pushKnownImage(name: string, tag: string, platform = { os: 'linux', architecture: 'amd64' }) {
  const l1 = await pushBlob(reg, name, `layer-one-${name}-${platform.architecture}`);
  const l2 = await pushBlob(reg, name, `layer-two-${name}-${platform.architecture}-longer`);
  const config = await pushBlob(
    reg,
    name,
    JSON.stringify({
      ...platform,
      config: { Labels: { 'org.opencontainers.image.source': 'https://example.com/app', team: 'a' } },
      rootfs: { type: 'layers', diff_ids: [] },
      history: [
        { created: '2026-01-01T00:00:00Z', created_by: '/bin/sh -c #(nop) ADD file:one in /' },
        { created: '2026-01-01T00:00:01Z', created_by: '/bin/sh -c #(nop) LABEL team=a', empty_layer: true },
        { created: '2026-01-01T00:00:02Z', created_by: '/bin/sh -c make install' },
      ],
    }),
  );
  const manifest = ociManifest(desc(MediaTypes.ociConfig, config), [desc('application/vnd.oci.image.layer.v1.tar+gzip', l1), desc('application/vnd.oci.image.layer.v1.tar+gzip', l2)]);
  const put = await putManifest(reg, name, tag, manifest);
  expect(put.status).toBe(201);
  return { digest: put.headers.get('docker-content-digest')!, manifest, config, l1, l2 };
}

describe('Tag Info', () => {
  it('answers the fields of SPEC §6 for an image, history aligned with layers', async () => {
    const image = uniqueImage('info');
    const img = await pushKnownImage(`docker-local/${image}`, '1.0');
    const r = await reg.fetch(`/api/docker/docker-local/info/${image}/1.0`);
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({
      tag: '1.0',
      digest: img.digest,
      mediaType: MediaTypes.ociManifest,
      totalSize: img.config.size + img.l1.size + img.l2.size,
      labelCount: 2,
      labels: { 'org.opencontainers.image.source': 'https://example.com/app', team: 'a' },
      platforms: [],
      history: [
        { created: '2026-01-01T00:00:00Z', createdBy: '/bin/sh -c #(nop) ADD file:one in /', emptyLayer: false, digest: img.l1.digest, size: img.l1.size },
        { created: '2026-01-01T00:00:01Z', createdBy: '/bin/sh -c #(nop) LABEL team=a', emptyLayer: true },
        { created: '2026-01-01T00:00:02Z', createdBy: '/bin/sh -c make install', emptyLayer: false, digest: img.l2.digest, size: img.l2.size },
      ],
    });
  });

  it('lists an index platforms with their own info URL, which answers', async () => {
    const image = uniqueImage('info-multi');
    const name = `docker-local/${image}`;
    const amd = await pushKnownImage(name, 'amd', { os: 'linux', architecture: 'amd64' });
    const arm = await pushKnownImage(name, 'arm', { os: 'linux', architecture: 'arm64', variant: 'v8' } as never);
    const index = ociIndex([
      desc(MediaTypes.ociManifest, { digest: amd.digest, size: amd.manifest.length }, { platform: { os: 'linux', architecture: 'amd64' } }),
      desc(MediaTypes.ociManifest, { digest: arm.digest, size: arm.manifest.length }, { platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } }),
    ]);
    const digest = (await putManifest(reg, name, '2.0', index, MediaTypes.ociIndex)).headers.get('docker-content-digest');
    const info = (await (await reg.fetch(`/artifactory/api/docker/docker-local/info/${image}/2.0`)).json()) as {
      digest: string;
      totalSize: number;
      platforms: Array<{ digest: string; size: number; os: string; architecture: string; variant?: string; infoUrl: string }>;
    };
    expect(info.digest).toBe(digest);
    expect(info.totalSize).toBe(amd.config.size + amd.l1.size + amd.l2.size + arm.config.size + arm.l1.size + arm.l2.size);
    expect(info.platforms).toEqual([
      { digest: amd.digest, size: amd.manifest.length, os: 'linux', architecture: 'amd64', infoUrl: `${reg.url}/artifactory/api/docker/docker-local/info/${image}/${amd.digest}` },
      { digest: arm.digest, size: arm.manifest.length, os: 'linux', architecture: 'arm64', variant: 'v8', infoUrl: `${reg.url}/artifactory/api/docker/docker-local/info/${image}/${arm.digest}` },
    ]);
    const child = await fetch(info.platforms[1]!.infoUrl, { headers: { authorization: ADMIN_AUTH } });
    expect(((await child.json()) as { labels: object }).labels).toEqual({ 'org.opencontainers.image.source': 'https://example.com/app', team: 'a' });
  });

  it('answers 404 for an unknown tag, 401 without credentials, 404 for an unknown repository', async () => {
    expect((await reg.fetch('/api/docker/docker-local/info/nothing/here/1.0')).status).toBe(404);
    const anon = await reg.fetch('/api/docker/docker-local/info/x/1.0', { auth: null });
    expect(anon.status).toBe(401);
    expect(await anon.json()).toEqual({ errors: [{ status: 401, message: 'authentication required' }] });
    expect((await reg.fetch('/api/docker/no-such-repo/info/x/1.0')).status).toBe(404);
  });
});

describe('image list', () => {
  it('counts tags and manifests and sums the bytes of each image', async () => {
    await reg.fetch('/api/repositories/browse-list', { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{"rclass":"local"}' });
    const img = await pushKnownImage('browse-list/app', 'a');
    await reg.fetch(`/v2/browse-list/app/manifests/${img.digest}?tag=b`, { method: 'PUT', body: img.manifest, headers: { 'content-type': MediaTypes.ociManifest } });
    const r = await reg.fetch('/api/docker/browse-list/images');
    expect(await r.json()).toEqual({
      repository: 'browse-list',
      images: [{ name: 'app', tags: 2, manifests: 1, size: img.manifest.length + img.config.size + img.l1.size + img.l2.size }],
    });
  });
});

describe('Set Me Up', () => {
  it('gives docker, podman, skopeo and buildx commands for the host the client used', async () => {
    const r = await get(reg.running.port, '/api/docker/docker-local/setmeup', 'registry.example.com:5000');
    const s = JSON.parse(r.body) as Record<string, unknown> & { docker: Record<string, string>; podman: Record<string, string> };
    expect(s).toMatchObject({ repository: 'docker-local', rclass: 'local', method: 'repositoryPath', registry: 'registry.example.com:5000', imagePrefix: 'registry.example.com:5000/docker-local', insecure: true });
    expect(s.docker.login).toBe('docker login registry.example.com:5000 -u admin');
    expect(s.docker.push).toBe('docker push registry.example.com:5000/docker-local/<image>:<tag>');
    expect(s.docker.buildx).toContain('--platform linux/amd64,linux/arm64');
    expect(s.podman.pull).toBe('podman pull --tls-verify=false registry.example.com:5000/docker-local/<image>:<tag>');
    expect(s.containerd).toBeUndefined();
  });

  it('adds the containerd hosts.toml for remote and virtual repositories', async () => {
    const remote = JSON.parse((await get(reg.running.port, '/api/docker/docker-remote/setmeup', 'mirror.internal:5000')).body) as {
      containerd: { path: string; hostsToml: string };
    };
    expect(remote.containerd.path).toBe('/etc/containerd/certs.d/docker.io/hosts.toml');
    expect(remote.containerd.hostsToml).toContain('server = "https://registry-1.docker.io"');
    expect(remote.containerd.hostsToml).toContain('[host."http://mirror.internal:5000"]');
    const virtual = JSON.parse((await get(reg.running.port, '/api/docker/docker/setmeup', 'mirror.internal:5000')).body) as {
      containerd: { hostsToml: string };
    };
    expect(virtual.containerd.hostsToml).toContain('[host."http://mirror.internal:5000/v2/docker"]');
    expect(virtual.containerd.hostsToml).toContain('override_path = true');
  });
});

/** A raw request with an arbitrary Host header (fetch does not let tests set it). */
function get(port: number, path: string, host: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers: { host, authorization: ADMIN_AUTH } }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('subdomain and port methods', () => {
  let sub: TestRegistry;
  let port: number;
  beforeAll(async () => {
    port = await freePort();
    await reg.fetch('/api/repositories/by-port', {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ rclass: 'local', port }),
    });
    // Same database: a second process of the installation, with the subdomain method on; it listens on the port too.
    sub = await startTestRegistry({ store: reg.running.services.store, dataDir: reg.dataDir, config: { server: { subdomainOf: 'registry.test' } } });
  });
  afterAll(async () => {
    await sub?.close();
  });

  it('serves <key>.<subdomainOf>/<image> by Host header', async () => {
    const image = uniqueImage('sub');
    const img = await pushKnownImage(`docker-local/${image}`, 'v1');
    const r = await get(sub.running.port, `/v2/${image}/manifests/v1`, 'docker-local.registry.test');
    expect(r.status).toBe(200);
    expect(r.body).toBe(img.manifest.toString());
    const setmeup = JSON.parse((await get(sub.running.port, '/api/docker/docker-local/setmeup', `registry.test:${sub.running.port}`)).body) as { method: string; registry: string };
    expect(setmeup).toMatchObject({ method: 'subdomain', registry: `docker-local.registry.test:${sub.running.port}` });
  });

  it('serves a repository with `port` at the root of that port', async () => {
    const img = await pushKnownImage('by-port/app', 'v1');
    const r = await get(port, '/v2/app/manifests/v1', `127.0.0.1:${port}`);
    expect(r.status).toBe(200);
    expect(r.body).toBe(img.manifest.toString());
    const setmeup = JSON.parse((await get(sub.running.port, '/api/docker/by-port/setmeup', `127.0.0.1:${sub.running.port}`)).body) as { method: string; registry: string };
    expect(setmeup).toMatchObject({ method: 'port', registry: `127.0.0.1:${port}` });
  });
});
