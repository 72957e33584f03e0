/**
 * Promotion (SPEC §6), in-process: Artifactory's `POST /api/docker/<repoKey>/v2/promote`
 * by copy, move and retag, one tag or every tag; an index with its children and
 * referrers; blobs linked, never copied; rights; virtual targets; tag
 * immutability; the promotion history; Artifactory's curl examples run as
 * written; and a database failure at every write leaving nothing half-done.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../../bench/proc.mjs';
import { MetadataUnavailableError } from '../../src/metadata/errors.js';
import type { MetadataStore } from '../../src/metadata/store.js';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';
import {
  basic,
  bytesOf,
  desc,
  MediaTypes,
  ociIndex,
  ociManifest,
  pushBlob,
  pushImage,
  putManifest,
  sha256,
  uniqueImage,
  type Desc,
  type PushedImage,
} from '../helpers/oci-client.js';

/** The password of Artifactory's curl examples (`-uadmin:password`), so they run as written. */
const ADMIN = basic('admin', 'password');
const SUCCESS = { messages: [{ level: 'INFO', message: 'Promotion ended successfully' }] };
const SIGNATURE_TYPE = 'application/vnd.example.signature.v1';
const SBOM_TYPE = 'application/vnd.example.sbom.v1';

let reg: TestRegistry;
let store: MetadataStore;

beforeAll(async () => {
  const started = await startTestRegistry({ config: { auth: { adminPassword: 'password' } } });
  // Every helper request goes as this admin unless it says otherwise.
  reg = { ...started, fetch: (path, init = {}) => started.fetch(path, { ...init, auth: init.auth === undefined ? ADMIN : init.auth }) };
  store = started.running.services.store;
  for (const key of ['dev', 'prod', 'qa', 'docker-prod-local', 'docker-prod']) await createRepo(key, { rclass: 'local' });
  await createRepo('locked', { rclass: 'local', tagImmutability: ['v*'] });
  await createRepo('prod-virtual', { rclass: 'virtual', repositories: ['prod', 'qa'], defaultDeploymentRepo: 'qa' });
  await createRepo('no-deploy', { rclass: 'virtual', repositories: ['prod'] });
});
afterAll(async () => {
  await reg?.close();
});

// ---- helpers ------------------------------------------------------------------------------

async function send(method: string, path: string, body?: unknown, auth?: string | null): Promise<Response> {
  return reg.fetch(path, {
    method,
    body: body === undefined ? undefined : JSON.stringify(body),
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    auth,
  });
}

async function createRepo(key: string, body: Record<string, unknown>): Promise<void> {
  const r = await send('PUT', `/api/repositories/${key}`, { key, ...body });
  expect({ key, status: r.status, body: await r.text() }).toEqual({ key, status: 200, body: `Successfully created repository '${key}'` });
}

/** A user whose only rights are `grants` (repository → actions). */
async function createUser(name: string, grants: Record<string, string[]>): Promise<string> {
  const password = `${name}-password-1`;
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

function promote(source: string, body: unknown, auth?: string | null): Promise<Response> {
  return send('POST', `/api/docker/${source}/v2/promote`, body, auth);
}

/** Asserts Artifactory's success answer. */
async function expectPromoted(r: Response): Promise<void> {
  expect({ status: r.status, body: await r.text() }).toEqual({ status: 200, body: JSON.stringify(SUCCESS) });
  expect(r.headers.get('content-type')).toMatch(/^application\/json/);
}

/** Asserts Artifactory's error shape `{"errors":[{status,message}]}`; resolves the message. */
async function expectApiError(r: Response, status: number): Promise<string> {
  const text = await r.text();
  expect({ status: r.status, text }).toEqual({ status, text: expect.any(String) });
  const body = JSON.parse(text) as { errors: Array<{ status: number; message: string }> };
  expect(body).toEqual({ errors: [{ status, message: expect.any(String) }] });
  return body.errors[0]!.message;
}

async function digestOfTag(repo: string, image: string, tag: string): Promise<string | undefined> {
  return store.tags.resolve(repo, image, tag);
}

async function expectManifest(repo: string, image: string, ref: string, bytes: Buffer, mediaType: string): Promise<void> {
  const r = await reg.fetch(`/v2/${repo}/${image}/manifests/${ref}`);
  expect({ ref, status: r.status, type: r.headers.get('content-type') }).toEqual({ ref, status: 200, type: mediaType });
  expect((await bytesOf(r)).equals(bytes)).toBe(true);
}

async function manifestStatus(repo: string, image: string, ref: string): Promise<number> {
  const r = await reg.fetch(`/v2/${repo}/${image}/manifests/${ref}`, { method: 'HEAD' });
  return r.status;
}

async function blobCount(): Promise<number> {
  const walk = async (dir: string): Promise<number> => {
    let n = 0;
    for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
      n += e.isDirectory() ? await walk(join(dir, e.name)) : 1;
    }
    return n;
  };
  return walk(join(reg.dataDir, 'blobs', 'blobs'));
}

