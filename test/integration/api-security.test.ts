import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../../src/core/config/errors.js';
import { PRINCIPAL_NAME_RULE } from '../../src/core/config/security.js';
import { hashPassword } from '../../src/registry/auth/passwords.js';
import { ADMIN_AUTH, startTestRegistry, type TestRegistry, type TestRequestInit } from '../helpers/registry.js';
import { basic, pushImage, type PushedImage } from '../helpers/oci-client.js';

let reg: TestRegistry;

beforeAll(async () => {
  // Many deliberate wrong passwords come from one address: keep the per-address throttle out of the way.
  reg = await startTestRegistry({ config: { auth: { loginThrottle: { perAddress: 10_000 } } } });
});
afterAll(async () => {
  await reg?.close();
});

let n = 0;
const unique = (prefix: string) => `${prefix}-${process.pid}-${++n}`;
const passwordOf = (user: string) => `pw-of-${user}`;
const auth = (user: string) => basic(user, passwordOf(user));
const bearer = (token: string) => `Bearer ${token}`;

function send(method: string, path: string, body?: unknown, init: TestRequestInit = {}): Promise<Response> {
  return reg.fetch(path, {
    method,
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    ...init,
    headers: { 'content-type': 'application/json', ...(init.headers as Record<string, string> | undefined) },
  });
}

/** A form body, as `curl -d` sends it (Artifactory's token examples). */
function sendForm(path: string, fields: Record<string, string>, init: TestRequestInit = {}): Promise<Response> {
  return reg.fetch(path, {
    method: 'POST',
    body: new URLSearchParams(fields).toString(),
    ...init,
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
  });
}

/** Asserts the Artifactory error shape `{"errors":[{"status","message"}]}` exactly; resolves the message. */
async function expectApiError(r: Response, status: number): Promise<string> {
  const text = await r.text();
  expect({ status: r.status, body: text }).toMatchObject({ status });
  expect(r.headers.get('content-type')).toMatch(/^application\/json/);
  const body = JSON.parse(text) as { errors: Array<{ status: number; message: string }> };
  expect(Object.keys(body)).toEqual(['errors']);
  expect(body.errors).toHaveLength(1);
  expect(Object.keys(body.errors[0]!).sort()).toEqual(['message', 'status']);
  expect(body.errors[0]!.status).toBe(status);
  return body.errors[0]!.message;
}

async function createUser(name: string, extra: Record<string, unknown> = {}): Promise<void> {
  const r = await send('PUT', `/api/security/users/${name}`, { email: `${name}@example.com`, password: passwordOf(name), ...extra });
  expect({ name, status: r.status }).toEqual({ name, status: 201 });
}

async function createGroup(name: string, users?: string[]): Promise<void> {
  const r = await send('PUT', `/api/security/groups/${name}`, { description: `group ${name}`, ...(users ? { users } : {}) });
  expect({ name, status: r.status }).toEqual({ name, status: 201 });
}

async function createRepo(): Promise<string> {
  const key = unique('sec');
  expect((await send('PUT', `/api/repositories/${key}`, { rclass: 'local' })).status).toBe(200);
  return key;
}

async function grant(name: string, repositories: string[], actions: { users?: object; groups?: object }): Promise<void> {
  const r = await send('PUT', `/api/v2/security/permissions/${name}`, { name, repo: { repositories, actions } });
  expect({ name, status: r.status }).toEqual({ name, status: 201 });
}

async function createToken(fields: Record<string, string>, as: string): Promise<{ access_token: string; token_id: string; scope: string; expires_in: number }> {
  const r = await sendForm('/api/security/token', fields, { auth: as });
  expect({ status: r.status }).toEqual({ status: 200 });
  return (await r.json()) as { access_token: string; token_id: string; scope: string; expires_in: number };
}

const pull = (image: string, tag: string, as: string) => reg.fetch(`/v2/${image}/manifests/${tag}`, { method: 'HEAD', auth: as });

interface AuditEventJson {
  id: number;
  at: string;
  actor: string;
  action: string;
  target: string | null;
  outcome: string;
  clientIp: string | null;
  details: Record<string, unknown> | null;
}

async function audit(query: string, registry: TestRegistry = reg): Promise<{ events: AuditEventJson[]; next?: number }> {
  const r = await registry.fetch(`/api/audit?${query}`);
  expect(r.status).toBe(200);
  return (await r.json()) as { events: AuditEventJson[]; next?: number };
}

