import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Readable } from 'node:stream';
import { MAX_MANIFEST_BYTES } from '../../src/core/oci/manifest.js';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';
import {
  bytesOf,
  desc,
  expectOciError,
  MediaTypes,
  ociIndex,
  ociManifest,
  pushBlob,
  pushImage,
  putManifest,
  sha256,
  uniqueImage,
} from '../helpers/oci-client.js';

let reg: TestRegistry;

beforeAll(async () => {
  reg = await startTestRegistry();
});
afterAll(async () => {
  await reg?.close();
});

const image = () => `docker-local/${uniqueImage('man')}`;

/** GET and HEAD `reference`; both must answer exactly `bytes` with `mediaType`. */
async function expectManifest(name: string, reference: string, bytes: Buffer, mediaType: string): Promise<void> {
  const get = await reg.fetch(`/v2/${name}/manifests/${reference}`);
  expect(get.status).toBe(200);
  expect(get.headers.get('content-type')).toBe(mediaType);
  expect(get.headers.get('docker-content-digest')).toBe(sha256(bytes));
  expect(get.headers.get('content-length')).toBe(String(bytes.length));
  expect(get.headers.get('etag')).toBe(`"${sha256(bytes)}"`);
  expect(get.headers.get('docker-distribution-api-version')).toBe('registry/2.0');
  expect((await bytesOf(get)).equals(bytes)).toBe(true);
  const head = await reg.fetch(`/v2/${name}/manifests/${reference}`, { method: 'HEAD' });
  expect(head.status).toBe(200);
  expect(head.headers.get('content-type')).toBe(mediaType);
  expect(head.headers.get('docker-content-digest')).toBe(sha256(bytes));
  expect(head.headers.get('content-length')).toBe(String(bytes.length));
  expect(await head.text()).toBe('');
}

function expectPutCreated(r: Response, name: string, bytes: Buffer): void {
  expect(r.status).toBe(201);
  expect(r.headers.get('location')).toBe(`/v2/${name}/manifests/${sha256(bytes)}`);
  expect(r.headers.get('docker-content-digest')).toBe(sha256(bytes));
  expect(r.headers.get('content-length')).toBe('0');
}

/** A config and a layer in `name`, as descriptors of the given media types. */
async function blobsFor(name: string, configType: string = MediaTypes.ociConfig, layerType = 'application/vnd.oci.image.layer.v1.tar+gzip') {
  const config = await pushBlob(reg, name, `{"architecture":"amd64","os":"linux","n":"${uniqueImage('c')}"}`);
  const layer = await pushBlob(reg, name, `layer ${uniqueImage('l')}`);
  return { config: desc(configType, config), layer: desc(layerType, layer) };
}