interface MultiArch {
  index: Buffer;
  indexDigest: string;
  children: PushedImage[];
  /** A signature of the index. */
  signature: { digest: string; bytes: Buffer };
  /** An SBOM of the first child. */
  sbom: { digest: string; bytes: Buffer };
  /** A signature of the SBOM (a referrer of a referrer). */
  sbomSignature: { digest: string; bytes: Buffer };
  blobs: string[];
}

/** An artifact manifest (empty config, one layer) whose subject is `subject`; pushed by digest. */
async function pushReferrer(name: string, subject: Desc, artifactType: string, payload: string): Promise<{ digest: string; bytes: Buffer; layer: string }> {
  const empty = await pushBlob(reg, name, '{}');
  const layer = await pushBlob(reg, name, payload);
  const bytes = ociManifest(desc(MediaTypes.ociEmpty, empty), [desc('application/octet-stream', layer)], { artifactType, subject });
  const digest = sha256(bytes);
  expect((await putManifest(reg, name, digest, bytes)).status).toBe(201);
  return { digest, bytes, layer: layer.digest };
}

/** A 2-platform OCI index tagged `tag` in `repo/image`, with a signature, an SBOM of one child and a signature of that SBOM. */
async function pushMultiArch(repo: string, image: string, tag: string): Promise<MultiArch> {
  const name = `${repo}/${image}`;
  const children = [await pushImage(reg, name), await pushImage(reg, name)];
  const platforms = [
    { os: 'linux', architecture: 'amd64' },
    { os: 'linux', architecture: 'arm64', variant: 'v8' },
  ];
  const index = ociIndex(children.map((c, i) => ({ ...c.descriptor, platform: platforms[i] })));
  const indexDigest = sha256(index);
  expect((await putManifest(reg, name, tag, index, MediaTypes.ociIndex)).status).toBe(201);
  const signature = await pushReferrer(name, desc(MediaTypes.ociIndex, { digest: indexDigest, size: index.length }), SIGNATURE_TYPE, `sig ${indexDigest}`);
  const sbom = await pushReferrer(name, children[0]!.descriptor, SBOM_TYPE, `sbom ${children[0]!.digest} ${Math.random()}`);
  const sbomSignature = await pushReferrer(name, desc(MediaTypes.ociManifest, { digest: sbom.digest, size: sbom.bytes.length }), SIGNATURE_TYPE, `sig ${sbom.digest}`);
  const blobs = [
    ...children.flatMap((c) => [c.config.digest, c.layer.digest]),
    sha256('{}'),
    signature.layer,
    sbom.layer,
    sbomSignature.layer,
  ];
  return { index, indexDigest, children, signature, sbom, sbomSignature, blobs };
}

function allDigests(m: MultiArch): string[] {
  return [m.indexDigest, ...m.children.map((c) => c.digest), m.signature.digest, m.sbom.digest, m.sbomSignature.digest];
}

/** Everything a promotion could change in these images, read from the store. */
async function snapshot(images: Array<[string, string]>, manifests: string[], blobs: string[]): Promise<unknown> {
  const out: Record<string, unknown> = {};
  for (const [repo, image] of images) {
    out[`${repo}/${image}`] = {
      tags: (await store.tags.records(repo, image)).map((t) => [t.name, t.digest, t.updatedAt.toISOString()]),
      absentManifests: await store.manifests.missing(repo, image, manifests),
      unlinkedBlobs: await store.blobs.missing(repo, image, blobs),
      promotions: await store.promotions.list(repo, { limit: 1000 }),
    };
  }
  // Refusals are audited too (outcome `denied`); a promotion that happened is `success`.
  out.audited = (await store.audit.list({ limit: 1000, action: 'promotion' })).filter((e) => e.outcome === 'success').length;
  return out;
}

async function referrerDigests(repo: string, image: string, digest: string): Promise<string[]> {
  const r = await reg.fetch(`/v2/${repo}/${image}/referrers/${digest}`);
  expect(r.status).toBe(200);
  const body = (await r.json()) as { manifests: Array<{ digest: string }> };
  return body.manifests.map((m) => m.digest).sort();
}

// ---- tests --------------------------------------------------------------------------------