describe('users', () => {
  it('PUT creates a user who can log in on /v2/ right away; DELETE removes the user and the login', async () => {
    const name = unique('ursula');
    const put = await send('PUT', `/api/security/users/${name}`, { name, email: 'u@example.com', password: passwordOf(name) });
    expect(put.status).toBe(201);
    expect(await put.json()).toEqual({ name, email: 'u@example.com', admin: false, groups: [] });
    expect((await reg.fetch('/v2/', { auth: auth(name) })).status).toBe(200);

    const del = await reg.fetch(`/api/security/users/${name}`, { method: 'DELETE' });
    expect(del.status).toBe(200);
    expect(await del.text()).toBe(`User '${name}' has been removed successfully.`);
    const after = await reg.fetch('/v2/', { auth: auth(name) });
    expect(after.status).toBe(401);
    await after.arrayBuffer();
    expect(await expectApiError(await reg.fetch(`/api/security/users/${name}`), 404)).toBe(`user '${name}' does not exist`);
    expect(await expectApiError(await reg.fetch(`/api/security/users/${name}`, { method: 'DELETE' }), 404)).toBe(`user '${name}' does not exist`);
  });

  it('lists users Artifactory-style and shows one without any password', async () => {
    const name = unique('lister');
    await createUser(name);
    const list = await reg.fetch('/artifactory/api/security/users');
    expect(list.status).toBe(200);
    const users = (await list.json()) as Array<{ name: string; uri: string; realm: string }>;
    expect(users).toContainEqual({ name, uri: `${reg.url}/artifactory/api/security/users/${name}`, realm: 'internal' });
    expect(users.map((u) => u.name)).toContain('admin');
    const got = await reg.fetch(`/api/security/users/${name}`);
    const text = await got.text();
    expect(JSON.parse(text)).toEqual({ name, email: `${name}@example.com`, admin: false, groups: [] });
    expect(text).not.toMatch(/scrypt|password/);
    expect(await (await reg.fetch('/api/security/users/admin')).json()).toEqual({ name: 'admin', admin: true, groups: [] });
  });

  it('PUT on an existing user replaces its fields and keeps the password unless one is given', async () => {
    const name = unique('replaced');
    const group = unique('replacers');
    await createGroup(group);
    await createUser(name, { groups: [group] });
    const put = await send('PUT', `/api/security/users/${name}`, { admin: true });
    expect(put.status).toBe(200);
    expect(await put.json()).toEqual({ name, admin: true, groups: [] });
    expect((await reg.fetch('/api/security/users', { auth: auth(name) })).status).toBe(200);
    await send('PUT', `/api/security/users/${name}`, { password: 'a-new-one' });
    expect(await (await reg.fetch(`/api/security/users/${name}`)).json()).toEqual({ name, admin: false, groups: [] });
    expect((await reg.fetch('/v2/', { auth: basic(name, 'a-new-one') })).status).toBe(200);
  });

  it('POST changes only the fields it carries; a new password works at once and the old one stops', async () => {
    const name = unique('patched');
    const group = unique('patchers');
    await createGroup(group);
    await createUser(name);
    expect((await reg.fetch('/v2/', { auth: auth(name) })).status).toBe(200);
    const post = await send('POST', `/api/security/users/${name}`, { groups: [group], password: 'changed-pw' });
    expect(post.status).toBe(200);
    expect(await post.json()).toEqual({ name, email: `${name}@example.com`, admin: false, groups: [group] });
    expect((await reg.fetch('/v2/', { auth: auth(name) })).status).toBe(401);
    expect((await reg.fetch('/v2/', { auth: basic(name, 'changed-pw') })).status).toBe(200);
    const email = await send('POST', `/api/security/users/${name}`, { email: 'new@example.com' });
    expect(await email.json()).toEqual({ name, email: 'new@example.com', admin: false, groups: [group] });
    expect(await expectApiError(await send('POST', `/api/security/users/${unique('ghost')}`, { admin: true }), 404)).toMatch(/^user '.+' does not exist$/);
  });

  it('invalid bodies and names are 400, naming every problem', async () => {
    const name = unique('invalid');
    const path = `/api/security/users/${name}`;
    expect(await expectApiError(await send('PUT', path, { email: 'x@example.com' }), 400)).toBe(`password is required to create user '${name}'`);
    expect(await expectApiError(await send('PUT', path, { password: 'p', colour: 'blue', admin: 'yes' }), 400)).toBe(
      'invalid user: admin: expected boolean, received string; colour: unknown field',
    );
    expect(await expectApiError(await send('PUT', path, { password: 'p', email: 'not-an-address' }), 400)).toBe(
      'invalid user: email: must be an e-mail address',
    );
    expect(await expectApiError(await send('PUT', path, { password: 'p', groups: ['no-such-group-a', 'no-such-group-b'] }), 400)).toBe(
      'groups: these groups do not exist: no-such-group-a, no-such-group-b',
    );
    expect(await expectApiError(await send('PUT', path, { name: 'someone-else', password: 'p' }), 400)).toBe(
      `name 'someone-else' in the body does not match '${name}' in the URL`,
    );
    expect(await expectApiError(await send('PUT', '/api/security/users/bad%20name!', { password: 'p' }), 400)).toBe(
      `invalid user: name: invalid user name "bad name!": ${PRINCIPAL_NAME_RULE}`,
    );
    expect(await expectApiError(await send('PUT', `/api/security/users/${'x'.repeat(65)}`, { password: 'p' }), 400)).toMatch(/^invalid user: name: invalid user name/);
    expect(await expectApiError(await send('PUT', path, [1]), 400)).toBe('the body must be a JSON object');
    expect(await expectApiError(await send('PUT', path, '{"password":'), 400)).toBe('the request body is not valid JSON');
    // An empty body is an empty object: still no password.
    expect(await expectApiError(await reg.fetch(path, { method: 'PUT' }), 400)).toBe(`password is required to create user '${name}'`);
    expect((await reg.fetch(path)).status).toBe(404);
    // Letters, digits and . _ - @ are all fine.
    await createUser(`Mixed.Case_${process.pid}-x@corp`, { email: undefined });
  });

  it('anonymous is reserved: it cannot be created or deleted', async () => {
    expect(await expectApiError(await send('PUT', '/api/security/users/anonymous', { password: 'p' }), 400)).toBe(
      "invalid user: name: 'anonymous' is reserved for requests without credentials",
    );
    expect(await expectApiError(await reg.fetch('/api/security/users/anonymous', { method: 'DELETE' }), 400)).toBe(
      "'anonymous' is the built-in user of requests without credentials; it cannot be deleted",
    );
  });

  it('the last admin can be neither deleted nor demoted; with a second admin, either can go', async () => {
    expect(await expectApiError(await reg.fetch('/api/security/users/admin', { method: 'DELETE' }), 409)).toBe(
      "'admin' is the last admin user; make another user admin first",
    );
    expect(await expectApiError(await send('POST', '/api/security/users/admin', { admin: false }), 409)).toBe(
      "'admin' is the last admin user; make another user admin first",
    );
    expect(await expectApiError(await send('PUT', '/api/security/users/admin', {}), 409)).toBe(
      "'admin' is the last admin user; make another user admin first",
    );
    const boss = unique('boss');
    await createUser(boss, { admin: true });
    // The second admin manages users too.
    expect((await reg.fetch('/api/security/users/admin', { auth: auth(boss) })).status).toBe(200);
    expect((await send('POST', `/api/security/users/${boss}`, { admin: false })).status).toBe(200);
    expect((await reg.fetch('/api/security/users/admin', { auth: auth(boss) })).status).toBe(403);
    expect((await reg.fetch(`/api/security/users/${boss}`, { method: 'DELETE' })).status).toBe(200);
    expect((await reg.fetch('/api/security/users/admin')).status).toBe(200);
  });
});

