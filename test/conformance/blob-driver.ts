import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { setImmediate as tick } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { exposeGc, memoryInUse } from '../helpers/memory.js';
import { StorageNotFoundError, type BlobDriver, type UploadState } from '../../src/storage/driver.js';

const MiB = 1024 * 1024;

/** What a driver factory hands the suite: a driver on fresh, empty storage and how to dispose of it. */
export interface BlobDriverFixture {
  driver: BlobDriver;
  cleanup: () => Promise<void>;
}

/**
 * The behaviour every `BlobDriver` must show; a driver is done when this passes.
 * `make` is called before every test and must return a driver on empty storage
 * (keys are still prefixed per test, so a shared bucket also works).
 *
 * Beyond the doc comments in driver.ts, the suite fixes: a session is consumed by
 * `commitUpload` (a later `readUpload` rejects with `StorageNotFoundError`); an
 * aborted operation rejects with an error named `AbortError`; of two concurrent
 * writers of one key, both succeed and one whole version remains.
 */
export function describeBlobDriver(name: string, make: () => Promise<BlobDriverFixture>): void {
  describe(`BlobDriver conformance: ${name}`, () => {
    let fixture: BlobDriverFixture | undefined;
    let driver: BlobDriver;
    let prefix: string;
    const key = (s: string): string => `${prefix}/${s}`;

    beforeEach(async () => {
      fixture = await make();
      driver = fixture.driver;
      prefix = `t-${randomUUID()}`;
    });
    afterEach(async () => {
      await fixture?.cleanup();
      fixture = undefined;
    });

    describe('whole objects', () => {
      it('ping resolves on healthy storage', async () => {
        await expect(driver.ping()).resolves.toBeUndefined();
      });

      it('round-trips write, stat and read', async () => {
        const data = randomBytes(200_000);
        const k = key('blobs/sha256/ab/abcdef');
        await expect(driver.write(k, streamOf(data.subarray(0, 70_000), data.subarray(70_000)))).resolves.toEqual({ size: data.length });
        expect(await driver.stat(k)).toEqual({ size: data.length });
        expect((await readAll(await driver.read(k))).equals(data)).toBe(true);
      });

      it('stores a zero-byte object', async () => {
        const k = key('empty');
        await expect(driver.write(k, streamOf())).resolves.toEqual({ size: 0 });
        expect(await driver.stat(k)).toEqual({ size: 0 });
        expect(await readAll(await driver.read(k))).toHaveLength(0);
      });

      it('serves inclusive byte ranges and clamps an end past the size', async () => {
        const data = randomBytes(200_000);
        const k = key('ranged');
        await driver.write(k, streamOf(data));
        const range = async (start: number, end: number): Promise<Buffer> => readAll(await driver.read(k, { start, end }));
        expect((await range(0, 0)).equals(data.subarray(0, 1))).toBe(true);
        expect((await range(70_000, 140_000)).equals(data.subarray(70_000, 140_001))).toBe(true);
        expect((await range(199_999, 199_999)).equals(data.subarray(199_999))).toBe(true);
        expect((await range(199_990, 10_000_000)).equals(data.subarray(199_990))).toBe(true);
      });

      it('reports an absent key: stat undefined, read rejects with StorageNotFoundError', async () => {
        expect(await driver.stat(key('nope'))).toBeUndefined();
        await expect(driver.read(key('nope'))).rejects.toBeInstanceOf(StorageNotFoundError);
        await expect(driver.read(key('nope'), { start: 0, end: 10 })).rejects.toBeInstanceOf(StorageNotFoundError);
      });

      it('leaves nothing when the body stream errors midway', async () => {
        const k = key('broken');
        const boom = new Error('client went away');
        await expect(driver.write(k, failingStream([randomBytes(100_000), randomBytes(100_000)], boom))).rejects.toBe(boom);
        expect(await driver.stat(k)).toBeUndefined();
        await expect(driver.read(k)).rejects.toBeInstanceOf(StorageNotFoundError);
      });

      it('leaves nothing when the write is aborted through its signal', async () => {
        const k = key('aborted');
        const gate = gatedStream(randomBytes(100_000));
        const ac = new AbortController();
        const writing = driver.write(k, gate.body, ac.signal);
        await gate.started;
        ac.abort();
        await expect(writing).rejects.toMatchObject({ name: 'AbortError' });
        expect(await driver.stat(k)).toBeUndefined();
      });

      it('replaces an existing key atomically: the old version stays whole until the new one resolves', async () => {
        const k = key('replaced');
        const v1 = randomBytes(50_000);
        const v2 = randomBytes(300_000);
        await driver.write(k, streamOf(v1));
        const gate = gatedStream(v2.subarray(0, 100_000));
        const writing = driver.write(k, gate.body);
        await gate.started;
        expect(await driver.stat(k)).toEqual({ size: v1.length });
        expect((await readAll(await driver.read(k))).equals(v1)).toBe(true);
        gate.finish(v2.subarray(100_000));
        await expect(writing).resolves.toEqual({ size: v2.length });
        expect(await driver.stat(k)).toEqual({ size: v2.length });
        expect((await readAll(await driver.read(k))).equals(v2)).toBe(true);
      });

      it('keeps one whole version when two writers race on one key', async () => {
        const k = key('raced');
        const a = randomBytes(2 * MiB);
        const b = randomBytes(2 * MiB);
        const results = await Promise.allSettled([driver.write(k, slowStream(a, 64 * 1024)), driver.write(k, slowStream(b, 64 * 1024))]);
        expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled']);
        const got = await readAll(await driver.read(k));
        expect(got.equals(a) || got.equals(b)).toBe(true);
      });

      it('deletes a batch, ignoring absent keys', async () => {
        const [k1, k2, k3] = [key('d/1'), key('d/2'), key('d/3')];
        for (const k of [k1, k2, k3]) await driver.write(k, streamOf(Buffer.from(k)));
        await expect(driver.delete([k1, key('d/absent'), k2, key('never/existed')])).resolves.toBeUndefined();
        expect(await driver.stat(k1)).toBeUndefined();
        expect(await driver.stat(k2)).toBeUndefined();
        expect(await driver.stat(k3)).toEqual({ size: Buffer.byteLength(k3) });
        await expect(driver.delete([k1, k2])).resolves.toBeUndefined();
        await expect(driver.delete([])).resolves.toBeUndefined();
      });

      it('streams 64 MiB through write and read in bounded memory', async () => {
        const total = 64 * MiB;
        const k = key('big');
        // Sampling after a forced GC measures what the driver retains (buffering would
        // show up to 64 MiB); the raw peak also counts chunks already written but not
        // yet collected, so it is printed for information only.
        const gc = exposeGc();
        gc?.();
        gc?.(); // a second pass frees what the first one's finalizers released
        const baseline = memoryInUse();
        let retainedPeak = 0;
        let rawPeak = 0;
        let nextGcSample = 0;
        /** `progress` counts bytes within the current phase; it restarts at 0 for the read. */
        const sample = (progress: number): void => {
          rawPeak = Math.max(rawPeak, memoryInUse() - baseline);
          if (progress < nextGcSample) return;
          nextGcSample = progress + 8 * MiB;
          gc?.();
          retainedPeak = Math.max(retainedPeak, memoryInUse() - baseline);
        };

        const inHash = createHash('sha256');
        let produced = 0;
        const source = new Readable({
          highWaterMark: MiB,
          read() {
            if (produced >= total) {
              this.push(null);
              return;
            }
            const chunk = randomBytes(MiB);
            produced += chunk.length;
            inHash.update(chunk);
            sample(produced);
            this.push(chunk);
          },
        });
        await expect(driver.write(k, source)).resolves.toEqual({ size: total });

        const outHash = createHash('sha256');
        let consumed = 0;
        nextGcSample = 0;
        for await (const chunk of await driver.read(k)) {
          outHash.update(chunk as Buffer);
          consumed += (chunk as Buffer).length;
          sample(consumed);
        }
        const after = memoryInUse() - baseline;

        console.log(
          `[${name}] 64 MiB write+read: heapUsed+arrayBuffers growth: peak retained ${(retainedPeak / MiB).toFixed(1)} MiB ` +
            `(${gc ? 'sampled after forced GC every 8 MiB' : 'GC not available, raw'}), raw peak ${(rawPeak / MiB).toFixed(1)} MiB, ` +
            `after ${(after / MiB).toFixed(1)} MiB`,
        );
        expect(consumed).toBe(total);
        expect(outHash.digest('hex')).toBe(inHash.digest('hex'));
        expect(gc ? retainedPeak : rawPeak).toBeLessThan(32 * MiB);
      });
    });

    describe('upload sessions', () => {
      /** Appends each chunk at the running offset, checking the reported size; returns the latest state. */
      async function appendAll(state: UploadState, chunks: Buffer[]): Promise<{ state: UploadState; size: number }> {
        let cur = { state, size: 0 };
        for (const c of chunks) {
          const next = await driver.appendUpload(cur.state, cur.size, streamOf(c));
          expect(next.size).toBe(cur.size + c.length);
          cur = next;
        }
        return cur;
      }

      it('appends chunks of different sizes, reads them back, and commits them as an object', async () => {
        const chunks = [randomBytes(MiB + 3), Buffer.alloc(0), randomBytes(17), randomBytes(256 * 1024), Buffer.alloc(0), randomBytes(1)];
        const whole = Buffer.concat(chunks);
        const state0 = await driver.createUpload(randomUUID());
        expect(JSON.parse(JSON.stringify(state0))).toEqual(state0);
        expect(await readAll(await driver.readUpload(state0))).toHaveLength(0);

        const { state, size } = await appendAll(state0, chunks);
        expect(size).toBe(whole.length);
        expect((await readAll(await driver.readUpload(state))).equals(whole)).toBe(true);
        expect((await readAll(await driver.readUpload(state, { start: 1000, end: MiB + 10 }))).equals(whole.subarray(1000, MiB + 11))).toBe(true);

        const k = key('blobs/sha256/cd/cdef');
        const committed = await driver.commitUpload(state, k);
        expect(await driver.stat(committed)).toEqual({ size: whole.length });
        expect((await readAll(await driver.read(committed))).equals(whole)).toBe(true);
        await expect(driver.readUpload(state)).rejects.toBeInstanceOf(StorageNotFoundError);
      });

      it('commits an empty session as a zero-byte object', async () => {
        const state = await driver.createUpload(randomUUID());
        const committed = await driver.commitUpload(state, key('empty-upload'));
        expect(await driver.stat(committed)).toEqual({ size: 0 });
      });

      it('commit onto an existing key keeps the object there and discards the session', async () => {
        const k = key('blobs/sha256/ee/eeee');
        const existing = randomBytes(1000);
        await driver.write(k, streamOf(existing));
        const { state } = await appendAll(await driver.createUpload(randomUUID()), [randomBytes(1000)]);
        await expect(driver.commitUpload(state, k)).resolves.toBe(k);
        expect((await readAll(await driver.read(k))).equals(existing)).toBe(true);
        await expect(driver.readUpload(state)).rejects.toBeInstanceOf(StorageNotFoundError);
      });

      it('abort discards the bytes and is idempotent', async () => {
        const { state } = await appendAll(await driver.createUpload(randomUUID()), [randomBytes(5000)]);
        await expect(driver.abortUpload(state)).resolves.toBeUndefined();
        await expect(driver.abortUpload(state)).resolves.toBeUndefined();
        await expect(driver.readUpload(state)).rejects.toBeInstanceOf(StorageNotFoundError);
      });

      it('a retried append at the same offset after a failed one gives exactly the accepted bytes', async () => {
        const first = randomBytes(10_000);
        const retry = randomBytes(1000);
        const { state, size } = await appendAll(await driver.createUpload(randomUUID()), [first]);
        const boom = new Error('connection reset');
        // The failed append streams more than the retry will, so a stale tail would show.
        await expect(driver.appendUpload(state, size, failingStream([randomBytes(64 * 1024), randomBytes(64 * 1024)], boom))).rejects.toBe(boom);
        const again = await driver.appendUpload(state, size, streamOf(retry));
        expect(again.size).toBe(first.length + retry.length);
        expect((await readAll(await driver.readUpload(again.state))).equals(Buffer.concat([first, retry]))).toBe(true);
        const committed = await driver.commitUpload(again.state, key('retried'));
        expect((await readAll(await driver.read(committed))).equals(Buffer.concat([first, retry]))).toBe(true);
      });

      it('an aborted append leaves the session usable at its offset', async () => {
        const first = randomBytes(3000);
        const { state, size } = await appendAll(await driver.createUpload(randomUUID()), [first]);
        const gate = gatedStream(randomBytes(100_000));
        const ac = new AbortController();
        const appending = driver.appendUpload(state, size, gate.body, ac.signal);
        await gate.started;
        ac.abort();
        await expect(appending).rejects.toMatchObject({ name: 'AbortError' });
        const second = randomBytes(10);
        const again = await driver.appendUpload(state, size, streamOf(second));
        expect((await readAll(await driver.readUpload(again.state))).equals(Buffer.concat([first, second]))).toBe(true);
      });
    });
  });
}

