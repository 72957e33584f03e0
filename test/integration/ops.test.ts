import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestRegistry, ADMIN_AUTH, type TestRegistry } from '../helpers/registry.js';
import { bytesOf, pushBlob, pushImage, sha256, uniqueImage } from '../helpers/oci-client.js';

let reg: TestRegistry;

beforeAll(async () => {
  reg = await startTestRegistry();
});
afterAll(async () => {
  await reg?.close();
});

/** `name{labels} value` lines of the Prometheus text, as [labels, value] for one metric name. */
function samples(text: string, metric: string): Array<[Record<string, string>, number]> {
  const out: Array<[Record<string, string>, number]> = [];
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== metric) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    out.push([labels, Number(m[3])]);
  }
  return out;
}

function value(text: string, metric: string, labels: Record<string, string>): number | undefined {
  const hit = samples(text, metric).find(([l]) => Object.entries(labels).every(([k, v]) => l[k] === v));
  return hit?.[1];
}

describe('/metrics', () => {
  it('exposes request, storage and upload metrics with route templates as labels', async () => {
    const name = `docker-local/${uniqueImage('metrics')}`;
    const big = Buffer.alloc(1024 * 1024, 'm');
    const { digest } = await pushBlob(reg, name, big);
    const img = await pushImage(reg, name, 'v1');
    const pulled = await reg.fetch(`/v2/${name}/blobs/${digest}`);
    expect((await bytesOf(pulled)).length).toBe(big.length);
    await (await reg.fetch(`/v2/${name}/manifests/v1`)).arrayBuffer();
    await (await reg.fetch(`/api/repositories/docker-local`)).arrayBuffer();
    await (await reg.fetch(`/v2/${name}/nothing-here`)).arrayBuffer();

    const r = await reg.fetch('/metrics', { auth: null });
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await r.text();

    const requests = samples(text, 'drydock_http_requests_total');
    const routes = new Set(requests.map(([l]) => l.route));
    for (const route of [
      '/v2/{name}/blobs/uploads/',
      '/v2/{name}/manifests/{reference}',
      '/v2/{name}/blobs/{digest}',
      '/api/repositories/:key',
      'unmatched',
    ]) {
      expect(routes).toContain(route);
    }
    // Labels are templates, never concrete names, digests or tags (bounded cardinality).
    for (const route of routes) {
      expect(route).not.toContain(name.split('/')[1]);
      expect(route).not.toContain('sha256');
    }
    expect(value(text, 'drydock_http_requests_total', { route: '/v2/{name}/blobs/uploads/', method: 'POST', status: '201' })).toBeGreaterThanOrEqual(3);
    expect(value(text, 'drydock_http_requests_total', { route: '/v2/{name}/manifests/{reference}', method: 'PUT', status: '201' })).toBe(1);
    expect(value(text, 'drydock_http_requests_total', { route: '/v2/{name}/manifests/{reference}', method: 'GET', status: '200' })).toBe(1);
    expect(value(text, 'drydock_http_requests_total', { route: 'unmatched', method: 'GET', status: '404' })).toBe(1);

    expect(value(text, 'drydock_http_request_duration_seconds_count', { route: '/v2/{name}/blobs/{digest}', method: 'GET', status: '200' })).toBe(1);
    expect(value(text, 'drydock_http_request_duration_seconds_bucket', { route: '/v2/{name}/blobs/{digest}', method: 'GET', status: '200', le: '+Inf' })).toBe(1);

    for (const action of ['createUpload', 'appendUpload', 'commitUpload', 'read']) {
      expect(value(text, 'drydock_storage_operation_duration_seconds_count', { driver: 'filesystem', action, outcome: 'ok' })).toBeGreaterThanOrEqual(1);
    }
    expect(value(text, 'drydock_upload_duration_seconds_count', { outcome: 'completed' })).toBeGreaterThanOrEqual(3);

    // Bytes in and out, by route: at least the megabyte pushed and pulled (headers included).
    expect(value(text, 'drydock_http_request_bytes_total', { route: '/v2/{name}/blobs/uploads/' })).toBeGreaterThanOrEqual(big.length);
    expect(value(text, 'drydock_http_response_bytes_total', { route: '/v2/{name}/blobs/{digest}' })).toBeGreaterThanOrEqual(big.length);
    expect(value(text, 'drydock_http_request_bytes_total', { route: '/v2/{name}/manifests/{reference}' })).toBeGreaterThanOrEqual(img.manifest.length);
  });
});

