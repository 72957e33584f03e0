/**
 * TEST DOUBLE — an in-process emulator of the part of the Google Cloud Storage
 * JSON API that `@google-cloud/storage` calls for the GCS blob driver. It is NOT
 * GCS: no auth, no IAM, one bucket, no versioning, no retention, no batch API;
 * it only mimics the shapes the client needs (see /work/shared/TECH.md, "Object
 * storage"). No GCS emulator exists on npm or Debian, so the driver's tests run
 * against this.
 *
 * Surface:
 * - `POST /upload/storage/v1/b/{b}/o?uploadType=multipart|resumable&name=…`
 *   (resumable: 200 + `Location`, then `PUT` chunks with `Content-Range`, 308 +
 *   `Range` while incomplete, 200 with the object JSON once final)
 * - `GET /storage/v1/b/{b}` (bucket), `GET /storage/v1/b/{b}/o?prefix=` (list)
 * - `GET /storage/v1/b/{b}/o/{name}` (metadata JSON: `size` as a string, base64
 *   big-endian `crc32c`, base64 `md5Hash`), `?alt=media` (with `Range` → 206,
 *   `x-goog-hash: crc32c=…,md5=…`)
 * - `DELETE /storage/v1/b/{b}/o/{name}`, `POST /storage/v1/b/{b}/o/{dest}/compose`
 * - `GET /{b}/{name}` (what a v4 signed URL points at; the signature is not checked)
 * Anything else is logged and answered 501, so a new client call shows up.
 *
 * Object bytes live in a temp dir (the driver's memory tests run in this same
 * process, so holding objects in memory would count against the driver), and an
 * object replaces its predecessor only when its upload completes, as in GCS.
 * Composite objects carry a `crc32c` but no `md5Hash`, as in GCS.
 */
import { createHash, randomBytes, type Hash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdtemp, open, rm, unlink } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';

export interface GcsEmulator {
  /** `http://127.0.0.1:PORT`, the client's `apiEndpoint`. */
  url: string;
  bucket: string;
  /** Requests by `METHOD route` (`POST compose`, `PUT resumable`, …), for assertions. */
  calls: Map<string, number>;
  /** Names of the stored objects. */
  objectNames(): string[];
  stop(): Promise<void>;
}

interface StoredObject {
  name: string;
  path: string;
  size: number;
  crc32c: number;
  md5: string | undefined;
  generation: number;
  updated: string;
  contentType: string | undefined;
  componentCount: number | undefined;
}

interface ResumableSession {
  name: string;
  path: string;
  received: number;
  crc: number;
  md5: Hash;
  contentType: string | undefined;
}

// ---- CRC32C (Castagnoli, reflected polynomial 0x82F63B78) ----------------------

const CRC32C_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** Running CRC32C: start from `CRC32C_INIT`, feed bytes, finish with `crc32cFinish`. */
const CRC32C_INIT = 0xffffffff;

function crc32cUpdate(crc: number, buf: Buffer): number {
  let c = crc;
  for (let i = 0; i < buf.length; i++) c = CRC32C_TABLE[(c ^ buf[i]!) & 0xff]! ^ (c >>> 8);
  return c >>> 0;
}

function crc32cBase64(running: number): string {
  const out = Buffer.alloc(4);
  out.writeUInt32BE((running ^ 0xffffffff) >>> 0);
  return out.toString('base64');
}

/** Passes bytes through while hashing them. */
class Hasher extends Transform {
  crc: number;
  bytes = 0;
  constructor(
    readonly md5: Hash | undefined,
    crc = CRC32C_INIT,
  ) {
    super();
    this.crc = crc;
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.crc = crc32cUpdate(this.crc, chunk);
    this.md5?.update(chunk);
    this.bytes += chunk.length;
    cb(null, chunk);
  }
}

// ---- server ---------------------------------------------------------------------