describe('PUT, GET and HEAD manifests', () => {
  it('PUT by tag, then GET/HEAD by tag and by digest', async () => {
    const name = image();
    const { config, layer } = await blobsFor(name);
    const m = ociManifest(config, [layer]);
    const put = await putManifest(reg, name, 'v1', m);
    expectPutCreated(put, name, m);
    expect(put.headers.get('oci-tag')).toBeNull();
    expect(put.headers.get('oci-subject')).toBeNull();
    await expectManifest(name, 'v1', m, MediaTypes.ociManifest);
    await expectManifest(name, sha256(m), m, MediaTypes.ociManifest);
  });

  it('PUT by digest leaves no tag; ?tag=a&tag=b tags it and answers OCI-Tag', async () => {
    const name = image();
    const { config, layer } = await blobsFor(name);
    const m = ociManifest(config, [layer]);
    const plain = await putManifest(reg, name, sha256(m), m);
    expectPutCreated(plain, name, m);
    expect(plain.headers.get('oci-tag')).toBeNull();
    expect(await (await reg.fetch(`/v2/${name}/tags/list`)).json()).toEqual({ name, tags: [] });
    await expectOciError(await reg.fetch(`/v2/${name}/manifests/a`), 404, 'MANIFEST_UNKNOWN');

    const tagged = await reg.fetch(`/v2/${name}/manifests/${sha256(m)}?tag=a&tag=b`, {
      method: 'PUT',
      body: m,
      headers: { 'content-type': MediaTypes.ociManifest },
    });
    expectPutCreated(tagged, name, m);
    expect(tagged.headers.get('oci-tag')).toBe('a, b');
    await expectManifest(name, 'a', m, MediaTypes.ociManifest);
    await expectManifest(name, 'b', m, MediaTypes.ociManifest);
  });

  it('?tag= with a tag reference is 400 TAG_INVALID', async () => {
    const name = image();
    const { config, layer } = await blobsFor(name);
    const m = ociManifest(config, [layer]);
    const r = await reg.fetch(`/v2/${name}/manifests/v1?tag=v2`, { method: 'PUT', body: m, headers: { 'content-type': MediaTypes.ociManifest } });
    const err = await expectOciError(r, 400, 'TAG_INVALID');
    expect(err.message).toBe('?tag= may only be used when pushing by digest');
    await expectOciError(await reg.fetch(`/v2/${name}/manifests/v1`), 404, 'MANIFEST_UNKNOWN');
  });

  it('an invalid ?tag= on a digest push is 400 TAG_INVALID', async () => {
    const name = image();
    const { config, layer } = await blobsFor(name);
    const m = ociManifest(config, [layer]);
    const r = await reg.fetch(`/v2/${name}/manifests/${sha256(m)}?tag=ok&tag=-bad`, { method: 'PUT', body: m, headers: { 'content-type': MediaTypes.ociManifest } });
    const err = await expectOciError(r, 400, 'TAG_INVALID');
    expect(err.message).toBe('invalid tag: -bad');
  });

  it('stores and serves the bytes exactly as pushed (whitespace, key order, escapes)', async () => {
    const name = image();
    const { config, layer } = await blobsFor(name);
    const text =
      '{\n\t"layers" : [ { "size": ' + layer.size + ', "digest":"' + layer.digest + '",\r\n "mediaType" :"' + layer.mediaType + '" } ],' +
      '   "config":{"size":' + config.size + ',"mediaType":"' + config.mediaType + '","digest":"' + config.digest + '"},\n' +
      '"annotations":{"note":"caf\\u00e9 \u00e9t\u00e9 \\/slash"},   "schemaVersion" : 2 ,"mediaType":"' + MediaTypes.ociManifest + '"}\n\n';
    const m = Buffer.from(text, 'utf8');
    expect(sha256(m)).not.toBe(sha256(JSON.stringify(JSON.parse(text))));
    expectPutCreated(await putManifest(reg, name, 'exact', m), name, m);
    await expectManifest(name, 'exact', m, MediaTypes.ociManifest);
    await expectManifest(name, sha256(m), m, MediaTypes.ociManifest);
  });

  it('re-pushing a tag points it at the new manifest', async () => {
    const name = image();
    const one = await pushImage(reg, name, 'moving');
    const two = await pushImage(reg, name, 'moving');
    expect(one.digest).not.toBe(two.digest);
    await expectManifest(name, 'moving', two.manifest, MediaTypes.ociManifest);
    await expectManifest(name, one.digest, one.manifest, MediaTypes.ociManifest);
  });
});

