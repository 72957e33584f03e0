// Builds OCI image layouts on disk (oci-layout, index.json, blobs/sha256/...)
// in plain Node, for skopeo to push: `skopeo copy oci:DIR:tag docker://...`.
// Used by bench/run.mjs and, through oci-layout.d.mts, by test/helpers/oci-layout.ts.
//
// Layers are real gzip'd ustar archives whose file contents come from an
// AES-256-CTR keystream (incompressible, deterministic for a given seed) and
// are generated, compressed, hashed and written as a stream, so a layer of any
// size costs a few MiB of memory.
import { createCipheriv, createHash, randomBytes, randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { constants as zc, createGzip } from 'node:zlib';

export const MEDIA_TYPES = Object.freeze({
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
});

export const REF_NAME_ANNOTATION = 'org.opencontainers.image.ref.name';

const DEFAULT_LAYER_SIZE = 64 * 1024;
const CHUNK = 1024 * 1024;
const SEEDED_CREATED = '2024-01-01T00:00:00Z';
const ENV_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

// ---------------------------------------------------------------- digests

export function sha256Digest(bytes) {
  return 'sha256:' + createHash('sha256').update(bytes).digest('hex');
}

export function blobPath(dir, digest) {
  const m = /^sha256:([a-f0-9]{64})$/.exec(digest);
  if (!m) throw new Error(`not a sha256 digest: ${digest}`);
  return join(dir, 'blobs', 'sha256', m[1]);
}

export function readBlob(dir, digest) {
  return readFile(blobPath(dir, digest));
}

// ---------------------------------------------------------------- ustar

function putString(buf, offset, length, value) {
  const bytes = Buffer.from(value, 'utf8');
  if (bytes.length > length) throw new Error(`tar field too long (${length}): ${value}`);
  bytes.copy(buf, offset);
}

function putOctal(buf, offset, length, value) {
  const digits = value.toString(8);
  if (digits.length > length - 1) throw new Error(`tar numeric field overflow: ${value}`);
  putString(buf, offset, length, digits.padStart(length - 1, '0') + '\0');
}

/** One 512-byte ustar header. `type` is '0' (file) or '5' (directory). */
export function tarHeader({ name, size = 0, mode = 0o644, type = '0', mtime = 0 }) {
  const h = Buffer.alloc(512);
  putString(h, 0, 100, name);
  putOctal(h, 100, 8, mode);
  putOctal(h, 108, 8, 0); // uid
  putOctal(h, 116, 8, 0); // gid
  putOctal(h, 124, 12, size);
  putOctal(h, 136, 12, mtime);
  h.fill(0x20, 148, 156); // checksum is computed with its own field as spaces
  putString(h, 156, 1, type);
  putString(h, 257, 6, 'ustar\0');
  putString(h, 263, 2, '00');
  putString(h, 265, 32, 'root');
  putString(h, 297, 32, 'root');
  putOctal(h, 329, 8, 0); // devmajor
  putOctal(h, 337, 8, 0); // devminor
  let sum = 0;
  for (const byte of h) sum += byte;
  putString(h, 148, 8, sum.toString(8).padStart(6, '0') + '\0 ');
  return h;
}

/**
 * Yields a whole tar archive chunk by chunk. Each entry is a directory
 * `{ name, type: '5' }` or a file `{ name, size, chunks: Iterable<Buffer> }`.
 */
export function* tarStream(entries, mtime = 0) {
  for (const e of entries) {
    if (e.type === '5') {
      yield tarHeader({ name: e.name, mode: 0o755, type: '5', mtime });
      continue;
    }
    yield tarHeader({ name: e.name, size: e.size, mode: 0o644, type: '0', mtime });
    let written = 0;
    for (const c of e.chunks) {
      written += c.length;
      yield c;
    }
    if (written !== e.size) throw new Error(`tar entry ${e.name}: ${written} bytes written, ${e.size} declared`);
    const pad = (512 - (e.size % 512)) % 512;
    if (pad) yield Buffer.alloc(pad);
  }
  yield Buffer.alloc(1024);
}

// ---------------------------------------------------------------- content

/** Incompressible bytes from an AES-256-CTR keystream keyed by `parts`. */
export function* pseudoRandomChunks(size, ...parts) {
  const key = createHash('sha256').update(parts.map(String).join('\0')).digest();
  const cipher = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
  const zero = Buffer.alloc(Math.min(CHUNK, Math.max(size, 1)));
  for (let left = size; left > 0; ) {
    const n = Math.min(zero.length, left);
    yield cipher.update(n === zero.length ? zero : zero.subarray(0, n));
    left -= n;
  }
}

function generatedLayerEntries(seed, index, size) {
  const dir = `layer${index}/`;
  const entries = [{ name: dir, type: '5' }];
  const second = size >= 2048 ? Math.floor(size / 4) : 0;
  const first = size - second;
  entries.push({ name: `${dir}data-0.bin`, size: first, chunks: pseudoRandomChunks(first, seed, index, 0) });
  if (second) entries.push({ name: `${dir}data-1.bin`, size: second, chunks: pseudoRandomChunks(second, seed, index, 1) });
  return entries;
}

function bufferLayerEntries(index, buf) {
  return [
    { name: `layer${index}/`, type: '5' },
    { name: `layer${index}/file.bin`, size: buf.length, chunks: [buf] },
  ];
}

// ---------------------------------------------------------------- layout

const layoutLocks = new Map();

/** Serialises index.json updates per layout directory. */
function withLayoutLock(dir, fn) {
  const prev = layoutLocks.get(dir) ?? Promise.resolve();
  const next = prev.then(fn, fn);
  const tail = next.catch(() => undefined);
  layoutLocks.set(dir, tail);
  void tail.then(() => {
    if (layoutLocks.get(dir) === tail) layoutLocks.delete(dir);
  });
  return next;
}

async function exists(p) {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

/** Creates the layout skeleton when missing; keeps an existing index.json. */
export async function initLayout(dir) {
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
  await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  const indexPath = join(dir, 'index.json');
  if (!(await exists(indexPath))) {
    await writeFile(indexPath, JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPES.ociIndex, manifests: [] }));
  }
}

