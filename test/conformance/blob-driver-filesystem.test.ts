import { randomUUID } from 'node:crypto';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, it } from '@jest/globals';
import { StorageNotFoundError, StorageUnavailableError, type UploadState } from '../../src/storage/driver.js';
import { FilesystemDriver } from '../../src/storage/filesystem.js';
import { describeBlobDriver, readAll, streamOf } from './blob-driver.js';

async function freshRoot(): Promise<string> {
  return mkdtemp(path.join(tmpdir(), 'drydock-fs-'));
}

describeBlobDriver('filesystem', async () => {
  const root = await freshRoot();
  return { driver: new FilesystemDriver(root), cleanup: () => rm(root, { recursive: true, force: true }) };
});

/** Filesystem specifics the shared suite cannot see: on-disk layout, validation, leftovers. */
describe('FilesystemDriver specifics', () => {
  async function withDriver(fn: (driver: FilesystemDriver, root: string) => Promise<void>): Promise<void> {
    const root = await freshRoot();
    try {
      await fn(new FilesystemDriver(root), root);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  }

  it('stores objects at <root>/<key> and leaves no temp files behind, even after a failed write', () =>
    withDriver(async (driver, root) => {
      await driver.write('blobs/sha256/ab/abc', streamOf(Buffer.from('hello')));
      expect((await stat(path.join(root, 'blobs/sha256/ab/abc'))).size).toBe(5);
      const failing = Readable.from(
        (async function* () {
          yield Buffer.alloc(100_000);
          throw new Error('boom');
        })(),
      );
      await expect(driver.write('blobs/sha256/cd/cde', failing)).rejects.toThrow('boom');
      expect(await readdir(path.join(root, '_tmp'))).toEqual([]);
    }));

  it.each(['', '/etc/passwd', '../escape', 'a/../../b', 'a//b', 'a/./b', 'a/', '_tmp/x', 'nul\0byte'])(
    'refuses the key %j',
    (bad) =>
      withDriver(async (driver) => {
        await expect(driver.stat(bad)).rejects.toThrow(/invalid storage key/);
        await expect(driver.read(bad)).rejects.toThrow(/invalid storage key/);
        await expect(driver.write(bad, streamOf(Buffer.from('x')))).rejects.toThrow(/invalid storage key/);
        await expect(driver.delete(['ok', bad])).rejects.toThrow(/invalid storage key/);
      }),
  );

  it.each(['../x', 'a/b', '.', '..', '', '.hidden'])('refuses the upload id %j', (bad) =>
    withDriver(async (driver) => {
      await expect(driver.createUpload(bad)).rejects.toThrow(/invalid upload session id/);
    }),
  );

  it('refuses a tampered upload state', () =>
    withDriver(async (driver) => {
      const tampered: UploadState[] = [{ path: '../../etc/passwd' }, { path: 'uploads/x/../../y/data' }, { path: 'blobs/a/data' }, {}];
      for (const state of tampered) {
        await expect(driver.readUpload(state)).rejects.toThrow(/invalid filesystem upload state/);
        await expect(driver.abortUpload(state)).rejects.toThrow(/invalid filesystem upload state/);
      }
    }));

  it('keeps sessions under uploads/<id>/data and commits by rename to the requested key', () =>
    withDriver(async (driver, root) => {
      const id = randomUUID();
      const state = await driver.createUpload(id);
      expect(state).toEqual({ path: `uploads/${id}/data` });
      await expect(driver.createUpload(id)).rejects.toThrow(/already exists/);
      await driver.appendUpload(state, 0, streamOf(Buffer.from('abc')));
      await expect(driver.commitUpload(state, 'blobs/sha256/00/00ff')).resolves.toBe('blobs/sha256/00/00ff');
      await expect(stat(path.join(root, 'uploads', id))).rejects.toMatchObject({ code: 'ENOENT' });
    }));

  it('refuses an append past the end of the session (a caller bug)', () =>
    withDriver(async (driver) => {
      const state = await driver.createUpload(randomUUID());
      await driver.appendUpload(state, 0, streamOf(Buffer.from('abc')));
      await expect(driver.appendUpload(state, 4, streamOf(Buffer.from('d')))).rejects.toThrow(/cannot append at offset 4/);
      expect(await readAll(await driver.readUpload(state))).toEqual(Buffer.from('abc'));
    }));

  it('rejects appends to an aborted session with StorageNotFoundError', () =>
    withDriver(async (driver) => {
      const state = await driver.createUpload(randomUUID());
      await driver.abortUpload(state);
      await expect(driver.appendUpload(state, 0, streamOf(Buffer.from('x')))).rejects.toBeInstanceOf(StorageNotFoundError);
      await expect(driver.commitUpload(state, 'k')).rejects.toBeInstanceOf(StorageNotFoundError);
    }));

  it('rejects a range starting at or past the end with a RangeError', () =>
    withDriver(async (driver) => {
      await driver.write('k', streamOf(Buffer.from('0123456789')));
      await expect(driver.read('k', { start: 10, end: 20 })).rejects.toBeInstanceOf(RangeError);
      await expect(driver.read('k', { start: 5, end: 4 })).rejects.toBeInstanceOf(RangeError);
      await driver.write('empty', streamOf());
      await expect(driver.read('empty', { start: 0, end: 0 })).rejects.toBeInstanceOf(RangeError);
    }));

  it('treats a fan-out directory as absent, not as an object', () =>
    withDriver(async (driver) => {
      await driver.write('blobs/sha256/ab/abc', streamOf(Buffer.from('x')));
      expect(await driver.stat('blobs/sha256')).toBeUndefined();
      await expect(driver.read('blobs/sha256')).rejects.toBeInstanceOf(StorageNotFoundError);
      expect(await driver.stat('blobs/sha256/ab/abc/deeper')).toBeUndefined();
    }));

  it('passes a body error through unwrapped even when it looks like a system error', () =>
    withDriver(async (driver) => {
      const reset = Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET', errno: -104, syscall: 'read' });
      const body = Readable.from(
        (async function* () {
          yield Buffer.alloc(1000);
          throw reset;
        })(),
      );
      await expect(driver.write('k', body)).rejects.toBe(reset);
      const state = await driver.createUpload(randomUUID());
      const again = Readable.from(
        (async function* () {
          yield Buffer.alloc(1000);
          throw reset;
        })(),
      );
      await expect(driver.appendUpload(state, 0, again)).rejects.toBe(reset);
    }));

  it('wraps I/O failures in StorageUnavailableError and fails ping when the root is gone', async () => {
    const root = await freshRoot();
    const driver = new FilesystemDriver(path.join(root, 'missing'));
    await rm(root, { recursive: true, force: true });
    await expect(driver.ping()).rejects.toBeInstanceOf(StorageUnavailableError);
    // A file where a directory must be: ENOTDIR on mkdir is an outage, not absence.
    const fileRoot = await freshRoot();
    try {
      const broken = new FilesystemDriver(path.join(fileRoot, 'plain-file'));
      await new FilesystemDriver(fileRoot).write('plain-file', streamOf(Buffer.from('x')));
      const err = await broken.write('k', streamOf(Buffer.from('y'))).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StorageUnavailableError);
      expect((err as StorageUnavailableError).cause).toMatchObject({ code: 'ENOTDIR' });
    } finally {
      await rm(fileRoot, { recursive: true, force: true });
    }
  });
});
