import { randomUUID } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { access, mkdir, open, rename, rm, stat, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { addAbortSignal, Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  StorageNotFoundError,
  StorageUnavailableError,
  type BlobDriver,
  type ByteRange,
  type ObjectInfo,
  type UploadState,
} from './driver.js';
import { UPLOADS_PREFIX } from './layout.js';

/** Directory under the root for in-flight whole-object writes; never a valid key prefix. */
const TMP_DIR = '_tmp';

/** Upload session ids are single, uuid-like path segments (no dots, no slashes). */
const SESSION_ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/;

/** How many unlinks `delete` runs at once: enough to overlap I/O, few enough not to exhaust fds. */
const DELETE_CONCURRENCY = 32;

/**
 * Blob driver on a local (or network-mounted) POSIX filesystem.
 *
 * - Committed objects live at `<root>/<key>`.
 * - `write` streams into `<root>/_tmp/<uuid>`, fsyncs, renames into place and fsyncs
 *   the parent directory, so a key shows either nothing or a whole, durable object.
 * - Upload sessions are files `<root>/uploads/<id>/data`; their state is
 *   `{ path: 'uploads/<id>/data' }`. Committing renames the file into place.
 *
 * Errors: absent objects/sessions raise `StorageNotFoundError`; invalid keys, ids,
 * states and offsets raise a plain `Error` (caller bugs); unsatisfiable ranges a
 * `RangeError`; other I/O failures `StorageUnavailableError` with the system error
 * as `cause`. Errors of the caller's body stream and `AbortError`s pass through.
 */
const READ_CHUNK = 1024 * 1024;

export class FilesystemDriver implements BlobDriver {
  readonly name = 'filesystem';
  readonly root: string;

  constructor(root: string) {
    this.root = path.resolve(root);
  }

  async stat(key: string): Promise<ObjectInfo | undefined> {
    const file = this.pathOf(key);
    try {
      const st = await stat(file);
      // A directory at `key` is a fan-out level, not an object.
      return st.isFile() ? { size: st.size } : undefined;
    } catch (err) {
      if (isAbsence(err)) return undefined;
      throw unavailable(err, `stat ${key}`);
    }
  }

  async read(key: string, range?: ByteRange, signal?: AbortSignal): Promise<Readable> {
    return this.openStream(this.pathOf(key), key, range, signal);
  }

  async write(key: string, body: Readable, signal?: AbortSignal): Promise<{ size: number }> {
    const target = this.pathOf(key);
    signal?.throwIfAborted();
    const tmpDir = path.join(this.root, TMP_DIR);
    await io(`mkdir ${TMP_DIR}`, mkdir(tmpDir, { recursive: true }));
    const tmp = path.join(tmpDir, randomUUID());
    let fh: FileHandle | undefined;
    try {
      fh = await io(`create temp file for ${key}`, open(tmp, 'wx'));
      const size = await this.pump(fh, 0, body, signal, `write ${key}`);
      await io(`fsync ${key}`, fh.sync());
      await io(`close ${key}`, fh.close());
      fh = undefined;
      await this.moveIntoPlace(tmp, target, key);
      return { size };
    } catch (err) {
      await fh?.close().catch(() => undefined);
      // Best effort: a leftover temp file is invisible garbage, never a half object under `key`.
      await rm(tmp, { force: true }).catch(() => undefined);
      throw err;
    }
  }

  async delete(keys: string[]): Promise<void> {
    const files = keys.map((k) => this.pathOf(k)); // validate all before touching any
    for (let i = 0; i < files.length; i += DELETE_CONCURRENCY) {
      await Promise.all(
        files.slice(i, i + DELETE_CONCURRENCY).map(async (file, j) => {
          try {
            await unlink(file);
          } catch (err) {
            if (!isAbsence(err)) throw unavailable(err, `delete ${keys[i + j]}`);
          }
        }),
      );
    }
  }

  async ping(): Promise<void> {
    try {
      // A file where the root should be passes the access check (always, for root).
      if (!(await stat(this.root)).isDirectory()) throw new Error(`${this.root} is not a directory`);
      await access(this.root, fsConstants.W_OK);
    } catch (err) {
      // Here even ENOENT is an outage: the volume is not mounted.
      throw new StorageUnavailableError(`storage root ${this.root} is not a writable directory`, { cause: err });
    }
  }

  async createUpload(id: string): Promise<UploadState> {
    if (!SESSION_ID.test(id)) throw new Error(`invalid upload session id: ${JSON.stringify(id)}`);
    const rel = `${UPLOADS_PREFIX}/${id}/data`;
    const dir = path.join(this.root, UPLOADS_PREFIX, id);
    await io('mkdir uploads', mkdir(path.join(this.root, UPLOADS_PREFIX), { recursive: true }));
    try {
      await mkdir(dir);
    } catch (err) {
      if (errnoCode(err) === 'EEXIST') throw new Error(`upload session ${id} already exists`);
      throw unavailable(err, `create upload ${id}`);
    }
    const fh = await io(`create upload ${id}`, open(path.join(dir, 'data'), 'wx'));
    await io(`close upload ${id}`, fh.close());
    // Durable creation (both new entries), so an append on another pod finds the session after a crash.
    await fsyncDir(dir);
    await fsyncDir(path.dirname(dir));
    return { path: rel };
  }

  async appendUpload(
    state: UploadState,
    offset: number,
    body: Readable,
    signal?: AbortSignal,
  ): Promise<{ state: UploadState; size: number }> {
    const rel = sessionPath(state);
    if (!Number.isSafeInteger(offset) || offset < 0) throw new Error(`invalid upload offset ${offset}`);
    signal?.throwIfAborted();
    // 'r+' (not 'a'): writing at `offset` overwrites whatever tail a failed append left.
    const fh = await this.openExisting(rel, 'r+');
    try {
      const current = (await io(`stat ${rel}`, fh.stat())).size;
      if (current < offset) throw new Error(`upload ${rel} has ${current} bytes, cannot append at offset ${offset}`);
      let written: number;
      try {
        written = await this.pump(fh, offset, body, signal, `append to ${rel}`);
      } catch (err) {
        // Keep the session exactly at `offset` so readers (hash rebuilds) see only accepted bytes.
        await fh.truncate(offset).catch(() => undefined);
        throw err;
      }
      const size = offset + written;
      await io(`truncate ${rel}`, fh.truncate(size));
      await io(`fsync ${rel}`, fh.sync());
      return { state, size };
    } finally {
      await fh.close().catch(() => undefined);
    }
  }

  async readUpload(state: UploadState, range?: ByteRange): Promise<Readable> {
    const rel = sessionPath(state);
    return this.openStream(path.join(this.root, rel), rel, range);
  }

  async commitUpload(state: UploadState, key: string): Promise<string> {
    const rel = sessionPath(state);
    const target = this.pathOf(key);
    const sessionDir = path.dirname(path.join(this.root, rel));
    // Content-addressed keys: an existing object already holds these bytes. This also
    // makes a commit retried after a crash (renamed, session not yet removed) succeed.
    if ((await this.stat(key)) !== undefined) {
      await io(`remove upload ${rel}`, rm(sessionDir, { recursive: true, force: true }));
      return key;
    }
    const fh = await this.openExisting(rel, 'r');
    try {
      await io(`fsync ${rel}`, fh.sync());
    } finally {
      await fh.close().catch(() => undefined);
    }
    await this.moveIntoPlace(path.join(this.root, rel), target, key);
    await io(`remove upload ${rel}`, rm(sessionDir, { recursive: true, force: true }));
    return key;
  }

  async abortUpload(state: UploadState): Promise<void> {
    const dir = path.dirname(path.join(this.root, sessionPath(state)));
    await io(`abort upload ${dir}`, rm(dir, { recursive: true, force: true }));
  }

  /** Absolute path of a validated key. */
  private pathOf(key: string): string {
    validateKey(key);
    return path.join(this.root, key);
  }

  /** Opens an upload's data file; an absent session is `StorageNotFoundError`. */
  private async openExisting(rel: string, flags: 'r' | 'r+'): Promise<FileHandle> {
    try {
      return await open(path.join(this.root, rel), flags);
    } catch (err) {
      if (isAbsence(err)) throw new StorageNotFoundError(rel);
      throw unavailable(err, `open ${rel}`);
    }
  }

  /**
   * Opens `file` and returns a stream of it (or of `range`). The file is opened and
   * measured before returning, so absence is a rejection rather than a stream error,
   * and the stream keeps reading the same inode even if the key is replaced meanwhile.
   */
  private async openStream(file: string, label: string, range?: ByteRange, signal?: AbortSignal): Promise<Readable> {
    signal?.throwIfAborted();
    if (range) validateRange(range);
    let fh: FileHandle;
    try {
      fh = await open(file, 'r');
    } catch (err) {
      if (isAbsence(err) || errnoCode(err) === 'EISDIR') throw new StorageNotFoundError(label);
      throw unavailable(err, `open ${label}`);
    }
    try {
      const st = await io(`stat ${label}`, fh.stat());
      if (!st.isFile()) throw new StorageNotFoundError(label);
      let bounds: { start?: number; end?: number } = {};
      if (range) {
        if (range.start >= st.size) {
          throw new RangeError(`range start ${range.start} is beyond the end of ${label} (${st.size} bytes)`);
        }
        bounds = { start: range.start, end: Math.min(range.end, st.size - 1) };
      }
      // 1 MiB reads: with the 64 KiB default, per-chunk overhead halves throughput on large layers.
      const stream = fh.createReadStream({ ...bounds, highWaterMark: READ_CHUNK }); // autoClose: closes fh on end, error or destroy
      return signal ? addAbortSignal(signal, stream) : stream;
    } catch (err) {
      await fh.close().catch(() => undefined);
      throw err;
    }
  }

  /**
   * Streams `body` into `fh` from `position` with backpressure (never buffering the
   * whole object) and returns the byte count. Errors from the file become
   * `StorageUnavailableError`; body errors and aborts pass through unchanged.
   */
  private async pump(fh: FileHandle, position: number, body: Readable, signal: AbortSignal | undefined, what: string): Promise<number> {
    let size = 0;
    const sink = fileSink(fh, position);
    try {
      await pipeline(
        body,
        async function* count(source: AsyncIterable<Buffer | string>) {
          for await (const chunk of source) {
            const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
            size += buf.length;
            yield buf;
          }
        },
        sink,
        signal ? { signal } : {},
      );
    } catch (err) {
      // The sink emits 'close' only after its in-flight write settles; waiting for it
      // means no stray bytes land after the caller truncates or removes the file.
      if (!sink.closed) await new Promise((resolve) => sink.once('close', resolve));
      // Only the file's own failures are outages; a body error (even a socket's
      // ECONNRESET, which looks like a system error) is the caller's and passes through.
      if (typeof err === 'object' && err !== null && fileErrors.has(err)) throw unavailable(err, what);
      throw err;
    }
    return size;
  }

  /**
   * Atomically renames `from` to `to` and makes the new directory entries durable: the
   * parent directory is created if needed and fsynced after the rename, as is every
   * directory that `mkdir -p` had to create (their entries live in their parents).
   */
  private async moveIntoPlace(from: string, to: string, key: string): Promise<void> {
    const parent = path.dirname(to);
    const firstCreated = await io(`mkdir for ${key}`, mkdir(parent, { recursive: true }));
    await io(`rename into ${key}`, rename(from, to));
    if (firstCreated !== undefined) {
      // Directories whose entry lists changed: dirname(firstCreated) … dirname(parent).
      for (let dir = path.dirname(parent); ; dir = path.dirname(dir)) {
        await fsyncDir(dir);
        if (dir === path.dirname(firstCreated) || dir === this.root || dir === path.dirname(dir)) break;
      }
    }
    await fsyncDir(parent);
  }
}

/**
 * Throws unless `key` is a relative, normalised, slash-separated path: no leading `/`,
 * no empty, `.` or `..` segments, no NUL, and not inside the driver's `_tmp/` area.
 */
export function validateKey(key: string): void {
  const bad = (why: string): never => {
    throw new Error(`invalid storage key ${JSON.stringify(key)}: ${why}`);
  };
  if (typeof key !== 'string' || key.length === 0) bad('empty');
  if (key.startsWith('/')) bad('absolute');
  if (key.includes('\0') || key.includes('\\')) bad('forbidden character');
  const segments = key.split('/');
  for (const s of segments) {
    if (s === '') bad('empty segment');
    if (s === '.' || s === '..') bad('dot segment');
  }
  if (segments[0] === TMP_DIR) bad(`${TMP_DIR}/ is reserved`);
}

/** The data file of a session state produced by `createUpload`, re-validated (states come back from the database). */
function sessionPath(state: UploadState): string {
  const rel = state.path;
  const parts = typeof rel === 'string' ? rel.split('/') : [];
  if (parts.length !== 3 || parts[0] !== UPLOADS_PREFIX || !SESSION_ID.test(parts[1]!) || parts[2] !== 'data') {
    throw new Error(`invalid filesystem upload state: ${JSON.stringify(state)}`);
  }
  return rel as string;
}

function validateRange(range: ByteRange): void {
  const { start, end } = range;
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start) {
    throw new RangeError(`invalid byte range ${start}-${end}`);
  }
}

