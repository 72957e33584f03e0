import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { setTimeout as sleep } from 'node:timers/promises';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';
import {
  basic,
  bytesOf,
  desc,
  expectOciError,
  MediaTypes,
  ociManifest,
  pushBlob,
  pushImage,
  putManifest,
  sha256,
  uniqueImage,
  type PushedImage,
} from '../helpers/oci-client.js';

let reg: TestRegistry;

/** Locals `va`, `vb`; `v` over both deploying to `va`; `vt` resolving tags by time; `vn` with no deployment repository. */
beforeAll(async () => {
  reg = await startTestRegistry();
  await createRepo('va', { rclass: 'local' });
  await createRepo('vb', { rclass: 'local' });
  await createRepo('v', { rclass: 'virtual', repositories: ['va', 'vb'], defaultDeploymentRepo: 'va' });
  await createRepo('vt', { rclass: 'virtual', repositories: ['va', 'vb'], resolveDockerTagsByTimestamp: true });
  await createRepo('vn', { rclass: 'virtual', repositories: ['va', 'vb'] });
});
afterAll(async () => {
  await reg?.close();
});

async function send(method: string, path: string, body: unknown, auth?: string): Promise<Response> {
  return reg.fetch(path, { method, body: JSON.stringify(body), headers: { 'content-type': 'application/json' }, auth });
}

async function createRepo(key: string, body: Record<string, unknown>): Promise<void> {
  const r = await send('PUT', `/api/repositories/${key}`, { key, ...body });
  expect({ key, status: r.status, body: await r.text() }).toEqual({ key, status: 200, body: `Successfully created repository '${key}'` });
}

/** A user with `password` whose only rights are `grants` (repository → actions). */
async function createUser(name: string, password: string, grants: Record<string, string[]>): Promise<string> {
  expect((await send('PUT', `/api/security/users/${name}`, { password, email: `${name}@example.com` })).status).toBe(201);
  for (const [repo, actions] of Object.entries(grants)) {
    const target = `${name}-${repo}`;
    const r = await send('PUT', `/api/v2/security/permissions/${target}`, {
      name: target,
      repo: { repositories: [repo], include_patterns: ['**'], exclude_patterns: [], actions: { users: { [name]: actions } } },
    });
    expect(r.status).toBeLessThan(300);
  }
  return basic(name, password);
}

async function expectManifestFrom(path: string, img: PushedImage, auth?: string): Promise<void> {
  const get = await reg.fetch(path, { auth });
  expect({ status: get.status, digest: get.headers.get('docker-content-digest') }).toEqual({ status: 200, digest: img.digest });
  expect(get.headers.get('content-type')).toBe(MediaTypes.ociManifest);
  expect((await bytesOf(get)).equals(img.manifest)).toBe(true);
  const head = await reg.fetch(path, { method: 'HEAD', auth });
  expect({ status: head.status, digest: head.headers.get('docker-content-digest') }).toEqual({ status: 200, digest: img.digest });
}

async function tagsOf(path: string, auth?: string): Promise<{ tags: string[]; link: string | null }> {
  const r = await reg.fetch(path, { auth });
  expect(r.status).toBe(200);
  const body = (await r.json()) as { tags: string[] };
  return { tags: body.tags, link: r.headers.get('link') };
}

