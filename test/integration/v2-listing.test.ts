import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';
import { desc, expectOciError, MediaTypes, ociManifest, pushBlob, pushImage, putManifest, sha256, uniqueImage } from '../helpers/oci-client.js';

let reg: TestRegistry;

beforeAll(async () => {
  reg = await startTestRegistry();
});
afterAll(async () => {
  await reg?.close();
});

const image = () => `docker-local/${uniqueImage('list')}`;

/** Pushes one image and points every tag at it with one PUT by digest. */
async function pushTags(name: string, tags: string[]): Promise<void> {
  const img = await pushImage(reg, name);
  const q = tags.map((t) => `tag=${encodeURIComponent(t)}`).join('&');
  const r = await reg.fetch(`/v2/${name}/manifests/${img.digest}?${q}`, {
    method: 'PUT',
    body: img.manifest,
    headers: { 'content-type': MediaTypes.ociManifest },
  });
  expect(r.status).toBe(201);
}

/** Follows `Link: <…>; rel="next"` from `first`, resolving every page's `key` list and Link header. */
async function pages(first: string, key: 'tags' | 'repositories'): Promise<Array<{ items: string[]; link: string | null }>> {
  const out: Array<{ items: string[]; link: string | null }> = [];
  let next: string | null = first;
  while (next) {
    const r = await reg.fetch(next);
    expect(r.status).toBe(200);
    const link = r.headers.get('link');
    const body = (await r.json()) as Record<string, string[]>;
    out.push({ items: body[key]!, link });
    next = link ? /^<([^>]+)>; rel="next"$/.exec(link)![1]! : null;
    expect(out.length).toBeLessThan(100);
  }
  return out;
}

const TAGS = ['B', 'a', 'a-b', 'a.b', 'a_b', 'ab', '1.0'];
const SORTED = ['1.0', 'B', 'a', 'a-b', 'a.b', 'a_b', 'ab'];

describe('GET /v2/<name>/tags/list', () => {
  let name: string;
  beforeAll(async () => {
    name = image();
    await pushTags(name, TAGS);
  });

  it('lists tags in byte-wise lexical order', async () => {
    const r = await reg.fetch(`/v2/${name}/tags/list`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^application\/json/);
    expect(r.headers.get('link')).toBeNull();
    expect(await r.json()).toEqual({ name, tags: SORTED });
  });

  it('paginates with n and a Link to the next page, and no Link on the last page', async () => {
    const r = await reg.fetch(`/v2/${name}/tags/list?n=2`);
    expect(r.headers.get('link')).toBe(`</v2/${name}/tags/list?n=2&last=B>; rel="next"`);
    expect(await r.json()).toEqual({ name, tags: ['1.0', 'B'] });
    const all = await pages(`/v2/${name}/tags/list?n=2`, 'tags');
    expect(all).toEqual([
      { items: ['1.0', 'B'], link: `</v2/${name}/tags/list?n=2&last=B>; rel="next"` },
      { items: ['a', 'a-b'], link: `</v2/${name}/tags/list?n=2&last=a-b>; rel="next"` },
      { items: ['a.b', 'a_b'], link: `</v2/${name}/tags/list?n=2&last=a_b>; rel="next"` },
      { items: ['ab'], link: null },
    ]);
  });

  it('n equal to the number of tags gives them all without a Link', async () => {
    const r = await reg.fetch(`/v2/${name}/tags/list?n=${SORTED.length}`);
    expect(r.headers.get('link')).toBeNull();
    expect(await r.json()).toEqual({ name, tags: SORTED });
  });

  it('last alone starts after that tag; n=0 is an empty page', async () => {
    expect(await (await reg.fetch(`/v2/${name}/tags/list?last=a`)).json()).toEqual({ name, tags: ['a-b', 'a.b', 'a_b', 'ab'] });
    expect(await (await reg.fetch(`/v2/${name}/tags/list?last=ab`)).json()).toEqual({ name, tags: [] });
    expect(await (await reg.fetch(`/v2/${name}/tags/list?n=1&last=a.b`)).json()).toEqual({ name, tags: ['a_b'] });
    const zero = await reg.fetch(`/v2/${name}/tags/list?n=0`);
    expect(zero.status).toBe(200);
    expect(zero.headers.get('link')).toBeNull();
    expect(await zero.json()).toEqual({ name, tags: [] });
  });

  it.each(['-1', 'abc', '1.5', '', '2x'])('n=%s is 400 PAGINATION_NUMBER_INVALID', async (n) => {
    const err = await expectOciError(await reg.fetch(`/v2/${name}/tags/list?n=${n}`), 400, 'PAGINATION_NUMBER_INVALID');
    expect(err.message).toBe(`n must be a non-negative integer, got ${n}`);
  });

  it('uses the direct API prefix in its name and Link', async () => {
    const img = name.slice('docker-local/'.length);
    const r = await reg.fetch(`/api/docker/docker-local/v2/${img}/tags/list?n=3`);
    expect(r.headers.get('link')).toBe(`</api/docker/docker-local/v2/${img}/tags/list?n=3&last=a>; rel="next"`);
    expect(await r.json()).toEqual({ name: img, tags: ['1.0', 'B', 'a'] });
  });

  it('an unknown image is 404 NAME_UNKNOWN', async () => {
    const unknown = image();
    const r = await reg.fetch(`/v2/${unknown}/tags/list`);
    expect(r.status).toBe(404);
    expect(await r.json()).toEqual({
      errors: [{ code: 'NAME_UNKNOWN', message: `repository docker-local has no image ${unknown.slice(13)}`, detail: { name: unknown } }],
    });
  });
});