/** Errors raised by `fileSink` writes, so `pump` can tell them from errors of the body. */
const fileErrors = new WeakSet<object>();

/**
 * A Writable that writes positionally into `fh` from `start` and leaves the handle
 * open (the caller fsyncs, truncates and closes it). fs.WriteStream on a FileHandle
 * cannot do that: with autoClose off it keeps a reference that blocks `fh.close()`.
 */
function fileSink(fh: FileHandle, start: number): Writable {
  let position = start;
  let inflight: Promise<unknown> = Promise.resolve();
  const track = (p: Promise<void>, cb: (err?: Error | null) => void): void => {
    inflight = p.then(
      () => cb(),
      (err: Error) => {
        fileErrors.add(err);
        cb(err);
      },
    );
  };
  return new Writable({
    highWaterMark: 256 * 1024,
    write(chunk: Buffer, _encoding, cb) {
      track(
        writeFully(fh, chunk, position).then(() => {
          position += chunk.length;
        }),
        cb,
      );
    },
    writev(chunks, cb) {
      const bufs = chunks.map((c) => c.chunk as Buffer);
      track(
        (async () => {
          const total = bufs.reduce((n, b) => n + b.length, 0);
          const { bytesWritten } = await fh.writev(bufs, position);
          // writev may stop short (e.g. a signal); finish the rest with plain writes.
          if (bytesWritten < total) await writeFully(fh, Buffer.concat(bufs).subarray(bytesWritten), position + bytesWritten);
          position += total;
        })(),
        cb,
      );
    },
    destroy(err, cb) {
      void inflight.finally(() => cb(err));
    },
  });
}