describe('promote by copy, move and retag', () => {
  it('copies one tag: the target serves the same bytes, the source keeps everything, the answer is Artifactory\'s', async () => {
    const image = uniqueImage('copy');
    const img = await pushImage(reg, `dev/${image}`, '1.0');
    await expectPromoted(await promote('dev', { targetRepo: 'prod', dockerRepository: image, tag: '1.0', copy: true }));
    await expectManifest('prod', image, '1.0', img.manifest, MediaTypes.ociManifest);
    await expectManifest('dev', image, '1.0', img.manifest, MediaTypes.ociManifest);
    const layer = await reg.fetch(`/v2/prod/${image}/blobs/${img.layer.digest}`);
    expect(layer.status).toBe(200);
    expect((await bytesOf(layer)).equals(img.layer.data)).toBe(true);
  });

  it('moves one tag (copy absent means move, as in Artifactory): gone from the source, served by the target', async () => {
    const image = uniqueImage('move');
    const img = await pushImage(reg, `dev/${image}`, '1.0');
    const other = await pushImage(reg, `dev/${image}`, '2.0');
    await expectPromoted(await promote('dev', { targetRepo: 'prod', dockerRepository: image, tag: '1.0' }));
    await expectManifest('prod', image, '1.0', img.manifest, MediaTypes.ociManifest);
    expect(await manifestStatus('dev', image, '1.0')).toBe(404);
    expect(await manifestStatus('dev', image, img.digest)).toBe(404);
    // The image's other tag stays where it was.
    await expectManifest('dev', image, '2.0', other.manifest, MediaTypes.ociManifest);
    expect(await manifestStatus('prod', image, '2.0')).toBe(404);
  });

  it('a move keeps a manifest another source tag still points at', async () => {
    const image = uniqueImage('shared');
    const img = await pushImage(reg, `dev/${image}`, 'a');
    expect((await putManifest(reg, `dev/${image}`, 'b', img.manifest)).status).toBe(201);
    await expectPromoted(await promote('dev', { targetRepo: 'prod', dockerRepository: image, tag: 'a', copy: false }));
    expect(await digestOfTag('dev', image, 'a')).toBeUndefined();
    await expectManifest('dev', image, 'b', img.manifest, MediaTypes.ociManifest);
    await expectManifest('prod', image, 'a', img.manifest, MediaTypes.ociManifest);
  });

  it('retags: targetTag names the tag in the target, by copy and by move', async () => {
    const image = uniqueImage('retag');
    const img = await pushImage(reg, `dev/${image}`, 'rc-1');
    await expectPromoted(await promote('dev', { targetRepo: 'prod', dockerRepository: image, tag: 'rc-1', targetTag: '1.0', copy: true }));
    await expectManifest('prod', image, '1.0', img.manifest, MediaTypes.ociManifest);
    expect(await manifestStatus('prod', image, 'rc-1')).toBe(404);
    await expectPromoted(await promote('dev', { targetRepo: 'prod', dockerRepository: image, tag: 'rc-1', targetTag: 'latest', copy: false }));
    expect(await digestOfTag('prod', image, 'latest')).toBe(img.digest);
    expect(await digestOfTag('dev', image, 'rc-1')).toBeUndefined();
    // Within one image too: a move renames the tag.
    await expectPromoted(await promote('prod', { targetRepo: 'prod', dockerRepository: image, tag: 'latest', targetTag: 'stable' }));
    expect((await store.tags.list('prod', image))).toEqual(['1.0', 'stable']);
  });

  it('targetDockerRepository renames the image in the target', async () => {
    const image = uniqueImage('from');
    const renamed = uniqueImage('to');
    const img = await pushImage(reg, `dev/${image}`, '1.0');
    await expectPromoted(await promote('dev', { targetRepo: 'prod', dockerRepository: image, targetDockerRepository: renamed, tag: '1.0', copy: true }));
    await expectManifest('prod', renamed, '1.0', img.manifest, MediaTypes.ociManifest);
    expect(await manifestStatus('prod', image, '1.0')).toBe(404);
  });

  it('without tag, promotes every tag of the image; a move empties the source image', async () => {
    const image = uniqueImage('all');
    const imgs = [await pushImage(reg, `dev/${image}`, '1.0'), await pushImage(reg, `dev/${image}`, '1.1'), await pushImage(reg, `dev/${image}`, 'latest')];
    await expectPromoted(await promote('dev', { targetRepo: 'qa', dockerRepository: image, copy: true }));
    expect(await store.tags.list('qa', image)).toEqual(['1.0', '1.1', 'latest']);
    await expectPromoted(await promote('dev', { targetRepo: 'prod', dockerRepository: image }));
    expect(await store.tags.list('prod', image)).toEqual(['1.0', '1.1', 'latest']);
    for (const img of imgs) expect(await manifestStatus('dev', image, img.digest)).toBe(404);
    const list = await reg.fetch(`/v2/dev/${image}/tags/list`);
    expect(list.status).toBe(404);
    await list.body?.cancel();
    // Nothing left to promote: the image has no tags.
    expect(await expectApiError(await promote('dev', { targetRepo: 'prod', dockerRepository: image }), 404)).toBe(`dev has no tagged image '${image}'`);
  });

  it("applies the target's maxUniqueTags in the promotion's transaction", async () => {
    await createRepo('prod-capped', { rclass: 'local', maxUniqueTags: 2 });
    const image = uniqueImage('capped');
    await pushImage(reg, `dev/${image}`, '1');
    await pushImage(reg, `dev/${image}`, '2');
    await pushImage(reg, `dev/${image}`, '3');
    for (const tag of ['1', '2', '3']) {
      await expectPromoted(await promote('dev', { targetRepo: 'prod-capped', dockerRepository: image, tag, copy: true }));
    }
    const tags = (await (await reg.fetch(`/v2/prod-capped/${image}/tags/list`)).json()) as { tags: string[] };
    expect(tags.tags).toEqual(['2', '3']);
  });

  it('refuses a promotion onto itself', async () => {
    const image = uniqueImage('self');
    await pushImage(reg, `dev/${image}`, '1.0');
    expect(await expectApiError(await promote('dev', { targetRepo: 'dev', dockerRepository: image, tag: '1.0', copy: true }), 400)).toBe(
      `nothing to promote: the source and the target are both dev/${image}:1.0`,
    );
  });
});