describe('reads through a virtual repository', () => {
  it('a tag only in a later member resolves through the virtual repository', async () => {
    const image = uniqueImage('only-b');
    const img = await pushImage(reg, `vb/${image}`, 'only-b');
    await expectManifestFrom(`/v2/v/${image}/manifests/only-b`, img);
    await expectManifestFrom(`/api/docker/v/v2/${image}/manifests/only-b`, img);
    await expectManifestFrom(`/v2/vt/${image}/manifests/only-b`, img);
  });

  it('a tag in several members: the first listed wins, or with resolveDockerTagsByTimestamp the last pushed', async () => {
    const image = uniqueImage('both');
    const inA = await pushImage(reg, `va/${image}`, 'both');
    await sleep(20);
    const inB = await pushImage(reg, `vb/${image}`, 'both');
    await expectManifestFrom(`/v2/v/${image}/manifests/both`, inA);
    await expectManifestFrom(`/v2/vt/${image}/manifests/both`, inB);

    // Pushed to va again, later: now va's is the newest.
    await sleep(20);
    const againA = await pushImage(reg, `va/${image}`, 'both');
    await expectManifestFrom(`/v2/vt/${image}/manifests/both`, againA);
    await expectManifestFrom(`/v2/v/${image}/manifests/both`, againA);
  });

  it('manifests by digest come from whichever member holds them; unknown ones are MANIFEST_UNKNOWN', async () => {
    const image = uniqueImage('digest');
    const inA = await pushImage(reg, `va/${image}`);
    const inB = await pushImage(reg, `vb/${image}`);
    await expectManifestFrom(`/v2/v/${image}/manifests/${inA.digest}`, inA);
    await expectManifestFrom(`/v2/v/${image}/manifests/${inB.digest}`, inB);
    await expectManifestFrom(`/v2/vt/${image}/manifests/${inB.digest}`, inB);
    const missing = sha256('never pushed');
    const err = await expectOciError(await reg.fetch(`/v2/v/${image}/manifests/${missing}`), 404, 'MANIFEST_UNKNOWN');
    expect(err).toEqual({ code: 'MANIFEST_UNKNOWN', message: `manifest unknown: ${missing}`, detail: { reference: missing } });
    await expectOciError(await reg.fetch(`/v2/v/${image}/manifests/nope`), 404, 'MANIFEST_UNKNOWN');
    await expectOciError(await reg.fetch(`/v2/vt/${image}/manifests/nope`), 404, 'MANIFEST_UNKNOWN');
    await expectOciError(await reg.fetch(`/v2/v/${image}/manifests/sha256:nothex`), 400, 'DIGEST_INVALID');
  });

  it('blobs GET (with Range) and HEAD come from whichever member holds them', async () => {
    const image = uniqueImage('blob');
    const inB = await pushBlob(reg, `vb/${image}`, 'bytes only vb holds');
    const head = await reg.fetch(`/v2/v/${image}/blobs/${inB.digest}`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe(String(inB.size));
    expect(head.headers.get('docker-content-digest')).toBe(inB.digest);
    const get = await reg.fetch(`/v2/v/${image}/blobs/${inB.digest}`);
    expect(get.status).toBe(200);
    expect((await bytesOf(get)).equals(inB.data)).toBe(true);
    const part = await reg.fetch(`/v2/v/${image}/blobs/${inB.digest}`, { headers: { range: 'bytes=0-4' } });
    expect(part.status).toBe(206);
    expect((await bytesOf(part)).toString()).toBe('bytes');

    const missing = sha256('no such blob');
    await expectOciError(await reg.fetch(`/v2/v/${image}/blobs/${missing}`), 404, 'BLOB_UNKNOWN');
    expect((await reg.fetch(`/v2/v/${image}/blobs/${missing}`, { method: 'HEAD' })).status).toBe(404);
    // An unsatisfiable range is the holding member's answer, not "try the next one".
    await expectOciError(await reg.fetch(`/v2/v/${image}/blobs/${inB.digest}`, { headers: { range: 'bytes=1000-' } }), 416, 'RANGE_INVALID');
  });

  it('tags list: merged, deduplicated, lexical, paginated with n, last and Link', async () => {
    const image = uniqueImage('tags');
    const one = await pushImage(reg, `va/${image}`, 'a');
    for (const t of ['c', 'shared']) {
      const r = await reg.fetch(`/v2/va/${image}/manifests/${one.digest}?tag=${t}`, {
        method: 'PUT',
        body: one.manifest,
        headers: { 'content-type': MediaTypes.ociManifest },
      });
      expect(r.status).toBe(201);
    }
    const two = await pushImage(reg, `vb/${image}`, 'B');
    for (const t of ['shared', 'd']) {
      const r = await reg.fetch(`/v2/vb/${image}/manifests/${two.digest}?tag=${t}`, {
        method: 'PUT',
        body: two.manifest,
        headers: { 'content-type': MediaTypes.ociManifest },
      });
      expect(r.status).toBe(201);
    }
    expect(await tagsOf(`/v2/v/${image}/tags/list`)).toEqual({ tags: ['B', 'a', 'c', 'd', 'shared'], link: null });
    expect(await (await reg.fetch(`/api/docker/v/v2/${image}/tags/list`)).json()).toEqual({ name: image, tags: ['B', 'a', 'c', 'd', 'shared'] });

    const pages: string[][] = [];
    let path: string | null = `/v2/v/${image}/tags/list?n=2`;
    const links: Array<string | null> = [];
    while (path) {
      const page = await tagsOf(path);
      pages.push(page.tags);
      links.push(page.link);
      path = page.link ? /^<([^>]+)>; rel="next"$/.exec(page.link)![1]! : null;
    }
    expect(pages).toEqual([['B', 'a'], ['c', 'd'], ['shared']]);
    expect(links).toEqual([`</v2/v/${image}/tags/list?n=2&last=a>; rel="next"`, `</v2/v/${image}/tags/list?n=2&last=d>; rel="next"`, null]);
    expect(await tagsOf(`/v2/v/${image}/tags/list?last=c`)).toEqual({ tags: ['d', 'shared'], link: null });
    expect(await tagsOf(`/v2/v/${image}/tags/list?n=0`)).toEqual({ tags: [], link: null });

    const err = await expectOciError(await reg.fetch(`/v2/v/${uniqueImage('none')}/tags/list`), 404, 'NAME_UNKNOWN');
    expect(err.message).toMatch(/^repository v has no image /);
  });

  it('referrers: merged from every member, deduplicated by digest, ordered by digest', async () => {
    const image = uniqueImage('refs');
    const subject = await pushImage(reg, `va/${image}`, 'signed');
    const artifact = async (repo: string, what: string) => {
      const empty = await pushBlob(reg, `${repo}/${image}`, '{}');
      const payload = await pushBlob(reg, `${repo}/${image}`, `{"${what}":true}`);
      const m = ociManifest(desc(MediaTypes.ociEmpty, empty), [desc('application/json', payload)], {
        artifactType: `application/vnd.example.${what}`,
        subject: subject.descriptor,
      });
      expect((await putManifest(reg, `${repo}/${image}`, sha256(m), m)).status).toBe(201);
      return { digest: sha256(m), size: m.length, artifactType: `application/vnd.example.${what}` };
    };
    const sig = await artifact('va', 'signature');
    const sbom = await artifact('vb', 'sbom');
    const sameInBoth = await artifact('va', 'attestation');
    expect(await artifact('vb', 'attestation')).toEqual(sameInBoth);

    const r = await reg.fetch(`/v2/v/${image}/referrers/${subject.digest}`);
    expect(r.status).toBe(200);
    const index = (await r.json()) as { manifests: Array<{ digest: string; artifactType: string }> };
    const expected = [sig, sbom, sameInBoth].sort((a, b) => (a.digest < b.digest ? -1 : 1));
    expect(index.manifests.map((m) => [m.digest, m.artifactType])).toEqual(expected.map((m) => [m.digest, m.artifactType]));

    const filtered = await reg.fetch(`/v2/v/${image}/referrers/${subject.digest}?artifactType=application/vnd.example.sbom`);
    expect(((await filtered.json()) as { manifests: Array<{ digest: string }> }).manifests.map((m) => m.digest)).toEqual([sbom.digest]);
  });

  it('/api/docker/<virtual>/v2/_catalog: the members\' images merged, lexical, paginated', async () => {
    const shared = uniqueImage('cat-shared');
    await pushImage(reg, `va/${shared}`, 'x');
    await pushImage(reg, `vb/${shared}`, 'x');
    await pushImage(reg, `vb/${uniqueImage('cat-b')}`, 'x');
    const catalogOf = async (key: string) => ((await (await reg.fetch(`/api/docker/${key}/v2/_catalog`)).json()) as { repositories: string[] }).repositories;
    const expected = [...new Set([...(await catalogOf('va')), ...(await catalogOf('vb'))])].sort();
    const all = await catalogOf('v');
    expect(all).toEqual(expected);
    expect(all.filter((i) => i === shared)).toHaveLength(1);

    const paged: string[] = [];
    let path: string | null = '/api/docker/v/v2/_catalog?n=3';
    while (path) {
      const r = await reg.fetch(path);
      const body = (await r.json()) as { repositories: string[] };
      expect(body.repositories.length).toBeLessThanOrEqual(3);
      paged.push(...body.repositories);
      const link = r.headers.get('link');
      path = link ? /^<([^>]+)>; rel="next"$/.exec(link)![1]! : null;
    }
    expect(paged).toEqual(expected);
  });

  it('nested virtual repositories are expanded in place, and a cycle ends', async () => {
    await createRepo('vx', { rclass: 'virtual', repositories: ['vb'] });
    await createRepo('vy', { rclass: 'virtual', repositories: ['vx', 'va'] });
    // vx → vy → vx: allowed by the configuration, so resolution must not loop.
    expect((await send('POST', '/api/repositories/vx', { repositories: ['vb', 'vy'] })).status).toBe(200);
    const image = uniqueImage('nested');
    const inA = await pushImage(reg, `va/${image}`, 'shared');
    const inB = await pushImage(reg, `vb/${image}`, 'shared');
    const onlyB = await pushImage(reg, `vb/${image}`, 'only-b');
    // vy lists vx first, but locals come before nested virtual repositories.
    await expectManifestFrom(`/v2/vy/${image}/manifests/shared`, inA);
    await expectManifestFrom(`/v2/vy/${image}/manifests/only-b`, onlyB);
    await expectManifestFrom(`/v2/vx/${image}/manifests/shared`, inB);
    expect(await tagsOf(`/v2/vx/${image}/tags/list`)).toEqual({ tags: ['only-b', 'shared'], link: null });
    await expectOciError(await reg.fetch(`/v2/vx/${image}/manifests/nope`), 404, 'MANIFEST_UNKNOWN');
  });
});

describe('a blacked-out repository', () => {
  it('serves nothing, alone or through a virtual repository, keeps its content, and comes back when cleared', async () => {
    await createRepo('vdark', { rclass: 'local' });
    await createRepo('vlit', { rclass: 'local' });
    await createRepo('vmix', { rclass: 'virtual', repositories: ['vdark', 'vlit'] });
    const name = uniqueImage('dark');
    const dark = await pushImage(reg, `vdark/${name}`, '1.0');
    const lit = await pushImage(reg, `vlit/${name}`, '2.0');

    expect((await send('POST', '/api/repositories/vdark', { blackedOut: true })).status).toBe(200);
    const refused = await reg.fetch(`/v2/vdark/${name}/manifests/1.0`);
    expect(refused.status).toBe(404);
    expect(((await refused.json()) as { errors: Array<{ code: string; message: string }> }).errors[0]).toMatchObject({
      code: 'NAME_UNKNOWN',
      message: "repository 'vdark' is blacked out: its images are kept but not served until it is enabled again",
    });
    await expectOciError(await reg.fetch(`/v2/vdark/${name}/blobs/uploads/`, { method: 'POST' }), 404, 'NAME_UNKNOWN');
    await expectOciError(await reg.fetch(`/v2/nonexistent-${name}/${name}/manifests/1.0`), 404, 'NAME_UNKNOWN');
    await expectOciError(await reg.fetch(`/v2/vmix/${name}/manifests/1.0`), 404, 'MANIFEST_UNKNOWN');
    await expectManifestFrom(`/v2/vmix/${name}/manifests/2.0`, lit);

    expect((await send('POST', '/api/repositories/vdark', { blackedOut: false })).status).toBe(200);
    await expectManifestFrom(`/v2/vdark/${name}/manifests/1.0`, dark);
    await expectManifestFrom(`/v2/vmix/${name}/manifests/1.0`, dark);
  });
});

describe('pushes through a virtual repository', () => {
  it('a full push (POST, PATCH, PUT, manifest PUT) and a mount land in the default deployment repository', async () => {
    const image = uniqueImage('push');
    const layer = Buffer.from('a layer pushed through the virtual repository');
    const start = await reg.fetch(`/v2/v/${image}/blobs/uploads/`, { method: 'POST' });
    expect(start.status).toBe(202);
    const location = start.headers.get('location')!;
    expect(location).toMatch(new RegExp(`^/v2/v/${image}/blobs/uploads/[^/]+$`));
    const patch = await reg.fetch(location, { method: 'PATCH', body: layer, headers: { 'content-type': 'application/octet-stream' } });
    expect(patch.status).toBe(202);
    expect(patch.headers.get('range')).toBe(`0-${layer.length - 1}`);
    const status = await reg.fetch(location);
    expect(status.status).toBe(204);
    const put = await reg.fetch(`${patch.headers.get('location')!}?digest=${sha256(layer)}`, { method: 'PUT' });
    expect(put.status).toBe(201);
    expect(put.headers.get('location')).toBe(`/v2/v/${image}/blobs/${sha256(layer)}`);
    const config = await pushBlob(reg, `v/${image}`, '{"architecture":"amd64","os":"linux"}');
    const m = ociManifest(desc(MediaTypes.ociConfig, config), [desc('application/vnd.oci.image.layer.v1.tar', { digest: sha256(layer), size: layer.length })]);
    const mput = await putManifest(reg, `v/${image}`, 'pushed', m);
    expect(mput.status).toBe(201);
    expect(mput.headers.get('location')).toBe(`/v2/v/${image}/manifests/${sha256(m)}`);

    const img = { digest: sha256(m), manifest: m } as PushedImage;
    await expectManifestFrom(`/v2/va/${image}/manifests/pushed`, img);
    await expectManifestFrom(`/v2/v/${image}/manifests/pushed`, img);
    expect((await reg.fetch(`/v2/va/${image}/blobs/${sha256(layer)}`, { method: 'HEAD' })).status).toBe(200);
    await expectOciError(await reg.fetch(`/v2/vb/${image}/manifests/pushed`), 404, 'MANIFEST_UNKNOWN');

    const mounted = uniqueImage('mounted');
    const mount = await reg.fetch(`/v2/v/${mounted}/blobs/uploads/?mount=${sha256(layer)}&from=va/${image}`, { method: 'POST' });
    expect(mount.status).toBe(201);
    expect((await reg.fetch(`/v2/va/${mounted}/blobs/${sha256(layer)}`, { method: 'HEAD' })).status).toBe(200);

    // Deletes go to the deployment repository as well.
    expect((await reg.fetch(`/v2/v/${image}/manifests/pushed`, { method: 'DELETE' })).status).toBe(202);
    await expectOciError(await reg.fetch(`/v2/va/${image}/manifests/pushed`), 404, 'MANIFEST_UNKNOWN');
    expect((await reg.fetch(`/v2/v/${mounted}/blobs/${sha256(layer)}`, { method: 'DELETE' })).status).toBe(202);
    expect((await reg.fetch(`/v2/va/${mounted}/blobs/${sha256(layer)}`, { method: 'HEAD' })).status).toBe(404);
  });

  it('a virtual repository without defaultDeploymentRepo refuses pushes with 405 UNSUPPORTED', async () => {
    const image = uniqueImage('nopush');
    const message = "virtual repository 'vn' has no default deployment repository (defaultDeploymentRepo); push to one of its local repositories instead";
    const post = await expectOciError(await reg.fetch(`/v2/vn/${image}/blobs/uploads/`, { method: 'POST' }), 405, 'UNSUPPORTED');
    expect(post).toEqual({ code: 'UNSUPPORTED', message, detail: { repository: 'vn', rclass: 'virtual' } });
    const monolithic = await reg.fetch(`/v2/vn/${image}/blobs/uploads/?digest=${sha256('x')}`, { method: 'POST', body: 'x' });
    await expectOciError(monolithic, 405, 'UNSUPPORTED');
    const img = await pushImage(reg, `va/${image}`, 'v1');
    expect((await expectOciError(await putManifest(reg, `vn/${image}`, 'v2', img.manifest), 405, 'UNSUPPORTED')).message).toBe(message);
    await expectOciError(await reg.fetch(`/v2/vn/${image}/manifests/v1`, { method: 'DELETE' }), 405, 'UNSUPPORTED');
    // Reads still work.
    await expectManifestFrom(`/v2/vn/${image}/manifests/v1`, img);
  });
});

describe('rights', () => {
  it('a member the caller cannot read is skipped: its tags, images and blobs do not show', async () => {
    const auth = await createUser('reader-v', 'reader-v-password', { v: ['read'], va: ['read'] });
    const image = uniqueImage('rights');
    const inA = await pushImage(reg, `va/${image}`, 'shared');
    await pushImage(reg, `vb/${image}`, 'shared');
    const onlyB = await pushImage(reg, `vb/${image}`, 'only-b');
    const bImage = uniqueImage('rights-b');
    await pushImage(reg, `vb/${bImage}`, 'x');

    await expectManifestFrom(`/v2/v/${image}/manifests/shared`, inA, auth);
    await expectOciError(await reg.fetch(`/v2/v/${image}/manifests/only-b`, { auth }), 404, 'MANIFEST_UNKNOWN');
    await expectOciError(await reg.fetch(`/v2/v/${image}/manifests/${onlyB.digest}`, { auth }), 404, 'MANIFEST_UNKNOWN');
    await expectOciError(await reg.fetch(`/v2/v/${image}/blobs/${onlyB.layer.digest}`, { auth }), 404, 'BLOB_UNKNOWN');
    expect(await tagsOf(`/v2/v/${image}/tags/list`, auth)).toEqual({ tags: ['shared'], link: null });
    await expectOciError(await reg.fetch(`/v2/v/${bImage}/tags/list`, { auth }), 404, 'NAME_UNKNOWN');

    const catalog = (await (await reg.fetch('/api/docker/v/v2/_catalog', { auth })).json()) as { repositories: string[] };
    expect(catalog.repositories).toContain(image);
    expect(catalog.repositories).not.toContain(bImage);
    // The admin sees both.
    expect(await tagsOf(`/v2/v/${image}/tags/list`)).toEqual({ tags: ['only-b', 'shared'], link: null });
  });

  it('pushing through a virtual repository needs the right on its deployment repository too', async () => {
    const readOnly = await createUser('pusher-v', 'pusher-v-password', { v: ['write'], va: ['read'] });
    const image = uniqueImage('denied');
    const manifestPut = (tag: string, body: Buffer, auth: string) =>
      reg.fetch(`/v2/v/${image}/manifests/${tag}`, { method: 'PUT', body, headers: { 'content-type': MediaTypes.ociManifest }, auth });
    const post = await expectOciError(await reg.fetch(`/v2/v/${image}/blobs/uploads/`, { method: 'POST', auth: readOnly }), 403, 'DENIED');
    expect(post.message).toBe(`pusher-v may not write on va/${image}`);
    const img = await pushImage(reg, `va/${image}`, 'v1');
    await expectOciError(await manifestPut('v2', img.manifest, readOnly), 403, 'DENIED');
    await expectOciError(await reg.fetch(`/v2/va/${image}/manifests/v2`), 404, 'MANIFEST_UNKNOWN');

    // Delete on the virtual repository, only write on the deployment repository.
    const writer = await createUser('writer-v', 'writer-v-password', { v: ['delete'], va: ['write'] });
    expect((await reg.fetch(`/v2/v/${image}/blobs/uploads/`, { method: 'POST', auth: writer })).status).toBe(202);
    expect((await manifestPut('v2', img.manifest, writer)).status).toBe(201);
    await expectManifestFrom(`/v2/va/${image}/manifests/v2`, img);
    // Re-pointing a tag of va needs delete there (the overwrite rule), and so does deleting.
    const other = await pushImage(reg, `va/${image}`);
    await expectOciError(await manifestPut('v1', other.manifest, writer), 403, 'DENIED');
    await expectManifestFrom(`/v2/va/${image}/manifests/v1`, img);
    await expectOciError(await reg.fetch(`/v2/v/${image}/manifests/v1`, { method: 'DELETE', auth: writer }), 403, 'DENIED');
    await expectOciError(await reg.fetch(`/v2/v/${image}/blobs/${img.layer.digest}`, { method: 'DELETE', auth: writer }), 403, 'DENIED');
    await expectManifestFrom(`/v2/va/${image}/manifests/v1`, img);
  });
});

describe('the default docker virtual repository', () => {
  it('serves what is pushed to docker-local, and a push to docker/… lands in docker-local', async () => {
    const image = uniqueImage('default');
    const img = await pushImage(reg, `docker-local/${image}`, 'v1');
    await expectManifestFrom(`/v2/docker/${image}/manifests/v1`, img);
    const blob = await reg.fetch(`/v2/docker/${image}/blobs/${img.layer.digest}`);
    expect(blob.status).toBe(200);
    expect((await bytesOf(blob)).equals(img.layer.data)).toBe(true);

    const pushed = uniqueImage('via-docker');
    const viaDocker = await pushImage(reg, `docker/${pushed}`, 'v1');
    await expectManifestFrom(`/v2/docker-local/${pushed}/manifests/v1`, viaDocker);
    await expectManifestFrom(`/v2/docker/${pushed}/manifests/v1`, viaDocker);
  });
});
