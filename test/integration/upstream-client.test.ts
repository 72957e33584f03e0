/**
 * HttpUpstream against real upstreams — the CNCF distribution registry
 * (anonymous, then htpasswd Basic) and an in-process drydock (Docker token
 * auth) — and against small node:http servers in this file that misbehave on
 * purpose (5xx, 429, hanging, lying digests, self-signed TLS) or stand in for a
 * forward proxy and a CDN.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import http, { type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { remoteRepositorySchema, type RemoteRepositoryConfig } from '../../src/core/config/repository.js';
import { silentLogger } from '../../src/core/log.js';
import { createMetrics, type Metrics } from '../../src/core/metrics.js';
import { MediaTypes } from '../../src/core/oci/media-types.js';
import { SecretBox } from '../../src/core/secrets.js';
import { HttpUpstream, MANIFEST_ACCEPT, type BreakerOptions } from '../../src/registry/repos/upstream-client.js';
import { UpstreamDeniedError, UpstreamUnavailableError } from '../../src/registry/repos/upstream.js';
import { startCncfRegistry, type CncfRegistry } from '../helpers/cncf-registry.js';
import { basic, pushImage, sha256, uniqueImage, type PushedImage } from '../helpers/oci-client.js';
import { ADMIN_AUTH, ADMIN_PASSWORD, startTestRegistry, type TestRegistry } from '../helpers/registry.js';

// ---------------------------------------------------------------- helpers

const clients: HttpUpstream[] = [];

afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
});

function remote(over: Partial<RemoteRepositoryConfig> & { url: string }): RemoteRepositoryConfig {
  return remoteRepositorySchema.parse({ key: 'up', rclass: 'remote', ...over });
}

function client(
  over: Partial<RemoteRepositoryConfig> & { url: string },
  extra: { breaker?: BreakerOptions; repository?: string } = {},
): { up: HttpUpstream; metrics: Metrics } {
  const metrics = createMetrics();
  const up = new HttpUpstream({ repository: extra.repository ?? 'up', config: remote(over), metrics, log: silentLogger(), breaker: extra.breaker });
  clients.push(up);
  return { up, metrics };
}

/** Upstream requests the client counted, optionally only those with this method/status. */
async function counted(metrics: Metrics, match: { method?: string; status?: string } = {}): Promise<number> {
  const { values } = await metrics.upstreamRequests.get();
  return values
    .filter((v) => (!match.method || v.labels.method === match.method) && (!match.status || v.labels.status === match.status))
    .reduce((n, v) => n + v.value, 0);
}

async function hashStream(body: Readable): Promise<{ digest: string; size: number }> {
  const h = createHash('sha256');
  let size = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    h.update(chunk);
    size += chunk.length;
  }
  return { digest: `sha256:${h.digest('hex')}`, size };
}

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
}

interface Fake {
  url: string;
  server: Server;
  seen: Seen[];
  connections: number;
  close(): Promise<void>;
}

/** A node:http(s) server on a free port that records every request and TCP connection. */
async function fake(
  handler: (req: IncomingMessage, res: ServerResponse, self: Fake) => void,
  tls?: { key: string; cert: string },
): Promise<Fake> {
  const self = { seen: [] as Seen[], connections: 0 } as Fake;
  const server = tls ? https.createServer(tls) : http.createServer();
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    self.seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    handler(req, res, self);
  });
  server.on('connection', () => self.connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  self.url = `${tls ? 'https' : 'http'}://127.0.0.1:${port}`;
  self.server = server;
  self.close = async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return self;
}

const fakes: Fake[] = [];
async function track(f: Promise<Fake>): Promise<Fake> {
  const done = await f;
  fakes.push(done);
  return done;
}
afterAll(async () => {
  await Promise.all(fakes.map((f) => f.close()));
});

/** A one-layer OCI image manifest over the given blobs. */
function ociManifestOf(config: Buffer, layer: Buffer, mediaType: string = MediaTypes.ociManifest): Buffer {
  const cfgType = mediaType === MediaTypes.dockerManifest ? MediaTypes.dockerConfig : MediaTypes.ociConfig;
  const layerType =
    mediaType === MediaTypes.dockerManifest ? 'application/vnd.docker.image.rootfs.diff.tar.gzip' : 'application/vnd.oci.image.layer.v1.tar';
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType,
      config: { mediaType: cfgType, digest: sha256(config), size: config.length },
      layers: [{ mediaType: layerType, digest: sha256(layer), size: layer.length }],
    }),
  );
}