describe('GET /v2/_catalog', () => {
  let key: string;
  beforeAll(async () => {
    key = `catalog-${process.pid}`;
    const r = await reg.fetch(`/api/repositories/${key}`, {
      method: 'PUT',
      body: JSON.stringify({ rclass: 'local' }),
      headers: { 'content-type': 'application/json' },
    });
    expect(r.status).toBe(200);
    for (const img of ['zeta', 'alpha/one', 'alpha', 'mid-dle']) await pushImage(reg, `${key}/${img}`, 'latest');
    await pushImage(reg, 'docker-local/catalog-in-docker-local', 'latest');
  });

  it('lists <repoKey>/<image> of every local repository in byte-wise order', async () => {
    const r = await reg.fetch('/v2/_catalog');
    expect(r.status).toBe(200);
    expect(r.headers.get('link')).toBeNull();
    const { repositories } = (await r.json()) as { repositories: string[] };
    expect(repositories).toEqual([...repositories].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))));
    expect(repositories.filter((n) => n.startsWith(`${key}/`))).toEqual([`${key}/alpha`, `${key}/alpha/one`, `${key}/mid-dle`, `${key}/zeta`]);
    expect(repositories).toContain('docker-local/catalog-in-docker-local');
  });

  it('paginates with n/last and Link, no Link on the last page', async () => {
    const full = ((await (await reg.fetch('/v2/_catalog')).json()) as { repositories: string[] }).repositories;
    const all = await pages('/v2/_catalog?n=2', 'repositories');
    expect(all.flatMap((p) => p.items)).toEqual(full);
    expect(all.at(-1)!.link).toBeNull();
    for (const p of all.slice(0, -1)) {
      expect(p.items).toHaveLength(2);
      expect(p.link).toBe(`</v2/_catalog?n=2&last=${encodeURIComponent(p.items[1]!)}>; rel="next"`);
    }
    const after = await reg.fetch(`/v2/_catalog?n=2&last=${encodeURIComponent(`${key}/alpha`)}`);
    expect(((await after.json()) as { repositories: string[] }).repositories).toEqual([`${key}/alpha/one`, `${key}/mid-dle`]);
    const zero = await reg.fetch('/v2/_catalog?n=0');
    expect(zero.headers.get('link')).toBeNull();
    expect(await zero.json()).toEqual({ repositories: [] });
    await expectOciError(await reg.fetch('/v2/_catalog?n=-2'), 400, 'PAGINATION_NUMBER_INVALID');
  });

  it('/api/docker/<key>/v2/_catalog lists just that repository, by image name', async () => {
    const r = await reg.fetch(`/api/docker/${key}/v2/_catalog`);
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ repositories: ['alpha', 'alpha/one', 'mid-dle', 'zeta'] });
    const p1 = await reg.fetch(`/api/docker/${key}/v2/_catalog?n=3`);
    expect(p1.headers.get('link')).toBe(`</api/docker/${key}/v2/_catalog?n=3&last=mid-dle>; rel="next"`);
    expect(await p1.json()).toEqual({ repositories: ['alpha', 'alpha/one', 'mid-dle'] });
    const p2 = await reg.fetch(`/api/docker/${key}/v2/_catalog?n=3&last=mid-dle`);
    expect(p2.headers.get('link')).toBeNull();
    expect(await p2.json()).toEqual({ repositories: ['zeta'] });
    const alias = await reg.fetch(`/artifactory/api/docker/${key}/v2/_catalog?n=1`);
    expect(alias.headers.get('link')).toBe(`</artifactory/api/docker/${key}/v2/_catalog?n=1&last=alpha>; rel="next"`);
    await expectOciError(await reg.fetch('/api/docker/no-such-repo/v2/_catalog'), 404, 'NAME_UNKNOWN');
  });
});

