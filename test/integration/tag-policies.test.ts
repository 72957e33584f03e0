/**
 * The tag policies of local repositories over the V2 API, in-process:
 * platform tags of pushed indexes and Docker manifest lists, maxUniqueTags
 * with an index and its platform tags counted as one unit, and tag
 * immutability for PUT, `?tag=`, DELETE by tag and by digest.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';
import {
  desc,
  expectOciError,
  MediaTypes,
  ociIndex,
  ociManifest,
  pushBlob,
  putManifest,
  sha256,
  uniqueImage,
  type Desc,
} from '../helpers/oci-client.js';

let reg: TestRegistry;

beforeAll(async () => {
  reg = await startTestRegistry();
});
afterAll(async () => {
  await reg?.close();
});

let n = 0;

/** A new local repository with the given policy fields; resolves an image name inside it. */
async function repoWith(fields: Record<string, unknown>): Promise<{ key: string; name: string }> {
  n += 1;
  const key = `tp-${process.pid}-${n}`;
  const r = await reg.fetch(`/api/repositories/${key}`, {
    method: 'PUT',
    body: JSON.stringify({ rclass: 'local', ...fields }),
    headers: { 'content-type': 'application/json' },
  });
  expect(r.status).toBe(200);
  await r.body?.cancel();
  return { key, name: `${key}/${uniqueImage('tp')}` };
}

interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

const DOCKER_LAYER = 'application/vnd.docker.image.rootfs.diff.tar.gzip';

/**
 * Pushes one untagged platform image (OCI, or Docker schema 2 when `docker`);
 * resolves its descriptor with `platform`, ready for an index.
 */
async function pushPlatformImage(name: string, platform: Platform, opts: { docker?: boolean } = {}): Promise<Desc> {
  const salt = `${name}-${JSON.stringify(platform)}-${Math.random()}`;
  const config = await pushBlob(reg, name, JSON.stringify({ ...platform, rootfs: { type: 'layers', diff_ids: [] }, salt }));
  const layer = await pushBlob(reg, name, `layer ${salt}`);
  const mediaType = opts.docker ? MediaTypes.dockerManifest : MediaTypes.ociManifest;
  const body = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType,
      config: desc(opts.docker ? MediaTypes.dockerConfig : MediaTypes.ociConfig, config),
      layers: [desc(opts.docker ? DOCKER_LAYER : 'application/vnd.oci.image.layer.v1.tar+gzip', layer)],
    }),
  );
  const digest = sha256(body);
  const r = await putManifest(reg, name, digest, body, mediaType);
  expect(r.status).toBe(201);
  return desc(mediaType, { digest, size: body.length }, { platform });
}

/** Pushes a single-platform image tagged `tag`; resolves its digest. */
async function pushTagged(name: string, tag: string): Promise<string> {
  const d = await pushPlatformImage(name, { os: 'linux', architecture: 'amd64' });
  const m = await reg.fetch(`/v2/${name}/manifests/${d.digest}`);
  const body = Buffer.from(await m.arrayBuffer());
  const r = await putManifest(reg, name, tag, body);
  expect(r.status).toBe(201);
  return d.digest;
}

const AMD64: Platform = { os: 'linux', architecture: 'amd64' };
const ARM64: Platform = { os: 'linux', architecture: 'arm64', variant: 'v8' };
const ARMV7: Platform = { os: 'linux', architecture: 'arm', variant: 'v7' };

/** Pushes an OCI index of new images for `platforms` as `tag`; resolves the index digest and the children. */
async function pushIndex(name: string, tag: string, platforms: Platform[]): Promise<{ digest: string; children: Desc[] }> {
  const children: Desc[] = [];
  for (const p of platforms) children.push(await pushPlatformImage(name, p));
  const body = ociIndex(children);
  const r = await putManifest(reg, name, tag, body, MediaTypes.ociIndex);
  expect(r.status).toBe(201);
  return { digest: sha256(body), children };
}