describe('/readyz', () => {
  it('is 200 with every check ok', async () => {
    const r = await reg.fetch('/readyz', { auth: null });
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ status: 'ok', database: 'ok', storage: 'ok' });
  });

  it('is ready on a fresh data dir, before anything was stored', async () => {
    const fresh = await startTestRegistry({ store: reg.running.services.store });
    try {
      const r = await fresh.fetch('/readyz', { auth: null });
      expect(await r.json()).toEqual({ status: 'ok', database: 'ok', storage: 'ok' });
      expect(r.status).toBe(200);
    } finally {
      await fresh.close();
    }
  });

  it('is 503 when the storage root is gone or is not a directory, and recovers', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'drydock-readyz-'));
    const other = await startTestRegistry({ store: reg.running.services.store, dataDir });
    const root = join(dataDir, 'blobs');
    const down = { status: 'unavailable', database: 'ok', storage: 'unavailable' };
    try {
      await pushBlob(other, `docker-local/${uniqueImage('ready')}`, 'something stored');
      expect((await other.fetch('/readyz', { auth: null })).status).toBe(200);

      await rm(root, { recursive: true, force: true });
      const gone = await other.fetch('/readyz', { auth: null });
      expect(gone.status).toBe(503);
      expect(await gone.json()).toEqual(down);

      // A regular file where the root should be (chmod cannot make anything unwritable for root).
      await writeFile(root, 'not a directory');
      const file = await other.fetch('/readyz', { auth: null });
      expect(file.status).toBe(503);
      expect(await file.json()).toEqual(down);
      // Writes fail with a clean 503 UNAVAILABLE as well.
      const write = await other.fetch(`/v2/docker-local/${uniqueImage('ready')}/blobs/uploads/`, { method: 'POST' });
      expect(write.status).toBe(503);
      expect((await write.json()).errors[0].code).toBe('UNAVAILABLE');

      await rm(root, { force: true });
      await mkdir(root);
      const back = await other.fetch('/readyz', { auth: null });
      expect(back.status).toBe(200);
      expect(await back.json()).toEqual({ status: 'ok', database: 'ok', storage: 'ok' });
    } finally {
      await other.close();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});

describe('X-Request-Id', () => {
  it('echoes a request id the client sends', async () => {
    const r = await reg.fetch('/v2/', { headers: { 'x-request-id': 'trace-abc.123_x' } });
    expect(r.headers.get('x-request-id')).toBe('trace-abc.123_x');
    const err = await reg.fetch('/v2/', { auth: null, headers: { 'x-request-id': 'on-errors-too' } });
    expect(err.status).toBe(401);
    expect(err.headers.get('x-request-id')).toBe('on-errors-too');
    const api = await reg.fetch('/api/repositories', { headers: { 'x-request-id': 'api-1' } });
    expect(api.headers.get('x-request-id')).toBe('api-1');
  });

  it('generates one otherwise (and for ids that are not safe to log)', async () => {
    const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
    const a = await reg.fetch('/healthz');
    const b = await reg.fetch('/healthz');
    expect(a.headers.get('x-request-id')).toMatch(uuid);
    expect(b.headers.get('x-request-id')).toMatch(uuid);
    expect(a.headers.get('x-request-id')).not.toBe(b.headers.get('x-request-id'));
    const unsafe = await reg.fetch('/healthz', { headers: { 'x-request-id': 'has spaces{and}braces' } });
    expect(unsafe.headers.get('x-request-id')).toMatch(uuid);
    const long = await reg.fetch('/healthz', { headers: { 'x-request-id': 'x'.repeat(129) } });
    expect(long.headers.get('x-request-id')).toMatch(uuid);
  });
});

describe('graceful shutdown', () => {
  it('finishes an in-flight streamed PATCH with 202 and refuses new connections', async () => {
    const other = await startTestRegistry({ store: reg.running.services.store, dataDir: reg.dataDir });
    const name = `docker-local/${uniqueImage('shutdown')}`;
    const start = await other.fetch(`/v2/${name}/blobs/uploads/`, { method: 'POST' });
    expect(start.status).toBe(202);
    const loc = start.headers.get('location')!;
    const chunk = Buffer.alloc(64 * 1024, 's');

    // A raw request, so the test decides when each part of the body goes out.
    const arrived = new Promise((resolve) => other.running.server.once('request', resolve));
    const inflight = request(`${other.url}${loc}`, {
      method: 'PATCH',
      headers: { authorization: ADMIN_AUTH, 'content-type': 'application/octet-stream', 'transfer-encoding': 'chunked' },
    });
    const response = new Promise<{ status: number; range: string | undefined }>((resolve, reject) => {
      inflight.on('response', (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode!, range: res.headers.range as string | undefined }));
      });
      inflight.on('error', reject);
    });
    inflight.write(chunk);
    await arrived;
    // Let the handler get into the append (the first chunk is being written).
    await new Promise((resolve) => setTimeout(resolve, 50));

    const closing = other.close();
    // New connections are refused once the listener is closed.
    await expect(fetch(`${other.url}/healthz`)).rejects.toThrow();

    inflight.write(chunk);
    inflight.end(chunk);
    const done = await response;
    expect(done).toEqual({ status: 202, range: `0-${3 * chunk.length - 1}` });
    await closing;

    // The upload is whole: finish it from the first registry (same database and storage).
    const data = Buffer.concat([chunk, chunk, chunk]);
    const put = await reg.fetch(`${loc}?digest=${sha256(data)}`, { method: 'PUT' });
    expect(put.status).toBe(201);
  });
});
