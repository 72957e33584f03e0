/**
 * The access-control matrix (SPEC §6, §7): every registry and management route
 * × every kind of caller, against one registry set up through the REST API as
 * an admin (plus a second process of the same installation with anonymous
 * access on). The expected outcome of each case comes from the small rule
 * table below — who was granted what, and the rules of the issue — never from
 * the code's own logic. Also: no leak between existing and missing content,
 * the timing of failed logins, the login throttle, and the audit trail the
 * matrix leaves.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { ADMIN_AUTH, startTestRegistry, type TestRegistry } from '../helpers/registry.js';
import { basic, desc, MediaTypes, ociManifest, pushBlob, sha256, type PushedImage } from '../helpers/oci-client.js';

// ---------------------------------------------------------------------------
// The setup, declared once: who holds what.
// ---------------------------------------------------------------------------

type Principal = 'admin' | 'reader' | 'deployer' | 'deleter' | 'member' | 'outsider' | 'anonymous';
type Repo = 'team-a' | 'team-b';
type Action = 'read' | 'write' | 'delete';

const USERS = ['reader', 'deployer', 'deleter', 'member', 'outsider'] as const;
const passwordOf = (user: string) => `pw-${user}-secret`;

/**
 * The grants the setup makes (Artifactory's actions are cumulative: write
 * includes read, delete includes write and read). `member` holds its rights
 * only through group `devs` (read+write on team-a); admin holds everything.
 */
const GRANTS: Record<Exclude<Principal, 'admin'>, Partial<Record<Repo, Action>>> = {
  reader: { 'team-a': 'read' },
  deployer: { 'team-a': 'write' },
  deleter: { 'team-a': 'delete' },
  member: { 'team-a': 'write' },
  outsider: {},
  anonymous: { 'team-b': 'read' },
};
const RANK: Record<Action, number> = { read: 0, write: 1, delete: 2 };

function holds(p: Principal, repo: Repo, action: Action): boolean {
  if (p === 'admin') return true;
  const granted = GRANTS[p][repo];
  return granted !== undefined && RANK[granted] >= RANK[action];
}

/** Docker token actions for each permission (a push always asks for pull too). */
const TOKEN_ACTIONS: Record<Action, string> = { read: 'pull', write: 'pull,push', delete: 'delete' };
const scopeOf = (repo: Repo, action: Action) => `repository:${repo}/app:${TOKEN_ACTIONS[action]}`;

/** True when registry token claims (`type:name:actions` strings) cover every action of `scope`. */
function covers(claims: readonly string[], scope: string): boolean {
  const last = scope.lastIndexOf(':');
  const [name, wanted] = [scope.slice(0, last), scope.slice(last + 1).split(',')];
  return wanted.every((w) =>
    claims.some((c) => {
      const i = c.lastIndexOf(':');
      const actions = c.slice(i + 1).split(',');
      return c.slice(0, i) === name && (actions.includes(w) || actions.includes('*'));
    }),
  );
}

// ---------------------------------------------------------------------------
// Columns: the callers.
// ---------------------------------------------------------------------------

interface Column {
  id: string;
  /** The request goes to the registry with anonymous access on (else off). */
  open: boolean;
  /** Whose rights apply; undefined when the credentials do not verify. */
  principal?: Principal;
  /** How credentials travel: `*-bearer` and `registry-token` in a Bearer header, the rest as Basic (or none). */
  cred: 'none' | 'basic' | 'access-basic' | 'access-bearer' | 'registry-token' | 'invalid-basic' | 'invalid-bearer';
  /** A registry token's access claims, as `type:name:actions`. */
  claims?: string[];
  /** The Authorization header (null: none); set once the setup has run. */
  auth: string | null;
}

const col = (id: string, c: Omit<Column, 'id' | 'auth' | 'open'> & { open?: boolean }): Column => ({ id, open: false, auth: null, ...c });

const COLUMNS: Column[] = [
  col('anonymous (access off)', { principal: 'anonymous', cred: 'none' }),
  col('anonymous (access on)', { principal: 'anonymous', cred: 'none', open: true }),
  ...(['reader', 'deployer', 'deleter', 'member', 'outsider'] as const).map((u) => col(u, { principal: u, cred: 'basic' })),
  col('admin', { principal: 'admin', cred: 'basic' }),
  col('wrong password', { cred: 'invalid-basic' }),
  col('expired registry token', { cred: 'invalid-bearer' }),
  col('tampered registry token', { cred: 'invalid-bearer' }),
  col('revoked access token (Bearer)', { cred: 'invalid-bearer' }),
  col('revoked access token (Basic)', { cred: 'invalid-basic' }),
  col('access token (Bearer)', { principal: 'deployer', cred: 'access-bearer' }),
  col('access token (Basic)', { principal: 'deployer', cred: 'access-basic' }),
  // Requested for repository:team-a/app:pull,push and registry:catalog:*.
  col('registry token (deployer)', { principal: 'deployer', cred: 'registry-token', claims: ['repository:team-a/app:pull,push', 'registry:catalog:*'] }),
  // Requested for repository:team-b/app:pull: reader may not read team-b, so it is granted nothing.
  col('team-b token (reader)', { principal: 'reader', cred: 'registry-token', claims: [] }),
  col('team-b token (admin)', { principal: 'admin', cred: 'registry-token', claims: ['repository:team-b/app:pull'] }),
  col('team-b token (anonymous)', { principal: 'anonymous', cred: 'registry-token', claims: ['repository:team-b/app:pull'], open: true }),
];
const column = (id: string): Column => COLUMNS.find((c) => c.id === id)!;

// ---------------------------------------------------------------------------
// Rows: every route × method.
// ---------------------------------------------------------------------------

interface Prepared {
  method: string;
  path: string;
  body?: Buffer | string;
  headers?: Record<string, string>;
  /** After the request: asserts the effect happened exactly when the case succeeded. */
  verify?: (succeeded: boolean) => Promise<void>;
}

type Success = { status: number; body?: unknown } | { status: 404; code: 'NAME_UNKNOWN' };

interface Row {
  id: string;
  surface: 'open' | 'v2' | 'v2-token' | 'api';
  /** v2: the permissions a repository route needs, in the order they are checked. */
  needs?: Array<[Repo, Action]>;
  /**
   * v2: `registry` for /v2/ and the catalog; api: `identity` (anyone the
   * configuration admits), `user` (a user, never anonymous), `admin`; open:
   * `checked` when credentials that are sent must still verify.
   */
  access?: 'registry' | 'identity' | 'user' | 'admin' | 'checked';
  /** A registry token must carry this scope (catalog). */
  tokenScope?: string;
  /** What an allowed caller gets. */
  success: (c: Column) => Success;
  /**
   * The request of case `n`. Something the request changes (a tag to delete, a
   * session to complete) is made fresh for a case expected to succeed; cases
   * expected to be refused share one, which must survive them all.
   */
  build: (c: Column, n: number, allowed: boolean) => Promise<Prepared>;
}