describe('groups', () => {
  it('creates a group with members, reads it with and without them, and lists it', async () => {
    const [alice, bob] = [unique('alice'), unique('bob')];
    await createUser(alice);
    await createUser(bob);
    const group = unique('devs');
    const put = await send('PUT', `/api/security/groups/${group}`, { name: group, description: 'developers', users: [alice, bob, alice] });
    expect(put.status).toBe(201);
    expect(await put.json()).toEqual({ name: group, description: 'developers', users: [alice, bob] });
    expect(await (await reg.fetch(`/api/security/groups/${group}`)).json()).toEqual({ name: group, description: 'developers' });
    expect(await (await reg.fetch(`/api/security/groups/${group}?includeUsers=true`)).json()).toEqual({
      name: group,
      description: 'developers',
      users: [alice, bob],
    });
    const list = (await (await reg.fetch('/api/security/groups')).json()) as Array<{ name: string; uri: string }>;
    expect(list).toContainEqual({ name: group, uri: `${reg.url}/artifactory/api/security/groups/${group}` });
    expect((await (await reg.fetch(`/api/security/users/${alice}`)).json()).groups).toEqual([group]);
  });

  it('membership set from the user side shows on the group, and the reverse', async () => {
    const [g1, g2] = [unique('g'), unique('g')];
    await createGroup(g1);
    await createGroup(g2);
    const carl = unique('carl');
    await createUser(carl, { groups: [g1] });
    expect((await (await reg.fetch(`/api/security/groups/${g1}?includeUsers=true`)).json()).users).toEqual([carl]);
    expect((await send('POST', `/api/security/groups/${g2}`, { users: [carl] })).status).toBe(200);
    expect((await (await reg.fetch(`/api/security/users/${carl}`)).json()).groups).toEqual([g1, g2].sort());
  });

  it('POST keeps what it does not carry; PUT replaces the description and keeps members unless users is given', async () => {
    const member = unique('member');
    await createUser(member);
    const group = unique('ops');
    await createGroup(group, [member]);
    const post = await send('POST', `/api/security/groups/${group}`, { description: 'operations' });
    expect(post.status).toBe(200);
    expect(await post.json()).toEqual({ name: group, description: 'operations', users: [member] });
    const put = await send('PUT', `/api/security/groups/${group}`, {});
    expect(put.status).toBe(200);
    expect(await put.json()).toEqual({ name: group, users: [member] });
    const cleared = await send('PUT', `/api/security/groups/${group}`, { description: 'empty', users: [] });
    expect(await cleared.json()).toEqual({ name: group, description: 'empty', users: [] });
    expect((await (await reg.fetch(`/api/security/users/${member}`)).json()).groups).toEqual([]);
  });

  it('DELETE removes the group and its memberships', async () => {
    const member = unique('member');
    await createUser(member);
    const group = unique('doomed');
    await createGroup(group, [member]);
    const del = await reg.fetch(`/api/security/groups/${group}`, { method: 'DELETE' });
    expect(del.status).toBe(200);
    expect(await del.text()).toBe(`Group '${group}' has been removed successfully.`);
    expect(await expectApiError(await reg.fetch(`/api/security/groups/${group}`), 404)).toBe(`group '${group}' does not exist`);
    expect(await expectApiError(await reg.fetch(`/api/security/groups/${group}`, { method: 'DELETE' }), 404)).toBe(`group '${group}' does not exist`);
    expect((await (await reg.fetch(`/api/security/users/${member}`)).json()).groups).toEqual([]);
  });

  it('unknown members, bad names and fields are 400; updating an unknown group is 404', async () => {
    const group = unique('bad');
    expect(await expectApiError(await send('PUT', `/api/security/groups/${group}`, { users: ['nobody-x', 'nobody-y'] }), 400)).toBe(
      'users: these users do not exist: nobody-x, nobody-y',
    );
    expect((await reg.fetch(`/api/security/groups/${group}`)).status).toBe(404);
    expect(await expectApiError(await send('PUT', `/api/security/groups/${group}`, { autoJoin: true }), 400)).toBe('invalid group: autoJoin: unknown field');
    expect(await expectApiError(await send('PUT', '/api/security/groups/a%2Fb', {}), 400)).toBe(`invalid group: name: invalid group name "a/b": ${PRINCIPAL_NAME_RULE}`);
    expect(await expectApiError(await send('PUT', `/api/security/groups/${group}`, { name: 'other' }), 400)).toBe(
      `name 'other' in the body does not match '${group}' in the URL`,
    );
    expect(await expectApiError(await send('POST', `/api/security/groups/${group}`, { description: 'x' }), 404)).toBe(`group '${group}' does not exist`);
  });
});