async function tagsOf(name: string): Promise<string[]> {
  const r = await reg.fetch(`/v2/${name}/tags/list`);
  expect(r.status).toBe(200);
  return ((await r.json()) as { tags: string[] }).tags;
}

/** The digest `reference` resolves to, or undefined on 404. */
async function resolve(name: string, reference: string): Promise<string | undefined> {
  const r = await reg.fetch(`/v2/${name}/manifests/${reference}`, {
    method: 'HEAD',
    headers: { accept: [MediaTypes.ociIndex, MediaTypes.dockerList, MediaTypes.ociManifest, MediaTypes.dockerManifest].join(', ') },
  });
  if (r.status === 404) return undefined;
  expect(r.status).toBe(200);
  return r.headers.get('docker-content-digest') ?? undefined;
}

describe('platformTags', () => {
  it('tags each platform of an OCI index pushed by tag, skipping buildx attestation entries', async () => {
    const { name } = await repoWith({});
    const amd = await pushPlatformImage(name, AMD64);
    const arm = await pushPlatformImage(name, ARM64);
    const att = await pushPlatformImage(name, { os: 'unknown', architecture: 'unknown' });
    const attestation = {
      ...att,
      annotations: { 'vnd.docker.reference.type': 'attestation-manifest', 'vnd.docker.reference.digest': amd.digest },
    };
    const index = ociIndex([amd, arm, attestation]);
    expect((await putManifest(reg, name, '1.33', index, MediaTypes.ociIndex)).status).toBe(201);

    expect(await tagsOf(name)).toEqual(['1.33', '1.33-linux-amd64', '1.33-linux-arm64-v8']);
    expect(await resolve(name, '1.33')).toBe(sha256(index));
    expect(await resolve(name, '1.33-linux-amd64')).toBe(amd.digest);
    expect(await resolve(name, '1.33-linux-arm64-v8')).toBe(arm.digest);
  });

  it('tags each platform of a Docker manifest list pushed by digest with ?tag=', async () => {
    const { name } = await repoWith({});
    const amd = await pushPlatformImage(name, AMD64, { docker: true });
    const arm = await pushPlatformImage(name, ARMV7, { docker: true });
    const list = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.dockerList, manifests: [amd, arm] }));
    const r = await reg.fetch(`/v2/${name}/manifests/${sha256(list)}?tag=1.0&tag=stable`, {
      method: 'PUT',
      body: list,
      headers: { 'content-type': MediaTypes.dockerList },
    });
    expect(r.status).toBe(201);
    // OCI-Tag names the tags of the pushed manifest itself, not its children's.
    expect(r.headers.get('oci-tag')).toBe('1.0, stable');

    expect(await tagsOf(name)).toEqual(['1.0', '1.0-linux-amd64', '1.0-linux-arm-v7', 'stable', 'stable-linux-amd64', 'stable-linux-arm-v7']);
    expect(await resolve(name, '1.0-linux-amd64')).toBe(amd.digest);
    expect(await resolve(name, '1.0-linux-arm-v7')).toBe(arm.digest);
    expect(await resolve(name, 'stable-linux-arm-v7')).toBe(arm.digest);
  });

  it('moves the platform tags when the index tag is re-pointed, removing those the new index lacks', async () => {
    const { name } = await repoWith({});
    const first = await pushIndex(name, '2.0', [AMD64, ARM64]);
    expect(await tagsOf(name)).toEqual(['2.0', '2.0-linux-amd64', '2.0-linux-arm64-v8']);

    const second = await pushIndex(name, '2.0', [AMD64, ARMV7]);
    expect(second.digest).not.toBe(first.digest);
    expect(await tagsOf(name)).toEqual(['2.0', '2.0-linux-amd64', '2.0-linux-arm-v7']);
    expect(await resolve(name, '2.0')).toBe(second.digest);
    expect(await resolve(name, '2.0-linux-amd64')).toBe(second.children[0]!.digest);
    expect(await resolve(name, '2.0-linux-arm-v7')).toBe(second.children[1]!.digest);
    // The old children stay stored (garbage collection decides), only the tags moved.
    expect(await resolve(name, first.children[1]!.digest)).toBe(first.children[1]!.digest);

    // A platform tag re-pointed by hand is no longer the index's: it stays when the index tag moves on.
    const manual = await pushTagged(name, '2.0-linux-arm-v7');
    await pushTagged(name, '2.0');
    expect(await tagsOf(name)).toEqual(['2.0', '2.0-linux-arm-v7']);
    expect(await resolve(name, '2.0-linux-arm-v7')).toBe(manual);
  });

  it('adds no platform tags when the repository sets platformTags: false', async () => {
    const { name } = await repoWith({ platformTags: false });
    const { digest } = await pushIndex(name, '1.0', [AMD64, ARM64]);
    expect(await tagsOf(name)).toEqual(['1.0']);
    expect(await resolve(name, '1.0')).toBe(digest);
  });
});