/** One fixture per row for every refused case, made on first use. */
function sharedFixture<T>(make: () => Promise<T>): () => Promise<T> {
  let made: Promise<T> | undefined;
  return () => (made ??= make());
}

let reg: TestRegistry;
let open: TestRegistry;
let imageA: PushedImage;
let imageB: PushedImage;
const realmOf = (c: Column) => `${c.open ? open.url : reg.url}/v2/token`;
const BASIC_CHALLENGE = 'Basic realm="drydock"';

/** Admin requests against the main registry, JSON bodies. */
const admin = (method: string, path: string, body?: unknown) =>
  reg.fetch(path, {
    method,
    ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
  });

async function adminOk(method: string, path: string, body?: unknown, status = [200, 201]): Promise<Response> {
  const r = await admin(method, path, body);
  if (!status.includes(r.status)) throw new Error(`setup ${method} ${path}: ${r.status} ${await r.text()}`);
  return r;
}

/** A manifest of image A's blobs that differs by an annotation: a new digest, pushable without new blobs. */
function variantOf(img: PushedImage, n: number | string): { body: Buffer; digest: string } {
  const body = ociManifest(desc(MediaTypes.ociConfig, img.config), [desc('application/vnd.oci.image.layer.v1.tar', img.layer)], {
    annotations: { 'dev.drydock.matrix': String(n) },
  });
  return { body, digest: sha256(body) };
}

async function exists(path: string): Promise<boolean> {
  const r = await reg.fetch(path, { method: path.startsWith('/v2/') ? 'HEAD' : 'GET' });
  await r.arrayBuffer();
  if (r.status !== 200 && r.status !== 404) throw new Error(`exists ${path}: ${r.status}`);
  return r.status === 200;
}

const effect = (path: string, whenSucceeded: boolean) => async (succeeded: boolean) => {
  expect({ path, present: await exists(path) }).toEqual({ path, present: succeeded ? whenSucceeded : !whenSucceeded });
};

/** The admin's upload session of `repo/app` that every refused case shares (it must survive them). */
const sharedSessions: Partial<Record<Repo, () => Promise<string>>> = {};

/** An upload session of `repo/app`: opened by the caller itself when it is allowed to use one. */
async function sessionFor(c: Column, repo: Repo, allowed: boolean): Promise<string> {
  if (allowed) {
    const r = await caller(c, 'POST', `/v2/${repo}/app/blobs/uploads/`);
    await r.arrayBuffer();
    expect({ column: c.id, status: r.status }).toEqual({ column: c.id, status: 202 });
    return r.headers.get('docker-upload-uuid')!;
  }
  sharedSessions[repo] ??= sharedFixture(async () => (await adminOk('POST', `/v2/${repo}/app/blobs/uploads/`, undefined, [202])).headers.get('docker-upload-uuid')!);
  return sharedSessions[repo]();
}

function caller(c: Column, method: string, path: string, init: { body?: Buffer | string; headers?: Record<string, string> } = {}) {
  return (c.open ? open : reg).fetch(path, { method, auth: c.auth, ...init });
}