describe('media types', () => {
  it('Docker schema2 manifest and manifest list', async () => {
    const name = image();
    const { config, layer } = await blobsFor(name, MediaTypes.dockerConfig, 'application/vnd.docker.image.rootfs.diff.tar.gzip');
    const m = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.dockerManifest, config, layers: [layer] }));
    expectPutCreated(await putManifest(reg, name, 'amd64', m, MediaTypes.dockerManifest), name, m);
    await expectManifest(name, 'amd64', m, MediaTypes.dockerManifest);

    const list = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaTypes.dockerList,
        manifests: [desc(MediaTypes.dockerManifest, { digest: sha256(m), size: m.length }, { platform: { architecture: 'amd64', os: 'linux' } })],
      }),
    );
    expectPutCreated(await putManifest(reg, name, 'multi', list, MediaTypes.dockerList), name, list);
    await expectManifest(name, 'multi', list, MediaTypes.dockerList);
  });

  it('OCI manifest and index', async () => {
    const name = image();
    const a = await pushImage(reg, name);
    const b = await pushImage(reg, name);
    const idx = ociIndex([
      { ...a.descriptor, platform: { architecture: 'amd64', os: 'linux' } },
      { ...b.descriptor, platform: { architecture: 'arm64', os: 'linux', variant: 'v8' } },
    ]);
    expectPutCreated(await putManifest(reg, name, 'multi', idx, MediaTypes.ociIndex), name, idx);
    await expectManifest(name, 'multi', idx, MediaTypes.ociIndex);
    await expectManifest(name, a.digest, a.manifest, MediaTypes.ociManifest);
  });

  it('a manifest without mediaType and without Content-Type is taken as an OCI manifest', async () => {
    const name = image();
    const { config, layer } = await blobsFor(name);
    const m = Buffer.from(JSON.stringify({ schemaVersion: 2, config, layers: [layer] }));
    expectPutCreated(await putManifest(reg, name, 'bare', m, undefined), name, m);
    await expectManifest(name, 'bare', m, MediaTypes.ociManifest);
  });

  it('an OCI artifact with artifactType and a subject not pushed yet is accepted, with OCI-Subject', async () => {
    const name = image();
    const empty = await pushBlob(reg, name, '{}');
    const sbom = await pushBlob(reg, name, '{"sbom":true}');
    const subject = { mediaType: MediaTypes.ociManifest, digest: sha256('the image this signs, pushed later'), size: 123 };
    const m = ociManifest(desc(MediaTypes.ociEmpty, empty), [desc('application/spdx+json', sbom)], {
      artifactType: 'application/vnd.example.sbom',
      subject,
      annotations: { 'org.opencontainers.image.created': '2024-01-01T00:00:00Z' },
    });
    const put = await putManifest(reg, name, sha256(m), m);
    expectPutCreated(put, name, m);
    expect(put.headers.get('oci-subject')).toBe(subject.digest);
    await expectManifest(name, sha256(m), m, MediaTypes.ociManifest);
  });

  it('Docker schema 1 is refused with 400 MANIFEST_INVALID', async () => {
    const name = image();
    const s1 = Buffer.from(JSON.stringify({ schemaVersion: 1, name: 'x', tag: 'y', architecture: 'amd64', fsLayers: [], history: [], signatures: [] }));
    for (const ct of [MediaTypes.dockerSchema1Signed, MediaTypes.dockerSchema1, undefined]) {
      const err = await expectOciError(await putManifest(reg, name, 'old', s1, ct), 400, 'MANIFEST_INVALID');
      expect(err.message).toBe('Docker schema 1 manifests are not supported; push schema 2 or OCI');
    }
  });

  it('invalid JSON is 400 MANIFEST_INVALID', async () => {
    const err = await expectOciError(await putManifest(reg, image(), 'x', Buffer.from('{"schemaVersion": 2,')), 400, 'MANIFEST_INVALID');
    expect(err.message).toBe('manifest is not valid JSON');
  });

  it('a Content-Type that differs from the mediaType field is 400 MANIFEST_INVALID', async () => {
    const name = image();
    const { config, layer } = await blobsFor(name);
    const m = ociManifest(config, [layer]);
    const err = await expectOciError(await putManifest(reg, name, 'x', m, MediaTypes.dockerManifest), 400, 'MANIFEST_INVALID');
    expect(err.message).toBe(`Content-Type ${MediaTypes.dockerManifest} does not match the manifest's mediaType ${MediaTypes.ociManifest}`);
  });

  it('an unsupported media type and malformed descriptors are 400 MANIFEST_INVALID', async () => {
    const name = image();
    const { config, layer } = await blobsFor(name);
    await expectOciError(await putManifest(reg, name, 'x', Buffer.from('{"schemaVersion":2}'), 'application/vnd.example+json'), 400, 'MANIFEST_INVALID');
    const bad = ociManifest(config, [{ ...layer, digest: 'sha256:short' }]);
    const err = await expectOciError(await putManifest(reg, name, 'x', bad), 400, 'MANIFEST_INVALID');
    expect(err.detail).toEqual({ problems: ['layers.0.digest: invalid digest'] });
  });
});

