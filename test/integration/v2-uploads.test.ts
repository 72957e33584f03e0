import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseDigest } from '../../src/core/oci/digest.js';
import { blobKey } from '../../src/storage/layout.js';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';
import { bytesOf, expectOciError, pushBlob, sha256, sha512, uniqueImage } from '../helpers/oci-client.js';

let reg: TestRegistry;

beforeAll(async () => {
  reg = await startTestRegistry();
});
afterAll(async () => {
  await reg?.close();
});

const image = () => `docker-local/${uniqueImage('up')}`;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** POST a session; asserts 202 and its headers; resolves the Location. */
async function startSession(name: string, prefix = '/v2'): Promise<string> {
  const r = await reg.fetch(`${prefix}/${name}/blobs/uploads/`, { method: 'POST' });
  expect(r.status).toBe(202);
  const loc = r.headers.get('location')!;
  const id = r.headers.get('docker-upload-uuid')!;
  expect(id).toMatch(UUID);
  expect(loc).toBe(`${prefix}/${name}/blobs/uploads/${id}`);
  expect(r.headers.get('range')).toBe('0-0');
  expect(r.headers.get('content-length')).toBe('0');
  return loc;
}

async function expectBlob(name: string, digest: string, data: Buffer): Promise<void> {
  const r = await reg.fetch(`/v2/${name}/blobs/${digest}`);
  expect(r.status).toBe(200);
  expect(r.headers.get('content-length')).toBe(String(data.length));
  expect(r.headers.get('docker-content-digest')).toBe(digest);
  expect((await bytesOf(r)).equals(data)).toBe(true);
}

function expectCreated(r: Response, name: string, digest: string, prefix = '/v2'): void {
  expect(r.status).toBe(201);
  expect(r.headers.get('location')).toBe(`${prefix}/${name}/blobs/${digest}`);
  expect(r.headers.get('docker-content-digest')).toBe(digest);
  expect(r.headers.get('content-length')).toBe('0');
}

