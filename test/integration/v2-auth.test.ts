import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { hashPassword } from '../../src/registry/auth/passwords.js';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';
import { basic, expectOciError, MediaTypes, pushImage, sha256, uniqueImage, type PushedImage } from '../helpers/oci-client.js';

let reg: TestRegistry;
let name: string;
let img: PushedImage;
let session: string;

const USER = 'bob';
const USER_PASSWORD = 'bobs-password';
const USER_AUTH = basic(USER, USER_PASSWORD);
const WRONG_AUTH = basic('admin', 'wrong-password');

beforeAll(async () => {
  reg = await startTestRegistry();
  name = `docker-local/${uniqueImage('auth')}`;
  img = await pushImage(reg, name, 'v1');
  const s = await reg.fetch(`/v2/${name}/blobs/uploads/`, { method: 'POST' });
  session = s.headers.get('location')!;
  // A user with no rights (no permission targets name it), to tell 403 from 401.
  await reg.running.services.store.users.upsert({ name: USER, passwordHash: await hashPassword(USER_PASSWORD), admin: false });
});
afterAll(async () => {
  await reg?.close();
});

/** Every registry API route, once per method, as [method, path]. */
function registryCalls(): Array<[string, string]> {
  const image = name.slice('docker-local/'.length);
  const direct = `/api/docker/docker-local/v2/${image}`;
  const id = session.split('/').pop()!;
  return [
    ['GET', '/v2/'],
    ['HEAD', '/v2/'],
    ['GET', '/v2/_catalog'],
    ['GET', `/v2/${name}/manifests/v1`],
    ['HEAD', `/v2/${name}/manifests/v1`],
    ['PUT', `/v2/${name}/manifests/v2`],
    ['DELETE', `/v2/${name}/manifests/v1`],
    ['POST', `/v2/${name}/blobs/uploads/`],
    ['GET', `/v2/${name}/blobs/uploads/${id}`],
    ['PATCH', `/v2/${name}/blobs/uploads/${id}`],
    ['PUT', `/v2/${name}/blobs/uploads/${id}?digest=${sha256('x')}`],
    ['DELETE', `/v2/${name}/blobs/uploads/${id}`],
    ['GET', `/v2/${name}/blobs/${img.layer.digest}`],
    ['HEAD', `/v2/${name}/blobs/${img.layer.digest}`],
    ['DELETE', `/v2/${name}/blobs/${img.layer.digest}`],
    ['GET', `/v2/${name}/tags/list`],
    ['GET', `/v2/${name}/referrers/${img.digest}`],
    ['GET', '/api/docker/docker-local/v2/'],
    ['GET', '/api/docker/docker-local/v2/_catalog'],
    ['GET', `${direct}/manifests/v1`],
    ['PUT', `${direct}/manifests/v2`],
    ['POST', `/artifactory${direct}/blobs/uploads/`],
    ['GET', `/artifactory${direct}/tags/list`],
  ];
}

