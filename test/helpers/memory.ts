/**
 * Heap measurements for the flat-memory tests: what the process still holds
 * after a forced GC, so buffering a blob shows up and garbage not yet collected
 * does not.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** JS heap plus Buffer/ArrayBuffer backing stores, the two places a blob could be held. */
export function memoryInUse(): number {
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

/**
 * `gc()` without `--expose-gc` on the command line; undefined if the trick fails.
 *
 * V8 frees dead ArrayBuffer backing stores on a background thread after a GC, so
 * `arrayBuffers` read right after `gc()` still counts buffers that are already
 * garbage — by up to the whole 32 MiB a test allows when both cores are busy. The
 * sweep is made synchronous so a sample after `gc()` shows only what is retained.
 */
export function exposeGc(): (() => void) | undefined {
  try {
    setFlagsFromString('--no-concurrent-array-buffer-sweeping');
    setFlagsFromString('--expose-gc');
    const gc: unknown = runInNewContext('gc');
    return typeof gc === 'function' ? (gc as () => void) : undefined;
  } catch {
    return undefined;
  }
}