/** Pushes blobs and a manifest to a CNCF registry with plain HTTP: monolithic POST (or POST + PUT when it insists on a session). */
async function cncfPush(base: string, name: string, tags: string[], auth?: string, manifestType: string = MediaTypes.ociManifest) {
  const headers: Record<string, string> = auth ? { authorization: auth } : {};
  const pushBlobTo = async (data: Buffer): Promise<void> => {
    const digest = sha256(data);
    let r = await fetch(`${base}/v2/${name}/blobs/uploads/?digest=${digest}`, {
      method: 'POST',
      body: new Uint8Array(data),
      headers: { ...headers, 'content-type': 'application/octet-stream' },
    });
    if (r.status === 202) {
      await r.arrayBuffer();
      const location = new URL(r.headers.get('location')!, base);
      location.searchParams.set('digest', digest);
      r = await fetch(location, { method: 'PUT', body: new Uint8Array(data), headers: { ...headers, 'content-type': 'application/octet-stream' } });
    }
    expect(r.status).toBe(201);
    await r.arrayBuffer();
  };
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, salt: Math.random() }));
  // Big enough to need several chunks on the wire.
  const layer = Buffer.alloc(3 * 1024 * 1024 + 17, `${name} layer ${Math.random()}`);
  await pushBlobTo(config);
  await pushBlobTo(layer);
  const manifest = ociManifestOf(config, layer, manifestType);
  for (const tag of tags) {
    const r = await fetch(`${base}/v2/${name}/manifests/${tag}`, {
      method: 'PUT',
      body: new Uint8Array(manifest),
      headers: { ...headers, 'content-type': manifestType },
    });
    expect(r.status).toBe(201);
    await r.arrayBuffer();
  }
  return { manifest, digest: sha256(manifest), config, layer, layerDigest: sha256(layer), mediaType: manifestType };
}

const MISSING = `sha256:${'0'.repeat(64)}`;

// ---------------------------------------------------------------- CNCF registry, anonymous

describe('against the CNCF registry (anonymous)', () => {
  let reg: CncfRegistry;
  let img: Awaited<ReturnType<typeof cncfPush>>;
  let docker: Awaited<ReturnType<typeof cncfPush>>;
  let up: HttpUpstream;
  let metrics: Metrics;

  beforeAll(async () => {
    reg = await startCncfRegistry();
    img = await cncfPush(reg.url, 'team/app', ['v1', 'v2', 'v3']);
    docker = await cncfPush(reg.url, 'team/docker', ['latest'], undefined, MediaTypes.dockerManifest);
    ({ up, metrics } = client({ url: `${reg.url}/` }));
  });
  afterAll(async () => {
    await reg?.stop();
  });

  it('HEADs and GETs a manifest by tag and by digest', async () => {
    const info = { digest: img.digest, mediaType: MediaTypes.ociManifest, size: img.manifest.length };
    expect(await up.headManifest('team/app', 'v1')).toEqual(info);
    expect(await up.headManifest('team/app', img.digest)).toEqual(info);
    for (const ref of ['v2', img.digest]) {
      const m = await up.getManifest('team/app', ref);
      expect(m).toEqual({ ...info, body: img.manifest });
    }
    const d = await up.getManifest('team/docker', 'latest');
    expect(d?.mediaType).toBe(MediaTypes.dockerManifest);
    expect(d?.digest).toBe(docker.digest);
  });

  it('streams a blob (hashed while read) and HEADs it', async () => {
    const blob = await up.getBlob('team/app', img.layerDigest);
    expect(blob?.size).toBe(img.layer.length);
    expect(await hashStream(blob!.body)).toEqual({ digest: img.layerDigest, size: img.layer.length });
    expect(await up.headBlob('team/app', img.layerDigest)).toEqual({ size: img.layer.length });
  });

  it('answers undefined for what the upstream does not have', async () => {
    expect(await up.headManifest('team/app', 'nope')).toBeUndefined();
    expect(await up.getManifest('team/app', MISSING)).toBeUndefined();
    expect(await up.getManifest('team/nothing', 'v1')).toBeUndefined();
    expect(await up.headBlob('team/app', MISSING)).toBeUndefined();
    expect(await up.getBlob('team/app', MISSING)).toBeUndefined();
    expect(await up.listTags('team/nothing', {})).toBeUndefined();
    expect(up.isDown()).toBe(false);
  });

  it('lists tags', async () => {
    // distribution 2.8 ignores `n` and `last` (paging is tested against drydock below).
    expect(await up.listTags('team/app', {})).toEqual({ tags: ['v1', 'v2', 'v3'], more: false });
  });

  it('counts every request by method and status', async () => {
    expect(await counted(metrics, { method: 'HEAD', status: '200' })).toBeGreaterThanOrEqual(3);
    expect(await counted(metrics, { method: 'GET', status: '404' })).toBeGreaterThanOrEqual(3);
    expect(await metrics.registry.metrics()).toMatch(/drydock_upstream_requests_total\{repository="up",method="GET",status="200"\} \d+/);
  });
});

// ---------------------------------------------------------------- CNCF registry, htpasswd

