import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { exposeGc, memoryInUse } from '../helpers/memory.js';
import { MediaTypes, bytesOf, desc, ociManifest, pushBlob, putManifest, sha256, uniqueImage } from '../helpers/oci-client.js';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';

const MiB = 1024 * 1024;

/**
 * A registry on a storage driver, through HTTP: a push and pull, and a chunked
 * upload of three PATCHes spanning several of the driver's parts, read back whole
 * and by range. `chunks` are the PATCH sizes in MiB (the last gets 17 more bytes).
 */
export function describeRegistryOnStorage(name: string, storage: () => Record<string, unknown>, chunks: [number, number, number]): void {
  describe(`registry on ${name} storage`, () => {
    let reg: TestRegistry;
    beforeAll(async () => {
      reg = await startTestRegistry({ config: { storage: storage() } });
    });
    afterAll(async () => {
      await reg?.close();
    });

    const image = (): string => `docker-local/${uniqueImage(name)}`;

    it('pushes and pulls a blob and a manifest', async () => {
      const name = image();
      const config = await pushBlob(reg, name, '{"architecture":"amd64","os":"linux"}');
      const layer = await pushBlob(reg, name, randomBytes(200_000));
      const manifest = ociManifest(desc(MediaTypes.ociConfig, config), [desc('application/vnd.oci.image.layer.v1.tar', layer)]);
      expect((await putManifest(reg, name, '1.0', manifest)).status).toBe(201);

      const m = await reg.fetch(`/v2/${name}/manifests/1.0`, { headers: { accept: MediaTypes.ociManifest } });
      expect(m.status).toBe(200);
      expect((await bytesOf(m)).equals(manifest)).toBe(true);
      const b = await reg.fetch(`/v2/${name}/blobs/${layer.digest}`);
      expect(b.status).toBe(200);
      expect((await bytesOf(b)).equals(layer.data)).toBe(true);
    });

    it('accepts a chunked upload of 3 PATCHes spanning several parts', async () => {
      const name = image();
      const sizes = [chunks[0] * MiB, chunks[1] * MiB, chunks[2] * MiB + 17];
      const parts = sizes.map((n) => randomBytes(n));
      const whole = Buffer.concat(parts);
      const start = await reg.fetch(`/v2/${name}/blobs/uploads/`, { method: 'POST' });
      expect(start.status).toBe(202);
      let location = start.headers.get('location')!;
      let offset = 0;
      for (const c of parts) {
        const r = await reg.fetch(location, {
          method: 'PATCH',
          body: c,
          headers: { 'content-type': 'application/octet-stream', 'content-range': `${offset}-${offset + c.length - 1}` },
        });
        expect(r.status).toBe(202);
        offset += c.length;
        expect(r.headers.get('range')).toBe(`0-${offset - 1}`);
        location = r.headers.get('location')!;
      }
      const digest = sha256(whole);
      const done = await reg.fetch(`${location}?digest=${digest}`, { method: 'PUT' });
      expect(done.status).toBe(201);
      const b = await reg.fetch(`/v2/${name}/blobs/${digest}`);
      expect(b.status).toBe(200);
      expect(b.headers.get('content-length')).toBe(String(whole.length));
      expect((await bytesOf(b)).equals(whole)).toBe(true);
      const ranged = await reg.fetch(`/v2/${name}/blobs/${digest}`, { headers: { range: `bytes=${5 * MiB - 3}-${5 * MiB + 2}` } });
      expect(ranged.status).toBe(206);
      expect((await bytesOf(ranged)).equals(whole.subarray(5 * MiB - 3, 5 * MiB + 3))).toBe(true);
    });
  });
}

/** Heap plus array buffers: what a driver's buffering shows up in. */