async function writeFully(fh: FileHandle, buf: Buffer, position: number): Promise<void> {
  for (let off = 0; off < buf.length; ) {
    const { bytesWritten } = await fh.write(buf, off, buf.length - off, position + off);
    off += bytesWritten;
  }
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await io(`open directory ${dir}`, open(dir, 'r'));
  try {
    await io(`fsync directory ${dir}`, fh.sync());
  } finally {
    await fh.close().catch(() => undefined);
  }
}

function errnoCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
}

/** ENOENT, or ENOTDIR when a path prefix is a file: either way the object is not there. */
function isAbsence(err: unknown): boolean {
  const code = errnoCode(err);
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/** System errors (EIO, ENOSPC, EACCES, …) become `StorageUnavailableError`; others pass through. */
function unavailable(err: unknown, what: string): unknown {
  const isSystemError = typeof err === 'object' && err !== null && 'syscall' in err && errnoCode(err) !== undefined;
  if (!isSystemError) return err;
  return new StorageUnavailableError(`filesystem: ${what} failed: ${String((err as { message?: unknown }).message)}`, { cause: err });
}

/** Awaits an fs operation, wrapping its system errors. */
async function io<T>(what: string, op: Promise<T>): Promise<T> {
  try {
    return await op;
  } catch (err) {
    throw unavailable(err, what);
  }
}