describe('an index moves with its children and referrers', () => {
  it('copy: the index, both platforms, the signature, the SBOM and its signature all arrive; blobs are linked, not copied', async () => {
    const image = uniqueImage('multi');
    const m = await pushMultiArch('dev', image, '3.0');
    const files = await blobCount();
    await expectPromoted(await promote('dev', { targetRepo: 'prod', dockerRepository: image, tag: '3.0', copy: true }));
    expect(await blobCount()).toBe(files);

    await expectManifest('prod', image, '3.0', m.index, MediaTypes.ociIndex);
    for (const c of m.children) await expectManifest('prod', image, c.digest, c.manifest, MediaTypes.ociManifest);
    await expectManifest('prod', image, m.signature.digest, m.signature.bytes, MediaTypes.ociManifest);
    expect(await referrerDigests('prod', image, m.indexDigest)).toEqual([m.signature.digest]);
    expect(await referrerDigests('prod', image, m.children[0]!.digest)).toEqual([m.sbom.digest]);
    expect(await referrerDigests('prod', image, m.sbom.digest)).toEqual([m.sbomSignature.digest]);
    expect(await store.blobs.missing('prod', image, m.blobs)).toEqual([]);
    // Platform tags follow the target's policy (platformTags: true by default).
    expect(await store.tags.list('prod', image)).toEqual(['3.0', '3.0-linux-amd64', '3.0-linux-arm64-v8']);
    // The source is untouched.
    expect(await store.manifests.missing('dev', image, allDigests(m))).toEqual([]);
  });

  it('move with retag: everything leaves the source, platform tags included, and arrives under the new tag', async () => {
    const image = uniqueImage('multi-move');
    const m = await pushMultiArch('dev', image, '4.0-rc');
    expect(await store.tags.list('dev', image)).toEqual(['4.0-rc', '4.0-rc-linux-amd64', '4.0-rc-linux-arm64-v8']);
    const files = await blobCount();
    await expectPromoted(await promote('dev', { targetRepo: 'prod', dockerRepository: image, tag: '4.0-rc', targetTag: '4.0' }));
    expect(await blobCount()).toBe(files);
    expect(await store.tags.list('prod', image)).toEqual(['4.0', '4.0-linux-amd64', '4.0-linux-arm64-v8']);
    expect(await digestOfTag('prod', image, '4.0-linux-arm64-v8')).toBe(m.children[1]!.digest);
    expect(await store.manifests.missing('prod', image, allDigests(m))).toEqual([]);
    expect(await referrerDigests('prod', image, m.indexDigest)).toEqual([m.signature.digest]);
    expect(await store.tags.list('dev', image)).toEqual([]);
    expect(await store.manifests.missing('dev', image, allDigests(m))).toEqual(allDigests(m));
  });

  it('move leaves a child that another source tag still needs, with its referrers', async () => {
    const image = uniqueImage('multi-keep');
    const m = await pushMultiArch('dev', image, '5.0');
    // A second tag on the first platform image alone.
    expect((await putManifest(reg, `dev/${image}`, 'amd64-only', m.children[0]!.manifest)).status).toBe(201);
    await expectPromoted(await promote('dev', { targetRepo: 'prod', dockerRepository: image, tag: '5.0' }));
    const kept = [m.children[0]!.digest, m.sbom.digest, m.sbomSignature.digest];
    expect((await store.manifests.missing('dev', image, allDigests(m))).sort()).toEqual(allDigests(m).filter((d) => !kept.includes(d)).sort());
    expect(await referrerDigests('dev', image, m.children[0]!.digest)).toEqual([m.sbom.digest]);
    expect(await store.tags.list('dev', image)).toEqual(['amd64-only']);
    expect(await store.manifests.missing('prod', image, allDigests(m))).toEqual([]);
  });
});