describe('maxUniqueTags', () => {
  it('keeps the N most recent tag units, an index with its platform tags counting once, in the push transaction', async () => {
    const { name } = await repoWith({ maxUniqueTags: 2 });
    const a = await pushTagged(name, 'a');
    await pushTagged(name, 'b');
    expect(await tagsOf(name)).toEqual(['a', 'b']);

    // Three tags for the index, but one unit: only 'a' (the oldest) goes.
    await pushIndex(name, 'idx', [AMD64, ARM64]);
    expect(await tagsOf(name)).toEqual(['b', 'idx', 'idx-linux-amd64', 'idx-linux-arm64-v8']);

    await pushTagged(name, 'c');
    expect(await tagsOf(name)).toEqual(['c', 'idx', 'idx-linux-amd64', 'idx-linux-arm64-v8']);

    // The index unit is now the oldest: its tags go together.
    await pushTagged(name, 'd');
    expect(await tagsOf(name)).toEqual(['c', 'd']);

    // Removing a tag leaves the manifest.
    expect(await resolve(name, a)).toBe(a);
  });

  it('counts a re-pushed tag as recently updated', async () => {
    const { name } = await repoWith({ maxUniqueTags: 2 });
    const a = await pushTagged(name, 'a');
    await pushTagged(name, 'b');
    const body = Buffer.from(await (await reg.fetch(`/v2/${name}/manifests/${a}`)).arrayBuffer());
    expect((await putManifest(reg, name, 'a', body)).status).toBe(201);
    await pushTagged(name, 'c');
    expect(await tagsOf(name)).toEqual(['a', 'c']);
  });

  it('never removes a protected tag: it survives beyond the N most recent', async () => {
    const { name } = await repoWith({ maxUniqueTags: 2, tagImmutability: ['v*'] });
    await pushTagged(name, 'v1');
    await pushTagged(name, 'a');
    await pushTagged(name, 'b');
    expect(await tagsOf(name)).toEqual(['a', 'b', 'v1']);
    await pushTagged(name, 'c');
    expect(await tagsOf(name)).toEqual(['b', 'c', 'v1']);
    // A recent protected tag takes one of the N places.
    await pushTagged(name, 'v2');
    expect(await tagsOf(name)).toEqual(['c', 'v1', 'v2']);
  });

  it('leaves pushes by digest without a tag alone', async () => {
    const { name } = await repoWith({ maxUniqueTags: 1 });
    await pushTagged(name, 'a');
    await pushPlatformImage(name, AMD64);
    expect(await tagsOf(name)).toEqual(['a']);
  });
});