/** The registry API challenges with Docker token auth (SPEC §7); the management API with Basic. */
function expectChallenge(path: string, header: string | null): void {
  if (path.startsWith('/v2/') || /^(\/artifactory)?\/api\/docker\/[^/]+\/v2\//.test(path)) {
    expect(header).toMatch(/^Bearer realm="http:\/\/127\.0\.0\.1:\d+\/v2\/token",service="drydock"(,scope="[^"]+")?$/);
  } else {
    expect(header).toBe('Basic realm="drydock"');
  }
}

const withBody = (method: string) => (method === 'PUT' || method === 'PATCH' ? { body: 'x', headers: { 'content-type': MediaTypes.ociManifest } } : {});

describe('credentials on the registry API', () => {
  it('every route without credentials is 401 with a challenge and UNAUTHORIZED', async () => {
    for (const [method, path] of registryCalls()) {
      const r = await reg.fetch(path, { method, auth: null, ...withBody(method) });
      expect({ method, path, status: r.status }).toEqual({ method, path, status: 401 });
      expectChallenge(path, r.headers.get('www-authenticate'));
      expect(r.headers.get('docker-distribution-api-version')).toBe('registry/2.0');
      if (method === 'HEAD') {
        expect(await r.text()).toBe('');
      } else {
        expect(await r.json()).toEqual({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required', detail: {} }] });
      }
    }
    // Nothing changed: the tag, the blob and the session are all still there.
    expect((await reg.fetch(`/v2/${name}/manifests/v1`, { method: 'HEAD' })).status).toBe(200);
    expect((await reg.fetch(`/v2/${name}/blobs/${img.layer.digest}`, { method: 'HEAD' })).status).toBe(200);
    expect((await reg.fetch(session)).status).toBe(204);
  });

  it('every route template with a wrong password is 401', async () => {
    // One call per route template: each wrong password costs a deliberate scrypt check.
    const id = session.split('/').pop()!;
    const calls: Array<[string, string]> = [
      ['GET', '/v2/'],
      ['GET', '/v2/_catalog'],
      ['HEAD', `/v2/${name}/manifests/v1`],
      ['POST', `/v2/${name}/blobs/uploads/`],
      ['PATCH', `/v2/${name}/blobs/uploads/${id}`],
      ['DELETE', `/v2/${name}/blobs/${img.layer.digest}`],
      ['GET', `/v2/${name}/tags/list`],
      ['GET', `/v2/${name}/referrers/${img.digest}`],
    ];
    for (const [method, path] of calls) {
      const r = await reg.fetch(path, { method, auth: WRONG_AUTH, ...withBody(method) });
      expect({ method, path, status: r.status }).toEqual({ method, path, status: 401 });
      expectChallenge(path, r.headers.get('www-authenticate'));
      if (method === 'HEAD') expect(await r.text()).toBe('');
      else expect((await r.json()).errors[0].code).toBe('UNAUTHORIZED');
    }
  });

  it('an unknown user, malformed credentials or another scheme are 401', async () => {
    for (const auth of [basic('nobody', 'x'), 'Basic !!!notbase64', `Basic ${Buffer.from('no-colon').toString('base64')}`, 'Bearer abc.def.ghi', 'Digest x']) {
      const r = await reg.fetch('/v2/', { auth });
      const err = await expectOciError(r, 401, 'UNAUTHORIZED');
      expectChallenge('/v2/', r.headers.get('www-authenticate'));
      expect(err.detail).toEqual({});
    }
  });

  it('a user without rights is 403 DENIED on repository routes, and may call /v2/', async () => {
    expect((await reg.fetch('/v2/', { auth: USER_AUTH })).status).toBe(200);
    const err = await expectOciError(await reg.fetch(`/v2/${name}/manifests/v1`, { auth: USER_AUTH }), 403, 'DENIED');
    expect(err.message).toBe(`${USER} may not read on ${name}`);
    await expectOciError(await reg.fetch(`/v2/${name}/blobs/uploads/`, { method: 'POST', auth: USER_AUTH }), 403, 'DENIED');
    // The same answer whether the repository exists or not.
    const ghost = await expectOciError(await reg.fetch('/v2/no-such-repo/app/manifests/v1', { auth: USER_AUTH }), 403, 'DENIED');
    expect(ghost.message).toBe(`${USER} may not read on no-such-repo/app`);
    // The catalog only lists what the caller may read.
    expect(await (await reg.fetch('/v2/_catalog', { auth: USER_AUTH })).json()).toEqual({ repositories: [] });
  });

  it('anonymous callers get no hint of whether a repository exists', async () => {
    const known = await reg.fetch(`/v2/${name}/manifests/v1`, { auth: null });
    const unknown = await reg.fetch('/v2/no-such-repo/app/manifests/v1', { auth: null });
    expect([known.status, unknown.status]).toEqual([401, 401]);
    expect(await unknown.json()).toEqual(await known.json());
  });
});

describe('routing', () => {
  it('an unknown route under /v2 is 404 in the OCI error shape', async () => {
    for (const path of ['/v2/docker-local/app/unknown', '/v2/docker-local/app/blobs', '/v2/_catalog/extra', '/api/docker/docker-local/v2/x/nothing']) {
      const r = await reg.fetch(path);
      expect(r.headers.get('docker-distribution-api-version')).toBe('registry/2.0');
      const err = await expectOciError(r, 404, 'NOT_FOUND');
      expect(err).toEqual({ code: 'NOT_FOUND', message: `no registry API endpoint at ${path}`, detail: {} });
    }
  });

  it.each([
    ['POST', '/v2/docker-local/app/manifests/x', 'GET, HEAD, PUT, DELETE'],
    ['PATCH', '/v2/', 'GET, HEAD'],
    ['DELETE', '/v2/_catalog', 'GET'],
    ['PUT', '/v2/docker-local/app/blobs/uploads/', 'POST'],
    ['POST', '/v2/docker-local/app/blobs/uploads/00000000-0000-4000-8000-000000000000', 'GET, PATCH, PUT, DELETE'],
    ['PUT', `/v2/docker-local/app/blobs/${sha256('x')}`, 'GET, HEAD, DELETE'],
    ['DELETE', '/v2/docker-local/app/tags/list', 'GET'],
    ['POST', `/api/docker/docker-local/v2/app/referrers/${sha256('x')}`, 'GET'],
  ])('%s %s is 405 UNSUPPORTED with Allow: %s', async (method, path, allow) => {
    const r = await reg.fetch(path, { method });
    expect(r.headers.get('allow')).toBe(allow);
    expect(r.headers.get('docker-distribution-api-version')).toBe('registry/2.0');
    const err = await expectOciError(r, 405, 'UNSUPPORTED');
    expect(err.message).toMatch(new RegExp(`^${method} is not supported on /v2/`));
  });

  it('every /v2 response carries Docker-Distribution-API-Version', async () => {
    const answers = await Promise.all([
      reg.fetch('/v2/'),
      reg.fetch('/v2/', { method: 'HEAD' }),
      reg.fetch('/v2/_catalog'),
      reg.fetch(`/v2/${name}/manifests/v1`),
      reg.fetch(`/v2/${name}/manifests/nope`),
      reg.fetch(`/v2/${name}/blobs/${img.layer.digest}`, { headers: { range: 'bytes=0-1' } }),
      reg.fetch(`/v2/${name}/tags/list?n=x`),
      reg.fetch('/v2/UPPER/x/manifests/y'),
      reg.fetch('/v2/', { auth: null }),
      reg.fetch('/api/docker/docker-local/v2/'),
    ]);
    expect(answers.map((r) => r.status)).toEqual([200, 200, 200, 200, 404, 206, 400, 400, 401, 200]);
    for (const r of answers) expect(r.headers.get('docker-distribution-api-version')).toBe('registry/2.0');
    await Promise.all(answers.map((r) => r.arrayBuffer()));
  });

  it('GET /v2/ answers {} as JSON', async () => {
    const r = await reg.fetch('/v2/');
    expect(r.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await r.json()).toEqual({});
    const bare = await reg.fetch('/v2');
    expect(bare.status).toBe(200);
  });
});

describe('open endpoints and metrics', () => {
  it('/healthz and /readyz need no credentials', async () => {
    const h = await reg.fetch('/healthz', { auth: null });
    expect(h.status).toBe(200);
    expect(await h.json()).toEqual({ status: 'ok' });
    const r = await reg.fetch('/readyz', { auth: null });
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ status: 'ok', database: 'ok', storage: 'ok' });
    // Even wrong credentials do not matter on them.
    expect((await reg.fetch('/healthz', { auth: WRONG_AUTH })).status).toBe(200);
  });

  it('/metrics is open by default', async () => {
    const r = await reg.fetch('/metrics', { auth: null });
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(await r.text()).toContain('drydock_http_requests_total');
  });

  it('with metrics.requireAuth, /metrics is admin-only', async () => {
    const locked = await startTestRegistry({ store: reg.running.services.store, config: { metrics: { requireAuth: true } } });
    try {
      const anon = await locked.fetch('/metrics', { auth: null });
      expect(anon.status).toBe(401);
      expect(anon.headers.get('www-authenticate')).toBe('Basic realm="drydock"');
      expect(await anon.json()).toEqual({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required', detail: {} }] });
      const wrong = await locked.fetch('/metrics', { auth: WRONG_AUTH });
      expect(wrong.status).toBe(401);
      const user = await locked.fetch('/metrics', { auth: USER_AUTH });
      expect(user.status).toBe(403);
      expect((await user.json()).errors[0].code).toBe('DENIED');
      const admin = await locked.fetch('/metrics');
      expect(admin.status).toBe(200);
      expect(await admin.text()).toContain('drydock_http_requests_total');
      expect((await locked.fetch('/healthz', { auth: null })).status).toBe(200);
    } finally {
      await locked.close();
    }
  });
});

describe('auth.anonymousAccess', () => {
  let anonReg: TestRegistry;
  beforeAll(async () => {
    // Anonymous callers get what permission targets grant the `anonymous` user: here, read everywhere.
    await reg.running.services.store.permissions.upsert('anonymous-read', {
      name: 'anonymous-read',
      repo: { repositories: ['ANY'], include_patterns: ['**'], exclude_patterns: [], actions: { users: { anonymous: ['read'] }, groups: {} } },
    });
    // Same database and blob storage: a second pod of the same installation, with anonymous access on.
    anonReg = await startTestRegistry({ store: reg.running.services.store, dataDir: reg.dataDir, config: { auth: { anonymousAccess: true } } });
  });
  afterAll(async () => {
    await anonReg?.close();
    await reg.running.services.store.permissions.delete('anonymous-read');
  });

  it('lets anonymous callers read', async () => {
    const reads: Array<[string, string, number]> = [
      ['GET', '/v2/', 200],
      ['HEAD', '/v2/', 200],
      ['GET', '/v2/_catalog', 200],
      ['GET', `/v2/${name}/manifests/v1`, 200],
      ['HEAD', `/v2/${name}/manifests/${img.digest}`, 200],
      ['GET', `/v2/${name}/blobs/${img.layer.digest}`, 200],
      ['HEAD', `/v2/${name}/blobs/${img.config.digest}`, 200],
      ['GET', `/v2/${name}/tags/list`, 200],
      ['GET', `/v2/${name}/referrers/${img.digest}`, 200],
      ['GET', `/api/docker/docker-local/v2/${name.slice(13)}/manifests/v1`, 200],
      ['GET', '/api/repositories', 200],
    ];
    for (const [method, path, status] of reads) {
      const r = await anonReg.fetch(path, { method, auth: null });
      expect({ method, path, status: r.status }).toEqual({ method, path, status });
      await r.arrayBuffer();
    }
    const manifest = await anonReg.fetch(`/v2/${name}/manifests/v1`, { auth: null });
    expect(Buffer.from(await manifest.arrayBuffer()).equals(img.manifest)).toBe(true);
    const catalog = (await (await anonReg.fetch('/v2/_catalog', { auth: null })).json()) as { repositories: string[] };
    expect(catalog.repositories).toContain(name);
  });

  it('refuses anonymous writes and deletes with 401', async () => {
    const writes: Array<[string, string]> = [
      ['PUT', `/v2/${name}/manifests/anon`],
      ['DELETE', `/v2/${name}/manifests/v1`],
      ['POST', `/v2/${name}/blobs/uploads/`],
      ['POST', `/v2/${name}/blobs/uploads/?digest=${sha256('x')}`],
      ['GET', session],
      ['PATCH', session],
      ['DELETE', session],
      ['DELETE', `/v2/${name}/blobs/${img.layer.digest}`],
      ['PUT', '/api/repositories/anon-repo'],
      ['DELETE', '/api/repositories/docker-local'],
    ];
    for (const [method, path] of writes) {
      const r = await anonReg.fetch(path, { method, auth: null, ...withBody(method) });
      expect({ method, path, status: r.status }).toEqual({ method, path, status: 401 });
      expectChallenge(path, r.headers.get('www-authenticate'));
      await r.arrayBuffer();
    }
    expect((await anonReg.fetch(`/v2/${name}/manifests/v1`, { method: 'HEAD', auth: null })).status).toBe(200);
    expect((await anonReg.fetch(`/v2/${name}/blobs/${img.layer.digest}`, { method: 'HEAD', auth: null })).status).toBe(200);
    expect((await reg.fetch('/api/repositories/docker-local')).status).toBe(200);
  });

  it('still checks credentials that are sent', async () => {
    expect((await anonReg.fetch('/v2/', { auth: WRONG_AUTH })).status).toBe(401);
    expect((await anonReg.fetch(`/v2/${name}/blobs/uploads/`, { method: 'POST' })).status).toBe(202);
  });
});