describe('GET /v2/<name>/referrers/<digest>', () => {
  let name: string;
  let subject: Awaited<ReturnType<typeof pushImage>>;
  let sbom: { digest: string; size: number; manifest: Buffer };
  let sig: { digest: string; size: number; manifest: Buffer };

  beforeAll(async () => {
    name = image();
    subject = await pushImage(reg, name, 'v1');
    const empty = await pushBlob(reg, name, '{}');
    const sbomLayer = await pushBlob(reg, name, '{"packages":[]}');
    const sigLayer = await pushBlob(reg, name, 'signature bytes');
    const subjectDesc = { mediaType: MediaTypes.ociManifest, digest: subject.digest, size: subject.manifest.length };
    const sbomManifest = ociManifest(desc(MediaTypes.ociEmpty, empty), [desc('application/spdx+json', sbomLayer)], {
      artifactType: 'application/vnd.example.sbom',
      subject: subjectDesc,
      annotations: { 'org.example.kind': 'sbom' },
    });
    // No artifactType field: the config media type is the artifact type (OCI 1.1).
    const sigConfig = await pushBlob(reg, name, '{"sig":1}');
    const sigManifest = ociManifest(desc('application/vnd.example.sig.config+json', sigConfig), [desc('application/octet-stream', sigLayer)], {
      subject: subjectDesc,
    });
    for (const m of [sbomManifest, sigManifest]) {
      const r = await putManifest(reg, name, sha256(m), m);
      expect(r.status).toBe(201);
      expect(r.headers.get('oci-subject')).toBe(subject.digest);
    }
    sbom = { digest: sha256(sbomManifest), size: sbomManifest.length, manifest: sbomManifest };
    sig = { digest: sha256(sigManifest), size: sigManifest.length, manifest: sigManifest };
  });

  it('answers an OCI index of the manifests whose subject is the digest', async () => {
    const r = await reg.fetch(`/v2/${name}/referrers/${subject.digest}`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe(MediaTypes.ociIndex);
    expect(r.headers.get('oci-filters-applied')).toBeNull();
    const body = (await r.json()) as { manifests: Array<{ digest: string }> };
    const expected = [
      {
        mediaType: MediaTypes.ociManifest,
        digest: sbom.digest,
        size: sbom.size,
        artifactType: 'application/vnd.example.sbom',
        annotations: { 'org.example.kind': 'sbom' },
      },
      { mediaType: MediaTypes.ociManifest, digest: sig.digest, size: sig.size, artifactType: 'application/vnd.example.sig.config+json' },
    ].sort((a, b) => (a.digest < b.digest ? -1 : 1));
    expect(body).toEqual({ schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: expected });
  });

  it('?artifactType= filters and says so in OCI-Filters-Applied', async () => {
    const r = await reg.fetch(`/v2/${name}/referrers/${subject.digest}?artifactType=${encodeURIComponent('application/vnd.example.sbom')}`);
    expect(r.status).toBe(200);
    expect(r.headers.get('oci-filters-applied')).toBe('artifactType');
    expect(await r.json()).toEqual({
      schemaVersion: 2,
      mediaType: MediaTypes.ociIndex,
      manifests: [
        {
          mediaType: MediaTypes.ociManifest,
          digest: sbom.digest,
          size: sbom.size,
          artifactType: 'application/vnd.example.sbom',
          annotations: { 'org.example.kind': 'sbom' },
        },
      ],
    });
    const none = await reg.fetch(`/v2/${name}/referrers/${subject.digest}?artifactType=application/none`);
    expect(none.headers.get('oci-filters-applied')).toBe('artifactType');
    expect(await none.json()).toEqual({ schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: [] });
  });

  it('an unknown subject, or another image, gives an empty index (200)', async () => {
    for (const path of [`/v2/${name}/referrers/${sha256('unknown subject')}`, `/v2/${image()}/referrers/${subject.digest}`]) {
      const r = await reg.fetch(path);
      expect(r.status).toBe(200);
      expect(r.headers.get('content-type')).toBe(MediaTypes.ociIndex);
      expect(await r.json()).toEqual({ schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: [] });
    }
  });

  it('an invalid digest is 400 DIGEST_INVALID', async () => {
    await expectOciError(await reg.fetch(`/v2/${name}/referrers/sha256:zz`), 400, 'DIGEST_INVALID');
  });
});
