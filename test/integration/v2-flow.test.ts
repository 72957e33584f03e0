import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createHash } from 'node:crypto';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';

const sha256 = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

let reg: TestRegistry;

beforeAll(async () => {
  reg = await startTestRegistry();
});
afterAll(async () => {
  await reg?.close();
});

async function pushBlob(name: string, data: Buffer): Promise<string> {
  const digest = sha256(data);
  const r = await reg.fetch(`/v2/${name}/blobs/uploads/?digest=${digest}`, { method: 'POST', body: data });
  expect(r.status).toBe(201);
  return digest;
}

function imageManifest(config: { digest: string; size: number }, layers: Array<{ digest: string; size: number }>, extra: object = {}) {
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
      layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...l })),
      ...extra,
    }),
  );
}

describe('registry API flow on a local repository', () => {
  it('GET /v2/ needs credentials and answers with the API version header', async () => {
    const anon = await reg.fetch('/v2/', { auth: null });
    expect(anon.status).toBe(401);
    expect(anon.headers.get('www-authenticate')).toBe(`Bearer realm="${reg.url}/v2/token",service="drydock"`);
    expect(anon.headers.get('docker-distribution-api-version')).toBe('registry/2.0');
    expect((await anon.json()).errors[0].code).toBe('UNAUTHORIZED');
    const ok = await reg.fetch('/v2/');
    expect(ok.status).toBe(200);
    const bad = await reg.fetch('/v2/', { auth: `Basic ${Buffer.from('admin:wrong').toString('base64')}` });
    expect(bad.status).toBe(401);
  });

  it('pushes blobs and a manifest, pulls them back byte for byte', async () => {
    const name = 'docker-local/team/app';
    const config = Buffer.from('{"architecture":"amd64","os":"linux"}');
    const layer = Buffer.from('layer-bytes-'.repeat(1000));
    const cd = await pushBlob(name, config);
    const ld = await pushBlob(name, layer);
    const manifest = imageManifest({ digest: cd, size: config.length }, [{ digest: ld, size: layer.length }]);
    const put = await reg.fetch(`/v2/${name}/manifests/1.0`, { method: 'PUT', body: manifest, headers: { 'content-type': OCI_MANIFEST } });
    expect(put.status).toBe(201);
    expect(put.headers.get('docker-content-digest')).toBe(sha256(manifest));
    expect(put.headers.get('location')).toBe(`/v2/${name}/manifests/${sha256(manifest)}`);

    const get = await reg.fetch(`/v2/${name}/manifests/1.0`);
    expect(get.status).toBe(200);
    expect(get.headers.get('content-type')).toBe(OCI_MANIFEST);
    expect(Buffer.from(await get.arrayBuffer()).equals(manifest)).toBe(true);

    const blob = await reg.fetch(`/v2/${name}/blobs/${ld}`);
    expect(blob.status).toBe(200);
    expect(Buffer.from(await blob.arrayBuffer()).equals(layer)).toBe(true);

    const ranged = await reg.fetch(`/v2/${name}/blobs/${ld}`, { headers: { range: 'bytes=2-5' } });
    expect(ranged.status).toBe(206);
    expect(ranged.headers.get('content-range')).toBe(`bytes 2-5/${layer.length}`);
    expect(await ranged.text()).toBe('yer-');

    const tags = await reg.fetch(`/v2/${name}/tags/list`);
    expect(await tags.json()).toEqual({ name, tags: ['1.0'] });

    const direct = await reg.fetch(`/api/docker/docker-local/v2/team/app/manifests/1.0`);
    expect(direct.status).toBe(200);
    const alias = await reg.fetch(`/artifactory/api/docker/docker-local/v2/team/app/tags/list`);
    expect(await alias.json()).toEqual({ name: 'team/app', tags: ['1.0'] });
  });

  it('runs a chunked upload with an out-of-order chunk refused with 416', async () => {
    const name = 'docker-local/chunky';
    const data = Buffer.alloc(300_000, 7);
    const start = await reg.fetch(`/v2/${name}/blobs/uploads/`, { method: 'POST' });
    expect(start.status).toBe(202);
    const loc = start.headers.get('location')!;
    expect(start.headers.get('range')).toBe('0-0');
    const p1 = await reg.fetch(loc, { method: 'PATCH', body: data.subarray(0, 100_000), headers: { 'content-range': '0-99999', 'content-type': 'application/octet-stream' } });
    expect(p1.status).toBe(202);
    expect(p1.headers.get('range')).toBe('0-99999');
    const wrong = await reg.fetch(loc, { method: 'PATCH', body: data.subarray(200_000), headers: { 'content-range': '200000-299999' } });
    expect(wrong.status).toBe(416);
    expect(wrong.headers.get('range')).toBe('0-99999');
    const status = await reg.fetch(loc);
    expect(status.status).toBe(204);
    expect(status.headers.get('range')).toBe('0-99999');
    const p2 = await reg.fetch(loc, { method: 'PATCH', body: data.subarray(100_000, 200_000), headers: { 'content-range': '100000-199999' } });
    expect(p2.status).toBe(202);
    const fin = await reg.fetch(`${loc}?digest=${sha256(data)}`, { method: 'PUT', body: data.subarray(200_000), headers: { 'content-range': '200000-299999' } });
    expect(fin.status).toBe(201);
    expect(fin.headers.get('docker-content-digest')).toBe(sha256(data));
    const head = await reg.fetch(`/v2/${name}/blobs/${sha256(data)}`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe('300000');
  });
});