describe('tagImmutability', () => {
  it('refuses re-pointing a protected tag by PUT and by ?tag=, allows the same digest again, and rolls the push back', async () => {
    const { key, name } = await repoWith({ tagImmutability: ['release-?', 'v*'] });
    const first = await pushTagged(name, 'v1.0');
    const firstBody = Buffer.from(await (await reg.fetch(`/v2/${name}/manifests/${first}`)).arrayBuffer());
    expect((await putManifest(reg, name, 'v1.0', firstBody)).status).toBe(201);

    const other = await pushPlatformImage(name, AMD64);
    const otherBody = Buffer.from(await (await reg.fetch(`/v2/${name}/manifests/${other.digest}`)).arrayBuffer());
    const byTag = await expectOciError(await putManifest(reg, name, 'v1.0', otherBody), 400, 'TAG_INVALID');
    expect(byTag.message).toContain(`tag 'v1.0' is immutable in repository '${key}' (rule 'v*')`);
    expect(await resolve(name, 'v1.0')).toBe(first);

    const byQuery = await reg.fetch(`/v2/${name}/manifests/${other.digest}?tag=latest&tag=v1.0`, {
      method: 'PUT',
      body: otherBody,
      headers: { 'content-type': MediaTypes.ociManifest },
    });
    expect((await expectOciError(byQuery, 400, 'TAG_INVALID')).message).toContain("(rule 'v*')");
    // One transaction: the refused push set none of its tags.
    expect(await resolve(name, 'latest')).toBeUndefined();
    expect(await resolve(name, 'v1.0')).toBe(first);

    // A refused push of a new manifest leaves no manifest behind either.
    const fresh = ociManifest(
      desc(MediaTypes.ociConfig, await pushBlob(reg, name, '{"os":"linux","architecture":"amd64","fresh":1}')),
      [],
    );
    await expectOciError(await putManifest(reg, name, 'v1.0', fresh), 400, 'TAG_INVALID');
    expect(await resolve(name, sha256(fresh))).toBeUndefined();

    // The second rule, and a tag no rule matches.
    await pushTagged(name, 'release-1');
    const r = await putManifest(reg, name, 'release-1', otherBody);
    expect((await expectOciError(r, 400, 'TAG_INVALID')).message).toContain("(rule 'release-?')");
    await pushTagged(name, 'release-10');
    expect((await putManifest(reg, name, 'release-10', otherBody)).status).toBe(201);
  });

  it('refuses DELETE of a protected tag and of a manifest a protected tag points at (DENIED)', async () => {
    const { key, name } = await repoWith({ tagImmutability: ['v*'] });
    const protectedDigest = await pushTagged(name, 'v2');
    const byTag = await expectOciError(await reg.fetch(`/v2/${name}/manifests/v2`, { method: 'DELETE' }), 403, 'DENIED');
    expect(byTag.message).toContain(`tag 'v2' is immutable in repository '${key}' (rule 'v*')`);

    const byDigest = await expectOciError(await reg.fetch(`/v2/${name}/manifests/${protectedDigest}`, { method: 'DELETE' }), 403, 'DENIED');
    expect(byDigest.message).toContain(`tag 'v2'`);
    expect(byDigest.message).toContain(`(rule 'v*')`);
    expect(await resolve(name, 'v2')).toBe(protectedDigest);

    // Unprotected tags and manifests delete as usual.
    const plain = await pushTagged(name, 'latest');
    expect((await reg.fetch(`/v2/${name}/manifests/latest`, { method: 'DELETE' })).status).toBe(202);
    expect((await reg.fetch(`/v2/${name}/manifests/${plain}`, { method: 'DELETE' })).status).toBe(202);
    expect(await resolve(name, plain)).toBeUndefined();
  });

  it('protects platform tags: an index push that would re-point one is refused whole', async () => {
    const { key, name } = await repoWith({ tagImmutability: ['*-linux-amd64'] });
    const first = await pushIndex(name, 'x', [AMD64, ARM64]);
    const children = [await pushPlatformImage(name, AMD64), await pushPlatformImage(name, ARM64)];
    const second = ociIndex(children);
    const err = await expectOciError(await putManifest(reg, name, 'x', second, MediaTypes.ociIndex), 400, 'TAG_INVALID');
    expect(err.message).toContain(`tag 'x-linux-amd64' is immutable in repository '${key}' (rule '*-linux-amd64')`);
    expect(await resolve(name, 'x')).toBe(first.digest);
    expect(await resolve(name, 'x-linux-arm64-v8')).toBe(first.children[1]!.digest);

    // The same index again is fine.
    const again = await putManifest(reg, name, 'x', ociIndex(first.children), MediaTypes.ociIndex);
    expect(again.status).toBe(201);
  });
});