describe('permission targets', () => {
  it('PUT creates (201) and replaces (200) a v2 target; GET answers it as stored; DELETE removes it', async () => {
    const repo = await createRepo();
    const name = unique('perm');
    const body = { name, repo: { repositories: [repo, 'ANY REMOTE'], actions: { users: { someone: ['read'] }, groups: { later: ['write', 'delete'] } } } };
    const put = await send('PUT', `/api/v2/security/permissions/${name}`, body);
    expect(put.status).toBe(201);
    const stored = {
      name,
      repo: {
        repositories: [repo, 'ANY REMOTE'],
        include_patterns: ['**'],
        exclude_patterns: [],
        actions: { users: { someone: ['read'] }, groups: { later: ['write', 'delete'] } },
      },
    };
    expect(await put.json()).toEqual(stored);
    expect(await (await reg.fetch(`/artifactory/api/v2/security/permissions/${name}`)).json()).toEqual(stored);
    const list = (await (await reg.fetch('/api/v2/security/permissions')).json()) as Array<{ name: string; uri: string }>;
    expect(list).toContainEqual({ name, uri: `${reg.url}/artifactory/api/v2/security/permissions/${name}` });

    const again = await send('PUT', `/api/v2/security/permissions/${name}`, { repo: { repositories: ['ANY'], include_patterns: ['team/**'] } });
    expect(again.status).toBe(200);
    expect(await again.json()).toEqual({
      name,
      repo: { repositories: ['ANY'], include_patterns: ['team/**'], exclude_patterns: [], actions: { users: {}, groups: {} } },
    });

    const del = await reg.fetch(`/api/v2/security/permissions/${name}`, { method: 'DELETE' });
    expect(del.status).toBe(200);
    expect(await del.text()).toBe(`Permission Target '${name}' has been removed successfully.`);
    expect(await expectApiError(await reg.fetch(`/api/v2/security/permissions/${name}`), 404)).toBe(`permission target '${name}' does not exist`);
    expect(await expectApiError(await reg.fetch(`/api/v2/security/permissions/${name}`, { method: 'DELETE' }), 404)).toBe(
      `permission target '${name}' does not exist`,
    );
  });

  it('names with spaces work, as in Artifactory', async () => {
    const name = `team a ${process.pid}`;
    const path = `/api/v2/security/permissions/${encodeURIComponent(name)}`;
    expect((await send('PUT', path, { repo: { repositories: ['ANY'] } })).status).toBe(201);
    expect((await (await reg.fetch(path)).json()).name).toBe(name);
    expect((await reg.fetch(path, { method: 'DELETE' })).status).toBe(200);
  });

  it('refuses repositories that do not exist, bad actions, unknown fields and a name that differs', async () => {
    const name = unique('perm');
    const path = `/api/v2/security/permissions/${name}`;
    expect(await expectApiError(await send('PUT', path, { repo: { repositories: ['ANY LOCAL', 'ghost-one', 'docker-local', 'ghost-two'] } }), 400)).toBe(
      'repo.repositories: these repositories do not exist: ghost-one, ghost-two',
    );
    expect(await expectApiError(await send('PUT', path, { repo: { repositories: ['ANY'], actions: { users: { bob: ['read', 'deploy'] } } } }), 400)).toBe(
      'invalid permission target: repo.actions.users.bob.1: actions must be among read, annotate, write, delete, manage',
    );
    expect(await expectApiError(await send('PUT', path, { repo: { repositories: ['ANY'] }, build: {} }), 400)).toBe('invalid permission target: build: unknown field');
    expect(await expectApiError(await send('PUT', path, { repo: { repositories: [] } }), 400)).toBe(
      'invalid permission target: repo.repositories: name at least one repository, or ANY / ANY LOCAL / ANY REMOTE',
    );
    expect(await expectApiError(await send('PUT', path, { name: 'other', repo: { repositories: ['ANY'] } }), 400)).toBe(
      `name 'other' in the body does not match '${name}' in the URL`,
    );
    expect(await expectApiError(await send('PUT', path, '[]'), 400)).toBe('the body must be a JSON object');
    expect((await reg.fetch(path)).status).toBe(404);
  });

  it("a group's read grant on one repository lets a member pull there, not elsewhere, and not push", async () => {
    const [granted, other] = [await createRepo(), await createRepo()];
    const imgA = await pushImage(reg, `${granted}/app`, 'v1');
    await pushImage(reg, `${other}/app`, 'v1');
    const [member, outsider] = [unique('reader'), unique('outsider')];
    await createUser(member);
    await createUser(outsider);
    const group = unique('readers');
    await createGroup(group, [member]);
    const target = unique('read-one');
    await grant(target, [granted], { groups: { [group]: ['read'] } });

    expect((await pull(`${granted}/app`, 'v1', auth(member))).status).toBe(200);
    const blob = await reg.fetch(`/v2/${granted}/app/blobs/${imgA.layer.digest}`, { auth: auth(member) });
    expect(blob.status).toBe(200);
    expect(Buffer.from(await blob.arrayBuffer()).equals(imgA.layer.data)).toBe(true);
    expect((await pull(`${other}/app`, 'v1', auth(member))).status).toBe(403);
    expect((await pull(`${granted}/app`, 'v1', auth(outsider))).status).toBe(403);
    const push = await reg.fetch(`/v2/${granted}/app/blobs/uploads/`, { method: 'POST', auth: auth(member) });
    expect(push.status).toBe(403);
    await push.arrayBuffer();
    const catalog = (await (await reg.fetch('/v2/_catalog', { auth: auth(member) })).json()) as { repositories: string[] };
    expect(catalog.repositories).toEqual([`${granted}/app`]);

    // Changes show on the very next request.
    expect((await send('POST', `/api/security/groups/${group}`, { users: [] })).status).toBe(200);
    expect((await pull(`${granted}/app`, 'v1', auth(member))).status).toBe(403);
    expect((await send('POST', `/api/security/users/${member}`, { groups: [group] })).status).toBe(200);
    expect((await pull(`${granted}/app`, 'v1', auth(member))).status).toBe(200);
    expect((await reg.fetch(`/api/v2/security/permissions/${target}`, { method: 'DELETE' })).status).toBe(200);
    expect((await pull(`${granted}/app`, 'v1', auth(member))).status).toBe(403);
  });
});