describe('against the CNCF registry with htpasswd (Basic)', () => {
  let reg: CncfRegistry;
  let img: Awaited<ReturnType<typeof cncfPush>>;

  beforeAll(async () => {
    reg = await startCncfRegistry({ htpasswd: { user: 'puller', pass: 'pull-secret' } });
    img = await cncfPush(reg.url, 'private/app', ['v1'], basic('puller', 'pull-secret'));
  });
  afterAll(async () => {
    await reg?.stop();
  });

  it('answers the Basic challenge once, then sends the credentials up front', async () => {
    const { up, metrics } = client({ url: reg.url, username: 'puller', password: 'pull-secret' });
    expect((await up.getManifest('private/app', 'v1'))?.digest).toBe(img.digest);
    expect(await up.headManifest('private/app', img.digest)).toEqual({
      digest: img.digest,
      mediaType: MediaTypes.ociManifest,
      size: img.manifest.length,
    });
    expect(await hashStream((await up.getBlob('private/app', img.layerDigest))!.body)).toEqual({ digest: img.layerDigest, size: img.layer.length });
    expect(await up.listTags('private/app', {})).toEqual({ tags: ['v1'], more: false });
    expect(await counted(metrics, { status: '401' })).toBe(1);
  });

  it('is denied without credentials, and with wrong ones', async () => {
    await expect(client({ url: reg.url }).up.getManifest('private/app', 'v1')).rejects.toThrow(UpstreamDeniedError);
    const wrong = client({ url: reg.url, username: 'puller', password: 'wrong' }).up;
    await expect(wrong.headManifest('private/app', 'v1')).rejects.toMatchObject({ name: 'UpstreamDeniedError', status: 401 });
    // A refusal is an answer: it never marks the upstream down.
    for (let i = 0; i < 6; i++) await expect(wrong.headBlob('private/app', img.layerDigest)).rejects.toThrow(UpstreamDeniedError);
    expect(wrong.isDown()).toBe(false);
  });
});

// ---------------------------------------------------------------- drydock, Docker token auth

/**
 * A reverse proxy in front of a drydock that keeps the Host header (so the
 * token realm drydock advertises points back through it) and records every
 * request. With `challengeAnonymous` it behaves like Docker Hub: a registry
 * request without credentials is challenged even where anonymous reads are
 * allowed (drydock itself serves those straight away).
 */
async function tokenFront(target: string, opts: { challengeAnonymous?: boolean } = {}): Promise<Fake> {
  return track(
    fake((req, res, self) => {
      const m = /^\/v2\/(.+)\/(?:manifests|blobs|tags)\//.exec(req.url ?? '');
      if (opts.challengeAnonymous && m && !req.headers.authorization) {
        res.writeHead(401, {
          'www-authenticate': `Bearer realm="${self.url}/v2/token",service="drydock",scope="repository:${m[1]}:pull"`,
        });
        res.end();
        return;
      }
      const upstream = http.request(`${target}${req.url}`, { method: req.method, headers: req.headers }, (ur) => {
        res.writeHead(ur.statusCode ?? 502, ur.headers);
        ur.pipe(res);
      });
      upstream.on('error', () => res.destroy());
      req.pipe(upstream);
    }),
  );
}

const tokenRequests = (f: Fake) => f.seen.filter((s) => s.url.startsWith('/v2/token'));