/** The rows of one repository under one addressing method. */
function repositoryRows(addressing: 'path' | 'direct', repo: Repo, only?: readonly string[]): Row[] {
  const base = addressing === 'path' ? `/v2/${repo}/app` : `/api/docker/${repo}/v2/app`;
  const label = (s: string) => `${s} ${addressing === 'path' ? `/v2/${repo}/app` : `/api/docker/${repo}/v2/app`}`;
  const img = () => (repo === 'team-a' ? imageA : imageB);
  const ok = (status: number) => () => ({ status });
  const read: Array<[Repo, Action]> = [[repo, 'read']];
  const write: Array<[Repo, Action]> = [[repo, 'write']];
  const del: Array<[Repo, Action]> = [[repo, 'delete']];
  const tagImage = async (tag: string) => {
    const r = await reg.fetch(`/v2/${repo}/app/manifests/${tag}`, { method: 'PUT', body: img().manifest, headers: { 'content-type': MediaTypes.ociManifest } });
    expect(r.status).toBe(201);
  };
  const pushVariant = async (salt: string) => {
    const v = variantOf(img(), salt);
    const r = await reg.fetch(`/v2/${repo}/app/manifests/${v.digest}`, { method: 'PUT', body: v.body, headers: { 'content-type': MediaTypes.ociManifest } });
    expect(r.status).toBe(201);
    return v.digest;
  };
  const shared = `${addressing}-${repo}`;
  const sharedTag = sharedFixture(async () => {
    await tagImage(`keep-${shared}`);
    return `keep-${shared}`;
  });
  const sharedVariant = sharedFixture(() => pushVariant(`keep-${shared}`));
  const sharedBlob = sharedFixture(async () => (await pushBlob(reg, `${repo}/app`, `kept blob ${shared} ${randomUUID()}`)).digest);
  const rows: Row[] = [
    { id: label('GET manifest by tag'), surface: 'v2', needs: read, success: ok(200), build: async () => ({ method: 'GET', path: `${base}/manifests/1.0` }) },
    { id: label('HEAD manifest by tag'), surface: 'v2', needs: read, success: ok(200), build: async () => ({ method: 'HEAD', path: `${base}/manifests/1.0` }) },
    { id: label('GET manifest by digest'), surface: 'v2', needs: read, success: ok(200), build: async () => ({ method: 'GET', path: `${base}/manifests/${img().digest}` }) },
    { id: label('HEAD manifest by digest'), surface: 'v2', needs: read, success: ok(200), build: async () => ({ method: 'HEAD', path: `${base}/manifests/${img().digest}` }) },
    {
      id: label('PUT manifest, new tag'),
      surface: 'v2',
      needs: write,
      success: ok(201),
      build: async (_c, n) => ({
        method: 'PUT',
        path: `${base}/manifests/new-${n}`,
        body: img().manifest,
        headers: { 'content-type': MediaTypes.ociManifest },
        verify: effect(`/v2/${repo}/app/manifests/new-${n}`, true),
      }),
    },
    {
      // Re-pointing an existing tag overwrites it: write and delete (Artifactory's overwrite rule).
      id: label('PUT manifest, re-point tag 1.0'),
      surface: 'v2',
      needs: [
        [repo, 'write'],
        [repo, 'delete'],
      ],
      success: ok(201),
      build: async (_c, n) => {
        const v = variantOf(img(), `repoint-${n}`);
        return {
          method: 'PUT',
          path: `${base}/manifests/1.0`,
          body: v.body,
          headers: { 'content-type': MediaTypes.ociManifest },
          verify: effect(`/v2/${repo}/app/manifests/${v.digest}`, true),
        };
      },
    },
    {
      id: label('DELETE manifest by tag'),
      surface: 'v2',
      needs: del,
      success: ok(202),
      build: async (_c, n, allowed) => {
        const tag = allowed ? `del-${n}` : await sharedTag();
        if (allowed) await tagImage(tag);
        return { method: 'DELETE', path: `${base}/manifests/${tag}`, verify: effect(`/v2/${repo}/app/manifests/${tag}`, false) };
      },
    },
    {
      id: label('DELETE manifest by digest'),
      surface: 'v2',
      needs: del,
      success: ok(202),
      build: async (_c, n, allowed) => {
        const digest = allowed ? await pushVariant(`delete-${n}`) : await sharedVariant();
        return { method: 'DELETE', path: `${base}/manifests/${digest}`, verify: effect(`/v2/${repo}/app/manifests/${digest}`, false) };
      },
    },
    { id: label('GET blob'), surface: 'v2', needs: read, success: ok(200), build: async () => ({ method: 'GET', path: `${base}/blobs/${img().layer.digest}` }) },
    { id: label('HEAD blob'), surface: 'v2', needs: read, success: ok(200), build: async () => ({ method: 'HEAD', path: `${base}/blobs/${img().config.digest}` }) },
    {
      id: label('DELETE blob'),
      surface: 'v2',
      needs: del,
      success: ok(202),
      build: async (_c, n, allowed) => {
        const digest = allowed ? (await pushBlob(reg, `${repo}/app`, `disposable blob ${n} ${randomUUID()}`)).digest : await sharedBlob();
        return { method: 'DELETE', path: `${base}/blobs/${digest}`, verify: effect(`/v2/${repo}/app/blobs/${digest}`, false) };
      },
    },
    { id: label('POST upload'), surface: 'v2', needs: write, success: ok(202), build: async () => ({ method: 'POST', path: `${base}/blobs/uploads/` }) },
    {
      id: label('PATCH upload'),
      surface: 'v2',
      needs: write,
      success: ok(202),
      build: async (c, _n, allowed) => ({
        method: 'PATCH',
        path: `${base}/blobs/uploads/${await sessionFor(c, repo, allowed)}`,
        body: 'a chunk',
        headers: { 'content-type': 'application/octet-stream' },
      }),
    },
    {
      id: label('PUT upload'),
      surface: 'v2',
      needs: write,
      success: ok(201),
      build: async (c, n, allowed) => {
        const data = `completed upload ${n} ${randomUUID()}`;
        return {
          method: 'PUT',
          path: `${base}/blobs/uploads/${await sessionFor(c, repo, allowed)}?digest=${sha256(data)}`,
          body: data,
          headers: { 'content-type': 'application/octet-stream' },
          verify: effect(`/v2/${repo}/app/blobs/${sha256(data)}`, true),
        };
      },
    },
    { id: label('GET upload'), surface: 'v2', needs: write, success: ok(204), build: async (c, _n, allowed) => ({ method: 'GET', path: `${base}/blobs/uploads/${await sessionFor(c, repo, allowed)}` }) },
    {
      id: label('DELETE upload'),
      surface: 'v2',
      needs: write,
      success: ok(204),
      build: async (c, _n, allowed) => ({ method: 'DELETE', path: `${base}/blobs/uploads/${await sessionFor(c, repo, allowed)}` }),
    },
    {
      // A mount needs read on the source; without it, the answer is a plain upload session (202).
      // Under /api/docker/<key>/v2 every name is relative to <key>: `from=team-b/app` there names
      // the image team-b/app *inside* that repository, which does not hold the blob.
      id: label('POST upload, mount from team-b/app'),
      surface: 'v2',
      needs: write,
      success: (c) => ({
        status:
          addressing === 'path' && holds(c.principal!, 'team-b', 'read') && (c.claims === undefined || covers(c.claims, scopeOf('team-b', 'read'))) ? 201 : 202,
      }),
      build: async () => ({ method: 'POST', path: `${base}/blobs/uploads/?mount=${imageB.layer.digest}&from=team-b/app` }),
    },
    { id: label('GET tags/list'), surface: 'v2', needs: read, success: ok(200), build: async () => ({ method: 'GET', path: `${base}/tags/list` }) },
    { id: label('GET referrers'), surface: 'v2', needs: read, success: ok(200), build: async () => ({ method: 'GET', path: `${base}/referrers/${img().digest}` }) },
  ];
  return only ? rows.filter((r) => only.some((o) => r.id.startsWith(`${o} `))) : rows;
}

/** The catalog as a caller sees it: `<repo>/app` of every repository it may read. */
const catalogOf = (p: Principal) => (['team-a', 'team-b'] as const).filter((r) => holds(p, r, 'read')).map((r) => `${r}/app`);

function registryRows(addressing: 'path' | 'direct'): Row[] {
  const v2 = addressing === 'path' ? '/v2' : '/api/docker/team-a/v2';
  return [
    { id: `GET ${v2}/`, surface: 'v2', access: 'registry', success: () => ({ status: 200, body: {} }), build: async () => ({ method: 'GET', path: `${v2}/` }) },
    { id: `HEAD ${v2}/`, surface: 'v2', access: 'registry', success: () => ({ status: 200 }), build: async () => ({ method: 'HEAD', path: `${v2}/` }) },
    {
      id: `GET ${v2}/_catalog`,
      surface: 'v2',
      access: 'registry',
      tokenScope: 'registry:catalog:*',
      // Under a fixed repository: its images, or — for a repository the caller cannot read — the
      // answer for a repository that does not exist.
      success: (c) =>
        addressing === 'path'
          ? { status: 200, body: { repositories: catalogOf(c.principal!) } }
          : holds(c.principal!, 'team-a', 'read')
            ? { status: 200, body: { repositories: ['app'] } }
            : { status: 404, code: 'NAME_UNKNOWN' },
      build: async () => ({ method: 'GET', path: `${v2}/_catalog` }),
    },
    {
      id: `GET ${v2}/token`,
      surface: 'v2-token',
      success: () => ({ status: 200 }),
      build: async () => ({ method: 'GET', path: `${v2}/token?service=drydock&scope=repository:team-a/app:pull` }),
    },
  ];
}

