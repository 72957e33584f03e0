import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { REPOSITORY_KEY_RULE } from '../../src/core/config/index.js';
import { hashPassword } from '../../src/registry/auth/passwords.js';
import { startTestRegistry, type TestRegistry, type TestRequestInit } from '../helpers/registry.js';
import { basic, pushImage } from '../helpers/oci-client.js';

let reg: TestRegistry;
const USER_AUTH = basic('carol', 'carols-password');

beforeAll(async () => {
  reg = await startTestRegistry();
  await reg.running.services.store.users.upsert({ name: 'carol', passwordHash: await hashPassword('carols-password'), admin: false });
});
afterAll(async () => {
  await reg?.close();
});

let n = 0;
const newKey = (prefix = 'repo') => `${prefix}-${process.pid}-${++n}`;

function send(method: string, path: string, body?: unknown, init: TestRequestInit = {}): Promise<Response> {
  return reg.fetch(path, {
    method,
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    ...init,
    headers: { 'content-type': 'application/json', ...(init.headers as Record<string, string> | undefined) },
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

const LOCAL_DEFAULTS = { packageType: 'docker', rclass: 'local', maxUniqueTags: 0, platformTags: true, tagImmutability: [] };
const REMOTE_DEFAULTS = {
  packageType: 'docker',
  rclass: 'remote',
  enableTokenAuthentication: true,
  retrievalCachePeriodSecs: 600,
  offline: false,
  externalDependenciesEnabled: false,
  externalDependenciesPatterns: ['**'],
  socketTimeoutMillis: 15000,
  retries: 2,
  insecureSkipVerify: false,
};

describe.each(['/api', '/artifactory/api'])('repositories API under %s', (api) => {
  it('lists the three default repositories, filtered by ?type=', async () => {
    const r = await reg.fetch(`${api}/repositories`);
    expect(r.status).toBe(200);
    const all = (await r.json()) as Array<Record<string, unknown>>;
    const defaults = all.filter((x) => ['docker-local', 'docker-remote', 'docker'].includes(x.key as string));
    expect(defaults).toEqual([
      { key: 'docker', type: 'VIRTUAL', packageType: 'docker', description: 'docker-local and docker-remote behind one name', url: `${reg.url}/artifactory/api/docker/docker` },
      { key: 'docker-local', type: 'LOCAL', packageType: 'docker', description: 'Images pushed by your builds', url: `${reg.url}/artifactory/api/docker/docker-local` },
      { key: 'docker-remote', type: 'REMOTE', packageType: 'docker', description: 'Docker Hub, cached', url: 'https://registry-1.docker.io/' },
    ]);
    for (const type of ['local', 'remote', 'virtual', 'LOCAL']) {
      const t = await reg.fetch(`${api}/repositories?type=${type}`);
      expect(t.status).toBe(200);
      const list = (await t.json()) as Array<{ key: string; type: string }>;
      expect(list.length).toBeGreaterThan(0);
      expect(list.every((x) => x.type === type.toUpperCase())).toBe(true);
    }
    const bad = await reg.fetch(`${api}/repositories?type=generic`);
    expect(await expectApiError(bad, 400)).toBe("type must be one of local, remote, virtual; got 'generic'");
  });

  it('creates a local repository and reads it back with defaults filled in', async () => {
    const key = newKey();
    const put = await send('PUT', `${api}/repositories/${key}`, { key, rclass: 'local', packageType: 'docker', description: 'team images', maxUniqueTags: 5 });
    expect(put.status).toBe(200);
    expect(await put.text()).toBe(`Successfully created repository '${key}'`);
    const get = await reg.fetch(`${api}/repositories/${key}`);
    expect(get.status).toBe(200);
    expect(await get.json()).toEqual({ ...LOCAL_DEFAULTS, key, description: 'team images', maxUniqueTags: 5 });
    const listed = (await (await reg.fetch(`${api}/repositories?type=local`)).json()) as Array<{ key: string }>;
    expect(listed.map((x) => x.key)).toContain(key);
  });

  it('creates a remote repository; its password is masked', async () => {
    const key = newKey('remote');
    const put = await send('PUT', `${api}/repositories/${key}`, { rclass: 'remote', url: 'https://ghcr.io/', username: 'me', password: 's3cret' });
    expect(put.status).toBe(200);
    const got = await (await reg.fetch(`${api}/repositories/${key}`)).json();
    expect(got).toEqual({ ...REMOTE_DEFAULTS, key, url: 'https://ghcr.io/', username: 'me', password: '************' });
    expect(JSON.stringify(got)).not.toContain('s3cret');
  });

  it('creates a virtual repository over existing members', async () => {
    const local = newKey();
    const key = newKey('virtual');
    expect((await send('PUT', `${api}/repositories/${local}`, { rclass: 'local' })).status).toBe(200);
    const put = await send('PUT', `${api}/repositories/${key}`, {
      rclass: 'virtual',
      repositories: [local, 'docker-remote'],
      defaultDeploymentRepo: local,
    });
    expect(put.status).toBe(200);
    expect(await (await reg.fetch(`${api}/repositories/${key}`)).json()).toEqual({
      key,
      packageType: 'docker',
      rclass: 'virtual',
      repositories: [local, 'docker-remote'],
      defaultDeploymentRepo: local,
      resolveDockerTagsByTimestamp: false,
    });
  });

  it('a virtual repository with a member that does not exist is 400', async () => {
    const key = newKey('virtual');
    const r = await send('PUT', `${api}/repositories/${key}`, { rclass: 'virtual', repositories: ['docker-local', 'ghost-repo'] });
    expect(await expectApiError(r, 400)).toBe("repositories: 'ghost-repo' does not exist");
    expect((await reg.fetch(`${api}/repositories/${key}`)).status).toBe(404);
  });

  it('POST updates only the fields it carries', async () => {
    const key = newKey();
    await send('PUT', `${api}/repositories/${key}`, { rclass: 'local', description: 'before', maxUniqueTags: 3 });
    const post = await send('POST', `${api}/repositories/${key}`, { description: 'after', tagImmutability: ['v*'] });
    expect(post.status).toBe(200);
    expect(await post.text()).toBe(`Repository ${key} update successful.`);
    expect(await (await reg.fetch(`${api}/repositories/${key}`)).json()).toEqual({
      ...LOCAL_DEFAULTS,
      key,
      description: 'after',
      maxUniqueTags: 3,
      tagImmutability: ['v*'],
    });
  });

  it('POST that changes rclass is 400 and changes nothing', async () => {
    const key = newKey();
    await send('PUT', `${api}/repositories/${key}`, { rclass: 'local' });
    const r = await send('POST', `${api}/repositories/${key}`, { rclass: 'remote', url: 'https://example.com/' });
    expect(await expectApiError(r, 400)).toBe(`rclass cannot change (repository '${key}' is local)`);
    expect(await (await reg.fetch(`${api}/repositories/${key}`)).json()).toEqual({ ...LOCAL_DEFAULTS, key });
  });

  it('POST to an unknown repository is 404', async () => {
    const r = await send('POST', `${api}/repositories/${newKey()}`, { description: 'x' });
    expect(await expectApiError(r, 404)).toMatch(/^repository '.+' does not exist$/);
  });

  it('an unknown field is 400 naming the field', async () => {
    const key = newKey();
    const r = await send('PUT', `${api}/repositories/${key}`, { rclass: 'local', maxUniqueTagz: 5, colour: 'blue' });
    expect(await expectApiError(r, 400)).toBe('invalid repository configuration: maxUniqueTagz: unknown field; colour: unknown field');
    await send('PUT', `${api}/repositories/${key}`, { rclass: 'local' });
    const post = await send('POST', `${api}/repositories/${key}`, { offline: true });
    expect(await expectApiError(post, 400)).toBe('invalid repository configuration: offline: unknown field');
  });

  it('a key with an underscore is 400 naming the rule', async () => {
    const r = await send('PUT', `${api}/repositories/bad_key`, { rclass: 'local' });
    const message = await expectApiError(r, 400);
    expect(message).toBe(`invalid repository configuration: key: invalid repository key "bad_key": ${REPOSITORY_KEY_RULE}`);
    expect(message).toContain('no underscores');
  });

  it('a remote without url is 400', async () => {
    const r = await send('PUT', `${api}/repositories/${newKey('remote')}`, { rclass: 'remote' });
    expect(await expectApiError(r, 400)).toBe('invalid repository configuration: url: required (string)');
  });

  it('a missing or unknown rclass, a non-object and malformed JSON are 400', async () => {
    expect(await expectApiError(await send('PUT', `${api}/repositories/${newKey()}`, {}), 400)).toBe(
      'invalid repository configuration: rclass: missing; must be one of: local, remote, virtual',
    );
    expect(await expectApiError(await send('PUT', `${api}/repositories/${newKey()}`, { rclass: 'generic' }), 400)).toBe(
      'invalid repository configuration: rclass: invalid value "generic"; must be one of: local, remote, virtual',
    );
    expect(await expectApiError(await send('PUT', `${api}/repositories/${newKey()}`, [1, 2]), 400)).toBe('the body must be a JSON object');
    expect(await expectApiError(await send('PUT', `${api}/repositories/${newKey()}`, '{"rclass":'), 400)).toBe('the request body is not valid JSON');
  });

  it('a key in the body that differs from the URL is 400', async () => {
    const key = newKey();
    const r = await send('PUT', `${api}/repositories/${key}`, { key: 'something-else', rclass: 'local' });
    expect(await expectApiError(r, 400)).toBe(`key 'something-else' in the body does not match '${key}' in the URL`);
    expect((await reg.fetch(`${api}/repositories/${key}`)).status).toBe(404);
  });

  it('PUT of an existing key is 409', async () => {
    const r = await send('PUT', `${api}/repositories/docker-local`, { rclass: 'local' });
    expect(await expectApiError(r, 409)).toBe("repository 'docker-local' already exists");
  });

  it('DELETE answers 200, then the repository is 404', async () => {
    const key = newKey();
    await send('PUT', `${api}/repositories/${key}`, { rclass: 'local' });
    const del = await reg.fetch(`${api}/repositories/${key}`, { method: 'DELETE' });
    expect(del.status).toBe(200);
    expect(await del.text()).toBe(`Repository ${key} and all its content have been removed successfully.`);
    expect(await expectApiError(await reg.fetch(`${api}/repositories/${key}`), 404)).toBe(`repository '${key}' does not exist`);
    expect(await expectApiError(await reg.fetch(`${api}/repositories/${key}`, { method: 'DELETE' }), 404)).toBe(`repository '${key}' does not exist`);
    const listed = (await (await reg.fetch(`${api}/repositories`)).json()) as Array<{ key: string }>;
    expect(listed.map((x) => x.key)).not.toContain(key);
  });

  it('no credentials or a wrong password are 401 on every route; a user without rights is 403', async () => {
    const key = newKey();
    await send('PUT', `${api}/repositories/${key}`, { rclass: 'local' });
    const calls: Array<[string, string, unknown]> = [
      ['GET', `${api}/repositories`, undefined],
      ['GET', `${api}/repositories/${key}`, undefined],
      ['PUT', `${api}/repositories/${newKey()}`, { rclass: 'local' }],
      ['POST', `${api}/repositories/${key}`, { description: 'x' }],
      ['DELETE', `${api}/repositories/${key}`, undefined],
    ];
    for (const [method, path, body] of calls) {
      const anon = await send(method, path, body, { auth: null });
      expect(anon.headers.get('www-authenticate')).toBe('Basic realm="drydock"');
      expect(await expectApiError(anon, 401)).toBe('authentication required');
      // Not the admin: ten wrong passwords for one user name lock it out for the throttle window.
      const wrong = await send(method, path, body, { auth: basic('mallory', 'nope') });
      expect(await expectApiError(wrong, 401)).toBe('invalid username or password');
    }
    for (const [method, path, body] of calls.slice(1)) {
      expect(await expectApiError(await send(method, path, body, { auth: USER_AUTH }), 403)).toBe('carol may not manage');
    }
    // The list is open to any user, showing only what they may read (nothing, here).
    const list = await reg.fetch(`${api}/repositories`, { auth: USER_AUTH });
    expect(list.status).toBe(200);
    expect(await list.json()).toEqual([]);
    expect((await reg.fetch(`${api}/repositories/${key}`)).status).toBe(200);
  });
});

describe('repositories and their content', () => {
  it('a repository created through the API takes pushes right away', async () => {
    const key = newKey('fresh');
    expect((await send('PUT', `/api/repositories/${key}`, { rclass: 'local' })).status).toBe(200);
    const img = await pushImage(reg, `${key}/app`, '1.0');
    const r = await reg.fetch(`/v2/${key}/app/manifests/1.0`);
    expect(r.status).toBe(200);
    expect(r.headers.get('docker-content-digest')).toBe(img.digest);
  });

  it('deleting a repository removes its images; a new one with the same key starts empty', async () => {
    const key = newKey('doomed');
    await send('PUT', `/api/repositories/${key}`, { rclass: 'local' });
    const img = await pushImage(reg, `${key}/app`, 'v1');
    const before = (await (await reg.fetch('/v2/_catalog')).json()) as { repositories: string[] };
    expect(before.repositories).toContain(`${key}/app`);
    expect((await reg.fetch(`/api/repositories/${key}`, { method: 'DELETE' })).status).toBe(200);
    const after = (await (await reg.fetch('/v2/_catalog')).json()) as { repositories: string[] };
    expect(after.repositories.filter((x) => x.startsWith(`${key}/`))).toEqual([]);
    expect((await reg.fetch(`/v2/${key}/app/manifests/v1`)).status).toBe(404);

    await send('PUT', `/api/repositories/${key}`, { rclass: 'local' });
    expect((await reg.fetch(`/v2/${key}/app/manifests/v1`)).status).toBe(404);
    expect((await reg.fetch(`/v2/${key}/app/manifests/${img.digest}`)).status).toBe(404);
    expect((await reg.fetch(`/v2/${key}/app/blobs/${img.layer.digest}`, { method: 'HEAD' })).status).toBe(404);
    expect(await (await reg.fetch(`/api/docker/${key}/v2/_catalog`)).json()).toEqual({ repositories: [] });
  });
});

describe('repositories: in the config file', () => {
  it('are applied at start, and re-applying the same configuration is a no-op', async () => {
    const local = `cfg-local-${process.pid}`;
    const virtual = `cfg-virtual-${process.pid}`;
    const repositories = [
      { key: virtual, rclass: 'virtual', repositories: [local], defaultDeploymentRepo: local },
      { key: local, rclass: 'local', description: 'from the config file', maxUniqueTags: 7 },
    ];
    const { store } = reg.running.services;
    const start = (config: Record<string, unknown>) => startTestRegistry({ store, dataDir: reg.dataDir, config });

    const first = await start({ repositories });
    let firstStamps: Array<Date | undefined>;
    try {
      expect(await (await first.fetch(`/api/repositories/${local}`)).json()).toEqual({
        ...LOCAL_DEFAULTS,
        key: local,
        description: 'from the config file',
        maxUniqueTags: 7,
      });
      expect((await (await first.fetch(`/api/repositories/${virtual}`)).json()).repositories).toEqual([local]);
      firstStamps = await Promise.all([local, virtual].map(async (k) => (await store.repositories.get(k))?.updatedAt));
      expect(firstStamps.every((d) => d instanceof Date)).toBe(true);
      await pushImage(first, `${local}/app`, 'kept');
    } finally {
      await first.close();
    }

    const second = await start({ repositories });
    try {
      const again = await Promise.all([local, virtual].map(async (k) => (await store.repositories.get(k))?.updatedAt));
      expect(again).toEqual(firstStamps);
      expect((await second.fetch(`/v2/${local}/app/manifests/kept`)).status).toBe(200);
    } finally {
      await second.close();
    }

    const third = await start({ repositories: [{ ...repositories[1]!, description: 'changed' }, repositories[0]!] });
    try {
      expect((await (await third.fetch(`/api/repositories/${local}`)).json()).description).toBe('changed');
      const changed = (await store.repositories.get(local))?.updatedAt;
      expect(changed!.getTime()).toBeGreaterThanOrEqual(firstStamps[0]!.getTime());
      expect(changed).not.toEqual(firstStamps[0]);
      expect((await third.fetch(`/v2/${local}/app/manifests/kept`)).status).toBe(200);
    } finally {
      await third.close();
    }
  });
});