describe('against a drydock (Bearer token flow)', () => {
  let reg: TestRegistry;
  let front: Fake;
  let image: string;
  let img: PushedImage;
  let other: string;

  beforeAll(async () => {
    reg = await startTestRegistry();
    image = uniqueImage('up');
    other = uniqueImage('up2');
    img = await pushImage(reg, `docker-local/${image}`, 'v1');
    await pushImage(reg, `docker-local/${image}`, 'v2');
    await pushImage(reg, `docker-local/${other}`, 'v1');
    front = await tokenFront(reg.url);
  });
  afterAll(async () => {
    await reg?.close();
  });

  it('pulls with a token, fetched once and reused for the scope', async () => {
    const { up, metrics } = client({ url: front.url, username: 'admin', password: ADMIN_PASSWORD });
    const name = `docker-local/${image}`;
    const info = { digest: img.digest, mediaType: MediaTypes.ociManifest, size: img.manifest.length };
    expect(await up.headManifest(name, 'v1')).toEqual(info);
    expect(await up.headManifest(name, img.digest)).toEqual(info);
    expect(await up.getManifest(name, 'v1')).toEqual({ ...info, body: img.manifest });
    expect(await up.getManifest(name, img.digest)).toEqual({ ...info, body: img.manifest });
    expect(await up.headBlob(name, img.layer.digest)).toEqual({ size: img.layer.size });
    const blob = await up.getBlob(name, img.layer.digest);
    expect(await hashStream(blob!.body)).toEqual({ digest: img.layer.digest, size: img.layer.size });
    expect(await up.listTags(name, {})).toEqual({ tags: ['v1', 'v2'], more: false });
    expect(await up.listTags(name, { n: 1 })).toEqual({ tags: ['v1'], more: true });
    expect(await up.getManifest(name, 'nope')).toBeUndefined();
    expect(await up.headBlob(name, MISSING)).toBeUndefined();
    expect(await up.getManifest('nope-repo/x', 'v1')).toBeUndefined();

    const tokens = tokenRequests(front);
    expect(tokens.length).toBeGreaterThanOrEqual(1);
    const forImage = tokens.filter((t) => new URL(t.url, front.url).searchParams.get('scope') === `repository:${name}:pull`);
    expect(forImage).toHaveLength(1);
    expect(new URL(forImage[0]!.url, front.url).searchParams.get('service')).toBe('drydock');
    expect(forImage[0]!.headers.authorization).toBe(ADMIN_AUTH);
    // Only the very first request met a 401 (plus the one for 'nope-repo', a scope of its own, fetched ahead).
    expect(await counted(metrics, { status: '401' })).toBe(1);

    // Another image: its token is fetched ahead of the request, no 401 round trip.
    const before = tokenRequests(front).length;
    expect((await up.headManifest(`docker-local/${other}`, 'v1'))?.mediaType).toBe(MediaTypes.ociManifest);
    expect(await up.headManifest(`docker-local/${other}`, 'v1')).toBeDefined();
    expect(tokenRequests(front).length).toBe(before + 1);
    expect(await counted(metrics, { status: '401' })).toBe(1);
  });

  it('is denied with a wrong password, and anonymously when the upstream does not allow it', async () => {
    const wrong = client({ url: front.url, username: 'admin', password: 'wrong' }).up;
    await expect(wrong.getManifest(`docker-local/${image}`, 'v1')).rejects.toMatchObject({ name: 'UpstreamDeniedError', status: 401 });
    const anon = client({ url: front.url }).up;
    const before = tokenRequests(front).length;
    await expect(anon.headManifest(`docker-local/${image}`, 'v1')).rejects.toThrow(UpstreamDeniedError);
    const anonToken = tokenRequests(front).slice(before);
    expect(anonToken).toHaveLength(1);
    expect(anonToken[0]!.headers.authorization).toBeUndefined();
  });

  it('with enableTokenAuthentication off, answers the Bearer challenge with Basic (drydock accepts it on /v2/)', async () => {
    const before = tokenRequests(front).length;
    const { up } = client({ url: front.url, username: 'admin', password: ADMIN_PASSWORD, enableTokenAuthentication: false });
    expect((await up.getManifest(`docker-local/${image}`, 'v1'))?.digest).toBe(img.digest);
    expect(tokenRequests(front).length).toBe(before);
    await expect(client({ url: front.url, enableTokenAuthentication: false }).up.getManifest(`docker-local/${image}`, 'v1')).rejects.toThrow(
      'enableTokenAuthentication is off',
    );
  });

  it('SecretBox.fromSettings keeps one key in the real metadata store', async () => {
    const a = await SecretBox.fromSettings(reg.running.services.store);
    const b = await SecretBox.fromSettings(reg.running.services.store);
    expect(b.decrypt(a.encrypt('upstream-password'))).toBe('upstream-password');
    expect(typeof (await reg.running.services.store.settings.get('secrets.key'))).toBe('string');
  });

  describe('anonymous access', () => {
    let open: TestRegistry;
    let hubLike: Fake;

    beforeAll(async () => {
      const r = await reg.fetch('/api/v2/security/permissions/anonymous-read', {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'anonymous-read', repo: { repositories: ['ANY'], actions: { users: { anonymous: ['read'] } } } }),
      });
      expect([200, 201]).toContain(r.status);
      await r.arrayBuffer();
      // Same database and storage: another pod of the installation, with anonymous access on.
      open = await startTestRegistry({ store: reg.running.services.store, dataDir: reg.dataDir, config: { auth: { anonymousAccess: true } } });
      hubLike = await tokenFront(open.url, { challengeAnonymous: true });
    });
    afterAll(async () => {
      await open?.close();
      await reg.fetch('/api/v2/security/permissions/anonymous-read', { method: 'DELETE' });
    });

    it('gets an anonymous token (no credentials sent) when the upstream challenges', async () => {
      const { up } = client({ url: hubLike.url });
      const name = `docker-local/${image}`;
      expect((await up.getManifest(name, 'v1'))?.body.equals(img.manifest)).toBe(true);
      expect(await hashStream((await up.getBlob(name, img.layer.digest))!.body)).toEqual({ digest: img.layer.digest, size: img.layer.size });
      const tokens = tokenRequests(hubLike);
      expect(tokens).toHaveLength(1);
      expect(tokens[0]!.headers.authorization).toBeUndefined();
      // The token was then sent on the registry requests.
      const registryCalls = hubLike.seen.filter((s) => s.url.startsWith(`/v2/${name}/`));
      expect(registryCalls.at(-1)!.headers.authorization).toMatch(/^Bearer /);
    });

    it('pulls with no auth at all when the upstream does not challenge', async () => {
      const plain = await tokenFront(open.url);
      const { up } = client({ url: plain.url });
      expect((await up.headManifest(`docker-local/${image}`, 'v1'))?.digest).toBe(img.digest);
      expect(tokenRequests(plain)).toHaveLength(0);
      expect(plain.seen.every((s) => s.headers.authorization === undefined)).toBe(true);
    });
  });
});