/** The management API: repositories, users, groups, permission targets, access tokens, audit. */
function managementRows(): Row[] {
  const row = (id: string, access: Row['access'], status: number, build: Row['build'], body?: (c: Column) => unknown): Row => ({
    id,
    surface: 'api',
    access,
    success: (c) => ({ status, ...(body ? { body: body(c) } : {}) }),
    build,
  });
  const simple = (method: string, path: string, body?: unknown): Row['build'] => async () => ({
    method,
    path,
    ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
  });
  /** A route on a thing the admin creates first (one for all refused cases); `gone` checks it after a delete. */
  const onFresh = (
    method: string,
    create: (suffix: string) => Promise<string>,
    body?: unknown,
    gone?: (path: string) => string,
  ): Row['build'] => {
    const kept = sharedFixture(() => create(`keep-${method.toLowerCase()}`));
    return async (_c, n, allowed) => {
      const path = allowed ? await create(String(n)) : await kept();
      return {
        method,
        path,
        ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
        ...(gone ? { verify: effect(gone(path), false) } : {}),
      };
    };
  };
  const freshRepo = async (n: string) => {
    await adminOk('PUT', `/api/repositories/m-repo-${n}`, { rclass: 'local' });
    return `/api/repositories/m-repo-${n}`;
  };
  const freshUser = async (n: string) => {
    await adminOk('PUT', `/api/security/users/m-user-${n}`, { password: passwordOf(`m-user-${n}`) });
    return `/api/security/users/m-user-${n}`;
  };
  const freshGroup = async (n: string) => {
    await adminOk('PUT', `/api/security/groups/m-group-${n}`, { description: 'disposable' });
    return `/api/security/groups/m-group-${n}`;
  };
  const freshPermission = async (n: string) => {
    await adminOk('PUT', `/api/v2/security/permissions/m-perm-${n}`, { repo: { repositories: ['team-b'], actions: {} } });
    return `/api/v2/security/permissions/m-perm-${n}`;
  };
  /** A token of the caller's own user, or for refused cases one of the admin's that they all share. */
  const tokenOf = async (owner: string): Promise<string> => {
    const r = await adminOk('POST', '/api/security/token', { username: owner, description: 'disposable' });
    return ((await r.json()) as { token_id: string }).token_id;
  };
  const keptToken = sharedFixture(() => tokenOf('admin'));
  const ownToken = (c: Column, allowed: boolean) => (allowed ? tokenOf(c.principal!) : keptToken());
  const visibleRepos = (c: Column) => (['team-a', 'team-b'] as const).filter((r) => holds(c.principal!, r, 'read'));
  return [
    row('GET /api/repositories', 'identity', 200, simple('GET', '/api/repositories'), (c) => (c.principal === 'admin' ? undefined : visibleRepos(c))),
    row('GET /api/repositories/{key}', 'admin', 200, simple('GET', '/api/repositories/team-a')),
    row('PUT /api/repositories/{key}', 'admin', 200, async (_c, n) => ({
      method: 'PUT',
      path: `/api/repositories/m-new-${n}`,
      body: JSON.stringify({ rclass: 'local' }),
      headers: { 'content-type': 'application/json' },
      verify: effect(`/api/repositories/m-new-${n}`, true),
    })),
    row('POST /api/repositories/{key}', 'admin', 200, onFresh('POST', freshRepo, { description: 'changed' })),
    row('DELETE /api/repositories/{key}', 'admin', 200, onFresh('DELETE', freshRepo, undefined, (p) => p)),
    row('GET /api/security/users', 'admin', 200, simple('GET', '/api/security/users')),
    row('GET /api/security/users/{name}', 'admin', 200, simple('GET', '/api/security/users/reader')),
    row('PUT /api/security/users/{name}', 'admin', 201, async (_c, n) => ({
      method: 'PUT',
      path: `/api/security/users/m-new-${n}`,
      body: JSON.stringify({ password: 'x-password' }),
      headers: { 'content-type': 'application/json' },
      verify: effect(`/api/security/users/m-new-${n}`, true),
    })),
    row('POST /api/security/users/{name}', 'admin', 200, onFresh('POST', freshUser, { email: 'changed@example.com' })),
    row('DELETE /api/security/users/{name}', 'admin', 200, onFresh('DELETE', freshUser, undefined, (p) => p)),
    row('GET /api/security/groups', 'admin', 200, simple('GET', '/api/security/groups')),
    row('GET /api/security/groups/{name}', 'admin', 200, simple('GET', '/api/security/groups/devs')),
    row('PUT /api/security/groups/{name}', 'admin', 201, async (_c, n) => ({
      method: 'PUT',
      path: `/api/security/groups/m-newgroup-${n}`,
      body: JSON.stringify({ description: 'new' }),
      headers: { 'content-type': 'application/json' },
      verify: effect(`/api/security/groups/m-newgroup-${n}`, true),
    })),
    row('POST /api/security/groups/{name}', 'admin', 200, onFresh('POST', freshGroup, { description: 'changed' })),
    row('DELETE /api/security/groups/{name}', 'admin', 200, onFresh('DELETE', freshGroup, undefined, (p) => p)),
    row('GET /api/v2/security/permissions', 'admin', 200, simple('GET', '/api/v2/security/permissions')),
    row('GET /api/v2/security/permissions/{name}', 'admin', 200, simple('GET', '/api/v2/security/permissions/team-a-readers')),
    row('PUT /api/v2/security/permissions/{name}', 'admin', 201, async (_c, n) => ({
      method: 'PUT',
      path: `/api/v2/security/permissions/m-newperm-${n}`,
      body: JSON.stringify({ repo: { repositories: ['team-b'], actions: {} } }),
      headers: { 'content-type': 'application/json' },
      verify: effect(`/api/v2/security/permissions/m-newperm-${n}`, true),
    })),
    row('DELETE /api/v2/security/permissions/{name}', 'admin', 200, onFresh('DELETE', freshPermission, undefined, (p) => p)),
    row('POST /api/security/token', 'user', 200, simple('POST', '/api/security/token', { description: 'matrix' })),
    row('GET /api/security/token', 'user', 200, simple('GET', '/api/security/token')),
    row('POST /api/security/token/revoke', 'user', 200, async (c, _n, allowed) => ({
      method: 'POST',
      path: '/api/security/token/revoke',
      body: JSON.stringify({ token_id: await ownToken(c, allowed) }),
      headers: { 'content-type': 'application/json' },
    })),
    row('DELETE /api/security/token/{id}', 'user', 200, async (c, _n, allowed) => ({ method: 'DELETE', path: `/api/security/token/${await ownToken(c, allowed)}` })),
    row('GET /api/audit', 'admin', 200, simple('GET', '/api/audit?limit=1')),
  ];
}

function openRows(): Row[] {
  return ['/healthz', '/readyz', '/metrics', '/api/system/ping'].map((path) => ({
    id: `GET ${path}`,
    surface: 'open' as const,
    // /metrics is open (metrics.requireAuth is off) but, like every route that may need them, checks credentials that are sent.
    ...(path === '/metrics' ? { access: 'checked' as const } : {}),
    success: () => ({ status: 200 }),
    build: async () => ({ method: 'GET', path }),
  }));
}

const ROWS: Row[] = [
  ...openRows(),
  ...registryRows('path'),
  ...registryRows('direct'),
  ...repositoryRows('path', 'team-a'),
  ...repositoryRows('direct', 'team-a'),
  // team-b, where only the anonymous user (and the admin) may read.
  ...repositoryRows('path', 'team-b', ['GET manifest by tag', 'HEAD manifest by digest', 'GET blob', 'GET tags/list', 'PUT manifest, new tag', 'POST upload', 'DELETE manifest by tag']),
  ...managementRows(),
];

// ---------------------------------------------------------------------------
// The rules: the expected outcome of one case.
// ---------------------------------------------------------------------------