function tmpBlobPath(dir) {
  return join(dir, 'blobs', 'sha256', `.tmp-${randomBytes(8).toString('hex')}`);
}

/** Writes a small blob; returns its descriptor fields. */
export async function writeBlob(dir, bytes) {
  const digest = sha256Digest(bytes);
  const dest = blobPath(dir, digest);
  if (!(await exists(dest))) {
    const tmp = tmpBlobPath(dir);
    await writeFile(tmp, bytes);
    await rename(tmp, dest);
  }
  return { digest, size: bytes.length };
}

/** Streams a tar through gzip into the layout; returns digest, size and diff_id. */
async function writeLayerBlob(dir, entries, mtime) {
  const diff = createHash('sha256');
  const comp = createHash('sha256');
  let size = 0;
  function* source() {
    for (const chunk of tarStream(entries, mtime)) {
      diff.update(chunk);
      yield chunk;
    }
  }
  const tap = new Transform({
    transform(chunk, _enc, cb) {
      comp.update(chunk);
      size += chunk.length;
      cb(null, chunk);
    },
  });
  const tmp = tmpBlobPath(dir);
  try {
    await pipeline(
      Readable.from(source(), { objectMode: false, highWaterMark: CHUNK }),
      createGzip({ level: 1, strategy: zc.Z_HUFFMAN_ONLY }),
      tap,
      createWriteStream(tmp),
    );
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
  const digest = 'sha256:' + comp.digest('hex');
  await rename(tmp, blobPath(dir, digest));
  return { digest, size, diffId: 'sha256:' + diff.digest('hex') };
}

async function tagInLayout(dir, descriptor, tag) {
  await withLayoutLock(dir, async () => {
    const indexPath = join(dir, 'index.json');
    const index = JSON.parse(await readFile(indexPath, 'utf8'));
    index.manifests = (index.manifests ?? []).filter((d) => d.annotations?.[REF_NAME_ANNOTATION] !== tag);
    index.manifests.push({ ...descriptor, annotations: { [REF_NAME_ANNOTATION]: tag } });
    const tmp = join(dir, `.index-${randomBytes(6).toString('hex')}.json`);
    await writeFile(tmp, JSON.stringify(index));
    await rename(tmp, indexPath);
  });
}

function validateTag(tag) {
  if (!/^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/.test(tag)) throw new Error(`invalid tag: ${tag}`);
}

/** Writes layers, config and manifest of one image (untagged). */
async function writeImage(dir, opts, created = opts.seed !== undefined ? SEEDED_CREATED : new Date().toISOString()) {
  const seed = opts.seed ?? randomUUID();
  const mtime = Math.floor(Date.parse(created) / 1000);
  const layerSize = opts.layerSize ?? DEFAULT_LAYER_SIZE;
  const specs = Array.isArray(opts.layers)
    ? opts.layers.map((buf, i) => bufferLayerEntries(i, buf))
    : Array.from({ length: opts.layers }, (_, i) => generatedLayerEntries(seed, i, layerSize));

  const layers = [];
  for (const entries of specs) layers.push(await writeLayerBlob(dir, entries, mtime));

  const imageConfig = { Env: [ENV_PATH], Cmd: ['/bin/sh'], WorkingDir: '/' };
  if (opts.labels && Object.keys(opts.labels).length) imageConfig.Labels = { ...opts.labels };
  const config = {
    created,
    architecture: opts.architecture ?? 'amd64',
    os: opts.os ?? 'linux',
    ...(opts.variant ? { variant: opts.variant } : {}),
    config: imageConfig,
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
  };
  if (opts.history) {
    const history = layers.map((l, i) => ({
      created,
      created_by: `/bin/sh -c #(nop) ADD file:${l.diffId.slice(7)} in /layer${i}/ `,
      comment: `layer ${i}`,
    }));
    history.splice(Math.min(1, history.length), 0, {
      created,
      created_by: `/bin/sh -c #(nop)  ENV ${ENV_PATH}`,
      empty_layer: true,
    });
    config.history = history;
  }
  const configBlob = await writeBlob(dir, Buffer.from(JSON.stringify(config)));

  const manifest = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.ociManifest,
    config: { mediaType: MEDIA_TYPES.ociConfig, digest: configBlob.digest, size: configBlob.size },
    layers: layers.map((l) => ({ mediaType: MEDIA_TYPES.ociLayerGzip, digest: l.digest, size: l.size })),
  };
  const manifestBytes = Buffer.from(JSON.stringify(manifest));
  const manifestBlob = await writeBlob(dir, manifestBytes);
  return {
    manifestDigest: manifestBlob.digest,
    manifestSize: manifestBlob.size,
    configDigest: configBlob.digest,
    layerDigests: layers.map((l) => l.digest),
    layerSizes: layers.map((l) => l.size),
    diffIds: layers.map((l) => l.diffId),
  };
}

