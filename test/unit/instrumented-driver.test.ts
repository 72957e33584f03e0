import { Readable } from 'node:stream';
import { beforeEach, describe, expect, it } from '@jest/globals';
import { Histogram, Registry } from 'prom-client';
import { StorageNotFoundError, type BlobDriver, type ByteRange, type ObjectInfo, type UploadState } from '../../src/storage/driver.js';
import { InstrumentedDriver, type DriverMetricLabels } from '../../src/storage/instrumented.js';

/** An in-memory driver: enough behaviour to observe what the decorator records. */
class FakeDriver implements BlobDriver {
  readonly name = 'fake';
  readonly objects = new Map<string, Buffer>();
  /** Streams handed out by read(); they never end, to show read is timed until open. */
  readonly openStreams: Readable[] = [];

  async stat(key: string): Promise<ObjectInfo | undefined> {
    const o = this.objects.get(key);
    return o && { size: o.length };
  }
  async read(key: string, _range?: ByteRange): Promise<Readable> {
    if (!this.objects.has(key)) throw new StorageNotFoundError(key);
    const stream = new Readable({ read() {} });
    this.openStreams.push(stream);
    return stream;
  }
  async write(key: string, body: Readable): Promise<{ size: number }> {
    const parts: Buffer[] = [];
    for await (const c of body) parts.push(c as Buffer);
    this.objects.set(key, Buffer.concat(parts));
    return { size: this.objects.get(key)!.length };
  }
  async delete(keys: string[]): Promise<void> {
    for (const k of keys) this.objects.delete(k);
  }
  async ping(): Promise<void> {}
  async createUpload(id: string): Promise<UploadState> {
    return { id };
  }
  async appendUpload(state: UploadState, offset: number): Promise<{ state: UploadState; size: number }> {
    return { state, size: offset };
  }
  async readUpload(): Promise<Readable> {
    return Readable.from([]);
  }
  async commitUpload(_state: UploadState, key: string): Promise<string> {
    return key;
  }
  async abortUpload(): Promise<void> {}
}

class RedirectingFakeDriver extends FakeDriver {
  async redirectUrl(key: string, ttlSeconds: number): Promise<string | undefined> {
    return `https://cdn.example/${key}?ttl=${ttlSeconds}`;
  }
}

describe('InstrumentedDriver', () => {
  let registry: Registry;
  let histogram: Histogram<DriverMetricLabels>;

  beforeEach(() => {
    registry = new Registry();
    histogram = new Histogram({
      name: 'drydock_storage_operation_duration_seconds',
      help: 'Blob driver call latency',
      labelNames: ['driver', 'action', 'outcome'],
      registers: [registry],
    });
  });

  async function countOf(labels: Record<DriverMetricLabels, string>): Promise<number> {
    const { values } = await histogram.get();
    const hit = values.find(
      (v) =>
        v.metricName === 'drydock_storage_operation_duration_seconds_count' &&
        v.labels.driver === labels.driver &&
        v.labels.action === labels.action &&
        v.labels.outcome === labels.outcome,
    );
    return hit?.value ?? 0;
  }

  it('passes results through and records each call with outcome ok', async () => {
    const inner = new FakeDriver();
    const driver = new InstrumentedDriver(inner, histogram);
    expect(driver.name).toBe('fake');
    await expect(driver.write('a', Readable.from([Buffer.from('xyz')]))).resolves.toEqual({ size: 3 });
    await expect(driver.stat('a')).resolves.toEqual({ size: 3 });
    await expect(driver.stat('b')).resolves.toBeUndefined();
    await driver.delete(['a']);
    const state = await driver.createUpload('u1');
    await expect(driver.appendUpload(state, 7, Readable.from([]))).resolves.toEqual({ state, size: 7 });
    await expect(driver.commitUpload(state, 'k')).resolves.toBe('k');

    expect(await countOf({ driver: 'fake', action: 'write', outcome: 'ok' })).toBe(1);
    expect(await countOf({ driver: 'fake', action: 'stat', outcome: 'ok' })).toBe(2);
    expect(await countOf({ driver: 'fake', action: 'delete', outcome: 'ok' })).toBe(1);
    expect(await countOf({ driver: 'fake', action: 'createUpload', outcome: 'ok' })).toBe(1);
    expect(await countOf({ driver: 'fake', action: 'appendUpload', outcome: 'ok' })).toBe(1);
    expect(await countOf({ driver: 'fake', action: 'commitUpload', outcome: 'ok' })).toBe(1);
    expect(await registry.metrics()).toContain(
      'drydock_storage_operation_duration_seconds_count{driver="fake",action="stat",outcome="ok"} 2',
    );
  });

  it('records a rejection with outcome error and rethrows the same error', async () => {
    const driver = new InstrumentedDriver(new FakeDriver(), histogram);
    await expect(driver.read('absent')).rejects.toBeInstanceOf(StorageNotFoundError);
    expect(await countOf({ driver: 'fake', action: 'read', outcome: 'error' })).toBe(1);
    expect(await countOf({ driver: 'fake', action: 'read', outcome: 'ok' })).toBe(0);
  });

  it('times read until the stream is open, not until it is drained', async () => {
    const inner = new FakeDriver();
    inner.objects.set('k', Buffer.from('data'));
    const driver = new InstrumentedDriver(inner, histogram);
    const stream = await driver.read('k');
    // The fake's stream has not ended, yet the observation is already there.
    expect(stream.readableEnded).toBe(false);
    expect(await countOf({ driver: 'fake', action: 'read', outcome: 'ok' })).toBe(1);
    stream.destroy();
  });

  it('offers redirectUrl only when the inner driver does, and times it', async () => {
    expect(new InstrumentedDriver(new FakeDriver(), histogram).redirectUrl).toBeUndefined();
    const driver = new InstrumentedDriver(new RedirectingFakeDriver(), histogram);
    await expect(driver.redirectUrl?.('blobs/x', 60)).resolves.toBe('https://cdn.example/blobs/x?ttl=60');
    expect(await countOf({ driver: 'fake', action: 'redirectUrl', outcome: 'ok' })).toBe(1);
  });
});