type Outcome =
  | { kind: 'success'; status: number; body?: unknown }
  | { kind: 'error'; status: 401; code: 'UNAUTHORIZED'; challenge: string }
  | { kind: 'error'; status: 403; code: 'DENIED' }
  | { kind: 'error'; status: 404; code: 'NAME_UNKNOWN' };

function bearer(c: Column, scope?: string, error?: string): string {
  return `Bearer realm="${realmOf(c)}",service="drydock"${scope ? `,scope="${scope}"` : ''}${error ? `,error="${error}"` : ''}`;
}

/** The scope a 401 on a registry route names: the first repository action it needs, or the catalog's. */
function challengeScope(row: Row): string | undefined {
  if (row.needs) return scopeOf(...row.needs[0]!);
  return row.tokenScope;
}

function expected(row: Row, c: Column): Outcome {
  const success = (): Outcome => {
    const s = row.success(c);
    return 'code' in s ? { kind: 'error', ...s } : { kind: 'success', ...s };
  };
  const unauthorized = (challenge: string): Outcome => ({ kind: 'error', status: 401, code: 'UNAUTHORIZED', challenge });
  const denied: Outcome = { kind: 'error', status: 403, code: 'DENIED' };
  /** The registry API challenges with Docker token auth, everything else with Basic. */
  const challenge = (scope?: string, error?: string) => (row.surface === 'v2' ? bearer(c, scope, error) : BASIC_CHALLENGE);

  // 1. Open routes need nothing. Probes look at nothing; /metrics refuses credentials that do not
  //    verify (registry tokens are credentials for the registry API only).
  if (row.surface === 'open') {
    if (row.access === 'checked' && (c.principal === undefined || c.cred === 'registry-token')) return unauthorized(BASIC_CHALLENGE);
    return success();
  }
  // 2. Credentials that do not verify (wrong password, expired, tampered, revoked): 401, on every route.
  if (c.principal === undefined) return unauthorized(challenge(challengeScope(row)));
  const anonymous = c.principal === 'anonymous';
  // 3. No credentials while anonymous access is off: 401, on every route.
  if (anonymous && !c.open) return unauthorized(challenge(challengeScope(row)));

  switch (row.surface) {
    case 'v2-token':
      // The token service takes Basic credentials (an access token works as the password), or none.
      return c.cred === 'access-bearer' || c.cred === 'registry-token' ? unauthorized(BASIC_CHALLENGE) : success();
    case 'api':
      // Registry tokens are for the registry API only.
      if (c.cred === 'registry-token') return unauthorized(BASIC_CHALLENGE);
      if (row.access === 'identity') return success();
      // The anonymous user may neither manage nor hold tokens.
      if (anonymous) return unauthorized(BASIC_CHALLENGE);
      if (row.access === 'user') return success();
      return c.principal === 'admin' ? success() : denied;
    case 'v2': {
      if (row.access === 'registry') {
        // A registry token must carry the route's scope: a client that could get it should ask for it.
        if (row.tokenScope && c.claims && !covers(c.claims, row.tokenScope)) return unauthorized(bearer(c, row.tokenScope, 'insufficient_scope'));
        return success();
      }
      // Each permission the route needs, in turn; the first that fails decides.
      for (const [repo, action] of row.needs!) {
        const held = holds(c.principal!, repo, action);
        // A registry token without the scope: when the caller could get it, 401 insufficient_scope
        // (the client asks for a new token); when not, the same refusal as without a token.
        if (held && c.claims && !covers(c.claims, scopeOf(repo, action))) return unauthorized(bearer(c, scopeOf(repo, action), 'insufficient_scope'));
        // Without the right: 401 for the anonymous user (credentials might help), 403 DENIED for a user.
        if (!held) return anonymous ? unauthorized(bearer(c, scopeOf(repo, action))) : denied;
      }
      return success();
    }
  }
}

// ---------------------------------------------------------------------------
// Running a case and comparing.
// ---------------------------------------------------------------------------

interface Observed {
  status: number;
  code?: string;
  challenge?: string | null;
  body?: unknown;
  /** Why the answer's shape is wrong, if it is. */
  shape?: string;
}

/** Artifactory's error shape on the management API, the OCI one everywhere else (registry API, /metrics). */
const artifactoryShape = (path: string) => path.startsWith('/api/') && !path.startsWith('/api/docker/');

async function observe(row: Row, prepared: Prepared, r: Response, want: Outcome): Promise<Observed> {
  const { method, path } = prepared;
  const text = await r.text();
  const out: Observed = { status: r.status };
  if (r.status === 401) out.challenge = r.headers.get('www-authenticate');
  if (method === 'HEAD') {
    if (text !== '') out.shape = 'HEAD with a body';
    return out;
  }
  if (r.status >= 400) {
    let body: { errors?: Array<Record<string, unknown>> } | undefined;
    try {
      body = JSON.parse(text) as typeof body;
    } catch {
      out.shape = `not JSON: ${text.slice(0, 100)}`;
      return out;
    }
    const e = body?.errors?.[0];
    if (!e || body!.errors!.length !== 1) {
      out.shape = `not one error: ${text.slice(0, 200)}`;
    } else if (!artifactoryShape(path)) {
      if (Object.keys(e).sort().join() !== 'code,detail,message') out.shape = `not the OCI error shape: ${text}`;
      out.code = String(e.code);
    } else {
      // No code in Artifactory's shape: the status instead.
      if (Object.keys(e).sort().join() !== 'message,status' || e.status !== r.status) out.shape = `not the Artifactory error shape: ${text}`;
    }
    return out;
  }
  if (want.kind === 'success' && want.body !== undefined) {
    const parsed = JSON.parse(text) as unknown;
    // The repository list: just the keys, in order.
    out.body = row.id === 'GET /api/repositories' ? (parsed as Array<{ key: string }>).map((x) => x.key) : parsed;
  }
  return out;
}

function wanted(want: Outcome, { method, path }: Prepared): Observed {
  if (want.kind === 'success') return { status: want.status, ...(want.body !== undefined && method !== 'HEAD' ? { body: want.body } : {}) };
  const out: Observed = { status: want.status };
  if (want.status === 401) out.challenge = want.challenge;
  if (method !== 'HEAD' && !artifactoryShape(path)) out.code = want.code;
  return out;
}

interface CaseResult {
  id: string;
  want: Observed;
  got: Observed;
}

async function runCase(row: Row, c: Column, n: number): Promise<CaseResult> {
  const want = expected(row, c);
  const prepared = await row.build(c, n, want.kind === 'success');
  const r = await caller(c, prepared.method, prepared.path, {
    ...(prepared.body !== undefined ? { body: prepared.body } : {}),
    ...(prepared.headers ? { headers: prepared.headers } : {}),
  });
  const got = await observe(row, prepared, r, want);
  if (prepared.verify) await prepared.verify(r.status < 300);
  return { id: `${row.id} × ${c.id}`, want: wanted(want, prepared), got };
}

/** Runs `fn` over `items` with at most `limit` at a time (slow password checks overlap the rest). */
async function pool<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: limit }, worker));
  return out;
}