/**
 * Builds one image into the layout at `dir` and tags it `opts.tag` in
 * index.json. `layers` is a count (each layer gets `layerSize` bytes of
 * pseudo-random file content, default 64 KiB) or one Buffer per layer (the
 * content of the layer's single file).
 */
export async function buildImage(dir, opts) {
  validateTag(opts.tag);
  if (!Array.isArray(opts.layers) && !(Number.isInteger(opts.layers) && opts.layers >= 0)) {
    throw new Error(`layers must be a non-negative integer or an array of Buffers`);
  }
  await initLayout(dir);
  const image = await writeImage(dir, opts);
  await tagInLayout(dir, { mediaType: MEDIA_TYPES.ociManifest, digest: image.manifestDigest, size: image.manifestSize }, opts.tag);
  return image;
}

/**
 * Builds a multi-platform OCI index (one small image per platform) into the
 * layout at `dir` and tags the index `opts.tag`.
 */
export async function buildIndex(dir, opts) {
  validateTag(opts.tag);
  if (!opts.platforms.length) throw new Error('buildIndex needs at least one platform');
  await initLayout(dir);
  const seed = opts.seed ?? randomUUID();
  const created = opts.seed !== undefined ? SEEDED_CREATED : new Date().toISOString();
  const manifests = [];
  for (const p of opts.platforms) {
    const platform = { architecture: p.architecture, os: p.os, ...(p.variant ? { variant: p.variant } : {}) };
    const image = await writeImage(dir, {
      layers: opts.layers ?? 1,
      layerSize: opts.layerSize ?? 16 * 1024,
      os: p.os,
      architecture: p.architecture,
      variant: p.variant,
      history: true,
      seed: `${seed}/${p.os}/${p.architecture}/${p.variant ?? ''}`,
    }, created);
    manifests.push({ ...image, digest: image.manifestDigest, size: image.manifestSize, platform });
  }
  const index = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.ociIndex,
    manifests: manifests.map((m) => ({ mediaType: MEDIA_TYPES.ociManifest, digest: m.digest, size: m.size, platform: m.platform })),
  };
  const indexBlob = await writeBlob(dir, Buffer.from(JSON.stringify(index)));
  await tagInLayout(dir, { mediaType: MEDIA_TYPES.ociIndex, digest: indexBlob.digest, size: indexBlob.size }, opts.tag);
  return { indexDigest: indexBlob.digest, indexSize: indexBlob.size, manifests };
}
