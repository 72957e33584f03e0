import type { Readable } from 'node:stream';
import type { Histogram } from 'prom-client';
import type { BlobDriver, ByteRange, ObjectInfo, UploadState } from './driver.js';

/** Labels of the storage latency histogram (`drydock_storage_*`). */
export type DriverMetricLabels = 'driver' | 'action' | 'outcome';

/**
 * A `BlobDriver` decorator that times every call of `inner` into `histogram`, in
 * seconds, labelled `driver` = `inner.name`, `action` = the method name and
 * `outcome` = `ok` | `error`. Results and errors pass through unchanged.
 * `read`/`readUpload` are timed until the stream is open (time to first byte is
 * the backend's latency; draining depends on the client). `redirectUrl` exists
 * only when `inner` has it, so callers can keep testing for it.
 */
export class InstrumentedDriver implements BlobDriver {
  readonly name: string;
  readonly redirectUrl?: (key: string, ttlSeconds: number) => Promise<string | undefined>;

  constructor(
    private readonly inner: BlobDriver,
    private readonly histogram: Histogram<DriverMetricLabels>,
  ) {
    this.name = inner.name;
    if (inner.redirectUrl) {
      const redirect = inner.redirectUrl.bind(inner);
      this.redirectUrl = (key, ttlSeconds) => this.time('redirectUrl', () => redirect(key, ttlSeconds));
    }
  }

  stat(key: string): Promise<ObjectInfo | undefined> {
    return this.time('stat', () => this.inner.stat(key));
  }

  read(key: string, range?: ByteRange, signal?: AbortSignal): Promise<Readable> {
    return this.time('read', () => this.inner.read(key, range, signal));
  }

  write(key: string, body: Readable, signal?: AbortSignal): Promise<{ size: number }> {
    return this.time('write', () => this.inner.write(key, body, signal));
  }

  delete(keys: string[]): Promise<void> {
    return this.time('delete', () => this.inner.delete(keys));
  }

  ping(): Promise<void> {
    return this.time('ping', () => this.inner.ping());
  }

  createUpload(id: string): Promise<UploadState> {
    return this.time('createUpload', () => this.inner.createUpload(id));
  }

  appendUpload(state: UploadState, offset: number, body: Readable, signal?: AbortSignal): Promise<{ state: UploadState; size: number }> {
    return this.time('appendUpload', () => this.inner.appendUpload(state, offset, body, signal));
  }

  readUpload(state: UploadState, range?: ByteRange): Promise<Readable> {
    return this.time('readUpload', () => this.inner.readUpload(state, range));
  }

  commitUpload(state: UploadState, key: string): Promise<string> {
    return this.time('commitUpload', () => this.inner.commitUpload(state, key));
  }

  abortUpload(state: UploadState): Promise<void> {
    return this.time('abortUpload', () => this.inner.abortUpload(state));
  }

  private async time<T>(action: string, op: () => Promise<T>): Promise<T> {
    const end = this.histogram.startTimer({ driver: this.inner.name, action });
    try {
      const result = await op();
      end({ outcome: 'ok' });
      return result;
    } catch (err) {
      end({ outcome: 'error' });
      throw err;
    }
  }
}