describe('access tokens', () => {
  let repo: string;
  let img: PushedImage;
  beforeAll(async () => {
    repo = await createRepo();
    img = await pushImage(reg, `${repo}/app`, 'v1');
  });

  it('a token from a form body works as a Bearer on /api and as the password on /v2/; revoked, it stops at once', async () => {
    const user = unique('tokenuser');
    await createUser(user);
    await grant(unique('token-read'), [repo], { users: { [user]: ['read'] } });
    const created = await sendForm('/api/security/token', { username: user, scope: 'applied-permissions/user', expires_in: '3600' }, { auth: auth(user) });
    expect(created.status).toBe(200);
    const token = (await created.json()) as Record<string, unknown>;
    expect(Object.keys(token).sort()).toEqual(['access_token', 'expires_in', 'scope', 'token_id', 'token_type']);
    expect(token).toMatchObject({ expires_in: 3600, scope: 'applied-permissions/user', token_type: 'Bearer' });
    const access = token.access_token as string;

    const repos = await reg.fetch('/api/repositories', { auth: bearer(access) });
    expect(repos.status).toBe(200);
    expect(((await repos.json()) as Array<{ key: string }>).map((r) => r.key)).toEqual([repo]);
    expect((await reg.fetch('/v2/', { auth: basic(user, access) })).status).toBe(200);
    expect((await pull(`${repo}/app`, 'v1', basic(user, access))).status).toBe(200);
    // A token is its user's only: not a password for someone else.
    expect((await reg.fetch('/v2/', { auth: basic(unique('someone'), access) })).status).toBe(401);

    const revoked = await sendForm('/api/security/token/revoke', { token: access }, { auth: auth(user) });
    expect(revoked.status).toBe(200);
    expect(await revoked.text()).toBe('Token revoked');
    expect(await expectApiError(await reg.fetch('/api/repositories', { auth: bearer(access) }), 401)).toBe('invalid, expired or revoked token');
    expect((await reg.fetch('/v2/', { auth: basic(user, access) })).status).toBe(401);
    const listed = (await (await reg.fetch('/api/security/token', { auth: auth(user) })).json()) as { tokens: Array<Record<string, unknown>> };
    expect(listed.tokens).toEqual([
      {
        token_id: token.token_id,
        subject: user,
        scope: 'applied-permissions/user',
        description: null,
        issued_at: expect.any(Number),
        expiry: expect.any(Number),
        revoked: true,
      },
    ]);
    const [t] = listed.tokens as Array<{ issued_at: number; expiry: number }>;
    expect(t!.expiry - t!.issued_at).toBeGreaterThanOrEqual(3600);
    expect(t!.expiry - t!.issued_at).toBeLessThanOrEqual(3602);
  });

  it('takes JSON too; defaults to the caller, its own rights and one year; lists and revokes by id', async () => {
    const user = unique('jsonuser');
    await createUser(user);
    const r = await send('POST', '/api/security/token', { description: 'CI' }, { auth: auth(user) });
    expect(r.status).toBe(200);
    const token = (await r.json()) as { token_id: string; access_token: string; expires_in: number; scope: string };
    expect(token).toMatchObject({ expires_in: 365 * 24 * 3600, scope: 'applied-permissions/user' });
    const empty = await reg.fetch('/api/security/token', { method: 'POST', auth: auth(user) });
    expect(empty.status).toBe(200);
    const second = (await empty.json()) as { token_id: string; access_token: string };

    const mine = (await (await reg.fetch('/api/security/token', { auth: auth(user) })).json()) as { tokens: Array<{ token_id: string; description: string | null }> };
    expect(mine.tokens.map((t) => t.token_id).sort()).toEqual([token.token_id, second.token_id].sort());
    expect(mine.tokens.find((t) => t.token_id === token.token_id)!.description).toBe('CI');
    const everyone = (await (await reg.fetch('/api/security/token')).json()) as { tokens: Array<{ token_id: string; subject: string }> };
    expect(everyone.tokens).toEqual(expect.arrayContaining([expect.objectContaining({ token_id: token.token_id, subject: user })]));

    // Another user can neither see nor revoke them; an admin can revoke anybody's.
    const other = unique('other');
    await createUser(other);
    const theirs = (await (await reg.fetch('/api/security/token', { auth: auth(other) })).json()) as { tokens: unknown[] };
    expect(theirs.tokens).toEqual([]);
    expect(await expectApiError(await reg.fetch(`/api/security/token/${token.token_id}`, { method: 'DELETE', auth: auth(other) }), 403)).toBe(
      `${other} may not revoke tokens of ${user}`,
    );
    expect((await reg.fetch(`/api/security/token/${token.token_id}`, { method: 'DELETE', auth: auth(user) })).status).toBe(200);
    expect((await reg.fetch('/api/repositories', { auth: bearer(token.access_token) })).status).toBe(401);
    const byAdmin = await send('POST', '/api/security/token/revoke', { token_id: second.token_id });
    expect(byAdmin.status).toBe(200);
    expect((await reg.fetch('/api/repositories', { auth: bearer(second.access_token) })).status).toBe(401);
    // Revoking again is harmless; an unknown one is 404.
    expect((await send('POST', '/api/security/token/revoke', { token_id: second.token_id })).status).toBe(200);
    expect(await expectApiError(await reg.fetch('/api/security/token/no-such-id', { method: 'DELETE' }), 404)).toBe('no such token');
    expect(await expectApiError(await sendForm('/api/security/token/revoke', { token: 'not-a-token' }), 404)).toBe('no such token');
    expect(await expectApiError(await send('POST', '/api/security/token/revoke', {}), 400)).toBe('give either token_id or token');
    expect(await expectApiError(await send('POST', '/api/security/token/revoke', { token_id: 'a', token: 'b' }), 400)).toBe('give either token_id or token');
  });

  it('an expired token is refused', async () => {
    const user = unique('shortlived');
    await createUser(user);
    const token = await createToken({ expires_in: '1' }, auth(user));
    expect(token.expires_in).toBe(1);
    expect((await reg.fetch('/api/repositories', { auth: bearer(token.access_token) })).status).toBe(200);
    expect((await reg.fetch('/v2/', { auth: basic(user, token.access_token) })).status).toBe(200);
    const { tokens } = (await (await reg.fetch('/api/security/token', { auth: auth(user) })).json()) as { tokens: Array<{ expiry: number }> };
    // The expiry is on a whole second, at most two seconds away.
    const wait = tokens[0]!.expiry * 1000 - Date.now();
    expect(wait).toBeLessThanOrEqual(2000);
    await new Promise((resolve) => setTimeout(resolve, wait + 100));
    expect(await expectApiError(await reg.fetch('/api/repositories', { auth: bearer(token.access_token) }), 401)).toBe('invalid, expired or revoked token');
    expect((await reg.fetch('/v2/', { auth: basic(user, token.access_token) })).status).toBe(401);
  });

  it("a group-scoped token gets that group's rights only", async () => {
    const [repoA, repoB, repoOwn] = [await createRepo(), await createRepo(), await createRepo()];
    for (const key of [repoA, repoB, repoOwn]) await pushImage(reg, `${key}/app`, 'v1');
    const user = unique('scoped');
    await createUser(user);
    const [groupA, groupB] = [unique('ga'), unique('gb')];
    await createGroup(groupA, [user]);
    await createGroup(groupB, [user]);
    await grant(unique('pa'), [repoA], { groups: { [groupA]: ['read'] } });
    await grant(unique('pb'), [repoB], { groups: { [groupB]: ['read'] } });
    await grant(unique('pown'), [repoOwn], { users: { [user]: ['read'] } });

    const a = await createToken({ scope: `applied-permissions/groups:${groupA}` }, auth(user));
    expect(a.scope).toBe(`applied-permissions/groups:${groupA}`);
    const withA = basic(user, a.access_token);
    expect((await pull(`${repoA}/app`, 'v1', withA)).status).toBe(200);
    expect((await pull(`${repoB}/app`, 'v1', withA)).status).toBe(403);
    expect((await pull(`${repoOwn}/app`, 'v1', withA)).status).toBe(403);
    const listed = (await (await reg.fetch('/api/repositories', { auth: bearer(a.access_token) })).json()) as Array<{ key: string }>;
    expect(listed.map((r) => r.key)).toEqual([repoA]);

    // Artifactory's older form, with the api:* clients add.
    const b = await createToken({ scope: `api:* member-of-groups:"${groupB}"` }, auth(user));
    expect(b.scope).toBe(`api:* member-of-groups:${groupB}`);
    expect((await pull(`${repoB}/app`, 'v1', basic(user, b.access_token))).status).toBe(200);
    expect((await pull(`${repoA}/app`, 'v1', basic(user, b.access_token))).status).toBe(403);

    // A group-scoped token cannot mint itself a broader one.
    const broader = await sendForm('/api/security/token', { scope: 'applied-permissions/user' }, { auth: bearer(a.access_token) });
    expect(await expectApiError(broader, 403)).toBe('a group-scoped token can only create group-scoped tokens');
    const sideways = await sendForm('/api/security/token', { scope: `applied-permissions/groups:${groupB}` }, { auth: bearer(a.access_token) });
    expect(await expectApiError(sideways, 403)).toBe(`${user} may not create a token for groups it is not in: ${groupB}`);
  });

  it('a non-admin may create tokens only for itself, within its groups, for at most a year', async () => {
    const user = unique('plain');
    await createUser(user);
    const outside = unique('outside');
    await createGroup(outside);
    const refuse = async (fields: Record<string, string>, message: string) =>
      expect(await expectApiError(await sendForm('/api/security/token', fields, { auth: auth(user) }), 403)).toBe(message);
    await refuse({ username: 'admin' }, `${user} may not create tokens for other users`);
    await refuse({ scope: 'applied-permissions/admin' }, 'applied-permissions/admin is for admin users, created by an admin');
    await refuse({ scope: `applied-permissions/groups:${outside}` }, `${user} may not create a token for groups it is not in: ${outside}`);
    await refuse({ expires_in: '0' }, 'only an admin may create tokens that never expire or live longer than 31536000 seconds (one year)');
    await refuse({ expires_in: String(365 * 24 * 3600 + 1) }, 'only an admin may create tokens that never expire or live longer than 31536000 seconds (one year)');
  });

  it('an admin may create tokens for others, that never expire, and admin-scoped ones for admins', async () => {
    const user = unique('served');
    await createUser(user);
    const forUser = await createToken({ username: user, expires_in: '0' }, ADMIN_AUTH);
    expect(forUser.expires_in).toBe(0);
    expect((await reg.fetch('/v2/', { auth: basic(user, forUser.access_token) })).status).toBe(200);
    const { tokens } = (await (await reg.fetch('/api/security/token', { auth: auth(user) })).json()) as { tokens: Array<{ token_id: string; expiry: number | null }> };
    expect(tokens).toEqual([expect.objectContaining({ token_id: forUser.token_id, expiry: null })]);
    // Still only the user's rights: not the admin's.
    expect(await expectApiError(await reg.fetch('/api/security/users', { auth: bearer(forUser.access_token) }), 403)).toBe(`${user} may not manage`);

    const admin = await createToken({ scope: 'applied-permissions/admin' }, ADMIN_AUTH);
    expect((await reg.fetch('/api/security/users', { auth: bearer(admin.access_token) })).status).toBe(200);
    expect(await expectApiError(await sendForm('/api/security/token', { username: user, scope: 'applied-permissions/admin' }), 403)).toBe(
      'applied-permissions/admin is for admin users, created by an admin',
    );
  });

  it('bad token requests are 400 (404 for an unknown user)', async () => {
    const bad = async (fields: Record<string, string>, status: number, message: string) =>
      expect(await expectApiError(await sendForm('/api/security/token', fields), status)).toBe(message);
    const forms = 'applied-permissions/user, applied-permissions/admin, applied-permissions/groups:<names> or member-of-groups:<names>';
    await bad({ scope: 'repository:x:pull' }, 400, `invalid scope 'repository:x:pull': give one of ${forms}`);
    await bad({ scope: 'applied-permissions/user applied-permissions/admin' }, 400, `invalid scope 'applied-permissions/user applied-permissions/admin': give one of ${forms}`);
    await bad({ scope: 'member-of-groups:' }, 400, "invalid scope 'member-of-groups:': name at least one group");
    await bad({ scope: 'member-of-groups:nope-1,nope-2' }, 400, 'scope: these groups do not exist: nope-1, nope-2');
    await bad({ expires_in: 'soon' }, 400, 'invalid token request: expires_in: expected number, received string');
    await bad({ expires_in: '-5' }, 400, 'invalid token request: expires_in: expected number, received string');
    await bad({ refreshable: 'true' }, 400, 'invalid token request: refreshable: unknown field');
    await bad({ username: 'nobody-at-all' }, 404, "user 'nobody-at-all' does not exist");
    expect(await expectApiError(await send('POST', '/api/security/token', { expires_in: 1.5 }), 400)).toBe(
      'invalid token request: expires_in: expected int, received number',
    );
    expect(await expectApiError(await send('POST', '/api/security/token', '[]'), 400)).toBe('the body must be a JSON object');
    expect(img.digest).toMatch(/^sha256:/);
  });
});