describe('nothing changes when a promotion is refused', () => {
  it('unknown tag or image: 404 in Artifactory\'s shape, no change, nothing recorded', async () => {
    const image = uniqueImage('unknown');
    const img = await pushImage(reg, `dev/${image}`, '1.0');
    const before = await snapshot([['dev', image], ['prod', image]], [img.digest], [img.layer.digest]);
    expect(await expectApiError(await promote('dev', { targetRepo: 'prod', dockerRepository: image, tag: 'nope' }), 404)).toBe(
      `tag 'nope' of dev/${image} does not exist`,
    );
    expect(await expectApiError(await promote('dev', { targetRepo: 'prod', dockerRepository: `${image}-none` }), 404)).toBe(
      `dev has no tagged image '${image}-none'`,
    );
    expect(await expectApiError(await promote('dev', { targetRepo: 'prod', dockerRepository: `${image}-none`, tag: '1.0', copy: true }), 404)).toBe(
      `tag '1.0' of dev/${image}-none does not exist`,
    );
    expect(await expectApiError(await promote('nowhere', { targetRepo: 'prod', dockerRepository: image, tag: '1.0' }), 404)).toBe(
      "repository 'nowhere' does not exist",
    );
    expect(await expectApiError(await promote('dev', { targetRepo: 'nowhere', dockerRepository: image, tag: '1.0' }), 404)).toBe(
      "repository 'nowhere' does not exist",
    );
    expect(await snapshot([['dev', image], ['prod', image]], [img.digest], [img.layer.digest])).toEqual(before);
  });

  it('bad bodies: 400 naming the problem', async () => {
    const image = uniqueImage('bad');
    const cases: Array<[unknown, string]> = [
      [{ targetRepo: 'prod', dockerRepository: image, tag: '1.0', colour: 'blue' }, 'invalid promotion request: colour: unknown field'],
      [{ dockerRepository: image }, 'invalid promotion request: targetRepo: required (string)'],
      [{ targetRepo: 'prod', dockerRepository: image, targetTag: '2.0' }, 'invalid promotion request: targetTag: only allowed together with tag (every tag of an image keeps its name)'],
      [{ targetRepo: 'prod', dockerRepository: 'Upper/Case' }, 'invalid promotion request: dockerRepository: must be an image name as the OCI distribution spec defines it (e.g. team/app)'],
      [{ targetRepo: 'prod', dockerRepository: image, copy: 'yes' }, 'invalid promotion request: copy: expected boolean, received string'],
      [[1, 2], 'the promotion request must be a JSON object'],
    ];
    for (const [body, message] of cases) expect(await expectApiError(await promote('dev', body), 400)).toBe(message);
    const r = await reg.fetch('/api/docker/dev/v2/promote', { method: 'POST', body: '{"targetRepo":', headers: { 'content-type': 'application/json' } });
    expect(await expectApiError(r, 400)).toBe('the request body is not valid JSON');
  });

  it('the source must be local; a virtual target needs a default deployment repository; a remote is never a target', async () => {
    await createRepo('upstream', { rclass: 'remote', url: 'https://registry.invalid/' });
    const image = uniqueImage('class');
    await pushImage(reg, `dev/${image}`, '1.0');
    expect(await expectApiError(await promote('prod-virtual', { targetRepo: 'prod', dockerRepository: image, tag: '1.0' }), 400)).toBe(
      "promotion source 'prod-virtual' is a virtual repository; promotion goes between local repositories",
    );
    expect(await expectApiError(await promote('dev', { targetRepo: 'no-deploy', dockerRepository: image, tag: '1.0' }), 400)).toBe(
      "promotion target 'no-deploy' is a virtual repository without a default deployment repository (defaultDeploymentRepo)",
    );
    expect(await expectApiError(await promote('dev', { targetRepo: 'upstream', dockerRepository: image, tag: '1.0' }), 400)).toBe(
      "promotion target 'upstream' is a remote repository; promotion goes between local repositories",
    );
    expect(await digestOfTag('dev', image, '1.0')).toBeDefined();
  });

  it('a tag protected by tagImmutability may be created but not re-pointed (TAG_INVALID naming the rule)', async () => {
    const image = uniqueImage('immutable');
    const first = await pushImage(reg, `dev/${image}`, 'one');
    const second = await pushImage(reg, `dev/${image}`, 'two');
    await expectPromoted(await promote('dev', { targetRepo: 'locked', dockerRepository: image, tag: 'one', targetTag: 'v1', copy: true }));
    // The same digest again is no re-pointing.
    await expectPromoted(await promote('dev', { targetRepo: 'locked', dockerRepository: image, tag: 'one', targetTag: 'v1', copy: true }));
    const before = await snapshot([['dev', image], ['locked', image]], [first.digest, second.digest], [first.layer.digest, second.layer.digest]);
    expect(await expectApiError(await promote('dev', { targetRepo: 'locked', dockerRepository: image, tag: 'two', targetTag: 'v1' }), 400)).toBe(
      `tag 'v1' is immutable in repository 'locked' (rule 'v*'): it points at ${first.digest} and cannot be re-pointed to ${second.digest}`,
    );
    expect(await snapshot([['dev', image], ['locked', image]], [first.digest, second.digest], [first.layer.digest, second.layer.digest])).toEqual(before);
    // Unprotected tags of that repository move freely.
    await expectPromoted(await promote('dev', { targetRepo: 'locked', dockerRepository: image, tag: 'two', targetTag: 'latest', copy: true }));
    await expectPromoted(await promote('dev', { targetRepo: 'locked', dockerRepository: image, tag: 'one', targetTag: 'latest', copy: true }));
    // Moving a protected tag out deletes it: refused like a DELETE.
    expect(await expectApiError(await promote('locked', { targetRepo: 'prod', dockerRepository: image, tag: 'v1' }), 403)).toBe(
      "tag 'v1' is immutable in repository 'locked' (rule 'v*'): it cannot be deleted",
    );
    expect(await digestOfTag('locked', image, 'v1')).toBe(first.digest);
    expect(await digestOfTag('prod', image, 'v1')).toBeUndefined();
  });
});