// ---------------------------------------------------------------------------
// Setup, through the REST API as the admin.
// ---------------------------------------------------------------------------

const claimsOf = (token: string): { sub: string; access: Array<{ type: string; name: string; actions: string[] }> } =>
  JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8')) as { sub: string; access: Array<{ type: string; name: string; actions: string[] }> };

async function registryToken(on: TestRegistry, auth: string | null, scopes: string[]): Promise<string> {
  const query = ['service=drydock', ...scopes.map((s) => `scope=${encodeURIComponent(s)}`)].join('&');
  const r = await on.fetch(`/v2/token?${query}`, { auth });
  expect(r.status).toBe(200);
  return ((await r.json()) as { token: string }).token;
}

async function pushImageAs(name: string, tag: string): Promise<PushedImage> {
  const salt = `${name}-${randomUUID()}`;
  const config = await pushBlob(reg, name, `{"architecture":"amd64","os":"linux","salt":"${salt}"}`);
  const layer = await pushBlob(reg, name, `layer of ${salt}`);
  const manifest = ociManifest(desc(MediaTypes.ociConfig, config), [desc('application/vnd.oci.image.layer.v1.tar', layer)]);
  const r = await reg.fetch(`/v2/${name}/manifests/${tag}`, { method: 'PUT', body: manifest, headers: { 'content-type': MediaTypes.ociManifest } });
  expect(r.status).toBe(201);
  const digest = sha256(manifest);
  return { digest, manifest, config, layer, descriptor: desc(MediaTypes.ociManifest, { digest, size: manifest.length }) };
}