// ---------------------------------------------------------------- misbehaving upstreams

const MANIFEST = ociManifestOf(Buffer.from('{"c":1}'), Buffer.from('layer'));
const MANIFEST_DIGEST = sha256(MANIFEST);

function serveManifest(res: ServerResponse, extra: Record<string, string> = {}, body: Buffer = MANIFEST): void {
  res.writeHead(200, {
    'content-type': MediaTypes.ociManifest,
    'content-length': String(body.length),
    'docker-content-digest': sha256(body),
    ...extra,
  });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

describe('retries, timeouts and the circuit breaker', () => {
  it('retries 5xx and succeeds on the third attempt', async () => {
    let n = 0;
    const f = await track(
      fake((_req, res) => {
        if (++n <= 2) {
          res.writeHead(503).end();
          return;
        }
        serveManifest(res);
      }),
    );
    const { up, metrics } = client({ url: f.url, retries: 2 });
    expect((await up.getManifest('x/y', 'v1'))?.digest).toBe(MANIFEST_DIGEST);
    expect(f.seen).toHaveLength(3);
    expect(await counted(metrics, { status: '503' })).toBe(2);
    expect(up.isDown()).toBe(false);
  });

  it('gives up after retries+1 attempts, marks the upstream down after 5 failures, then lets one probe through', async () => {
    let mode: 'fail' | 'slow-ok' = 'fail';
    const f = await track(
      fake((_req, res) => {
        if (mode === 'fail') {
          res.writeHead(500).end();
          return;
        }
        setTimeout(() => serveManifest(res), 200);
      }),
    );
    const { up } = client({ url: f.url, retries: 1 }, { breaker: { openMillis: 400 } });
    const err = await up.getManifest('x/y', 'v1').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UpstreamUnavailableError);
    expect(err).toMatchObject({ status: 500, message: expect.stringContaining('after 2 attempts') });
    expect(f.seen).toHaveLength(2);
    for (let i = 0; i < 4; i++) await expect(up.headManifest('x/y', 'v1')).rejects.toThrow(UpstreamUnavailableError);
    expect(f.seen).toHaveLength(10);
    expect(up.isDown()).toBe(true);

    // Down: refused without dialing.
    const connections = f.connections;
    await expect(up.getBlob('x/y', MISSING)).rejects.toThrow('upstream marked down');
    await expect(up.listTags('x/y', {})).rejects.toMatchObject({ name: 'UpstreamUnavailableError', message: 'upstream marked down' });
    expect(f.seen).toHaveLength(10);
    expect(f.connections).toBe(connections);

    // After the period: one probe; it fails, so down again at once.
    await new Promise((r) => setTimeout(r, 450));
    expect(up.isDown()).toBe(false);
    await expect(up.headManifest('x/y', 'v1')).rejects.toMatchObject({ status: 500 });
    expect(f.seen).toHaveLength(12);
    expect(up.isDown()).toBe(true);
    await expect(up.headManifest('x/y', 'v1')).rejects.toThrow('upstream marked down');

    // The upstream recovers: the next probe closes the breaker; calls during the probe are still refused.
    mode = 'slow-ok';
    await new Promise((r) => setTimeout(r, 450));
    const probe = up.getManifest('x/y', 'v1');
    await new Promise((r) => setTimeout(r, 50));
    expect(up.isDown()).toBe(true);
    await expect(up.headManifest('x/y', 'v1')).rejects.toThrow('upstream marked down');
    expect((await probe)?.digest).toBe(MANIFEST_DIGEST);
    expect(up.isDown()).toBe(false);
    expect((await up.headManifest('x/y', 'v1'))?.digest).toBe(MANIFEST_DIGEST);
  });

  it('waits as long as Retry-After says on a 429 (up to 5 s)', async () => {
    let n = 0;
    const f = await track(
      fake((_req, res) => {
        if (++n === 1) {
          res.writeHead(429, { 'retry-after': '1' }).end();
          return;
        }
        serveManifest(res);
      }),
    );
    const { up } = client({ url: f.url, retries: 2 });
    const started = Date.now();
    expect((await up.headManifest('x/y', 'v1'))?.digest).toBe(MANIFEST_DIGEST);
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
    expect(f.seen).toHaveLength(2);
  });

  it('gives up at once on a 429 whose Retry-After is longer than 5 s', async () => {
    const f = await track(fake((_req, res) => res.writeHead(429, { 'retry-after': '3600' }).end()));
    const { up } = client({ url: f.url, retries: 3 });
    const started = Date.now();
    await expect(up.getManifest('x/y', 'v1')).rejects.toMatchObject({ name: 'UpstreamUnavailableError', status: 429 });
    expect(Date.now() - started).toBeLessThan(1000);
    expect(f.seen).toHaveLength(1);
  });

  it('times out a hanging upstream after socketTimeoutMillis', async () => {
    const f = await track(fake(() => undefined));
    const { up, metrics } = client({ url: f.url, socketTimeoutMillis: 1000, retries: 0 });
    const started = Date.now();
    const err = await up.headManifest('x/y', 'v1').catch((e: unknown) => e);
    const elapsed = Date.now() - started;
    expect(err).toBeInstanceOf(UpstreamUnavailableError);
    expect((err as Error).message).toMatch(/timeout/i);
    // undici's header and body timers tick every ~0.5 s, hence the slack.
    expect(elapsed).toBeGreaterThanOrEqual(950);
    expect(elapsed).toBeLessThan(1800);
    expect(await counted(metrics, { status: 'error' })).toBe(1);
  });

  it('times out a body that stalls half-way, and retries it', async () => {
    const f = await track(
      fake((_req, res) => {
        res.writeHead(200, { 'content-type': MediaTypes.ociManifest, 'content-length': String(MANIFEST.length) });
        res.write(MANIFEST.subarray(0, 10));
      }),
    );
    const { up } = client({ url: f.url, socketTimeoutMillis: 300, retries: 1 });
    await expect(up.getManifest('x/y', 'v1')).rejects.toThrow(/timeout.*after 2 attempts/i);
    expect(f.seen).toHaveLength(2);
  });

  it('exports RateLimit-Remaining as a gauge per repository', async () => {
    const f = await track(fake((_req, res) => serveManifest(res, { 'ratelimit-limit': '100;w=21600', 'ratelimit-remaining': '76;w=21600' })));
    const { up, metrics } = client({ url: f.url }, { repository: 'dockerhub' });
    await up.headManifest('library/nginx', 'latest');
    expect((await metrics.upstreamRateLimitRemaining.get()).values).toEqual([{ value: 76, labels: { repository: 'dockerhub' } }]);
    expect(await metrics.registry.metrics()).toContain('drydock_upstream_ratelimit_remaining{repository="dockerhub"} 76');
  });

  it('stops a streamed blob when the signal aborts, without waiting for the whole body', async () => {
    let release!: () => void;
    const closed = new Promise<void>((resolve) => {
      release = resolve;
    });
    const f = await track(
      fake((_req, res) => {
        res.writeHead(200, { 'content-length': String(1024 * 1024) });
        res.write(Buffer.alloc(1000, 1));
        res.on('close', () => release());
      }),
    );
    const { up } = client({ url: f.url });
    const ac = new AbortController();
    // Resolves although the server has sent 1000 of 1 MiB: nothing is buffered first.
    const blob = await up.getBlob('x/y', MISSING, ac.signal);
    expect(blob?.size).toBe(1024 * 1024);
    const it = (blob!.body as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
    expect((await it.next()).value).toHaveLength(1000);
    ac.abort();
    await expect(it.next()).rejects.toThrow(/abort/i);
    await closed;
  });

  it('an aborted call neither retries nor counts against the upstream', async () => {
    const f = await track(fake(() => undefined));
    const { up } = client({ url: f.url, retries: 3 }, { breaker: { failureThreshold: 1 } });
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 100);
    await expect(up.getManifest('x/y', 'v1', ac.signal)).rejects.toThrow(/abort/i);
    expect(f.seen).toHaveLength(1);
    expect(up.isDown()).toBe(false);
  });
});