describe('references must exist', () => {
  it('a missing blob is 400 MANIFEST_BLOB_UNKNOWN naming the digest', async () => {
    const name = image();
    const { config } = await blobsFor(name);
    const missing = sha256(`missing layer ${name}`);
    const m = ociManifest(config, [desc('application/vnd.oci.image.layer.v1.tar', { digest: missing, size: 10 })]);
    const err = await expectOciError(await putManifest(reg, name, 'x', m), 400, 'MANIFEST_BLOB_UNKNOWN');
    expect(err.message).toContain(missing);
    expect(err.detail).toEqual({ digests: [missing] });
    await expectOciError(await reg.fetch(`/v2/${name}/manifests/${sha256(m)}`), 404, 'MANIFEST_UNKNOWN');
  });

  it('a blob of another image does not count', async () => {
    const other = image();
    const name = image();
    const { config, layer } = await blobsFor(other);
    const err = await expectOciError(await putManifest(reg, name, 'x', ociManifest(config, [layer])), 400, 'MANIFEST_BLOB_UNKNOWN');
    expect(err.detail).toEqual({ digests: [config.digest, layer.digest] });
  });

  it('an index with a missing child is MANIFEST_UNKNOWN', async () => {
    const name = image();
    const present = await pushImage(reg, name);
    const missing = desc(MediaTypes.ociManifest, { digest: sha256('child never pushed'), size: 99 });
    const idx = ociIndex([present.descriptor, missing]);
    const err = await expectOciError(await putManifest(reg, name, 'multi', idx, MediaTypes.ociIndex), 404, 'MANIFEST_UNKNOWN');
    expect(err.message).toContain(missing.digest);
    expect(err.detail).toEqual({ digests: [missing.digest] });
  });
});

describe('limits and references', () => {
  it('a manifest over 4 MiB is 413 MANIFEST_TOO_LARGE (declared length)', async () => {
    const big = Buffer.alloc(MAX_MANIFEST_BYTES + 1, ' ');
    const err = await expectOciError(await putManifest(reg, image(), 'big', big), 413, 'MANIFEST_TOO_LARGE');
    expect(err.message).toBe(`manifest is ${MAX_MANIFEST_BYTES + 1} bytes, the limit is ${MAX_MANIFEST_BYTES}`);
  });

  it('a manifest over 4 MiB is 413 MANIFEST_TOO_LARGE (chunked, no length)', async () => {
    const chunk = Buffer.alloc(1024 * 1024, ' ');
    const body = Readable.toWeb(Readable.from([chunk, chunk, chunk, chunk, Buffer.from(' ')])) as ReadableStream;
    const r = await reg.fetch(`/v2/${image()}/manifests/big`, {
      method: 'PUT',
      body,
      headers: { 'content-type': MediaTypes.ociManifest },
      duplex: 'half',
    } as RequestInit);
    await expectOciError(r, 413, 'MANIFEST_TOO_LARGE');
  });

  it('a digest reference that does not match the body is 400 DIGEST_INVALID', async () => {
    const name = image();
    const { config, layer } = await blobsFor(name);
    const m = ociManifest(config, [layer]);
    const wrong = sha256('another manifest');
    const err = await expectOciError(await putManifest(reg, name, wrong, m), 400, 'DIGEST_INVALID');
    expect(err.detail).toEqual({ expected: wrong, actual: sha256(m) });
    await expectOciError(await reg.fetch(`/v2/${name}/manifests/${sha256(m)}`), 404, 'MANIFEST_UNKNOWN');
  });

  it('a malformed digest reference is 400 DIGEST_INVALID', async () => {
    await expectOciError(await reg.fetch(`/v2/${image()}/manifests/sha256:nothex`), 400, 'DIGEST_INVALID');
  });

  it.each(['-leading-dash', '.dot', 'a'.repeat(129), 'sp%20ace'])('an invalid tag %s is 400 TAG_INVALID', async (tag) => {
    const name = image();
    const { config, layer } = await blobsFor(name);
    await expectOciError(await putManifest(reg, name, tag, ociManifest(config, [layer])), 400, 'TAG_INVALID');
  });

  it('a 128-character tag is fine', async () => {
    const name = image();
    const img = await pushImage(reg, name, `A${'b'.repeat(127)}`);
    await expectManifest(name, `A${'b'.repeat(127)}`, img.manifest, MediaTypes.ociManifest);
  });
});