describe('upload flows', () => {
  it('monolithic POST ?digest=', async () => {
    const name = image();
    const data = Buffer.from('monolithic upload body');
    const r = await reg.fetch(`/v2/${name}/blobs/uploads/?digest=${sha256(data)}`, {
      method: 'POST',
      body: data,
      headers: { 'content-type': 'application/octet-stream' },
    });
    expectCreated(r, name, sha256(data));
    await expectBlob(name, sha256(data), data);
  });

  it('monolithic POST with a wrong digest is 400 DIGEST_INVALID and stores nothing', async () => {
    const name = image();
    const data = Buffer.from('monolithic but wrong');
    const claimed = sha256('something else');
    const r = await reg.fetch(`/v2/${name}/blobs/uploads/?digest=${claimed}`, { method: 'POST', body: data });
    const err = await expectOciError(r, 400, 'DIGEST_INVALID');
    expect(err.detail).toEqual({ expected: claimed, actual: sha256(data) });
    expect((await reg.fetch(`/v2/${name}/blobs/${claimed}`, { method: 'HEAD' })).status).toBe(404);
    expect((await reg.fetch(`/v2/${name}/blobs/${sha256(data)}`, { method: 'HEAD' })).status).toBe(404);
  });

  it('monolithic POST with a malformed digest is 400 DIGEST_INVALID', async () => {
    const r = await reg.fetch(`/v2/${image()}/blobs/uploads/?digest=sha256:1234`, { method: 'POST', body: 'x' });
    await expectOciError(r, 400, 'DIGEST_INVALID');
  });

  it('POST, then PUT with the whole body', async () => {
    const name = image();
    const data = Buffer.from('put carries everything');
    const loc = await startSession(name);
    const r = await reg.fetch(`${loc}?digest=${sha256(data)}`, {
      method: 'PUT',
      body: data,
      headers: { 'content-type': 'application/octet-stream' },
    });
    expectCreated(r, name, sha256(data));
    await expectBlob(name, sha256(data), data);
    // The session is gone once committed.
    await expectOciError(await reg.fetch(loc), 404, 'BLOB_UPLOAD_UNKNOWN');
  });

  it('streamed PATCH without Content-Range, then PUT without body', async () => {
    const name = image();
    const data = Buffer.alloc(200_000, 'z');
    const loc = await startSession(name);
    const p1 = await reg.fetch(loc, { method: 'PATCH', body: data.subarray(0, 150_000), headers: { 'content-type': 'application/octet-stream' } });
    expect(p1.status).toBe(202);
    expect(p1.headers.get('location')).toBe(loc);
    expect(p1.headers.get('range')).toBe('0-149999');
    expect(p1.headers.get('docker-upload-uuid')).toBe(loc.split('/').pop());
    expect(p1.headers.get('content-length')).toBe('0');
    const p2 = await reg.fetch(loc, { method: 'PATCH', body: data.subarray(150_000) });
    expect(p2.status).toBe(202);
    expect(p2.headers.get('range')).toBe('0-199999');
    const put = await reg.fetch(`${loc}?digest=${sha256(data)}`, { method: 'PUT' });
    expectCreated(put, name, sha256(data));
    await expectBlob(name, sha256(data), data);
  });

  it('chunked PATCH with Content-Range, final chunk on PUT', async () => {
    const name = image();
    const data = Buffer.from('a'.repeat(10) + 'b'.repeat(10) + 'c'.repeat(5));
    const loc = await startSession(name);
    const p1 = await reg.fetch(loc, { method: 'PATCH', body: data.subarray(0, 10), headers: { 'content-range': '0-9', 'content-type': 'application/octet-stream' } });
    expect(p1.status).toBe(202);
    expect(p1.headers.get('range')).toBe('0-9');
    const p2 = await reg.fetch(loc, { method: 'PATCH', body: data.subarray(10, 20), headers: { 'content-range': '10-19' } });
    expect(p2.status).toBe(202);
    expect(p2.headers.get('range')).toBe('0-19');
    const put = await reg.fetch(`${loc}?digest=${sha256(data)}`, { method: 'PUT', body: data.subarray(20), headers: { 'content-range': '20-24' } });
    expectCreated(put, name, sha256(data));
    await expectBlob(name, sha256(data), data);
  });

  it('an out-of-order chunk is 416 with the Range received so far, and the session goes on', async () => {
    const name = image();
    const data = Buffer.from('0123456789ABCDEFGHIJ');
    const loc = await startSession(name);
    expect((await reg.fetch(loc, { method: 'PATCH', body: data.subarray(0, 10), headers: { 'content-range': '0-9' } })).status).toBe(202);
    const gap = await reg.fetch(loc, { method: 'PATCH', body: data.subarray(15), headers: { 'content-range': '15-19' } });
    expect(gap.headers.get('range')).toBe('0-9');
    await expectOciError(gap, 416, 'RANGE_INVALID');
    const overlap = await reg.fetch(loc, { method: 'PATCH', body: data.subarray(5, 10), headers: { 'content-range': '5-9' } });
    expect(overlap.headers.get('range')).toBe('0-9');
    await expectOciError(overlap, 416, 'RANGE_INVALID');
    // On a fresh session the first chunk must start at 0; Range then says nothing was received.
    const fresh = await startSession(name);
    const late = await reg.fetch(fresh, { method: 'PATCH', body: 'xyz', headers: { 'content-range': '3-5' } });
    expect(late.headers.get('range')).toBe('0-0');
    await expectOciError(late, 416, 'RANGE_INVALID');

    expect((await reg.fetch(loc, { method: 'PATCH', body: data.subarray(10), headers: { 'content-range': '10-19' } })).status).toBe(202);
    expectCreated(await reg.fetch(`${loc}?digest=${sha256(data)}`, { method: 'PUT' }), name, sha256(data));
    await expectBlob(name, sha256(data), data);
  });

  it('a malformed Content-Range is 416 RANGE_INVALID', async () => {
    const loc = await startSession(image());
    const r = await reg.fetch(loc, { method: 'PATCH', body: 'abc', headers: { 'content-range': 'bytes=0-2' } });
    await expectOciError(r, 416, 'RANGE_INVALID');
  });

  it('a Content-Range whose length differs from the body is 400 BLOB_UPLOAD_INVALID and nothing of it is kept', async () => {
    const name = image();
    const data = Buffer.from('0123456789');
    const loc = await startSession(name);
    expect((await reg.fetch(loc, { method: 'PATCH', body: data.subarray(0, 4), headers: { 'content-range': '0-3' } })).status).toBe(202);
    const longer = await reg.fetch(loc, { method: 'PATCH', body: Buffer.from('456789-extra'), headers: { 'content-range': '4-9' } });
    const err = await expectOciError(longer, 400, 'BLOB_UPLOAD_INVALID');
    expect(err.message).toBe('Content-Range claims 6 bytes but the body had 12');
    const shorter = await reg.fetch(loc, { method: 'PATCH', body: Buffer.from('45'), headers: { 'content-range': '4-9' } });
    await expectOciError(shorter, 400, 'BLOB_UPLOAD_INVALID');
    const status = await reg.fetch(loc);
    expect(status.status).toBe(204);
    expect(status.headers.get('range')).toBe('0-3');
    // Completing with what was accepted gives exactly those bytes, none of the refused chunks.
    const head = data.subarray(0, 4);
    expectCreated(await reg.fetch(`${loc}?digest=${sha256(head)}`, { method: 'PUT' }), name, sha256(head));
    await expectBlob(name, sha256(head), head);
    // The stored object itself holds just those bytes (no tail of a refused chunk).
    expect(await reg.running.services.driver.stat(blobKey(parseDigest(sha256(head))))).toEqual({ size: 4 });
  });

  it('GET on a session is 204 with Range, Docker-Upload-UUID and Location', async () => {
    const name = image();
    const loc = await startSession(name);
    const s0 = await reg.fetch(loc);
    expect(s0.status).toBe(204);
    expect(s0.headers.get('range')).toBe('0-0');
    expect(s0.headers.get('docker-upload-uuid')).toBe(loc.split('/').pop());
    expect(s0.headers.get('location')).toBe(loc);
    expect(await s0.text()).toBe('');
    await reg.fetch(loc, { method: 'PATCH', body: 'twelve bytes' });
    const s1 = await reg.fetch(loc);
    expect(s1.status).toBe(204);
    expect(s1.headers.get('range')).toBe('0-11');
    expect(s1.headers.get('location')).toBe(loc);
  });

  it('DELETE cancels: 204, then the session is 404 BLOB_UPLOAD_UNKNOWN everywhere', async () => {
    const name = image();
    const loc = await startSession(name);
    await reg.fetch(loc, { method: 'PATCH', body: 'partial' });
    const del = await reg.fetch(loc, { method: 'DELETE' });
    expect(del.status).toBe(204);
    expect(await del.text()).toBe('');
    await expectOciError(await reg.fetch(loc), 404, 'BLOB_UPLOAD_UNKNOWN');
    await expectOciError(await reg.fetch(loc, { method: 'PATCH', body: 'more' }), 404, 'BLOB_UPLOAD_UNKNOWN');
    await expectOciError(await reg.fetch(`${loc}?digest=${sha256('partial')}`, { method: 'PUT' }), 404, 'BLOB_UPLOAD_UNKNOWN');
    await expectOciError(await reg.fetch(loc, { method: 'DELETE' }), 404, 'BLOB_UPLOAD_UNKNOWN');
  });

  it('an unknown or malformed session id is 404 BLOB_UPLOAD_UNKNOWN', async () => {
    const name = image();
    await expectOciError(await reg.fetch(`/v2/${name}/blobs/uploads/00000000-0000-4000-8000-000000000000`), 404, 'BLOB_UPLOAD_UNKNOWN');
    await expectOciError(await reg.fetch(`/v2/${name}/blobs/uploads/not-a-session`, { method: 'PATCH', body: 'x' }), 404, 'BLOB_UPLOAD_UNKNOWN');
  });

  it('a wrong digest on PUT is 400 DIGEST_INVALID; the blob stays absent and the session is discarded', async () => {
    const name = image();
    const data = Buffer.from('real content');
    const wrong = sha256('claimed content');
    const loc = await startSession(name);
    await reg.fetch(loc, { method: 'PATCH', body: data });
    const err = await expectOciError(await reg.fetch(`${loc}?digest=${wrong}`, { method: 'PUT' }), 400, 'DIGEST_INVALID');
    expect(err).toEqual({
      code: 'DIGEST_INVALID',
      message: `upload has digest ${sha256(data)}, not ${wrong}`,
      detail: { expected: wrong, actual: sha256(data) },
    });
    expect((await reg.fetch(`/v2/${name}/blobs/${wrong}`, { method: 'HEAD' })).status).toBe(404);
    expect((await reg.fetch(`/v2/${name}/blobs/${sha256(data)}`, { method: 'HEAD' })).status).toBe(404);
    await expectOciError(await reg.fetch(loc), 404, 'BLOB_UPLOAD_UNKNOWN');
  });

  it('PUT without a digest is 400 DIGEST_INVALID and the session stays usable', async () => {
    const name = image();
    const data = Buffer.from('needs a digest');
    const loc = await startSession(name);
    await reg.fetch(loc, { method: 'PATCH', body: data });
    const err = await expectOciError(await reg.fetch(loc, { method: 'PUT' }), 400, 'DIGEST_INVALID');
    expect(err.message).toBe('the digest query parameter is required to complete an upload');
    expect((await reg.fetch(loc)).status).toBe(204);
    expectCreated(await reg.fetch(`${loc}?digest=${sha256(data)}`, { method: 'PUT' }), name, sha256(data));
  });

  it('PUT with a malformed digest is 400 DIGEST_INVALID', async () => {
    const loc = await startSession(image());
    await expectOciError(await reg.fetch(`${loc}?digest=sha256:xyz`, { method: 'PUT' }), 400, 'DIGEST_INVALID');
  });

  it('sha512 digests work for monolithic and session uploads', async () => {
    const name = image();
    const data = Buffer.from('hashed with sha512 '.repeat(100));
    const mono = await reg.fetch(`/v2/${name}/blobs/uploads/?digest=${sha512(data)}`, { method: 'POST', body: data });
    expectCreated(mono, name, sha512(data));
    await expectBlob(name, sha512(data), data);

    const other = Buffer.from('session hashed with sha512');
    const loc = await startSession(name);
    await reg.fetch(loc, { method: 'PATCH', body: other.subarray(0, 7), headers: { 'content-range': '0-6' } });
    const put = await reg.fetch(`${loc}?digest=${sha512(other)}`, { method: 'PUT', body: other.subarray(7), headers: { 'content-range': `7-${other.length - 1}` } });
    expectCreated(put, name, sha512(other));
    await expectBlob(name, sha512(other), other);

    const wrong = await reg.fetch(`/v2/${name}/blobs/uploads/?digest=${sha512('not it')}`, { method: 'POST', body: data });
    await expectOciError(wrong, 400, 'DIGEST_INVALID');
  });

  it('zero-byte blobs: monolithic and through a session', async () => {
    const empty = sha256('');
    const a = image();
    expectCreated(await reg.fetch(`/v2/${a}/blobs/uploads/?digest=${empty}`, { method: 'POST' }), a, empty);
    await expectBlob(a, empty, Buffer.alloc(0));

    const b = image();
    const loc = await startSession(b);
    expectCreated(await reg.fetch(`${loc}?digest=${empty}`, { method: 'PUT' }), b, empty);
    await expectBlob(b, empty, Buffer.alloc(0));

    const c = image();
    const loc2 = await startSession(c);
    const patch = await reg.fetch(loc2, { method: 'PATCH', body: Buffer.alloc(0) });
    expect(patch.status).toBe(202);
    expect(patch.headers.get('range')).toBe('0-0');
    expectCreated(await reg.fetch(`${loc2}?digest=${empty}`, { method: 'PUT' }), c, empty);
  });

  it('a session id used under another image is 404 BLOB_UPLOAD_UNKNOWN', async () => {
    const name = image();
    const other = image();
    const loc = await startSession(name);
    const id = loc.split('/').pop()!;
    await expectOciError(await reg.fetch(`/v2/${other}/blobs/uploads/${id}`), 404, 'BLOB_UPLOAD_UNKNOWN');
    await expectOciError(await reg.fetch(`/v2/${other}/blobs/uploads/${id}`, { method: 'PATCH', body: 'x' }), 404, 'BLOB_UPLOAD_UNKNOWN');
    await expectOciError(await reg.fetch(`/v2/${other}/blobs/uploads/${id}?digest=${sha256('')}`, { method: 'PUT' }), 404, 'BLOB_UPLOAD_UNKNOWN');
    await expectOciError(await reg.fetch(`/v2/${other}/blobs/uploads/${id}`, { method: 'DELETE' }), 404, 'BLOB_UPLOAD_UNKNOWN');
    // Untouched by those attempts.
    expect((await reg.fetch(loc)).headers.get('range')).toBe('0-0');
  });

  it('the direct API path keeps its prefix in Location', async () => {
    const img = uniqueImage('up');
    const prefix = '/api/docker/docker-local/v2';
    const data = Buffer.from('through the direct path');
    const loc = await startSession(img, prefix);
    const p = await reg.fetch(loc, { method: 'PATCH', body: data });
    expect(p.status).toBe(202);
    expect(p.headers.get('location')).toBe(loc);
    const put = await reg.fetch(`${loc}?digest=${sha256(data)}`, { method: 'PUT' });
    expectCreated(put, img, sha256(data), prefix);
    await expectBlob(`docker-local/${img}`, sha256(data), data);

    const alias = '/artifactory/api/docker/docker-local/v2';
    const loc2 = await startSession(img, alias);
    expect(loc2.startsWith(`${alias}/${img}/blobs/uploads/`)).toBe(true);
  });
});