describe('who may call the security API', () => {
  const routes = (): Array<[string, string, unknown]> => [
    ['GET', '/api/security/users', undefined],
    ['GET', '/api/security/users/admin', undefined],
    ['PUT', '/api/security/users/intruder', { password: 'x' }],
    ['POST', '/api/security/users/admin', { admin: false }],
    ['DELETE', '/api/security/users/admin', undefined],
    ['GET', '/api/security/groups', undefined],
    ['GET', '/api/security/groups/any', undefined],
    ['PUT', '/api/security/groups/any', {}],
    ['POST', '/api/security/groups/any', {}],
    ['DELETE', '/api/security/groups/any', undefined],
    ['GET', '/api/v2/security/permissions', undefined],
    ['GET', '/api/v2/security/permissions/any', undefined],
    ['PUT', '/api/v2/security/permissions/any', { repo: { repositories: ['ANY'] } }],
    ['DELETE', '/api/v2/security/permissions/any', undefined],
    ['GET', '/api/audit', undefined],
  ];
  const tokenRoutes: Array<[string, string, unknown]> = [
    ['POST', '/api/security/token', {}],
    ['GET', '/api/security/token', undefined],
    ['POST', '/api/security/token/revoke', { token_id: 'x' }],
    ['DELETE', '/api/security/token/x', undefined],
  ];

  it('a user who is not an admin gets 403 on management and audit routes', async () => {
    const user = unique('nosy');
    await createUser(user);
    for (const [method, path, body] of routes()) {
      for (const p of [path, `/artifactory${path}`]) {
        const r = await send(method, p, body, { auth: auth(user) });
        expect({ method, p, message: await expectApiError(r, 403) }).toEqual({ method, p, message: `${user} may not manage` });
      }
    }
    expect((await reg.fetch('/api/security/users/admin')).status).toBe(200);
  });

  it('no credentials are 401 with a Basic challenge on every route, tokens included', async () => {
    for (const [method, path, body] of [...routes(), ...tokenRoutes]) {
      const r = await send(method, path, body, { auth: null });
      expect(r.headers.get('www-authenticate')).toBe('Basic realm="drydock"');
      expect({ method, path, message: await expectApiError(r, 401) }).toEqual({ method, path, message: 'authentication required' });
    }
  });

  it('with anonymous access on, the anonymous user still cannot manage or hold tokens', async () => {
    const open = await startTestRegistry({ store: reg.running.services.store, dataDir: reg.dataDir, config: { auth: { anonymousAccess: true } } });
    try {
      for (const [method, path, body] of [...routes(), ...tokenRoutes]) {
        const r = await open.fetch(path, { method, auth: null, headers: { 'content-type': 'application/json' }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
        expect({ method, path, message: await expectApiError(r, 401) }).toEqual({ method, path, message: 'authentication required' });
      }
    } finally {
      await open.close();
    }
  });
});

describe('the audit log', () => {
  it('records user changes, logins, token creation and manifest pushes, with who and from where', async () => {
    const user = unique('audited');
    await createUser(user);
    await send('POST', `/api/security/users/${user}`, { email: 'changed@example.com', password: passwordOf(user) });
    expect((await reg.fetch('/v2/', { auth: auth(user) })).status).toBe(200);
    expect((await reg.fetch('/v2/', { auth: basic(user, 'wrong-password') })).status).toBe(401);
    const token = await createToken({ description: 'audit me' }, auth(user));
    const repo = await createRepo();
    const img = await pushImage(reg, `${repo}/app`, 'v1');

    const onUser = [...(await audit('action=user.update&limit=1000')).events, ...(await audit('action=user.create&limit=1000')).events].filter(
      (e) => e.target === user,
    );
    expect(onUser.map((e) => [e.action, e.details])).toEqual([
      ['user.update', { fields: ['email', 'password'] }],
      ['user.create', { admin: false, groups: [] }],
    ]);
    for (const e of onUser) expect(e).toMatchObject({ actor: 'admin', outcome: 'success', clientIp: expect.stringMatching(/127\.0\.0\.1$/) });
    expect(Date.parse(onUser[1]!.at)).toBeGreaterThan(Date.now() - 60_000);

    const own = (await audit(`actor=${user}`)).events.map((e) => [e.action, e.outcome, e.target]);
    expect(own).toEqual([
      ['token.create', 'success', token.token_id],
      ['login', 'success', null],
      ['login', 'failure', null],
      ['login', 'success', null],
    ]);
    const pushes = (await audit('action=manifest.put&limit=1000')).events.filter((e) => e.target === `${repo}/app:v1`);
    expect(pushes).toEqual([expect.objectContaining({ actor: 'admin', outcome: 'success', details: { digest: img.digest } })]);
    const tokenEvent = (await audit(`action=token.create&actor=${user}`)).events;
    expect(tokenEvent).toEqual([
      expect.objectContaining({ target: token.token_id, details: { subject: user, scope: 'applied-permissions/user', expires_in: 31536000 } }),
    ]);
    expect(JSON.stringify((await audit('limit=1000')).events)).not.toContain(token.access_token);

    const del = await reg.fetch(`/api/security/users/${user}`, { method: 'DELETE' });
    expect(del.status).toBe(200);
    expect((await audit('action=user.delete&limit=1000')).events.map((e) => e.target)).toContain(user);
  });

  it('pages with before, newest first, and validates its query', async () => {
    const user = unique('pager');
    await createUser(user);
    for (let i = 0; i < 3; i++) expect((await reg.fetch(`/api/security/token`, { method: 'POST', auth: auth(user) })).status).toBe(200);
    const all = (await audit(`actor=${user}`)).events;
    expect(all.map((e) => e.action)).toEqual(['token.create', 'token.create', 'token.create', 'login']);
    expect(all.map((e) => e.id)).toEqual([...all.map((e) => e.id)].sort((a, b) => b - a));

    const first = await audit(`actor=${user}&limit=3`);
    expect(first.events.map((e) => e.id)).toEqual(all.slice(0, 3).map((e) => e.id));
    expect(first.next).toBe(all[2]!.id);
    const second = await audit(`actor=${user}&limit=3&before=${first.next}`);
    expect(second.events.map((e) => e.id)).toEqual([all[3]!.id]);
    expect(second.next).toBeUndefined();
    expect(Object.keys(second.events[0]!).sort()).toEqual(['action', 'actor', 'at', 'clientIp', 'details', 'id', 'outcome', 'target']);

    for (const [query, message] of [
      ['limit=0', "limit must be an integer from 1 to 1000; got '0'"],
      ['limit=1001', "limit must be an integer from 1 to 1000; got '1001'"],
      ['limit=ten', "limit must be an integer from 1 to 1000; got 'ten'"],
      ['before=-1', "before must be a positive integer; got '-1'"],
      ['actor=a&actor=b', 'actor may be given once'],
    ] as const) {
      expect(await expectApiError(await reg.fetch(`/api/audit?${query}`), 400)).toBe(message);
    }
  });
});

describe('users, groups and permissions in the config file', () => {
  it('are applied at start; a restart with the same configuration changes nothing', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'drydock-security-'));
    const envVar = `DRYDOCK_TEST_PW_${process.pid}`;
    const [fromEnv, fromFile, fromHash] = [unique('cfg-env'), unique('cfg-file'), unique('cfg-hash')];
    const [team, viewers] = [unique('cfg-team'), unique('cfg-viewers')];
    const repo = await createRepo();
    await pushImage(reg, `${repo}/app`, 'v1');
    const passwordFile = join(dir, 'password');
    await writeFile(passwordFile, '  file-secret\n');
    process.env[envVar] = 'env-secret';
    const config = {
      repositories: [{ key: repo, rclass: 'local' }],
      users: [
        { name: fromEnv, email: 'env@example.com', passwordEnv: envVar, groups: [team] },
        { name: fromFile, passwordFile, admin: true },
        { name: fromHash, passwordHash: await hashPassword('hash-secret') },
      ],
      groups: [
        { name: team, description: 'from the file' },
        { name: viewers, users: [fromHash] },
      ],
      permissions: [{ name: unique('cfg-perm'), repo: { repositories: [repo], actions: { groups: { [team]: ['read'], [viewers]: ['read'] } } } }],
    };
    const { store } = reg.running.services;
    const start = (c: Record<string, unknown>) => startTestRegistry({ store, dataDir: reg.dataDir, config: c });
    const systemEvents = async () => (await audit('actor=system&limit=1000')).events.filter((e) => /^(user|group|permission)\./.test(e.action));
    try {
      const before = (await systemEvents()).length;
      const first = await start(config);
      try {
        expect((await pull(`${repo}/app`, 'v1', basic(fromEnv, 'env-secret'))).status).toBe(200);
        expect((await pull(`${repo}/app`, 'v1', basic(fromHash, 'hash-secret'))).status).toBe(200);
        expect((await first.fetch('/api/security/users', { auth: basic(fromFile, 'file-secret') })).status).toBe(200);
        expect(await (await first.fetch(`/api/security/users/${fromEnv}`)).json()).toEqual({ name: fromEnv, email: 'env@example.com', admin: false, groups: [team] });
        expect(await (await first.fetch(`/api/security/groups/${viewers}?includeUsers=true`)).json()).toEqual({ name: viewers, users: [fromHash] });
      } finally {
        await first.close();
      }
      const applied = await systemEvents();
      expect(applied.length - before).toBe(6);
      expect(applied.slice(0, 6).every((e) => e.details?.source === 'config')).toBe(true);
      const stamps = await Promise.all([fromEnv, fromFile, fromHash].map(async (u) => (await store.users.get(u))!.updatedAt));

      const second = await start(config);
      try {
        expect((await systemEvents()).length).toBe(applied.length);
        expect(await Promise.all([fromEnv, fromFile, fromHash].map(async (u) => (await store.users.get(u))!.updatedAt))).toEqual(stamps);
        expect((await second.fetch('/v2/', { auth: basic(fromEnv, 'env-secret') })).status).toBe(200);
      } finally {
        await second.close();
      }

      // A rotated secret is re-applied; nothing else is touched.
      process.env[envVar] = 'rotated-secret';
      const third = await start(config);
      try {
        expect((await third.fetch('/v2/', { auth: basic(fromEnv, 'rotated-secret') })).status).toBe(200);
        const updates = (await audit('actor=system&action=user.update', third)).events.filter((e) => e.target === fromEnv);
        expect(updates.map((e) => e.details)).toEqual([{ source: 'config', fields: ['password'] }]);
        expect((await systemEvents()).length).toBe(applied.length + 1);
      } finally {
        await third.close();
      }
    } finally {
      delete process.env[envVar];
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('a missing environment variable or an unreadable file stops the start, naming the user and the source', async () => {
    const { store } = reg.running.services;
    const [a, b] = [unique('cfg-missing'), unique('cfg-unreadable')];
    const envVar = `DRYDOCK_TEST_UNSET_${process.pid}`;
    const file = join(tmpdir(), `drydock-no-such-file-${process.pid}`);
    const failed = await startTestRegistry({
      store,
      dataDir: reg.dataDir,
      config: { users: [{ name: a, passwordEnv: envVar }, { name: b, passwordFile: file }] },
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(failed).toBeInstanceOf(ConfigError);
    expect((failed as ConfigError).problems).toEqual([`users.0 (${a}): passwordEnv ${envVar} is not set`, `users.1 (${b}): passwordFile ${file} cannot be read (ENOENT)`]);
    expect(await store.users.get(a)).toBeUndefined();

    const missingRefs = await startTestRegistry({
      store,
      dataDir: reg.dataDir,
      config: {
        users: [{ name: a, groups: ['no-such-group'] }],
        permissions: [{ name: unique('cfg-perm'), repo: { repositories: ['no-such-repo'] } }],
      },
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((missingRefs as ConfigError).problems).toEqual([
      `users.0 (${a}): a new user needs one of password, passwordEnv, passwordFile, passwordHash`,
      "users.0.groups: group 'no-such-group' is neither declared nor stored",
      'permissions.0.repo.repositories: these repositories do not exist: no-such-repo',
    ]);
  });
});
