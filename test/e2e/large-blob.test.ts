/**
 * A 1 GiB blob through a real drydock process: 64 chunked PATCHes of 16 MiB
 * (Content-Range), then a streamed GET, with the server's peak RSS measured
 * throughout. Neither side ever holds the blob in memory: the test generates
 * the bytes chunk by chunk and hashes them as they go.
 *
 * Run twice: with metadata on the PostgreSQL server (DATABASE_URL), where the
 * peak must stay under 200 MiB, and on the embedded database, where PGlite's
 * WebAssembly PostgreSQL alone keeps ~100 MiB resident whatever the blob size,
 * so the bound is on growth: the peak may exceed the idle RSS by 64 MiB at most.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createHash } from 'node:crypto';
import http from 'node:http';
import { startDrydock, stopAllDrydocks, type DrydockProcess } from '../helpers/drydock-process.js';
import { pseudoRandomChunks } from '../helpers/oci-layout.js';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js';

const MiB = 1024 * 1024;
const CHUNK = 16 * MiB;
const CHUNKS = 64;
const TOTAL = CHUNK * CHUNKS; // 1 GiB
const RSS_LIMIT_KIB = 200 * 1024;
const GROWTH_LIMIT_KIB = 64 * 1024;
const IMAGE = 'docker-local/team/huge';

let db: TestDatabase | undefined;
let dd: DrydockProcess | undefined;
let digest = '';
/** The process's RSS before the upload: the embedded database's bound is relative to it. */
let idleKiB = 0;

afterAll(async () => {
  await stopAllDrydocks();
  await db?.drop();
});

function drydock(): DrydockProcess {
  if (!dd) throw new Error('drydock not started');
  return dd;
}

/**
 * Samples the process's VmRSS every 50 ms and resets its VmHWM, so `peakKiB()`
 * is the highest of the samples and the kernel's own high-water mark since.
 */
function watchMemory(p: DrydockProcess): { peakKiB(): number; stop(): number } {
  p.resetPeak();
  let max = p.rssKiB();
  const timer = setInterval(() => {
    max = Math.max(max, p.rssKiB());
  }, 50);
  const peakKiB = () => Math.max(max, p.hwmKiB());
  return {
    peakKiB,
    stop: () => {
      clearInterval(timer);
      return peakKiB();
    },
  };
}

/** One request; the body is written from `body` chunk by chunk with backpressure; the answer's body is passed to `onData`. */
function request(
  url: string,
  opts: { method: string; headers?: Record<string, string>; body?: Iterable<Buffer>; onData?: (chunk: Buffer) => void },
): Promise<{ status: number; headers: http.IncomingHttpHeaders; bytes: number }> {
  const p = drydock();
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: opts.method, headers: { authorization: p.authorization, ...opts.headers } }, (res) => {
      let bytes = 0;
      res.on('data', (c: Buffer) => {
        bytes += c.length;
        opts.onData?.(c);
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, bytes }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (!opts.body) {
      req.end();
      return;
    }
    const chunks = opts.body[Symbol.iterator]();
    const pump = (): void => {
      for (;;) {
        const next = chunks.next();
        if (next.done) {
          req.end();
          return;
        }
        if (!req.write(next.value)) {
          req.once('drain', pump);
          return;
        }
      }
    };
    pump();
  });
}

/** `count` items of an iterator (which stays open for the next call). */
function* take<T>(it: Iterator<T>, count: number): Generator<T> {
  for (let i = 0; i < count; i++) {
    const next = it.next();
    if (next.done) throw new Error('the generator ended early');
    yield next.value;
  }
}

const mib = (kib: number) => Math.round(kib / 1024);

describe.each([
  { mode: 'PostgreSQL server', limit: () => RSS_LIMIT_KIB },
  { mode: 'embedded database', limit: () => idleKiB + GROWTH_LIMIT_KIB },
])('a 1 GiB blob through a drydock process ($mode)', ({ mode, limit }) => {
  beforeAll(async () => {
    await stopAllDrydocks();
    digest = '';
    if (mode === 'PostgreSQL server') {
      db = await createTestDatabase();
      dd = await startDrydock({ databaseUrl: db.url });
    } else {
      dd = await startDrydock();
    }
    idleKiB = dd.rssKiB();
  }, 60_000);

  it('takes 64 chunked PATCHes of 16 MiB with flat memory and serves the right digest', async () => {
    const p = drydock();
    const started = await request(`${p.url}/v2/${IMAGE}/blobs/uploads/`, { method: 'POST' });
    expect(started.status).toBe(202);
    const location = String(started.headers.location);

    const source = pseudoRandomChunks(TOTAL, 'drydock-large-blob')[Symbol.iterator]();
    const hash = createHash('sha256');
    const before = p.rssKiB();
    const memory = watchMemory(p);
    const t0 = Date.now();
    for (let i = 0; i < CHUNKS; i++) {
      const start = i * CHUNK;
      const body = (function* () {
        for (const chunk of take(source, CHUNK / MiB)) {
          if (chunk.length !== MiB) throw new Error(`unexpected chunk size ${chunk.length}`);
          hash.update(chunk);
          yield chunk;
        }
      })();
      const res = await request(`${p.url}${location}`, {
        method: 'PATCH',
        headers: {
          'content-type': 'application/octet-stream',
          'content-range': `${start}-${start + CHUNK - 1}`,
          'content-length': String(CHUNK),
        },
        body,
      });
      expect(res.status).toBe(202);
      expect(res.headers.range).toBe(`0-${start + CHUNK - 1}`);
    }
    digest = `sha256:${hash.digest('hex')}`;
    const done = await request(`${p.url}${location}?digest=${encodeURIComponent(digest)}`, {
      method: 'PUT',
      headers: { 'content-length': '0' },
    });
    const seconds = (Date.now() - t0) / 1000;
    const peak = memory.stop();
    expect(done.status).toBe(201);
    expect(done.headers['docker-content-digest']).toBe(digest);
    console.log(
      `[${mode}] peak RSS during 1 GiB chunked upload: ${mib(peak)} MiB (RSS before: ${mib(before)} MiB, after: ${mib(p.rssKiB())} MiB; ${Math.round(1024 / seconds)} MiB/s)`,
    );
    expect(peak).toBeLessThan(limit());

    const head = await request(`${p.url}/v2/${IMAGE}/blobs/${digest}`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers['docker-content-digest']).toBe(digest);
    expect(head.headers['content-length']).toBe(String(TOTAL));
  }, 100_000);

  it('streams the 1 GiB blob back with GET with flat memory', async () => {
    const p = drydock();
    if (!digest) throw new Error('the upload test did not run');
    const hash = createHash('sha256');
    const before = p.rssKiB();
    const memory = watchMemory(p);
    const t0 = Date.now();
    const res = await request(`${p.url}/v2/${IMAGE}/blobs/${digest}`, { method: 'GET', onData: (c) => hash.update(c) });
    const seconds = (Date.now() - t0) / 1000;
    const peak = memory.stop();
    expect(res.status).toBe(200);
    expect(res.bytes).toBe(TOTAL);
    expect(`sha256:${hash.digest('hex')}`).toBe(digest);
    console.log(`[${mode}] peak RSS during 1 GiB streamed GET: ${mib(peak)} MiB (RSS before: ${mib(before)} MiB; ${Math.round(1024 / seconds)} MiB/s)`);
    expect(peak).toBeLessThan(limit());
  }, 60_000);
});