describe('rights', () => {
  it('read (and delete, for a move) on the source, write on the target (and delete to re-point a tag there)', async () => {
    const image = uniqueImage('rights');
    const img = await pushImage(reg, `dev/${image}`, '1.0');
    const reader = await createUser('p-reader', { dev: ['read'], prod: ['read'] });
    const writer = await createUser('p-writer', { dev: ['read'], prod: ['write'] });
    const mover = await createUser('p-mover', { dev: ['delete'], prod: ['write'] });
    const before = await snapshot([['dev', image], ['prod', image]], [img.digest], [img.layer.digest]);

    expect(await expectApiError(await promote('dev', { targetRepo: 'prod', dockerRepository: image, tag: '1.0', copy: true }, reader), 403)).toBe(
      `p-reader may not write on prod/${image}`,
    );
    expect(await expectApiError(await promote('dev', { targetRepo: 'prod', dockerRepository: image, tag: '1.0' }, writer), 403)).toBe(
      `p-writer may not delete on dev/${image}`,
    );
    expect(await expectApiError(await promote('qa', { targetRepo: 'prod', dockerRepository: image, tag: '1.0', copy: true }, writer), 403)).toBe(
      `p-writer may not read on qa/${image}`,
    );
    // Without rights, an image that does not exist answers the same as one that does.
    expect(await expectApiError(await promote('dev', { targetRepo: 'prod', dockerRepository: `${image}-x`, tag: '1.0', copy: true }, reader), 403)).toBe(
      `p-reader may not write on prod/${image}-x`,
    );
    const anonymous = await promote('dev', { targetRepo: 'prod', dockerRepository: image, tag: '1.0', copy: true }, null);
    expect(anonymous.headers.get('www-authenticate')).toBe('Basic realm="drydock"');
    await expectApiError(anonymous, 401);
    const wrong = await promote('dev', { targetRepo: 'prod', dockerRepository: image, tag: '1.0', copy: true }, basic('p-writer', 'wrong'));
    await expectApiError(wrong, 401);
    expect(await snapshot([['dev', image], ['prod', image]], [img.digest], [img.layer.digest])).toEqual(before);
    const denied = await store.audit.list({ limit: 10, action: 'promotion', actor: 'p-reader' });
    expect(denied.map((e) => [e.outcome, e.target, e.details])).toEqual([
      ['denied', `dev/${image}-x:1.0`, { targetRepo: 'prod', targetImage: `${image}-x`, copy: true }],
      ['denied', `dev/${image}:1.0`, { targetRepo: 'prod', targetImage: image, copy: true }],
    ]);

    await expectPromoted(await promote('dev', { targetRepo: 'prod', dockerRepository: image, tag: '1.0', copy: true }, writer));
    // Re-pointing the target's tag needs delete there, as a push would.
    const newer = await pushImage(reg, `dev/${image}`, '1.0');
    expect(await expectApiError(await promote('dev', { targetRepo: 'prod', dockerRepository: image, tag: '1.0', copy: true }, writer), 403)).toBe(
      `p-writer may not delete on prod/${image}`,
    );
    expect(await digestOfTag('prod', image, '1.0')).toBe(img.digest);
    await expectPromoted(await promote('dev', { targetRepo: 'prod', dockerRepository: image, tag: '1.0', targetTag: '1.1' }, mover));
    expect(await digestOfTag('prod', image, '1.1')).toBe(newer.digest);
    expect(await digestOfTag('dev', image, '1.0')).toBeUndefined();
  });

  it('a virtual target lands in its default deployment repository, with write needed there', async () => {
    const image = uniqueImage('virtual');
    const img = await pushImage(reg, `dev/${image}`, '1.0');
    const prodOnly = await createUser('p-prod-only', { dev: ['read'], 'prod-virtual': ['write'], prod: ['write'] });
    expect(await expectApiError(await promote('dev', { targetRepo: 'prod-virtual', dockerRepository: image, tag: '1.0', copy: true }, prodOnly), 403)).toBe(
      `p-prod-only may not write on qa/${image}`,
    );
    await expectPromoted(await promote('dev', { targetRepo: 'prod-virtual', dockerRepository: image, tag: '1.0', copy: true }));
    expect(await digestOfTag('qa', image, '1.0')).toBe(img.digest);
    await expectManifest('prod-virtual', image, '1.0', img.manifest, MediaTypes.ociManifest);
    const r = await reg.fetch('/api/docker/qa/v2/promotions?limit=1');
    const body = (await r.json()) as { promotions: Array<Record<string, unknown>> };
    expect(body.promotions[0]).toMatchObject({ sourceRepo: 'dev', targetRepo: 'qa', image, tag: '1.0', digest: img.digest, copy: true });
  });
});

