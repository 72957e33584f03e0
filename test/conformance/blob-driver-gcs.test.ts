import { createHash, generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { StorageNotFoundError, StorageUnavailableError } from '../../src/storage/driver.js';
import { GcsDriver, type GcsDriverOptions } from '../../src/storage/gcs.js';
import { startGcsEmulator, type GcsEmulator } from '../helpers/gcs-emulator.js';
import { describeBlobDriver, readAll, streamOf } from './blob-driver.js';
import { exposeGc, memoryInUse } from '../helpers/memory.js';
import { describeRegistryOnStorage } from './registry-on-storage.js';

const MiB = 1024 * 1024;
const KiB = 1024;

// One emulator (a test double, not GCS) for the whole file; every driver gets its own key prefix.
let gcs: GcsEmulator;
beforeAll(async () => {
  gcs = await startGcsEmulator();
});
afterAll(async () => {
  await gcs?.stop();
});

function makeDriver(overrides: Partial<GcsDriverOptions> = {}): GcsDriver {
  return new GcsDriver({
    bucket: gcs.bucket,
    projectId: 'drydock-test',
    apiEndpoint: gcs.url,
    prefix: `p-${randomUUID()}`,
    redirect: { mode: 'none', ttlSecs: 300 },
    chunkSize: 8 * MiB,
    ...overrides,
  });
}

/** Requests the emulator served during `fn`, by route (`POST compose`, …). */
async function callsDuring(fn: () => Promise<void>): Promise<Map<string, number>> {
  const before = new Map(gcs.calls);
  await fn();
  const delta = new Map<string, number>();
  for (const [k, v] of gcs.calls) if (v !== (before.get(k) ?? 0)) delta.set(k, v - (before.get(k) ?? 0));
  return delta;
}

describeBlobDriver('gcs (emulator)', async () => ({ driver: makeDriver(), cleanup: async () => undefined }));

describe('GcsDriver specifics', () => {
  it('writes 40 MiB as one streamed resumable upload, in flat memory', async () => {
    const driver = makeDriver();
    const total = 40 * MiB;
    const gc = exposeGc();
    gc?.();
    gc?.();
    const baseline = memoryInUse();
    // Retained memory after a forced GC, sampled every 4 MiB, split by halves: flat
    // means the second 20 MiB cost no more than the first.
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
        if (produced % (4 * MiB) === 0) {
          gc?.();
          const half = produced <= total / 2 ? 0 : 1;
          peaks[half] = Math.max(peaks[half]!, memoryInUse() - baseline);
        }
        this.push(chunk);
      },
    });
    const calls = await callsDuring(async () => {
      await expect(driver.write('big', source)).resolves.toEqual({ size: total });
    });
    expect(calls.get('POST resumable-start')).toBe(1);
    expect(calls.get('PUT resumable')).toBe(1);
    expect(calls.get('POST multipart')).toBeUndefined();
    expect(calls.get('GET list')).toBeUndefined();
    console.log(`[gcs] 40 MiB write: retained peaks by half ${peaks.map((p) => (p / MiB).toFixed(1)).join(' / ')} MiB`);
    // The first chunk, buffered to choose the upload type, stream buffers: buffering the
    // object would show 40 MiB, and 20 MiB more in the second half than in the first.
    expect(Math.max(...peaks)).toBeLessThan(28 * MiB);
    expect(peaks[1]!).toBeLessThanOrEqual(peaks[0]! + 10 * MiB);
    expect(await driver.stat('big')).toEqual({ size: total });
    const outHash = createHash('sha256');
    for await (const chunk of await driver.read('big')) outHash.update(chunk as Buffer);
    expect(outHash.digest('hex')).toBe(inHash.digest('hex'));
  });

  it('writes a body of at most one chunk with a single multipart upload', async () => {
    const driver = makeDriver({ chunkSize: 256 * KiB });
    const data = randomBytes(256 * KiB);
    const calls = await callsDuring(async () => {
      await driver.write('one-chunk', streamOf(data));
    });
    expect(calls.get('POST multipart')).toBe(1);
    expect(calls.get('POST resumable-start')).toBeUndefined();
    expect((await readAll(await driver.read('one-chunk'))).equals(data)).toBe(true);
  });

  it('commits an upload session of 1, 7 and 2 MiB chunks by compose into the requested key', async () => {
    const driver = makeDriver();
    const chunks = [randomBytes(MiB), randomBytes(7 * MiB), randomBytes(2 * MiB)];
    const whole = Buffer.concat(chunks);
    const id = randomUUID();
    let state = await driver.createUpload(id);
    let size = 0;
    for (const c of chunks) {
      ({ state, size } = await driver.appendUpload(state, size, streamOf(c)));
      expect((await readAll(await driver.readUpload(state))).equals(whole.subarray(0, size))).toBe(true);
    }
    // One part object per append (each under a chunk).
    expect((state.parts as { size: number }[]).map((p) => p.size)).toEqual([MiB, 7 * MiB, 2 * MiB]);
    const across = await readAll(await driver.readUpload(state, { start: 8 * MiB - 10, end: 8 * MiB + 9 }));
    expect(across.equals(whole.subarray(8 * MiB - 10, 8 * MiB + 10))).toBe(true);
    const calls = await callsDuring(async () => {
      await expect(driver.commitUpload(state, 'blobs/sha256/12/1234')).resolves.toBe('blobs/sha256/12/1234');
    });
    expect(calls.get('POST compose')).toBe(1);
    expect(await driver.stat('blobs/sha256/12/1234')).toEqual({ size: whole.length });
    expect((await readAll(await driver.read('blobs/sha256/12/1234'))).equals(whole)).toBe(true);
    // Only the committed object is left of the session.
    for (const k of [`uploads/${id}.session`, ...(state.parts as { key: string }[]).map((p) => p.key)]) {
      expect(await driver.stat(k)).toBeUndefined();
    }
    await expect(driver.readUpload(state)).rejects.toBeInstanceOf(StorageNotFoundError);
  });

  it('composes more than 32 parts in rounds, and cleans up the intermediates', async () => {
    const prefix = `p-${randomUUID()}`;
    const driver = makeDriver({ chunkSize: 256 * KiB, prefix });
    // 70 parts of 256 KiB and a short last one: round one makes 3 objects, round two the blob.
    const whole = randomBytes(70 * 256 * KiB + 1234);
    let state = await driver.createUpload(randomUUID());
    let size = 0;
    for (let i = 0; i < whole.length; i += 3 * MiB) ({ state, size } = await driver.appendUpload(state, size, streamOf(whole.subarray(i, i + 3 * MiB))));
    expect(size).toBe(whole.length);
    expect((state.parts as unknown[]).length).toBeGreaterThan(2 * 32);
    const calls = await callsDuring(async () => {
      await driver.commitUpload(state, 'blobs/sha256/34/3456');
    });
    expect(calls.get('POST compose')).toBe(4);
    expect((await readAll(await driver.read('blobs/sha256/34/3456'))).equals(whole)).toBe(true);
    expect(gcs.objectNames().filter((n) => n.startsWith(`${prefix}/`))).toEqual([`${prefix}/blobs/sha256/34/3456`]);
  });

  it('a retried commit after the compose succeeded returns the key', async () => {
    const driver = makeDriver();
    const data = randomBytes(5000);
    const { state } = await driver.appendUpload(await driver.createUpload(randomUUID()), 0, streamOf(data));
    await driver.commitUpload(state, 'blobs/sha256/56/5678');
    await expect(driver.commitUpload(state, 'blobs/sha256/56/5678')).resolves.toBe('blobs/sha256/56/5678');
    expect((await readAll(await driver.read('blobs/sha256/56/5678'))).equals(data)).toBe(true);
  });

  it('rejects a range starting past the end with RangeError', async () => {
    const driver = makeDriver();
    await driver.write('small', streamOf(randomBytes(10)));
    await expect(driver.read('small', { start: 10, end: 20 })).rejects.toBeInstanceOf(RangeError);
  });

  it('a cdn redirect URL is the base URL followed by the prefixed key', async () => {
    const driver = makeDriver({ prefix: 'reg/one', redirect: { mode: 'cdn', ttlSecs: 300, cdnBaseUrl: 'https://cdn.example.com/images/' } });
    await expect(driver.redirectUrl('blobs/sha256/aa/aabb', 300)).resolves.toBe('https://cdn.example.com/images/reg/one/blobs/sha256/aa/aabb');
  });

  it('a signed redirect URL (v4, from a service-account key) serves the object', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'gcs-key-'));
    try {
      // A throwaway key: the emulator checks no signature, but the client signs locally with it.
      const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
      const keyFilename = join(dir, 'sa.json');
      await writeFile(
        keyFilename,
        JSON.stringify({
          type: 'service_account',
          project_id: 'drydock-test',
          client_email: 'drydock@drydock-test.iam.gserviceaccount.com',
          private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
        }),
      );
      const driver = makeDriver({ keyFilename, redirect: { mode: 'signed', ttlSecs: 120 } });
      const data = randomBytes(10_000);
      await driver.write('blobs/sha256/aa/aabb', streamOf(data));
      const url = await driver.redirectUrl('blobs/sha256/aa/aabb', 300);
      const u = new URL(url!);
      expect(u.origin).toBe(gcs.url);
      expect(u.searchParams.get('X-Goog-Algorithm')).toBe('GOOG4-RSA-SHA256');
      // The configured TTL caps the caller's.
      expect(u.searchParams.get('X-Goog-Expires')).toBe('120');
      const r = await fetch(url!);
      expect(r.status).toBe(200);
      expect(Buffer.from(await r.arrayBuffer()).equals(data)).toBe(true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses signed mode without a key file', () => {
    expect(() => makeDriver({ redirect: { mode: 'signed', ttlSecs: 300 } })).toThrow(/keyFilename/);
  });

  it('offers no redirect in mode none', async () => {
    await expect(makeDriver().redirectUrl('blobs/sha256/aa/aabb', 300)).resolves.toBeUndefined();
  });

  it('ping fails with StorageUnavailableError when the bucket does not exist', async () => {
    await expect(makeDriver({ bucket: 'no-such-bucket' }).ping()).rejects.toBeInstanceOf(StorageUnavailableError);
  });

  it('wraps an unreachable endpoint in StorageUnavailableError with the cause', async () => {
    const err = await makeDriver({ apiEndpoint: 'http://127.0.0.1:1', maxRetries: 0 })
      .stat('k')
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageUnavailableError);
    expect((err as StorageUnavailableError).cause).toBeDefined();
  });

  it('refuses a tampered upload state', async () => {
    const driver = makeDriver();
    const state = await driver.createUpload(randomUUID());
    const tampered = [
      { ...state, key: 'blobs/sha256/aa/aabb' },
      { ...state, parts: [{ key: 'blobs/x', size: 1 }] },
      { ...state, v: 2 },
      {},
    ];
    for (const t of tampered) {
      await expect(driver.readUpload(t)).rejects.toThrow(/invalid gcs upload state/);
      await expect(driver.abortUpload(t)).rejects.toThrow(/invalid gcs upload state/);
    }
  });

  it('never called a route the emulator does not know', () => {
    expect(gcs.calls.get('GET unknown') ?? 0).toBe(0);
    expect([...gcs.calls.keys()].filter((k) => k.endsWith(' unknown'))).toEqual([]);
  });
});

describeRegistryOnStorage(
  'gcs',
  () => ({ driver: 'gcs', gcs: { bucket: gcs.bucket, projectId: 'drydock-test', apiEndpoint: gcs.url, prefix: `reg-${randomUUID()}`, chunkSize: 4 * MiB } }),
  [3, 5, 3],
);