describe('manifest answers', () => {
  it('sends an Accept header with OCI and Docker schema2 types, never schema 1', async () => {
    const f = await track(fake((_req, res) => serveManifest(res)));
    const { up } = client({ url: f.url });
    await up.getManifest('x/y', 'v1');
    await up.headManifest('x/y', 'v1');
    for (const s of f.seen) {
      expect(s.headers.accept).toBe(MANIFEST_ACCEPT);
      for (const t of [MediaTypes.ociIndex, MediaTypes.ociManifest, MediaTypes.dockerList, MediaTypes.dockerManifest]) {
        expect(s.headers.accept).toContain(t);
      }
      expect(s.headers.accept).not.toContain('distribution.manifest.v1');
    }
  });

  it('refuses a body that does not hash to the digest asked for, or to the one the upstream claims', async () => {
    const f = await track(
      fake((req, res) => {
        if (req.url!.endsWith('/lying')) {
          res.writeHead(200, { 'content-type': MediaTypes.ociManifest, 'docker-content-digest': MISSING });
          res.end(MANIFEST);
          return;
        }
        res.writeHead(200, { 'content-type': MediaTypes.ociManifest });
        res.end(MANIFEST);
      }),
    );
    const { up } = client({ url: f.url });
    await expect(up.getManifest('x/y', MISSING)).rejects.toThrow('digest mismatch');
    await expect(up.getManifest('x/y', 'lying')).rejects.toThrow('digest mismatch');
    // No Docker-Content-Digest: sha256 of the body.
    expect((await up.getManifest('x/y', 'v1'))?.digest).toBe(MANIFEST_DIGEST);
    // Bad content is not an outage.
    expect(up.isDown()).toBe(false);
  });

  it('strips Content-Type parameters, falls back to the body\'s mediaType, and completes a HEAD without a digest with a GET', async () => {
    const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: [] }));
    const f = await track(
      fake((req, res) => {
        if (req.url!.includes('/index/')) {
          res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(index.length) });
          res.end(req.method === 'HEAD' ? undefined : index);
          return;
        }
        serveManifest(res, { 'content-type': `${MediaTypes.ociManifest}; charset=utf-8` });
      }),
    );
    const { up } = client({ url: f.url });
    expect(await up.headManifest('x/y', 'v1')).toEqual({ digest: MANIFEST_DIGEST, mediaType: MediaTypes.ociManifest, size: MANIFEST.length });
    expect(await up.headManifest('x/index', 'v1')).toEqual({ digest: sha256(index), mediaType: MediaTypes.ociIndex, size: index.length });
    expect(f.seen.filter((s) => s.url.includes('/index/')).map((s) => s.method)).toEqual(['HEAD', 'GET']);
  });

  it('refuses a manifest over 4 MiB', async () => {
    const big = Buffer.alloc(4 * 1024 * 1024 + 1, 0x20);
    const f = await track(
      fake((req, res) => {
        // Once with a Content-Length, once chunked (no length to check up front).
        const length = req.url!.endsWith('/chunked') ? {} : { 'content-length': String(big.length) };
        res.writeHead(200, { 'content-type': MediaTypes.ociManifest, ...length });
        res.end(big);
      }),
    );
    const { up } = client({ url: f.url });
    await expect(up.getManifest('x/y', 'v1')).rejects.toThrow(/larger than 4194304 bytes/);
    await expect(up.getManifest('x/y', 'chunked')).rejects.toThrow(/larger than 4194304 bytes/);
  });
});

