import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { StorageUnavailableError } from '../../src/storage/driver.js';
import { S3Driver, type S3DriverOptions } from '../../src/storage/s3.js';
import { startS3rver, type TestS3rver } from '../helpers/s3rver.js';
import { describeBlobDriver, readAll, streamOf } from './blob-driver.js';
import { exposeGc, memoryInUse } from '../helpers/memory.js';
import { describeRegistryOnStorage } from './registry-on-storage.js';

const MiB = 1024 * 1024;

// One emulator for the whole file; every driver gets its own key prefix instead.
let s3: TestS3rver;
beforeAll(async () => {
  s3 = await startS3rver();
});
afterAll(async () => {
  await s3?.close();
});

function makeDriver(overrides: Partial<S3DriverOptions> = {}): S3Driver {
  return new S3Driver({
    ...s3.settings,
    prefix: `p-${randomUUID()}`,
    redirect: { mode: 'none', ttlSecs: 300 },
    multipartPartSize: 8 * MiB,
    ...overrides,
  });
}

describeBlobDriver('s3 (s3rver)', async () => {
  const driver = makeDriver();
  return { driver, cleanup: async () => driver.destroy() };
});

/** S3 specifics the shared suite cannot see: multipart parts, sessions across part boundaries, redirects. */
describe('S3Driver specifics', () => {
  async function withDriver(overrides: Partial<S3DriverOptions>, fn: (driver: S3Driver) => Promise<void>): Promise<void> {
    const driver = makeDriver(overrides);
    try {
      await fn(driver);
    } finally {
      driver.destroy();
    }
  }

  /** Counts the S3 commands a driver sends, by name (`PutObjectCommand`, …). */
  function countCommands(driver: S3Driver): Map<string, number> {
    const counts = new Map<string, number>();
    driver.client.middlewareStack.add(
      (next, context) => async (args) => {
        counts.set(context.commandName!, (counts.get(context.commandName!) ?? 0) + 1);
        return next(args);
      },
      { step: 'initialize', name: 'countCommands' },
    );
    return counts;
  }

  it('writes 40 MiB as a multipart upload of 5 MiB parts, in flat memory', () =>
    withDriver({ multipartPartSize: 5 * MiB }, async (driver) => {
      const counts = countCommands(driver);
      const total = 40 * MiB;
      const gc = exposeGc();
      gc?.();
      gc?.();
      const baseline = memoryInUse();
      // Retained memory after a forced GC, sampled at every part boundary, split by
      // halves: flat means the second 20 MiB cost no more than the first.
      const peaks = [0, 0];
      const inHash = createHash('sha256');
      let produced = 0;
      const source = new Readable({
        highWaterMark: MiB,
        read() {
          if (produced >= total) return void this.push(null);
          const chunk = randomBytes(MiB);
          produced += chunk.length;
          inHash.update(chunk);
          if (produced % (5 * MiB) === 0) {
            gc?.();
            const half = produced <= total / 2 ? 0 : 1;
            peaks[half] = Math.max(peaks[half]!, memoryInUse() - baseline);
          }
          this.push(chunk);
        },
      });
      await expect(driver.write('big', source)).resolves.toEqual({ size: total });
      expect(counts.get('CreateMultipartUploadCommand')).toBe(1);
      expect(counts.get('UploadPartCommand')).toBe(8);
      expect(counts.get('CompleteMultipartUploadCommand')).toBe(1);
      expect(counts.get('PutObjectCommand')).toBeUndefined();
      expect(counts.get('ListObjectsV2Command')).toBeUndefined();
      // At a sample: the part being filled, maybe the one being sent, the source's
      // buffer. Buffering the object would show 40 MiB, and 20 MiB more in the second
      // half than in the first; a sample landing mid-send may differ by two parts.
      expect(Math.max(...peaks)).toBeLessThan(20 * MiB);
      expect(peaks[1]!).toBeLessThanOrEqual(peaks[0]! + 10 * MiB);
      expect(await driver.stat('big')).toEqual({ size: total });
      const outHash = createHash('sha256');
      for await (const chunk of await driver.read('big')) outHash.update(chunk as Buffer);
      expect(outHash.digest('hex')).toBe(inHash.digest('hex'));
    }));

  it('writes a body of at most one part with a single PutObject', () =>
    withDriver({ multipartPartSize: 5 * MiB }, async (driver) => {
      const counts = countCommands(driver);
      const data = randomBytes(5 * MiB);
      await driver.write('one-part', streamOf(data));
      expect(counts.get('PutObjectCommand')).toBe(1);
      expect(counts.get('CreateMultipartUploadCommand')).toBeUndefined();
      expect((await readAll(await driver.read('one-part'))).equals(data)).toBe(true);
    }));

  it('commits an upload session of 1, 7 and 2 MiB chunks as its own multipart object, re-readable before commit', () =>
    withDriver({}, async (driver) => {
      const chunks = [randomBytes(MiB), randomBytes(7 * MiB), randomBytes(2 * MiB)];
      const whole = Buffer.concat(chunks);
      const id = randomUUID();
      let state = await driver.createUpload(id);
      let size = 0;
      for (const c of chunks) {
        ({ state, size } = await driver.appendUpload(state, size, streamOf(c)));
        expect((await readAll(await driver.readUpload(state))).equals(whole.subarray(0, size))).toBe(true);
      }
      // 8 MiB parts: the first two chunks filled part 1, the last one waits as the tail.
      expect(state).toMatchObject({ parts: [{ PartNumber: 1, size: 8 * MiB }], tailSize: 2 * MiB });
      const across = await readAll(await driver.readUpload(state, { start: 8 * MiB - 10, end: 8 * MiB + 9 }));
      expect(across.equals(whole.subarray(8 * MiB - 10, 8 * MiB + 10))).toBe(true);
      const committed = await driver.commitUpload(state, 'blobs/sha256/12/1234');
      expect(committed).toBe(`uploads/${id}`);
      expect(await driver.stat('blobs/sha256/12/1234')).toBeUndefined();
      expect(await driver.stat(committed)).toEqual({ size: whole.length });
      expect((await readAll(await driver.read(committed))).equals(whole)).toBe(true);
      // Only the committed object is left of the session.
      for (const k of [`uploads/${id}.session`, ...(state.parts as { copyKey: string }[]).map((p) => p.copyKey)]) {
        expect(await driver.stat(k)).toBeUndefined();
      }
    }));

  it('commits a session smaller than a part straight to the requested key', () =>
    withDriver({}, async (driver) => {
      const data = randomBytes(300_000);
      const { state } = await driver.appendUpload(await driver.createUpload(randomUUID()), 0, streamOf(data));
      await expect(driver.commitUpload(state, 'blobs/sha256/ab/abcd')).resolves.toBe('blobs/sha256/ab/abcd');
      expect((await readAll(await driver.read('blobs/sha256/ab/abcd'))).equals(data)).toBe(true);
    }));

  it('a presigned redirect URL serves the object to a plain fetch', () =>
    withDriver({ redirect: { mode: 'presigned', ttlSecs: 120 } }, async (driver) => {
      const data = randomBytes(10_000);
      await driver.write('blobs/sha256/aa/aabb', streamOf(data));
      const url = await driver.redirectUrl('blobs/sha256/aa/aabb', 300);
      expect(url).toBeDefined();
      const u = new URL(url!);
      expect(u.origin).toBe(s3.endpoint);
      // The configured TTL caps the caller's.
      expect(u.searchParams.get('X-Amz-Expires')).toBe('120');
      const r = await fetch(url!);
      expect(r.status).toBe(200);
      expect(Buffer.from(await r.arrayBuffer()).equals(data)).toBe(true);
    }));

  it('a cdn redirect URL is the base URL followed by the prefixed key', () =>
    withDriver({ prefix: 'reg/one', redirect: { mode: 'cdn', ttlSecs: 300, cdnBaseUrl: 'https://cdn.example.com/images/' } }, async (driver) => {
      await expect(driver.redirectUrl('blobs/sha256/aa/aabb', 300)).resolves.toBe('https://cdn.example.com/images/reg/one/blobs/sha256/aa/aabb');
    }));

  it('offers no redirect in mode none', () =>
    withDriver({}, async (driver) => {
      await expect(driver.redirectUrl('blobs/sha256/aa/aabb', 300)).resolves.toBeUndefined();
    }));

  it('ping fails with StorageUnavailableError when the bucket does not exist', () =>
    withDriver({ bucket: 'no-such-bucket' }, async (driver) => {
      await expect(driver.ping()).rejects.toBeInstanceOf(StorageUnavailableError);
    }));

  it('wraps an unreachable endpoint in StorageUnavailableError with the cause', () =>
    withDriver({ endpoint: 'http://127.0.0.1:1' }, async (driver) => {
      const err = await driver.stat('k').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StorageUnavailableError);
      expect((err as StorageUnavailableError).cause).toBeDefined();
    }));

  it('gives up on a store that accepts connections and never answers, instead of hanging', async () => {
    const silent = createServer(() => undefined); // reads each request, answers none
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const endpoint = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`;
      await withDriver({ endpoint, timeouts: { connectMs: 1000, idleMs: 300 } }, async (driver) => {
        const started = Date.now();
        const err = await driver.stat('k').catch((e: unknown) => e);
        expect(err).toBeInstanceOf(StorageUnavailableError);
        expect(String((err as StorageUnavailableError).cause)).toMatch(/timeout|timed out/i);
        // Three attempts of 300 ms idle each and the SDK's backoff, not the test's 60 s.
        expect(Date.now() - started).toBeLessThan(20_000);
      });
    } finally {
      silent.closeAllConnections();
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  it('refuses a tampered upload state', () =>
    withDriver({}, async (driver) => {
      const state = await driver.createUpload(randomUUID());
      const tampered = [{ ...state, key: 'blobs/sha256/aa/aabb' }, { ...state, tailKey: 'blobs/x', tailSize: 1 }, { ...state, v: 2 }, {}];
      for (const t of tampered) {
        await expect(driver.readUpload(t)).rejects.toThrow(/invalid s3 upload state/);
        await expect(driver.abortUpload(t)).rejects.toThrow(/invalid s3 upload state/);
      }
    }));
});

describeRegistryOnStorage('s3', () => ({ driver: 's3', s3: { ...s3.settings, prefix: `reg-${randomUUID()}`, multipartPartSize: 5 * MiB } }), [3, 4, 3]);
