import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';
import { bytesOf, expectOciError, pushBlob, sha256, uniqueImage } from '../helpers/oci-client.js';

let reg: TestRegistry;

beforeAll(async () => {
  reg = await startTestRegistry();
});
afterAll(async () => {
  await reg?.close();
});

const DATA = Buffer.from('0123456789abcdefghijklmnopqrstuvwxyz'); // 36 bytes
const image = () => `docker-local/${uniqueImage('blob')}`;

describe('GET and HEAD /v2/<name>/blobs/<digest>', () => {
  it('GET answers the bytes with the blob headers', async () => {
    const name = image();
    const { digest } = await pushBlob(reg, name, DATA);
    const r = await reg.fetch(`/v2/${name}/blobs/${digest}`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-length')).toBe(String(DATA.length));
    expect(r.headers.get('docker-content-digest')).toBe(digest);
    expect(r.headers.get('content-type')).toBe('application/octet-stream');
    expect(r.headers.get('accept-ranges')).toBe('bytes');
    expect(r.headers.get('etag')).toBe(`"${digest}"`);
    expect(r.headers.get('docker-distribution-api-version')).toBe('registry/2.0');
    expect((await bytesOf(r)).equals(DATA)).toBe(true);
  });

  it('HEAD answers the same headers and no body', async () => {
    const name = image();
    const { digest } = await pushBlob(reg, name, DATA);
    const r = await reg.fetch(`/v2/${name}/blobs/${digest}`, { method: 'HEAD' });
    expect(r.status).toBe(200);
    expect(r.headers.get('content-length')).toBe(String(DATA.length));
    expect(r.headers.get('docker-content-digest')).toBe(digest);
    expect(r.headers.get('content-type')).toBe('application/octet-stream');
    expect(r.headers.get('accept-ranges')).toBe('bytes');
    expect(r.headers.get('etag')).toBe(`"${digest}"`);
    expect(await r.text()).toBe('');
  });

  it('serves the same blob under the direct API path', async () => {
    const img = uniqueImage('blob');
    const { digest } = await pushBlob(reg, `docker-local/${img}`, DATA);
    const r = await reg.fetch(`/api/docker/docker-local/v2/${img}/blobs/${digest}`);
    expect(r.status).toBe(200);
    expect((await bytesOf(r)).equals(DATA)).toBe(true);
    const alias = await reg.fetch(`/artifactory/api/docker/docker-local/v2/${img}/blobs/${digest}`, { method: 'HEAD' });
    expect(alias.status).toBe(200);
  });
});

describe('Range requests', () => {
  let name: string;
  let digest: string;
  beforeAll(async () => {
    name = image();
    ({ digest } = await pushBlob(reg, name, DATA));
  });

  const cases: Array<[string, number, number]> = [
    ['bytes=2-5', 2, 5],
    ['bytes=0-0', 0, 0],
    ['bytes=30-', 30, 35],
    ['bytes=-4', 32, 35],
    ['bytes=-1000', 0, 35],
    ['bytes=20-1000', 20, 35],
    ['bytes=35-35', 35, 35],
  ];
  it.each(cases)('%s → 206 with bytes %d-%d', async (range, start, end) => {
    const r = await reg.fetch(`/v2/${name}/blobs/${digest}`, { headers: { range } });
    expect(r.status).toBe(206);
    expect(r.headers.get('content-range')).toBe(`bytes ${start}-${end}/${DATA.length}`);
    expect(r.headers.get('content-length')).toBe(String(end - start + 1));
    expect(r.headers.get('docker-content-digest')).toBe(digest);
    expect(r.headers.get('accept-ranges')).toBe('bytes');
    expect((await bytesOf(r)).equals(DATA.subarray(start, end + 1))).toBe(true);
  });

  it.each(['bytes=36-', 'bytes=36-40', 'bytes=1000-2000', 'bytes=5-2', 'bytes=-0'])(
    '%s → 416 with Content-Range: bytes */size',
    async (range) => {
      const r = await reg.fetch(`/v2/${name}/blobs/${digest}`, { headers: { range } });
      expect(r.headers.get('content-range')).toBe(`bytes */${DATA.length}`);
      const err = await expectOciError(r, 416, 'RANGE_INVALID');
      expect(err.message).toBe(`range ${range} is outside the blob's ${DATA.length} bytes`);
    },
  );

  it.each(['bytes=0-1,4-5', 'items=0-3', 'bytes=abc'])('%s (not a single byte range) → the whole blob, 200', async (range) => {
    const r = await reg.fetch(`/v2/${name}/blobs/${digest}`, { headers: { range } });
    expect(r.status).toBe(200);
    expect(r.headers.get('content-range')).toBeNull();
    expect((await bytesOf(r)).equals(DATA)).toBe(true);
  });
});

describe('zero-byte blobs', () => {
  it('are served empty, with ranges handled per RFC 9110', async () => {
    const name = image();
    const empty = Buffer.alloc(0);
    const { digest } = await pushBlob(reg, name, empty);
    expect(digest).toBe(sha256(''));

    const get = await reg.fetch(`/v2/${name}/blobs/${digest}`);
    expect(get.status).toBe(200);
    expect(get.headers.get('content-length')).toBe('0');
    expect(get.headers.get('docker-content-digest')).toBe(digest);
    expect((await bytesOf(get)).length).toBe(0);

    const head = await reg.fetch(`/v2/${name}/blobs/${digest}`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe('0');

    // No first-pos can fall inside an empty representation.
    const from0 = await reg.fetch(`/v2/${name}/blobs/${digest}`, { headers: { range: 'bytes=0-' } });
    expect(from0.headers.get('content-range')).toBe('bytes */0');
    await expectOciError(from0, 416, 'RANGE_INVALID');

    // A non-zero suffix is satisfiable on an empty representation (RFC 9110 §14.1.1):
    // no 206 can describe zero bytes, so the range is ignored and the (empty) whole is sent.
    const suffix = await reg.fetch(`/v2/${name}/blobs/${digest}`, { headers: { range: 'bytes=-10' } });
    expect(suffix.status).toBe(200);
    expect(suffix.headers.get('content-range')).toBeNull();
    expect(suffix.headers.get('content-length')).toBe('0');
    expect((await bytesOf(suffix)).length).toBe(0);
  });
});

describe('errors', () => {
  it('an unknown blob is 404 BLOB_UNKNOWN with the exact error body', async () => {
    const name = image();
    await pushBlob(reg, name, 'something so the image exists');
    const digest = sha256('never pushed');
    const r = await reg.fetch(`/v2/${name}/blobs/${digest}`);
    expect(r.status).toBe(404);
    expect(r.headers.get('content-type')).toMatch(/^application\/json/);
    expect(r.headers.get('docker-distribution-api-version')).toBe('registry/2.0');
    expect(await r.json()).toEqual({
      errors: [{ code: 'BLOB_UNKNOWN', message: `blob unknown: ${digest}`, detail: { digest } }],
    });
  });

  it('HEAD of an unknown blob is 404 without a body', async () => {
    const r = await reg.fetch(`/v2/${image()}/blobs/${sha256('nope')}`, { method: 'HEAD' });
    expect(r.status).toBe(404);
    expect(await r.text()).toBe('');
  });

  it.each([
    ['sha256:abc', 'invalid sha256 digest: sha256:abc'],
    [`sha256:${'A'.repeat(64)}`, `invalid sha256 digest: sha256:${'A'.repeat(64)}`],
    [`md5:${'a'.repeat(32)}`, 'unsupported digest algorithm: md5'],
    ['not-a-digest', 'invalid digest: not-a-digest'],
  ])('an invalid digest %s is 400 DIGEST_INVALID', async (digest, message) => {
    const r = await reg.fetch(`/v2/${image()}/blobs/${digest}`);
    const err = await expectOciError(r, 400, 'DIGEST_INVALID');
    expect(err).toEqual({ code: 'DIGEST_INVALID', message, detail: {} });
  });

  it('DELETE of an invalid digest is 400 DIGEST_INVALID', async () => {
    const r = await reg.fetch(`/v2/${image()}/blobs/sha256:zz`, { method: 'DELETE' });
    await expectOciError(r, 400, 'DIGEST_INVALID');
  });
});

describe('DELETE /v2/<name>/blobs/<digest>', () => {
  it('answers 202, then the blob is gone (404) and a second delete is 404', async () => {
    const name = image();
    const { digest } = await pushBlob(reg, name, 'to be deleted');
    const del = await reg.fetch(`/v2/${name}/blobs/${digest}`, { method: 'DELETE' });
    expect(del.status).toBe(202);
    expect(del.headers.get('content-length')).toBe('0');
    expect(await del.text()).toBe('');
    await expectOciError(await reg.fetch(`/v2/${name}/blobs/${digest}`), 404, 'BLOB_UNKNOWN');
    const head = await reg.fetch(`/v2/${name}/blobs/${digest}`, { method: 'HEAD' });
    expect(head.status).toBe(404);
    await expectOciError(await reg.fetch(`/v2/${name}/blobs/${digest}`, { method: 'DELETE' }), 404, 'BLOB_UNKNOWN');
  });

  it('unlinks only from that image', async () => {
    const a = image();
    const b = image();
    const { digest } = await pushBlob(reg, a, 'shared bytes for delete');
    await pushBlob(reg, b, 'shared bytes for delete');
    expect((await reg.fetch(`/v2/${a}/blobs/${digest}`, { method: 'DELETE' })).status).toBe(202);
    expect((await reg.fetch(`/v2/${a}/blobs/${digest}`, { method: 'HEAD' })).status).toBe(404);
    const still = await reg.fetch(`/v2/${b}/blobs/${digest}`);
    expect(still.status).toBe(200);
    expect(await still.text()).toBe('shared bytes for delete');
  });
});

describe('blob visibility is per image', () => {
  it('a blob pushed to one image is 404 from another until mounted', async () => {
    const src = image();
    const dst = image();
    const { digest } = await pushBlob(reg, src, 'only in src');
    await pushBlob(reg, dst, 'dst exists too');
    await expectOciError(await reg.fetch(`/v2/${dst}/blobs/${digest}`), 404, 'BLOB_UNKNOWN');
    expect((await reg.fetch(`/v2/${dst}/blobs/${digest}`, { method: 'HEAD' })).status).toBe(404);

    const mount = await reg.fetch(`/v2/${dst}/blobs/uploads/?mount=${digest}&from=${src}`, { method: 'POST' });
    expect(mount.status).toBe(201);
    expect(mount.headers.get('location')).toBe(`/v2/${dst}/blobs/${digest}`);
    expect(mount.headers.get('docker-content-digest')).toBe(digest);

    const now = await reg.fetch(`/v2/${dst}/blobs/${digest}`);
    expect(now.status).toBe(200);
    expect(await now.text()).toBe('only in src');
  });
});