export async function startGcsEmulator(opts: { bucket?: string } = {}): Promise<GcsEmulator> {
  const bucket = opts.bucket ?? 'drydock-test';
  const dir = await mkdtemp(join(tmpdir(), 'gcs-emulator-'));
  const objects = new Map<string, StoredObject>();
  const sessions = new Map<string, ResumableSession>();
  const calls = new Map<string, number>();
  let generation = 1;
  let url = '';

  const count = (what: string): void => void calls.set(what, (calls.get(what) ?? 0) + 1);
  const tempPath = (): string => join(dir, `f-${randomBytes(8).toString('hex')}`);

  const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void => {
    const data = Buffer.from(JSON.stringify(body));
    res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8', 'content-length': data.length, ...headers });
    res.end(data);
  };
  const error = (res: ServerResponse, status: number, message: string, reason: string): void =>
    json(res, status, { error: { code: status, message, errors: [{ message, domain: 'global', reason }] } });
  const notFound = (res: ServerResponse, what: string): void => error(res, 404, `No such object: ${bucket}/${what}`, 'notFound');

  const resource = (o: StoredObject): Record<string, unknown> => ({
    kind: 'storage#object',
    id: `${bucket}/${o.name}/${o.generation}`,
    selfLink: `${url}/storage/v1/b/${bucket}/o/${encodeURIComponent(o.name)}`,
    mediaLink: `${url}/download/storage/v1/b/${bucket}/o/${encodeURIComponent(o.name)}?generation=${o.generation}&alt=media`,
    name: o.name,
    bucket,
    generation: String(o.generation),
    metageneration: '1',
    ...(o.contentType ? { contentType: o.contentType } : {}),
    storageClass: 'STANDARD',
    size: String(o.size),
    crc32c: crc32cBase64(o.crc32c),
    ...(o.md5 ? { md5Hash: o.md5 } : {}),
    ...(o.componentCount ? { componentCount: o.componentCount } : {}),
    etag: `e${o.generation}`,
    timeCreated: o.updated,
    updated: o.updated,
  });

  /** Makes the file at `path` the object `name`, replacing any previous version. */
  const install = async (name: string, path: string, fields: Omit<StoredObject, 'name' | 'path' | 'generation' | 'updated'>): Promise<StoredObject> => {
    const previous = objects.get(name);
    const o: StoredObject = { name, path, generation: generation++, updated: new Date().toISOString(), ...fields };
    objects.set(name, o);
    // Readers of the previous version hold an open descriptor; unlinking is safe.
    if (previous) await unlink(previous.path).catch(() => undefined);
    return o;
  };

  /** Checks `ifGenerationMatch` (0 = must not exist); answers 412 and returns false when it fails. */
  const preconditionOk = (res: ServerResponse, name: string, q: URLSearchParams): boolean => {
    const want = q.get('ifGenerationMatch');
    if (want === null) return true;
    const current = objects.get(name)?.generation ?? 0;
    if (String(current) === want) return true;
    error(res, 412, 'At least one of the pre-conditions you specified did not hold.', 'conditionNotMet');
    return false;
  };

  const readBody = async (req: IncomingMessage): Promise<Buffer> => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  };

  async function multipartUpload(req: IncomingMessage, res: ServerResponse, q: URLSearchParams): Promise<void> {
    const boundary = /boundary="?([^";]+)"?/i.exec(req.headers['content-type'] ?? '')?.[1];
    if (!boundary) return error(res, 400, 'multipart upload without a boundary', 'invalid');
    const body = await readBody(req);
    const delim = Buffer.from(`--${boundary}`);
    const parts: Buffer[] = [];
    let at = body.indexOf(delim);
    while (at >= 0) {
      const next = body.indexOf(delim, at + delim.length);
      if (next < 0) break;
      parts.push(body.subarray(at + delim.length, next));
      at = next;
    }
    const payloads = parts.map((p) => {
      const headerEnd = p.indexOf('\r\n\r\n');
      // Strip the CRLF that precedes the next delimiter.
      const end = p.length >= 2 && p[p.length - 2] === 0x0d && p[p.length - 1] === 0x0a ? p.length - 2 : p.length;
      return p.subarray(headerEnd + 4, end);
    });
    if (payloads.length < 2) return error(res, 400, 'multipart upload needs a metadata part and a media part', 'invalid');
    const meta = JSON.parse(payloads[0]!.toString('utf8') || '{}') as { name?: string; contentType?: string };
    const name = q.get('name') ?? meta.name;
    if (!name) return error(res, 400, 'object name required', 'required');
    if (!preconditionOk(res, name, q)) return;
    const data = payloads[1]!;
    const path = tempPath();
    const fh = await open(path, 'w');
    await fh.writeFile(data);
    await fh.close();
    const o = await install(name, path, {
      size: data.length,
      crc32c: crc32cUpdate(CRC32C_INIT, data),
      md5: createHash('md5').update(data).digest('base64'),
      contentType: meta.contentType,
      componentCount: undefined,
    });
    json(res, 200, resource(o));
  }

  async function startResumable(req: IncomingMessage, res: ServerResponse, q: URLSearchParams): Promise<void> {
    const raw = (await readBody(req)).toString('utf8');
    const meta = (raw ? JSON.parse(raw) : {}) as { name?: string; contentType?: string };
    const name = q.get('name') ?? meta.name;
    if (!name) return error(res, 400, 'object name required', 'required');
    if (!preconditionOk(res, name, q)) return;
    const id = randomBytes(12).toString('hex');
    const path = tempPath();
    await (await open(path, 'w')).close();
    sessions.set(id, { name, path, received: 0, crc: CRC32C_INIT, md5: createHash('md5'), contentType: meta.contentType });
    const location = `${url}/upload/storage/v1/b/${bucket}/o?uploadType=resumable&name=${encodeURIComponent(name)}&upload_id=${id}`;
    res.writeHead(200, { location, 'content-length': 0 });
    res.end();
  }

  async function resumableChunk(req: IncomingMessage, res: ServerResponse, id: string): Promise<void> {
    const s = sessions.get(id);
    if (!s) {
      await readBody(req);
      return error(res, 404, 'No such upload session', 'notFound');
    }
    // `bytes a-b/total`, `bytes a-*/total|*` (the rest of the object in this request), `bytes */total|*` (query or finalise).
    const cr = /^bytes (?:(\d+)-(\d+|\*)|\*)\/(\d+|\*)$/.exec(req.headers['content-range'] ?? 'bytes */*');
    if (!cr) {
      await readBody(req);
      return error(res, 400, `bad Content-Range ${req.headers['content-range']}`, 'invalid');
    }
    const start = cr[1] === undefined ? undefined : Number(cr[1]);
    const restOfObject = cr[2] === '*';
    let total = cr[3] === '*' ? undefined : Number(cr[3]);
    if (start !== undefined) {
      if (start !== s.received) {
        await readBody(req);
        return error(res, 400, `chunk starts at ${start}, session has ${s.received} bytes`, 'invalid');
      }
      const hasher = new Hasher(s.md5, s.crc);
      try {
        await pipeline(req, hasher, createWriteStream(s.path, { flags: 'a' }));
      } finally {
        // Keep what arrived, as GCS does: the client asks for the range and resumes.
        s.received += hasher.bytes;
        s.crc = hasher.crc;
      }
      if (restOfObject) total = s.received;
    } else {
      await readBody(req);
    }
    if (total === undefined || s.received < total) {
      res.writeHead(308, { ...(s.received > 0 ? { range: `bytes=0-${s.received - 1}` } : {}), 'content-length': 0 });
      res.end();
      return;
    }
    sessions.delete(id);
    const o = await install(s.name, s.path, { size: s.received, crc32c: s.crc, md5: s.md5.digest('base64'), contentType: s.contentType, componentCount: undefined });
    json(res, 200, resource(o));
  }

  async function media(req: IncomingMessage, res: ServerResponse, o: StoredObject): Promise<void> {
    const fh = await open(o.path, 'r'); // held open, so a concurrent replacement cannot pull the file away
    let start = 0;
    let end = o.size - 1;
    let status = 200;
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    if (req.headers.range && range) {
      start = Number(range[1]);
      end = range[2] ? Math.min(Number(range[2]), o.size - 1) : o.size - 1;
      if (start >= o.size) {
        await fh.close();
        res.writeHead(416, { 'content-range': `bytes */${o.size}`, 'content-length': 0 });
        res.end();
        return;
      }
      status = 206;
    }
    const hash = [`crc32c=${crc32cBase64(o.crc32c)}`, ...(o.md5 ? [`md5=${o.md5}`] : [])].join(',');
    res.writeHead(status, {
      'content-type': o.contentType ?? 'application/octet-stream',
      'content-length': Math.max(0, end - start + 1),
      'x-goog-hash': hash,
      'x-goog-stored-content-encoding': 'identity',
      'x-goog-generation': String(o.generation),
      ...(status === 206 ? { 'content-range': `bytes ${start}-${end}/${o.size}` } : {}),
    });
    if (o.size === 0 || end < start) {
      await fh.close();
      res.end();
      return;
    }
    await pipeline(fh.createReadStream({ start, end }), res).catch(() => undefined);
  }

  async function compose(req: IncomingMessage, res: ServerResponse, dest: string, q: URLSearchParams): Promise<void> {
    const body = JSON.parse((await readBody(req)).toString('utf8') || '{}') as {
      destination?: { contentType?: string };
      sourceObjects?: { name: string }[];
    };
    const sources = body.sourceObjects ?? [];
    if (sources.length < 1 || sources.length > 32) return error(res, 400, `compose takes 1 to 32 source objects, got ${sources.length}`, 'invalid');
    const found = sources.map((s) => objects.get(s.name));
    const missing = sources.find((_, i) => !found[i]);
    if (missing) return notFound(res, missing.name);
    if (!preconditionOk(res, dest, q)) return;
    const path = tempPath();
    const out = createWriteStream(path);
    let crc = CRC32C_INIT;
    let size = 0;
    for (const o of found as StoredObject[]) {
      const hasher = new Hasher(undefined, crc);
      const fh = await open(o.path, 'r');
      await pipeline(fh.createReadStream(), hasher, async (src: AsyncIterable<Buffer>) => {
        for await (const c of src) if (!out.write(c)) await new Promise<void>((r) => out.once('drain', () => r()));
      });
      crc = hasher.crc;
      size += hasher.bytes;
    }
    await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
    const componentCount = (found as StoredObject[]).reduce((n, o) => n + (o.componentCount ?? 1), 0);
    const o = await install(dest, path, { size, crc32c: crc, md5: undefined, contentType: body.destination?.contentType, componentCount });
    json(res, 200, resource(o));
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const u = new URL(req.url ?? '/', 'http://emulator');
    const q = u.searchParams;
    const segs = u.pathname.split('/').slice(1);
    const method = req.method ?? 'GET';
    const route = (name: string): void => count(`${method} ${name}`);
    const badBucket = (b: string | undefined): boolean => {
      if (b === bucket) return false;
      error(res, 404, 'The specified bucket does not exist.', 'notFound');
      return true;
    };

    // /upload/storage/v1/b/{b}/o
    if (segs[0] === 'upload' && segs[1] === 'storage' && segs[2] === 'v1' && segs[3] === 'b' && segs[5] === 'o' && segs.length === 6) {
      if (badBucket(decodeURIComponent(segs[4]!))) return;
      const uploadId = q.get('upload_id');
      if (method === 'POST' && q.get('uploadType') === 'multipart') return route('multipart'), multipartUpload(req, res, q);
      if (method === 'POST' && q.get('uploadType') === 'resumable' && !uploadId) return route('resumable-start'), startResumable(req, res, q);
      if (method === 'PUT' && uploadId) return route('resumable'), resumableChunk(req, res, uploadId);
      if (method === 'DELETE' && uploadId) {
        route('resumable-cancel');
        const s = sessions.get(uploadId);
        sessions.delete(uploadId);
        if (s) await rm(s.path, { force: true });
        res.writeHead(499, { 'content-length': 0 });
        res.end();
        return;
      }
    }

    // /storage/v1/b/{b}[/o[/{name}[/compose]]]
    if (segs[0] === 'storage' && segs[1] === 'v1' && segs[2] === 'b' && segs.length >= 4) {
      const b = decodeURIComponent(segs[3]!);
      if (segs.length === 4 && method === 'GET') {
        route('bucket');
        if (badBucket(b)) return;
        return json(res, 200, { kind: 'storage#bucket', id: bucket, name: bucket, location: 'EMULATOR', storageClass: 'STANDARD' });
      }
      if (segs[4] === 'o') {
        if (badBucket(b)) return;
        if (segs.length === 5 && method === 'GET') {
          route('list');
          const prefix = q.get('prefix') ?? '';
          const items = [...objects.values()].filter((o) => o.name.startsWith(prefix)).sort((x, y) => (x.name < y.name ? -1 : 1));
          return json(res, 200, { kind: 'storage#objects', items: items.map(resource) });
        }
        const name = decodeURIComponent(segs[5] ?? '');
        if (segs.length === 7 && segs[6] === 'compose' && method === 'POST') return route('compose'), compose(req, res, name, q);
        if (segs.length === 6) {
          const o = objects.get(name);
          if (method === 'GET') {
            route(q.get('alt') === 'media' ? 'media' : 'metadata');
            if (!o) return notFound(res, name);
            return q.get('alt') === 'media' ? media(req, res, o) : json(res, 200, resource(o));
          }
          if (method === 'DELETE') {
            route('delete');
            if (!o) return notFound(res, name);
            objects.delete(name);
            await unlink(o.path).catch(() => undefined);
            res.writeHead(204);
            res.end();
            return;
          }
        }
      }
    }

    // /{b}/{name…}: the path-style XML API URL a v4 signed URL names.
    if (method === 'GET' && segs.length >= 2 && decodeURIComponent(segs[0]!) === bucket && q.has('X-Goog-Signature')) {
      route('signed-get');
      const name = segs.slice(1).map(decodeURIComponent).join('/');
      const o = objects.get(name);
      if (!o) return notFound(res, name);
      return media(req, res, o);
    }

    route('unknown');
    console.warn(`[gcs-emulator] unsupported request: ${method} ${req.url}`);
    await readBody(req).catch(() => undefined);
    error(res, 501, `gcs emulator: ${method} ${u.pathname} is not emulated`, 'notImplemented');
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) error(res, 500, err instanceof Error ? err.message : String(err), 'backendError');
      else res.destroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url,
    bucket,
    calls,
    objectNames: () => [...objects.keys()],
    stop: async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await rm(dir, { recursive: true, force: true });
    },
  };
}