describe('cross-repository mount', () => {
  it('mounts within a repository: 201 with Location and Docker-Content-Digest', async () => {
    const from = image();
    const to = image();
    const { digest, data } = await pushBlob(reg, from, 'mount me within docker-local');
    const r = await reg.fetch(`/v2/${to}/blobs/uploads/?mount=${digest}&from=${from}`, { method: 'POST' });
    expectCreated(r, to, digest);
    await expectBlob(to, digest, data);
  });

  it('mounts across two local repositories', async () => {
    const key = `mount-src-${process.pid}`;
    const created = await reg.fetch(`/api/repositories/${key}`, {
      method: 'PUT',
      body: JSON.stringify({ rclass: 'local' }),
      headers: { 'content-type': 'application/json' },
    });
    expect(created.status).toBe(200);
    const from = `${key}/${uniqueImage('up')}`;
    const to = image();
    const { digest, data } = await pushBlob(reg, from, 'mount me across repositories');
    await expectOciError(await reg.fetch(`/v2/${to}/blobs/${digest}`), 404, 'BLOB_UNKNOWN');
    const r = await reg.fetch(`/v2/${to}/blobs/uploads/?mount=${digest}&from=${from}`, { method: 'POST' });
    expectCreated(r, to, digest);
    await expectBlob(to, digest, data);
  });

  it('falls back to a 202 session when the source lacks the blob, does not exist or is not an image name', async () => {
    const from = image();
    const to = image();
    await pushBlob(reg, from, 'source exists');
    const absent = sha256('not in the source');
    for (const src of [from, 'no-such-repo/app', `${image()}`, 'INVALID/Name']) {
      const r = await reg.fetch(`/v2/${to}/blobs/uploads/?mount=${absent}&from=${src}`, { method: 'POST' });
      expect(r.status).toBe(202);
      expect(r.headers.get('location')).toMatch(new RegExp(`^/v2/${to}/blobs/uploads/[0-9a-f-]{36}$`));
      expect(r.headers.get('docker-upload-uuid')).toMatch(UUID);
      expect(r.headers.get('range')).toBe('0-0');
    }
    // A mount of a blob the source does have, from a repository that does not exist, is a session too.
    const { digest } = await pushBlob(reg, from, 'present but wrong source');
    const r = await reg.fetch(`/v2/${to}/blobs/uploads/?mount=${digest}&from=no-such-repo/${from.split('/')[1]}`, { method: 'POST' });
    expect(r.status).toBe(202);
    expect((await reg.fetch(`/v2/${to}/blobs/${digest}`, { method: 'HEAD' })).status).toBe(404);
  });

  it('a mount that falls back still honours ?digest= as a monolithic upload', async () => {
    const to = image();
    const data = Buffer.from('mount fell back to monolithic');
    const r = await reg.fetch(`/v2/${to}/blobs/uploads/?mount=${sha256(data)}&from=docker-local/nothing-here&digest=${sha256(data)}`, {
      method: 'POST',
      body: data,
    });
    expectCreated(r, to, sha256(data));
    await expectBlob(to, sha256(data), data);
  });
});