describe('promotion history', () => {
  it('lists promotions from or into a repository, newest first, with who, what, from, to, digest and when', async () => {
    await createRepo('hist-a', { rclass: 'local' });
    await createRepo('hist-b', { rclass: 'local' });
    const image = uniqueImage('hist');
    const one = await pushImage(reg, `hist-a/${image}`, '1');
    const two = await pushImage(reg, `hist-a/${image}`, '2');
    const started = Date.now();
    await expectPromoted(await promote('hist-a', { targetRepo: 'hist-b', dockerRepository: image, tag: '1', copy: true }));
    await expectPromoted(await promote('hist-a', { targetRepo: 'hist-b', dockerRepository: image, tag: '2', targetTag: 'two' }));
    await expectPromoted(await promote('hist-b', { targetRepo: 'hist-a', dockerRepository: image, tag: 'two', targetTag: 'back', copy: true }));

    const r = await reg.fetch('/artifactory/api/docker/hist-a/v2/promotions');
    expect(r.status).toBe(200);
    const body = (await r.json()) as { promotions: Array<Record<string, unknown>>; next?: number };
    expect(body.next).toBeUndefined();
    expect(body.promotions.map(({ id: _id, at: _at, ...rest }) => rest)).toEqual([
      { user: 'admin', sourceRepo: 'hist-b', targetRepo: 'hist-a', image, targetImage: image, tag: 'two', targetTag: 'back', digest: two.digest, copy: true },
      { user: 'admin', sourceRepo: 'hist-a', targetRepo: 'hist-b', image, targetImage: image, tag: '2', targetTag: 'two', digest: two.digest, copy: false },
      { user: 'admin', sourceRepo: 'hist-a', targetRepo: 'hist-b', image, targetImage: image, tag: '1', targetTag: '1', digest: one.digest, copy: true },
    ]);
    for (const p of body.promotions) {
      expect(typeof p.id).toBe('number');
      expect(new Date(p.at as string).getTime()).toBeGreaterThanOrEqual(started - 1000);
    }
    const page = (await (await reg.fetch('/api/docker/hist-a/v2/promotions?limit=2')).json()) as { promotions: Array<{ id: number }>; next: number };
    expect(page.promotions.map((p) => p.id)).toEqual(body.promotions.slice(0, 2).map((p) => p.id));
    const rest = (await (await reg.fetch(`/api/docker/hist-a/v2/promotions?limit=2&before=${page.next}`)).json()) as { promotions: Array<{ id: number }> };
    expect(rest.promotions.map((p) => p.id)).toEqual([body.promotions[2]!.id]);

    const audit = await store.audit.list({ limit: 1, action: 'promotion', actor: 'admin' });
    expect(audit[0]).toMatchObject({ outcome: 'success', target: `hist-b/${image}:two`, details: { targetRepo: 'hist-a', digest: two.digest, copy: true } });
  });

  it('needs read on the repository; an unknown repository is 404; bad paging is 400', async () => {
    const outsider = await createUser('p-outsider', { qa: ['read'] });
    expect(await expectApiError(await reg.fetch('/api/docker/dev/v2/promotions', { auth: outsider }), 403)).toBe('p-outsider may not read on dev');
    await expectApiError(await reg.fetch('/api/docker/dev/v2/promotions', { auth: null }), 401);
    expect(await expectApiError(await reg.fetch('/api/docker/nowhere/v2/promotions'), 404)).toBe("repository 'nowhere' does not exist");
    expect(await expectApiError(await reg.fetch('/api/docker/dev/v2/promotions?limit=0'), 400)).toBe("limit must be an integer from 1 to 1000; got '0'");
  });

  it('other paths under /api/docker/<key>/v2 stay registry API; promote answers only POST', async () => {
    const r = await reg.fetch('/api/docker/dev/v2/promote');
    expect(await expectApiError(r, 404)).toBe('no endpoint at GET /api/docker/dev/v2/promote');
    const v2 = await reg.fetch('/api/docker/dev/v2/nothing/tags/list');
    expect(v2.status).toBe(404);
    expect(((await v2.json()) as { errors: Array<{ code: string }> }).errors[0]!.code).toBe('NAME_UNKNOWN');
  });
});