// ---------------------------------------------------------------- redirects and fetchUrl

describe('redirects and fetchUrl', () => {
  const DATA = Buffer.from('blob bytes from the CDN');
  /** A blob the registry redirects to a URL the CDN refuses (an expired signature). */
  const EXPIRED = sha256('expired');
  let cdn: Fake;
  let registry: Fake;

  beforeAll(async () => {
    cdn = await track(
      fake((req, res) => {
        if (req.url!.endsWith('sig=old')) {
          res.writeHead(403).end();
          return;
        }
        if (req.url === '/missing') {
          res.writeHead(404).end();
          return;
        }
        res.writeHead(200, { 'content-length': String(DATA.length) });
        res.end(DATA);
      }),
    );
    // A registry that wants Basic credentials and sends blobs elsewhere, like a registry in front of S3.
    registry = await track(
      fake((req, res) => {
        if (req.headers.authorization !== basic('u', 'p')) {
          res.writeHead(401, { 'www-authenticate': 'Basic realm="r"' }).end();
          return;
        }
        if (req.url!.includes('/blobs/')) {
          const expired = req.url!.endsWith(EXPIRED);
          res.writeHead(307, { location: `${cdn.url}/bucket/object?sig=${expired ? 'old' : '1'}` }).end();
          return;
        }
        if (req.url!.includes('/manifests/moved')) {
          res.writeHead(302, { location: '/v2/x/y/manifests/v1' }).end();
          return;
        }
        serveManifest(res);
      }),
    );
  });

  it('follows a blob redirect to another host without the Authorization header', async () => {
    const { up } = client({ url: registry.url, username: 'u', password: 'p' });
    const blob = await up.getBlob('x/y', sha256(DATA));
    expect(await hashStream(blob!.body)).toEqual({ digest: sha256(DATA), size: DATA.length });
    expect(cdn.seen.at(-1)!.url).toBe('/bucket/object?sig=1');
    expect(cdn.seen.at(-1)!.headers.authorization).toBeUndefined();
    expect(await up.headBlob('x/y', sha256(DATA))).toEqual({ size: DATA.length });
  });

  it('retries when the redirect target refuses (not a verdict on our credentials)', async () => {
    const { up } = client({ url: registry.url, username: 'u', password: 'p', retries: 1 });
    const before = cdn.seen.length;
    await expect(up.getBlob('x/y', EXPIRED)).rejects.toMatchObject({ name: 'UpstreamUnavailableError', status: 403 });
    expect(cdn.seen.length - before).toBe(2);
  });

  it('keeps the Authorization header on a redirect within the upstream', async () => {
    const { up } = client({ url: registry.url, username: 'u', password: 'p' });
    expect((await up.getManifest('x/y', 'moved'))?.digest).toBe(MANIFEST_DIGEST);
    expect(registry.seen.at(-1)!.headers.authorization).toBe(basic('u', 'p'));
  });

  it('fetchUrl GETs an absolute URL without registry auth, following redirects; 404 is undefined', async () => {
    const { up } = client({ url: registry.url, username: 'u', password: 'p' });
    const got = await up.fetchUrl(`${cdn.url}/layer.tar.gz`);
    expect(got?.size).toBe(DATA.length);
    expect(await hashStream(got!.body)).toEqual({ digest: sha256(DATA), size: DATA.length });
    expect(cdn.seen.at(-1)!.headers.authorization).toBeUndefined();
    expect(await up.fetchUrl(`${cdn.url}/missing`)).toBeUndefined();
    // Through the registry's redirect: that hop has no credentials, so it is refused.
    await expect(up.fetchUrl(`${registry.url}/v2/x/y/blobs/${MISSING}`)).rejects.toThrow(UpstreamDeniedError);
    await expect(up.fetchUrl('file:///etc/passwd')).rejects.toThrow(UpstreamUnavailableError);
  });
});