/** A byte stream of the given chunks. */
export function streamOf(...chunks: Buffer[]): Readable {
  return Readable.from(chunks, { objectMode: false });
}

export async function readAll(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of stream) parts.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer));
  return Buffer.concat(parts);
}

/** Yields `chunks`, then fails with `error`, as a client that disconnects midway. */
function failingStream(chunks: Buffer[], error: Error): Readable {
  return Readable.from(
    (async function* () {
      for (const c of chunks) {
        yield c;
        await tick();
      }
      throw error;
    })(),
    { objectMode: false },
  );
}

/** `data` in `chunkSize` pieces with an event-loop turn between them, so concurrent writers interleave. */
function slowStream(data: Buffer, chunkSize: number): Readable {
  return Readable.from(
    (async function* () {
      for (let i = 0; i < data.length; i += chunkSize) {
        yield data.subarray(i, i + chunkSize);
        await tick();
      }
    })(),
    { objectMode: false },
  );
}

/**
 * A stream that hands out `first`, then stalls: `started` resolves once the consumer
 * has taken `first` and asks for more; `finish(rest)` ends it. Built on push() rather
 * than an async generator so destroying it mid-stall (abort) does not hang.
 */
function gatedStream(first: Buffer): { body: Readable; started: Promise<void>; finish: (rest: Buffer) => void } {
  let reads = 0;
  let markStarted!: () => void;
  const started = new Promise<void>((resolve) => (markStarted = resolve));
  const body = new Readable({
    read() {
      reads += 1;
      if (reads === 1) this.push(first);
      else markStarted();
    },
  });
  return {
    body,
    started,
    finish: (rest) => {
      body.push(rest);
      body.push(null);
    },
  };
}