describe('DELETE manifests', () => {
  it('by tag removes only the tag', async () => {
    const name = image();
    const img = await pushImage(reg, name, 'keep');
    const r = await reg.fetch(`/v2/${name}/manifests/${img.digest}?tag=drop`, { method: 'PUT', body: img.manifest, headers: { 'content-type': MediaTypes.ociManifest } });
    expect(r.status).toBe(201);
    const del = await reg.fetch(`/v2/${name}/manifests/drop`, { method: 'DELETE' });
    expect(del.status).toBe(202);
    expect(await del.text()).toBe('');
    await expectOciError(await reg.fetch(`/v2/${name}/manifests/drop`), 404, 'MANIFEST_UNKNOWN');
    await expectManifest(name, img.digest, img.manifest, MediaTypes.ociManifest);
    await expectManifest(name, 'keep', img.manifest, MediaTypes.ociManifest);
    expect(await (await reg.fetch(`/v2/${name}/tags/list`)).json()).toEqual({ name, tags: ['keep'] });
    await expectOciError(await reg.fetch(`/v2/${name}/manifests/drop`, { method: 'DELETE' }), 404, 'MANIFEST_UNKNOWN');
  });

  it('by digest removes the manifest and every tag pointing at it', async () => {
    const name = image();
    const img = await pushImage(reg, name, 'one');
    await reg.fetch(`/v2/${name}/manifests/${img.digest}?tag=two`, { method: 'PUT', body: img.manifest, headers: { 'content-type': MediaTypes.ociManifest } });
    const other = await pushImage(reg, name, 'other');
    const del = await reg.fetch(`/v2/${name}/manifests/${img.digest}`, { method: 'DELETE' });
    expect(del.status).toBe(202);
    await expectOciError(await reg.fetch(`/v2/${name}/manifests/${img.digest}`), 404, 'MANIFEST_UNKNOWN');
    await expectOciError(await reg.fetch(`/v2/${name}/manifests/one`), 404, 'MANIFEST_UNKNOWN');
    await expectOciError(await reg.fetch(`/v2/${name}/manifests/two`), 404, 'MANIFEST_UNKNOWN');
    expect((await reg.fetch(`/v2/${name}/manifests/${img.digest}`, { method: 'HEAD' })).status).toBe(404);
    await expectManifest(name, 'other', other.manifest, MediaTypes.ociManifest);
    expect(await (await reg.fetch(`/v2/${name}/tags/list`)).json()).toEqual({ name, tags: ['other'] });
    await expectOciError(await reg.fetch(`/v2/${name}/manifests/${img.digest}`, { method: 'DELETE' }), 404, 'MANIFEST_UNKNOWN');
  });
});