describe('Artifactory\'s curl examples, as written (host substituted)', () => {
  /** Runs a documented curl command line through the shell; resolves status and body. */
  async function curl(command: string): Promise<{ status: number; body: string }> {
    const { stdout } = await run('sh', ['-c', command.replace('https://<host>', reg.url)], { timeoutMs: 30_000 });
    const [head, ...body] = stdout.split('\r\n\r\n');
    return { status: Number(/^HTTP\/[\d.]+ (\d{3})/.exec(head!)?.[1]), body: body.join('\r\n\r\n') };
  }

  it('copies jfrog/ubuntu:12.04 from docker-prod-local to docker-prod', async () => {
    const img = await pushImage(reg, 'docker-prod-local/jfrog/ubuntu', '12.04');
    const got = await curl(
      `curl -i -uadmin:password -X POST "https://<host>/artifactory/api/docker/docker-prod-local/v2/promote" -H "Content-Type: application/json" -d '{"targetRepo":"docker-prod","dockerRepository":"jfrog/ubuntu","tag":"12.04","targetTag":"12.04","copy":true}'`,
    );
    expect(got).toEqual({ status: 200, body: JSON.stringify(SUCCESS) });
    await expectManifest('docker-prod', 'jfrog/ubuntu', '12.04', img.manifest, MediaTypes.ociManifest);
    await expectManifest('docker-prod-local', 'jfrog/ubuntu', '12.04', img.manifest, MediaTypes.ociManifest);
  });

  it('the sample usage: every tag of jfrog/ubuntu moves from docker-local to docker-prod', async () => {
    const a = await pushImage(reg, 'docker-local/jfrog/ubuntu', '14.04');
    const b = await pushImage(reg, 'docker-local/jfrog/ubuntu', '16.04');
    const got = await curl(
      `curl -i -uadmin:password -X POST "https://<host>/artifactory/api/docker/docker-local/v2/promote" -H "Content-Type: application/json" -d '{ "targetRepo": "docker-prod", "dockerRepository": "jfrog/ubuntu" }'`,
    );
    expect(got).toEqual({ status: 200, body: JSON.stringify(SUCCESS) });
    expect(await store.tags.list('docker-prod', 'jfrog/ubuntu')).toEqual(['12.04', '14.04', '16.04']);
    expect(await digestOfTag('docker-prod', 'jfrog/ubuntu', '14.04')).toBe(a.digest);
    expect(await digestOfTag('docker-prod', 'jfrog/ubuntu', '16.04')).toBe(b.digest);
    expect(await store.manifests.imageExists('docker-local', 'jfrog/ubuntu')).toBe(false);
  });
});

describe('a database failure mid-promotion', () => {
  const WRITES = new Map<string, ReadonlySet<string>>([
    ['blobs', new Set(['put', 'link', 'unlink'])],
    ['manifests', new Set(['put', 'delete'])],
    ['tags', new Set(['set', 'delete'])],
    ['promotions', new Set(['record'])],
    ['audit', new Set(['append'])],
  ]);

  /**
   * Makes the `n`-th write of the next transactions fail as a lost database
   * would. Resolves a function that undoes it and tells how many writes ran.
   */
  function failWrite(n: number): () => number {
    let writes = 0;
    const original = store.transaction;
    const wrapGroup = (group: object, methods: ReadonlySet<string>) =>
      new Proxy(group, {
        get(target, prop, receiver) {
          const value = Reflect.get(target, prop, receiver) as unknown;
          if (typeof prop !== 'string' || !methods.has(prop) || typeof value !== 'function') return value;
          return (...args: unknown[]) => {
            writes += 1;
            if (writes === n) return Promise.reject(new MetadataUnavailableError(`injected failure at write ${n}`));
            return (value as (...a: unknown[]) => unknown).apply(target, args);
          };
        },
      });
    const wrapTx = (tx: MetadataStore): MetadataStore =>
      new Proxy(tx, {
        get(target, prop, receiver) {
          const value = Reflect.get(target, prop, receiver) as unknown;
          const methods = typeof prop === 'string' ? WRITES.get(prop) : undefined;
          return methods ? wrapGroup(value as object, methods) : value;
        },
      });
    store.transaction = <T,>(fn: (tx: MetadataStore) => Promise<T>) => original.call(store, (tx) => fn(wrapTx(tx))) as Promise<T>;
    return () => {
      Reflect.deleteProperty(store, 'transaction');
      return writes;
    };
  }

  it('at whichever write it happens, leaves source and target exactly as before; then the promotion succeeds', async () => {
    const image = uniqueImage('crash');
    const m = await pushMultiArch('dev', image, '6.0');
    await pushImage(reg, `prod/${image}`, 'other');
    const images: Array<[string, string]> = [['dev', image], ['prod', image]];
    const before = await snapshot(images, allDigests(m), m.blobs);
    const request = { targetRepo: 'prod', dockerRepository: image, tag: '6.0', targetTag: '6', copy: false };

    let failures = 0;
    for (let n = 1; ; n++) {
      const restore = failWrite(n);
      let r: Response;
      try {
        r = await promote('dev', request);
      } finally {
        restore();
      }
      if (r.status === 200) {
        await expectPromoted(r);
        break;
      }
      expect(await expectApiError(r, 503)).toBe('the metadata database is unavailable, try again');
      expect(await snapshot(images, allDigests(m), m.blobs)).toEqual(before);
      failures += 1;
    }
    // Links, manifests, tags, the move's deletions, the record and the audit entry: every one was tried.
    expect(failures).toBeGreaterThanOrEqual(allDigests(m).length + m.blobs.length);
    expect(await store.tags.list('prod', image)).toEqual(['6', '6-linux-amd64', '6-linux-arm64-v8', 'other']);
    expect(await store.manifests.missing('prod', image, allDigests(m))).toEqual([]);
    expect(await store.manifests.missing('dev', image, allDigests(m))).toEqual(allDigests(m));
    expect((await store.promotions.list('dev', { limit: 1 }))[0]).toMatchObject({ image, tag: '6.0', targetTag: '6', digest: m.indexDigest, copy: false });
  });
});
