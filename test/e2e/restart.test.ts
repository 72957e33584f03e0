/**
 * Restarts of a real drydock process on the same data dir: pushed images
 * survive, an upload session started before a SIGTERM is finished after the
 * restart, and a SIGTERM lets an in-flight upload complete before the exit.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startDrydock, stopAllDrydocks, type DrydockProcess } from '../helpers/drydock-process.js';
import { buildImage, readBlob, REF_NAME_ANNOTATION, sha256Digest } from '../helpers/oci-layout.js';
import { skopeoCopy, skopeoInspectRaw } from '../helpers/skopeo.js';

const PASSWORD = 'restart-e2e-password';
const ENV = { DRYDOCK_ADMIN_PASSWORD: PASSWORD };
const AUTH = `Basic ${Buffer.from(`admin:${PASSWORD}`).toString('base64')}`;

let tmp = '';
/** One data dir for the whole file: a new embedded database takes seconds to create, a reopen well under one. */
const dataDir = () => join(tmp, 'data');

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'e2e-restart-'));
});

afterAll(async () => {
  await stopAllDrydocks();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

interface HttpAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/**
 * One request with node:http, the body written chunk by chunk (honouring
 * backpressure) from `body`, so a test controls when bytes arrive.
 */
function request(
  url: string,
  opts: { method: string; headers?: Record<string, string>; body?: Buffer | AsyncIterable<Buffer>; agent?: http.Agent },
): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: opts.method, headers: { authorization: AUTH, ...opts.headers }, agent: opts.agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    const body = opts.body;
    if (body === undefined) req.end();
    else if (Buffer.isBuffer(body)) req.end(body);
    else {
      void (async () => {
        for await (const chunk of body) {
          if (!req.write(chunk)) await new Promise((r) => req.once('drain', r));
        }
        req.end();
      })().catch((e: unknown) => req.destroy(e as Error));
    }
  });
}