describe('unknown manifests, names and repositories', () => {
  it('an unknown tag or digest is 404 MANIFEST_UNKNOWN with the exact error body', async () => {
    const name = image();
    await pushImage(reg, name, 'exists');
    const r = await reg.fetch(`/v2/${name}/manifests/nope`);
    expect(r.status).toBe(404);
    expect(await r.json()).toEqual({ errors: [{ code: 'MANIFEST_UNKNOWN', message: 'manifest unknown: nope', detail: { reference: 'nope' } }] });
    const d = sha256('no such manifest');
    const byDigest = await reg.fetch(`/v2/${name}/manifests/${d}`);
    expect(await byDigest.json()).toEqual({ errors: [{ code: 'MANIFEST_UNKNOWN', message: `manifest unknown: ${d}`, detail: { reference: d } }] });
    const head = await reg.fetch(`/v2/${name}/manifests/nope`, { method: 'HEAD' });
    expect(head.status).toBe(404);
    expect(await head.text()).toBe('');
    // An image never pushed to at all answers the same.
    await expectOciError(await reg.fetch(`/v2/${image()}/manifests/latest`), 404, 'MANIFEST_UNKNOWN');
  });

  it('an invalid image name is 400 NAME_INVALID', async () => {
    const upper = await expectOciError(await reg.fetch('/v2/docker-local/UPPER/manifests/x'), 400, 'NAME_INVALID');
    expect(upper.message).toBe('invalid image name: UPPER');
    const noImage = await expectOciError(await reg.fetch('/v2/docker-local/manifests/x'), 400, 'NAME_INVALID');
    expect(noImage).toEqual({
      code: 'NAME_INVALID',
      message: "'docker-local' names no image: address images as <host>/<repository key>/<image>, e.g. <host>/docker-local/docker-local",
      detail: { name: 'docker-local' },
    });
    const badKey = await expectOciError(await reg.fetch('/v2/docker_local/app/manifests/x'), 400, 'NAME_INVALID');
    expect(badKey.message).toBe("invalid repository key 'docker_local'");
    await expectOciError(await reg.fetch('/v2/docker-local/a//b/manifests/x'), 400, 'NAME_INVALID');
    await expectOciError(await reg.fetch('/api/docker/docker-local/v2/Bad/manifests/x'), 400, 'NAME_INVALID');
    const badEscape = await expectOciError(await reg.fetch('/api/docker/%zz/v2/app/manifests/x'), 400, 'NAME_INVALID');
    expect(badEscape.message).toBe("invalid repository key '%zz'");
  });

  it('an unknown repository key is 404 NAME_UNKNOWN', async () => {
    const r = await reg.fetch('/v2/no-such-repo/app/manifests/latest');
    expect(r.status).toBe(404);
    expect(await r.json()).toEqual({
      errors: [{ code: 'NAME_UNKNOWN', message: "repository 'no-such-repo' does not exist", detail: { name: 'no-such-repo/app' } }],
    });
    await expectOciError(await reg.fetch('/api/docker/no-such-repo/v2/app/manifests/latest'), 404, 'NAME_UNKNOWN');
    await expectOciError(await reg.fetch('/v2/no-such-repo/app/blobs/uploads/', { method: 'POST' }), 404, 'NAME_UNKNOWN');
  });

  it('a remote repository refuses pushes with 405 UNSUPPORTED, and answers 503 when its upstream is unreachable', async () => {
    const key = 'unreachable-remote';
    // Port 1 on loopback: refused at once, no retries, so nothing is ever cached.
    const created = await reg.fetch(`/api/repositories/${key}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ rclass: 'remote', url: 'http://127.0.0.1:1/', retries: 0 }),
    });
    expect(created.status).toBe(200);
    const refused = `'${key}' is a remote repository (a cache of another registry); push to a local repository`;
    for (const [method, path] of [
      ['PUT', `/v2/${key}/library/app/manifests/latest`],
      ['POST', `/v2/${key}/library/app/blobs/uploads/`],
    ] as const) {
      const r = await reg.fetch(path, { method, ...(method === 'PUT' ? { body: '{}', headers: { 'content-type': MediaTypes.ociManifest } } : {}) });
      expect(await expectOciError(r, 405, 'UNSUPPORTED')).toEqual({ code: 'UNSUPPORTED', message: refused, detail: { repository: key } });
    }
    for (const path of [`/v2/${key}/library/app/manifests/latest`, `/v2/${key}/library/app/blobs/${sha256('x')}`, `/api/docker/${key}/v2/library/app/manifests/latest`]) {
      const err = await expectOciError(await reg.fetch(path), 503, 'UNAVAILABLE');
      expect(err.message).toContain(`remote repository '${key}' is unavailable`);
    }
  });
});