beforeAll(async () => {
  // Many deliberate wrong passwords from one address: keep the throttle out of the way here.
  reg = await startTestRegistry({ config: { auth: { loginThrottle: { perUser: 100_000, perAddress: 100_000 } } } });
  for (const key of ['team-a', 'team-b']) await adminOk('PUT', `/api/repositories/${key}`, { rclass: 'local' });
  for (const u of USERS) await adminOk('PUT', `/api/security/users/${u}`, { email: `${u}@example.com`, password: passwordOf(u) });
  await adminOk('PUT', '/api/security/groups/devs', { description: 'developers', users: ['member'] });
  const target = (name: string, repositories: string[], actions: object) =>
    adminOk('PUT', `/api/v2/security/permissions/${name}`, { name, repo: { repositories, include_patterns: ['**'], actions } });
  await target('team-a-readers', ['team-a'], { users: { reader: ['read'] } });
  await target('team-a-deployers', ['team-a'], { users: { deployer: ['write'] } });
  await target('team-a-deleters', ['team-a'], { users: { deleter: ['delete'] } });
  await target('team-a-devs', ['team-a'], { groups: { devs: ['read', 'write'] } });
  await target('team-b-anonymous', ['team-b'], { users: { anonymous: ['read'] } });
  imageA = await pushImageAs('team-a/app', '1.0');
  imageB = await pushImageAs('team-b/app', '1.0');
  // A second process of the same installation (same database and blobs) with anonymous access on.
  open = await startTestRegistry({ store: reg.running.services.store, dataDir: reg.dataDir, config: { auth: { anonymousAccess: true } } });

  const userAuth = (u: string) => basic(u, passwordOf(u));
  for (const u of USERS) column(u).auth = userAuth(u);
  column('admin').auth = ADMIN_AUTH;
  column('wrong password').auth = basic('reader', 'not-the-password');

  const { signer } = reg.running.services;
  const deployerAccess = [{ type: 'repository', name: 'team-a/app', actions: ['pull', 'push'] }];
  column('expired registry token').auth = `Bearer ${await signer.registryToken({ subject: 'deployer', access: deployerAccess }, 300, new Date(Date.now() - 3600_000))}`;
  // Signed the same way now, it is accepted: only the expiry is wrong with the one above.
  const fresh = await signer.registryToken({ subject: 'deployer', access: deployerAccess }, 300);
  expect((await reg.fetch('/v2/team-a/app/manifests/1.0', { method: 'HEAD', auth: `Bearer ${fresh}` })).status).toBe(200);

  const deployerToken = await registryToken(reg, userAuth('deployer'), ['repository:team-a/app:pull,push', 'registry:catalog:*']);
  expect(claimsOf(deployerToken).access).toEqual([...deployerAccess, { type: 'registry', name: 'catalog', actions: ['*'] }]);
  column('registry token (deployer)').auth = `Bearer ${deployerToken}`;

  // The same token with one claim flipped (delete added), the signature kept.
  const [header, payload, signature] = deployerToken.split('.') as [string, string, string];
  const flipped = { ...claimsOf(deployerToken), access: [{ type: 'repository', name: 'team-a/app', actions: ['pull', 'push', 'delete'] }] };
  column('tampered registry token').auth = `Bearer ${header}.${Buffer.from(JSON.stringify(flipped)).toString('base64url')}.${signature}`;
  expect(payload).not.toBe(Buffer.from(JSON.stringify(flipped)).toString('base64url'));

  const readerB = await registryToken(reg, userAuth('reader'), ['repository:team-b/app:pull']);
  expect(claimsOf(readerB).access).toEqual([]);
  column('team-b token (reader)').auth = `Bearer ${readerB}`;
  const adminB = await registryToken(reg, column('admin').auth, ['repository:team-b/app:pull']);
  expect(claimsOf(adminB).access).toEqual([{ type: 'repository', name: 'team-b/app', actions: ['pull'] }]);
  column('team-b token (admin)').auth = `Bearer ${adminB}`;
  const anonB = await registryToken(open, null, ['repository:team-b/app:pull']);
  expect(claimsOf(anonB)).toMatchObject({ sub: 'anonymous', access: [{ type: 'repository', name: 'team-b/app', actions: ['pull'] }] });
  column('team-b token (anonymous)').auth = `Bearer ${anonB}`;

  const createAccessToken = async () => {
    const r = await reg.fetch('/api/security/token', { method: 'POST', auth: userAuth('deployer'), body: 'scope=applied-permissions/user', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expect(r.status).toBe(200);
    return ((await r.json()) as { access_token: string }).access_token;
  };
  const access = await createAccessToken();
  column('access token (Bearer)').auth = `Bearer ${access}`;
  column('access token (Basic)').auth = basic('deployer', access);
  const revokedToken = await createAccessToken();
  // Used (and so remembered by the authenticator) before it is revoked.
  expect((await reg.fetch('/v2/', { auth: `Bearer ${revokedToken}` })).status).toBe(200);
  expect((await reg.fetch('/v2/', { auth: basic('deployer', revokedToken) })).status).toBe(200);
  const revoke = await reg.fetch('/api/security/token/revoke', { method: 'POST', auth: userAuth('deployer'), body: JSON.stringify({ token: revokedToken }), headers: { 'content-type': 'application/json' } });
  expect(revoke.status).toBe(200);
  column('revoked access token (Bearer)').auth = `Bearer ${revokedToken}`;
  column('revoked access token (Basic)').auth = basic('deployer', revokedToken);
});

afterAll(async () => {
  await open?.close();
  await reg?.close();
});

// ---------------------------------------------------------------------------
// The tests.
// ---------------------------------------------------------------------------

/** The answer to one request: status, error code and message, challenge. */
async function answer(r: Response, method: string): Promise<{ status: number; code?: string; message?: string; challenge: string | null }> {
  const text = await r.text();
  const out: { status: number; code?: string; message?: string; challenge: string | null } = { status: r.status, challenge: r.headers.get('www-authenticate') };
  if (method !== 'HEAD' && text) {
    const e = (JSON.parse(text) as { errors: Array<{ code?: string; message: string }> }).errors[0]!;
    out.code = e.code;
    out.message = e.message;
  }
  return out;
}

describe('access matrix', () => {
  it('every route × every caller answers exactly what the rules say', async () => {
    const cases: Array<[Row, Column, number]> = [];
    let n = 0;
    for (const row of ROWS) for (const c of COLUMNS) cases.push([row, c, ++n]);
    console.log(`access matrix: ${cases.length} cases (${ROWS.length} routes × ${COLUMNS.length} callers)`);
    const results = await pool(cases, 32, ([row, c, i]) => runCase(row, c, i));
    const mismatches = results.filter((r) => JSON.stringify(r.got) !== JSON.stringify(r.want));
    expect(mismatches).toEqual([]);
    // Every kind of outcome occurs.
    const byStatus = new Map<number, number>();
    for (const r of results) byStatus.set(r.got.status, (byStatus.get(r.got.status) ?? 0) + 1);
    console.log(`access matrix outcomes: ${[...byStatus].sort((a, b) => a[0] - b[0]).map(([s, k]) => `${s}×${k}`).join(' ')}`);
    expect([...byStatus.keys()].sort()).toEqual([200, 201, 202, 204, 401, 403, 404]);
  });

  it('a token for another repository: 401 insufficient_scope when the user could get the scope, 403 DENIED when not', async () => {
    // reader may read team-a but its token (asked for team-b) carries nothing: asking again would help.
    const read = await reg.fetch('/v2/team-a/app/manifests/1.0', { auth: column('team-b token (reader)').auth });
    expect(await answer(read, 'GET')).toMatchObject({
      status: 401,
      code: 'UNAUTHORIZED',
      challenge: `Bearer realm="${reg.url}/v2/token",service="drydock",scope="repository:team-a/app:pull",error="insufficient_scope"`,
    });
    // reader may not push to team-a: no token could help.
    const push = await reg.fetch('/v2/team-a/app/blobs/uploads/', { method: 'POST', auth: column('team-b token (reader)').auth });
    expect(await answer(push, 'POST')).toMatchObject({ status: 403, code: 'DENIED', challenge: null });
    // The token works where it was granted.
    const own = await reg.fetch('/v2/team-b/app/manifests/1.0', { method: 'HEAD', auth: column('team-b token (admin)').auth });
    expect(own.status).toBe(200);
    // And a fresh token for the right scope fixes the 401.
    const fixed = await registryToken(reg, basic('reader', passwordOf('reader')), ['repository:team-a/app:pull']);
    expect((await reg.fetch('/v2/team-a/app/manifests/1.0', { method: 'HEAD', auth: `Bearer ${fixed}` })).status).toBe(200);
  });

  it('no leak: without read on team-a, missing content answers exactly as existing content does', async () => {
    const uuid = randomUUID();
    const session = (await adminOk('POST', '/v2/team-a/app/blobs/uploads/', undefined, [202])).headers.get('docker-upload-uuid')!;
    const missingDigest = sha256(`nothing ${randomUUID()}`);
    // [existing, missing...] — every entry of a group must answer alike.
    const groups: Array<[string, string[]]> = [
      ['GET', ['/v2/team-a/app/manifests/1.0', '/v2/team-a/app/manifests/no-such-tag', '/v2/team-a/ghost/manifests/1.0', '/v2/team-nope/app/manifests/1.0']],
      ['HEAD', ['/v2/team-a/app/manifests/1.0', '/v2/team-a/app/manifests/no-such-tag', '/v2/team-nope/app/manifests/1.0']],
      ['GET', [`/v2/team-a/app/manifests/${imageA.digest}`, `/v2/team-a/app/manifests/${missingDigest}`]],
      ['GET', [`/v2/team-a/app/blobs/${imageA.layer.digest}`, `/v2/team-a/app/blobs/${missingDigest}`, `/v2/team-a/ghost/blobs/${imageA.layer.digest}`]],
      ['HEAD', [`/v2/team-a/app/blobs/${imageA.layer.digest}`, `/v2/team-a/app/blobs/${missingDigest}`]],
      ['GET', ['/v2/team-a/app/tags/list', '/v2/team-a/ghost/tags/list', '/v2/team-nope/app/tags/list']],
      ['GET', [`/v2/team-a/app/referrers/${imageA.digest}`, `/v2/team-a/ghost/referrers/${missingDigest}`]],
      ['GET', [`/v2/team-a/app/blobs/uploads/${session}`, `/v2/team-a/app/blobs/uploads/${uuid}`]],
      ['DELETE', ['/v2/team-a/app/manifests/1.0', '/v2/team-a/app/manifests/no-such-tag', '/v2/team-nope/app/manifests/1.0']],
      ['GET', ['/api/docker/team-a/v2/app/manifests/1.0', '/api/docker/team-a/v2/ghost/manifests/1.0', '/api/docker/team-nope/v2/app/manifests/1.0']],
      ['GET', ['/api/docker/team-a/v2/_catalog', '/api/docker/team-nope/v2/_catalog']],
      ['GET', ['/api/repositories/team-a', '/api/repositories/team-nope']],
    ];
    const callers = ['outsider', 'anonymous (access off)', 'anonymous (access on)', 'team-b token (anonymous)'].map(column);
    let compared = 0;
    for (const c of callers) {
      for (const [method, paths] of groups) {
        const answers = await Promise.all(
          paths.map(async (path) => {
            const a = await answer(await caller(c, method, path), method);
            // Only what the caller itself sent may differ: the name it asked for.
            const named = /\/v2\/(team-[a-z]+\/[a-z]+)\//.exec(path)?.[1] ?? /\/api\/docker\/(team-[a-z]+)\/v2\/([a-z]+)?/.exec(path)?.slice(1).filter(Boolean).join('/') ?? '';
            const norm = (s: string | undefined | null) => (s == null ? s : named ? s.split(named).join('<name>') : s);
            return { status: a.status, code: a.code, message: norm(a.message), challenge: norm(a.challenge) };
          }),
        );
        expect({ caller: c.id, paths, status: answers[0]!.status >= 400 }).toEqual({ caller: c.id, paths, status: true });
        for (const a of answers.slice(1)) expect({ caller: c.id, paths, answer: a }).toEqual({ caller: c.id, paths, answer: answers[0] });
        compared += paths.length;
      }
    }
    // The tag, session and repository are all still there.
    expect(await exists('/v2/team-a/app/manifests/1.0')).toBe(true);
    expect((await reg.fetch(`/v2/team-a/app/blobs/uploads/${session}`)).status).toBe(204);
    expect(compared).toBeGreaterThan(100);
  });

  it('a failed login costs the same for an unknown user and for a known user with a wrong password', async () => {
    const time = async (auth: string): Promise<number> => {
      const t0 = process.hrtime.bigint();
      const r = await reg.fetch('/v2/', { auth });
      await r.arrayBuffer();
      expect(r.status).toBe(401);
      return Number(process.hrtime.bigint() - t0) / 1e6;
    };
    // Warm both paths once, then alternate.
    await time(basic('reader', 'warm-up'));
    await time(basic('nobody-at-all', 'warm-up'));
    const known: number[] = [];
    const unknown: number[] = [];
    for (let i = 0; i < 5; i++) {
      known.push(await time(basic('reader', `wrong-${i}`)));
      unknown.push(await time(basic(`nobody-${i}`, `wrong-${i}`)));
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[2]!;
    const ratio = median(unknown) / median(known);
    console.log(`failed login: known user ${median(known).toFixed(1)} ms, unknown user ${median(unknown).toFixed(1)} ms (ratio ${ratio.toFixed(2)})`);
    expect(ratio).toBeGreaterThanOrEqual(0.5);
    expect(ratio).toBeLessThanOrEqual(2);
  });

  it('the audit log shows the matrix: failed logins, pushes with digests, denied pushes and permission changes', async () => {
    type Event = { id: number; at: string; actor: string; action: string; target: string | null; outcome: string; clientIp: string | null; details: Record<string, unknown> | null };
    const events = async (query: string): Promise<Event[]> => {
      const r = await reg.fetch(`/api/audit?limit=1000&${query}`);
      expect(r.status).toBe(200);
      return ((await r.json()) as { events: Event[] }).events;
    };
    const failures = (await events('action=login&actor=reader')).filter((e) => e.outcome === 'failure');
    expect(failures.length).toBeGreaterThan(10);
    for (const e of failures) expect(e).toMatchObject({ target: null, clientIp: expect.stringMatching(/127\.0\.0\.1$/), details: { method: 'password' } });

    const pushes = await events('action=manifest.put&actor=deployer');
    const pushed = pushes.filter((e) => e.outcome === 'success');
    // Basic, access token (Bearer and Basic) and registry token: four deployer columns × two addressings.
    expect(pushed.filter((e) => /^team-a\/app:new-\d+$/.test(e.target ?? ''))).toHaveLength(8);
    for (const e of pushed) expect(e.details).toEqual({ digest: imageA.digest });
    // The overwrite the deployer may not make is recorded as denied too.
    expect(pushes.filter((e) => e.outcome === 'denied' && e.target === 'team-a/app:1.0')).toHaveLength(8);

    const denied = (await events('action=manifest.put&actor=reader')).filter((e) => e.outcome === 'denied');
    expect(denied.map((e) => e.target).sort()).toEqual(expect.arrayContaining(['team-a/app:1.0', expect.stringMatching(/^team-a\/app:new-\d+$/)]));
    for (const e of denied) expect(e).toMatchObject({ clientIp: expect.stringMatching(/127\.0\.0\.1$/), details: null });

    const permissionChanges = (await events('actor=admin')).filter((e) => e.action.startsWith('permission.'));
    expect(permissionChanges.map((e) => e.target)).toEqual(
      expect.arrayContaining(['team-a-readers', 'team-a-deployers', 'team-a-deleters', 'team-a-devs', 'team-b-anonymous', expect.stringMatching(/^m-perm-\d+$/)]),
    );
    expect(new Set(permissionChanges.map((e) => e.action))).toEqual(new Set(['permission.create', 'permission.delete']));
    const e = pushed[0]!;
    console.log('audit event:', JSON.stringify(e));
    expect(Object.keys(e).sort()).toEqual(['action', 'actor', 'at', 'clientIp', 'details', 'id', 'outcome', 'target']);
  });
});

describe('the login throttle', () => {
  let limited: TestRegistry;
  beforeAll(async () => {
    limited = await startTestRegistry({
      store: reg.running.services.store,
      dataDir: reg.dataDir,
      config: { auth: { loginThrottle: { perUser: 3, perAddress: 1000, windowSecs: 60 } } },
    });
  });
  afterAll(async () => {
    await limited?.close();
  });

  it('the 4th wrong login for one user is 429 TOOMANYREQUESTS with Retry-After on /v2/, /v2/token and /api; other users are unaffected', async () => {
    const endpoints = [
      ['/v2/', 'oci'],
      ['/v2/token?service=drydock', 'oci'],
      ['/api/repositories', 'artifactory'],
    ] as const;
    for (const [i, [path, shape]] of endpoints.entries()) {
      const user = `throttled-${i}`;
      await adminOk('PUT', `/api/security/users/${user}`, { password: passwordOf(user) });
      for (let k = 0; k < 3; k++) {
        const r = await limited.fetch(path, { auth: basic(user, `guess-${k}`) });
        expect({ path, attempt: k + 1, status: r.status }).toEqual({ path, attempt: k + 1, status: 401 });
        await r.arrayBuffer();
      }
      const fourth = await limited.fetch(path, { auth: basic(user, 'guess-4') });
      expect({ path, status: fourth.status }).toEqual({ path, status: 429 });
      const retryAfter = Number(fourth.headers.get('retry-after'));
      expect(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 60).toBe(true);
      const body = (await fourth.json()) as { errors: Array<Record<string, unknown>> };
      if (shape === 'oci') expect(body.errors).toEqual([{ code: 'TOOMANYREQUESTS', message: expect.stringMatching(/too many failed logins/), detail: {} }]);
      else expect(body.errors).toEqual([{ status: 429, message: expect.stringMatching(/too many failed logins/) }]);
      // While throttled even the right password is refused, on every endpoint: guessing learns nothing.
      for (const [other] of endpoints) {
        const right = await limited.fetch(other, { auth: basic(user, passwordOf(user)) });
        expect({ other, status: right.status }).toEqual({ other, status: 429 });
        await right.arrayBuffer();
      }
    }
    // Another user is unaffected: its right password works and a wrong one is a plain 401.
    await adminOk('PUT', '/api/security/users/bystander', { password: passwordOf('bystander') });
    for (const [path] of endpoints) {
      const ok = await limited.fetch(path, { auth: basic('bystander', passwordOf('bystander')) });
      expect({ path, status: ok.status }).toEqual({ path, status: 200 });
      await ok.arrayBuffer();
    }
    const wrong = await limited.fetch('/v2/', { auth: basic('bystander', 'oops') });
    expect(wrong.status).toBe(401);
    await wrong.arrayBuffer();
  });
});