describe('drydock restarts', () => {
  it('serves images pushed before a SIGTERM after a restart on the same data dir', async () => {
    const dir = join(tmp, 'image');
    const img = await buildImage(dir, { tag: '1.0', layers: 3, layerSize: 16 * 1024, history: true });

    const first = await startDrydock({ dataDir: dataDir(), env: ENV });
    await skopeoCopy(`oci:${dir}:1.0`, `docker://${first.host}/docker-local/team/durable:1.0`, { destCreds: first.creds });
    expect(await first.stop()).toBe(0);
    expect(first.stdout()).toMatch(/drydock stopped/);

    const second = await startDrydock({ dataDir: dataDir(), env: ENV });
    try {
      const remote = await skopeoInspectRaw(`${second.host}/docker-local/team/durable:1.0`, second.creds);
      expect(remote.digest).toBe(img.manifestDigest);
      expect(remote.raw.equals(await readBlob(dir, img.manifestDigest))).toBe(true);
      const pulled = join(tmp, 'pulled');
      await skopeoCopy(`docker://${second.host}/docker-local/team/durable:1.0`, `oci:${pulled}:back`, { srcCreds: second.creds });
      const index = JSON.parse(await readFile(join(pulled, 'index.json'), 'utf8')) as {
        manifests: Array<{ digest: string; annotations?: Record<string, string> }>;
      };
      expect(index.manifests.find((m) => m.annotations?.[REF_NAME_ANNOTATION] === 'back')?.digest).toBe(img.manifestDigest);
      for (const d of [img.configDigest, ...img.layerDigests]) expect(sha256Digest(await readBlob(pulled, d))).toBe(d);
      // The second start found the admin user and the default repositories: nothing created again.
      expect(second.stdout()).not.toMatch(/created the admin user|created the default repositories/);
    } finally {
      expect(await second.stop()).toBe(0);
    }
  });

  describe('uploads across a restart', () => {
    const blob = randomBytes(3 * 1024 * 1024 + 123);
    const digest = sha256Digest(blob);
    const half = Math.floor(blob.length / 2);
    let location = '';
    let port = 0;
    let current: DrydockProcess | undefined;

    it('finishes a chunked upload session begun before a SIGTERM', async () => {
      const before = await startDrydock({ dataDir: dataDir(), env: ENV });
      port = before.port;
      const started = await request(`${before.url}/v2/docker-local/team/resumed/blobs/uploads/`, { method: 'POST' });
      expect(started.status).toBe(202);
      location = String(started.headers.location);
      expect(location).toMatch(/^\/v2\/docker-local\/team\/resumed\/blobs\/uploads\/[0-9a-f-]{36}$/);
      const first = await request(`${before.url}${location}`, {
        method: 'PATCH',
        headers: { 'content-type': 'application/octet-stream', 'content-range': `0-${half - 1}`, 'content-length': String(half) },
        body: blob.subarray(0, half),
      });
      expect(first.status).toBe(202);
      expect(first.headers.range).toBe(`0-${half - 1}`);
      expect(await before.stop('SIGTERM')).toBe(0);

      // Same port, so the Location the client holds is still the same URL.
      const after = await startDrydock({ dataDir: dataDir(), env: ENV, port });
      current = after;
      const status = await request(`${after.url}${location}`, { method: 'GET' });
      expect(status.status).toBe(204);
      expect(status.headers.range).toBe(`0-${half - 1}`);

      const second = await request(`${after.url}${location}`, {
        method: 'PATCH',
        headers: {
          'content-type': 'application/octet-stream',
          'content-range': `${half}-${blob.length - 1}`,
          'content-length': String(blob.length - half),
        },
        body: blob.subarray(half),
      });
      expect(second.status).toBe(202);
      expect(second.headers.range).toBe(`0-${blob.length - 1}`);
      const done = await request(`${after.url}${location}?digest=${encodeURIComponent(digest)}`, {
        method: 'PUT',
        headers: { 'content-length': '0' },
      });
      expect(done.status).toBe(201);
      expect(done.headers['docker-content-digest']).toBe(digest);
      expect(done.headers.location).toBe(`/v2/docker-local/team/resumed/blobs/${digest}`);

      const got = await request(`${after.url}/v2/docker-local/team/resumed/blobs/${digest}`, { method: 'GET' });
      expect(got.status).toBe(200);
      expect(got.headers['docker-content-digest']).toBe(digest);
      expect(got.body.equals(blob)).toBe(true);
      // The session is gone once committed.
      expect((await request(`${after.url}${location}`, { method: 'GET' })).status).toBe(404);
    });

    it('lets an in-flight upload finish on SIGTERM, refuses new connections meanwhile, and keeps the blob', async () => {
      if (!current) throw new Error('the previous test did not leave a process running');
      const p = current;
      const big = randomBytes(4 * 1024 * 1024);
      const bigDigest = sha256Digest(big);
      const pieces = 16;
      const piece = big.length / pieces;
      let sent = 0;
      async function* slowBody(): AsyncGenerator<Buffer> {
        for (let i = 0; i < pieces; i++) {
          yield big.subarray(i * piece, (i + 1) * piece);
          sent = i + 1;
          await sleep(60);
        }
      }
      // A keep-alive agent, as real clients use: the process must not wait for the idle connection.
      const agent = new http.Agent({ keepAlive: true });
      try {
        const upload = request(`${p.url}/v2/docker-local/team/in-flight/blobs/uploads/?digest=${encodeURIComponent(bigDigest)}`, {
          method: 'POST',
          headers: { 'content-type': 'application/octet-stream', 'content-length': String(big.length) },
          body: slowBody(),
          agent,
        });
        while (sent < 3) await sleep(10);
        const termAt = Date.now();
        expect(p.child.kill('SIGTERM')).toBe(true);
        // The server stops listening right after it logs the shutdown.
        while (!/"msg":"shutting down"/.test(p.stdout())) await sleep(10);
        await sleep(20);
        // No new connections once the shutdown began.
        await expect(fetch(`${p.url}/v2/`)).rejects.toThrow();
        expect(sent).toBeLessThan(pieces);

        const answer = await upload;
        expect(answer.status).toBe(201);
        expect(answer.headers['docker-content-digest']).toBe(bigDigest);
        expect(await p.exited).toBe(0);
        // Exits once the upload is answered, not after the 10 s shutdown timeout.
        expect(Date.now() - termAt).toBeLessThan(5000);
      } finally {
        agent.destroy();
      }
      await p.stop();

      const again = await startDrydock({ dataDir: dataDir(), env: ENV, port });
      const head = await request(`${again.url}/v2/docker-local/team/in-flight/blobs/${bigDigest}`, { method: 'HEAD' });
      expect(head.status).toBe(200);
      expect(head.headers['content-length']).toBe(String(big.length));
      expect(head.headers['docker-content-digest']).toBe(bigDigest);
      const got = await request(`${again.url}/v2/docker-local/team/in-flight/blobs/${bigDigest}`, { method: 'GET' });
      expect(sha256Digest(got.body)).toBe(bigDigest);
      expect(await again.stop()).toBe(0);
    });
  });
});