describe('upload sessions survive a restart', () => {
  it('PATCH half, restart on the same data dir and database, PATCH the rest, PUT → 201', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'drydock-restart-'));
    // The database outlives both servers (as PostgreSQL would); sharing this file's saves creating another.
    const store = reg.running.services.store;
    try {
      const first = await startTestRegistry({ dataDir, store });
      const name = `docker-local/${uniqueImage('restart')}`;
      const data = Buffer.alloc(64 * 1024 + 17, 'r');
      data.write('a distinctive head', 0);
      let loc: string;
      try {
        const start = await first.fetch(`/v2/${name}/blobs/uploads/`, { method: 'POST' });
        expect(start.status).toBe(202);
        loc = start.headers.get('location')!;
        const half = await first.fetch(loc, { method: 'PATCH', body: data.subarray(0, 40_000), headers: { 'content-range': '0-39999' } });
        expect(half.status).toBe(202);
      } finally {
        await first.close();
      }
      const second = await startTestRegistry({ dataDir, store });
      try {
        expect(second.url).not.toBe(first.url);
        const status = await second.fetch(loc);
        expect(status.status).toBe(204);
        expect(status.headers.get('range')).toBe('0-39999');
        const rest = await second.fetch(loc, { method: 'PATCH', body: data.subarray(40_000), headers: { 'content-range': `40000-${data.length - 1}` } });
        expect(rest.status).toBe(202);
        expect(rest.headers.get('range')).toBe(`0-${data.length - 1}`);
        const put = await second.fetch(`${loc}?digest=${sha256(data)}`, { method: 'PUT' });
        expect(put.status).toBe(201);
        expect(put.headers.get('docker-content-digest')).toBe(sha256(data));
        const get = await second.fetch(`/v2/${name}/blobs/${sha256(data)}`);
        expect((await bytesOf(get)).equals(data)).toBe(true);
      } finally {
        await second.close();
      }
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