// ---------------------------------------------------------------- TLS and proxy

describe('TLS with a self-signed certificate, and a forward proxy', () => {
  let dir: string;
  let cert: string;
  let tlsUpstream: Fake;
  let proxy: Fake;
  const proxied: string[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'upstream-tls-'));
    execFileSync(
      'openssl',
      [
        'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
        '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
        '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'),
      ],
      { stdio: 'ignore' },
    );
    cert = await readFile(join(dir, 'cert.pem'), 'utf8');
    const key = await readFile(join(dir, 'key.pem'), 'utf8');
    tlsUpstream = await track(fake((_req, res) => serveManifest(res), { key, cert }));

    // A forward proxy: absolute-URI requests for http:// targets, CONNECT tunnels for https://.
    proxy = await track(
      fake((req, res) => {
        proxied.push(`${req.method} ${req.url}`);
        const out = http.request(req.url!, { method: req.method, headers: req.headers }, (ur) => {
          res.writeHead(ur.statusCode ?? 502, ur.headers);
          ur.pipe(res);
        });
        out.on('error', () => res.destroy());
        req.pipe(out);
      }),
    );
    proxy.server.on('connect', (req: IncomingMessage, socket: net.Socket, head: Buffer) => {
      proxied.push(`CONNECT ${req.url}`);
      const [host, port] = req.url!.split(':');
      const upstream = net.connect(Number(port), host, () => {
        socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        upstream.write(head);
        upstream.pipe(socket);
        socket.pipe(upstream);
      });
      upstream.on('error', () => socket.destroy());
      socket.on('error', () => upstream.destroy());
    });
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses the self-signed certificate by default, without retrying', async () => {
    const { up } = client({ url: tlsUpstream.url, retries: 3 });
    const started = Date.now();
    await expect(up.getManifest('x/y', 'v1')).rejects.toThrow(/self[- ]signed/i);
    expect(Date.now() - started).toBeLessThan(1000);
    expect(tlsUpstream.seen).toHaveLength(0);
  });

  it('trusts it with caCert', async () => {
    const { up } = client({ url: tlsUpstream.url, caCert: cert });
    expect((await up.getManifest('x/y', 'v1'))?.digest).toBe(MANIFEST_DIGEST);
  });

  it('accepts it with insecureSkipVerify', async () => {
    const { up } = client({ url: tlsUpstream.url, insecureSkipVerify: true });
    expect((await up.headManifest('x/y', 'v1'))?.digest).toBe(MANIFEST_DIGEST);
  });

  it('sends plain-HTTP requests through the proxy as absolute URIs', async () => {
    const target = await track(fake((_req, res) => serveManifest(res)));
    const { up } = client({ url: target.url, proxy: proxy.url });
    expect((await up.getManifest('x/y', 'v1'))?.digest).toBe(MANIFEST_DIGEST);
    expect(await up.fetchUrl(`${target.url}/anything`)).toBeDefined();
    expect(proxied).toContain(`GET ${target.url}/v2/x/y/manifests/v1`);
    expect(proxied).toContain(`GET ${target.url}/anything`);
    expect(target.seen).toHaveLength(2);
  });

  it('tunnels HTTPS through the proxy with CONNECT, still verifying the certificate', async () => {
    const { up } = client({ url: tlsUpstream.url, proxy: proxy.url, caCert: cert });
    expect((await up.getManifest('x/y', 'v1'))?.digest).toBe(MANIFEST_DIGEST);
    expect(proxied).toContain(`CONNECT ${new URL(tlsUpstream.url).host}`);
    const strict = client({ url: tlsUpstream.url, proxy: proxy.url, retries: 2 }).up;
    await expect(strict.getManifest('x/y', 'v1')).rejects.toThrow(UpstreamUnavailableError);
    await expect(strict.getManifest('x/y', 'v1')).rejects.toThrow(/self[- ]signed/i);
  });
});
