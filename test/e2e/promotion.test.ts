/**
 * Promotion with a real client: skopeo pushes a 2-platform OCI index (with
 * `--all`), a signature is attached through the referrers API, and the image is
 * promoted by copy, by retag and by move; skopeo then reads the target (`inspect
 * --raw`, `copy --all`) and gets the same digests, children and blobs.
 *
 * The registry runs in-process (as in the integration tests) so this file
 * tests the sources as they are, with no build step; skopeo talks to it over HTTP.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ADMIN_PASSWORD, startTestRegistry, type TestRegistry } from '../helpers/registry.js';
import { desc, MediaTypes, ociManifest, pushBlob, putManifest, sha256 } from '../helpers/oci-client.js';
import { buildIndex, readBlob, REF_NAME_ANNOTATION, sha256Digest, type BuiltIndex } from '../helpers/oci-layout.js';
import { skopeoCopy, skopeoInspectRaw } from '../helpers/skopeo.js';

const CREDS = `admin:${ADMIN_PASSWORD}`;
const SUCCESS = { messages: [{ level: 'INFO', message: 'Promotion ended successfully' }] };

let reg: TestRegistry;
let tmp = '';
let layout = '';
let built: BuiltIndex;
let signature = '';

interface IndexJson {
  manifests: Array<{ digest: string; mediaType: string; annotations?: Record<string, string> }>;
}

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'e2e-promotion-'));
  reg = await startTestRegistry();
  for (const key of ['staging', 'prod', 'qa']) {
    const r = await reg.fetch(`/api/repositories/${key}`, {
      method: 'PUT',
      body: JSON.stringify({ key, rclass: 'local' }),
      headers: { 'content-type': 'application/json' },
    });
    expect(r.status).toBe(200);
    await r.body?.cancel();
  }

  layout = join(tmp, 'built');
  built = await buildIndex(layout, {
    tag: 'multi',
    platforms: [
      { os: 'linux', architecture: 'amd64' },
      { os: 'linux', architecture: 'arm64', variant: 'v8' },
    ],
    layers: 2,
  });
  await skopeoCopy(`oci:${layout}:multi`, `docker://${reg.host}/staging/team/app:2.0`, { all: true, destCreds: CREDS });

  // A signature of the index, attached as an OCI 1.1 referrer.
  const empty = await pushBlob(reg, 'staging/team/app', '{}');
  const payload = await pushBlob(reg, 'staging/team/app', `signed ${built.indexDigest}`);
  const bytes = ociManifest(desc(MediaTypes.ociEmpty, empty), [desc('application/vnd.example.signature.v1', payload)], {
    artifactType: 'application/vnd.example.signature.v1',
    subject: { mediaType: MediaTypes.ociIndex, digest: built.indexDigest, size: built.indexSize },
  });
  signature = sha256(bytes);
  const put = await putManifest(reg, 'staging/team/app', signature, bytes);
  expect(put.status).toBe(201);
  expect(put.headers.get('oci-subject')).toBe(built.indexDigest);
});

afterAll(async () => {
  await reg?.close();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

async function promote(source: string, body: Record<string, unknown>): Promise<void> {
  const r = await reg.fetch(`/api/docker/${source}/v2/promote`, {
    method: 'POST',
    body: JSON.stringify(body),
    headers: { 'content-type': 'application/json' },
  });
  expect({ status: r.status, body: await r.json() }).toEqual({ status: 200, body: SUCCESS });
}

async function referrers(name: string, digest: string): Promise<string[]> {
  const r = await reg.fetch(`/v2/${name}/referrers/${digest}`);
  expect(r.status).toBe(200);
  return ((await r.json()) as IndexJson).manifests.map((m) => m.digest);
}

/** skopeo reads the index, each platform by digest and by platform tag, and pulls everything back byte-for-byte. */
async function expectServed(name: string, tag: string): Promise<void> {
  const index = await skopeoInspectRaw(`${reg.host}/${name}:${tag}`, CREDS);
  expect(index.digest).toBe(built.indexDigest);
  expect(index.raw.equals(await readBlob(layout, built.indexDigest))).toBe(true);
  for (const child of built.manifests) {
    expect((await skopeoInspectRaw(`${reg.host}/${name}@${child.digest}`, CREDS)).digest).toBe(child.digest);
    const suffix = child.platform.variant ? `${child.platform.os}-${child.platform.architecture}-${child.platform.variant}` : `${child.platform.os}-${child.platform.architecture}`;
    expect((await skopeoInspectRaw(`${reg.host}/${name}:${tag}-${suffix}`, CREDS)).digest).toBe(child.digest);
  }

  const pulled = join(tmp, `pulled-${name.replace(/\//g, '_')}-${tag}`);
  await skopeoCopy(`docker://${reg.host}/${name}:${tag}`, `oci:${pulled}:back`, { all: true, srcCreds: CREDS });
  const pulledIndex = JSON.parse(await readFile(join(pulled, 'index.json'), 'utf8')) as IndexJson;
  expect(pulledIndex.manifests.find((m) => m.annotations?.[REF_NAME_ANNOTATION] === 'back')?.digest).toBe(built.indexDigest);
  for (const child of built.manifests) {
    for (const digest of [child.digest, child.configDigest, ...child.layerDigests]) {
      const bytes = await readBlob(pulled, digest);
      expect(sha256Digest(bytes)).toBe(digest);
      expect(bytes.equals(await readBlob(layout, digest))).toBe(true);
    }
  }
  expect(await referrers(name, built.indexDigest)).toEqual([signature]);
}

describe('promoting a skopeo-pushed multi-arch index with a referrer', () => {
  it('staging serves what skopeo pushed, platform tags and the signature included', async () => {
    await expectServed('staging/team/app', '2.0');
  });

  it('by copy: prod serves the same index, platforms, blobs and signature; staging keeps its copy', async () => {
    await promote('staging', { targetRepo: 'prod', dockerRepository: 'team/app', tag: '2.0', copy: true });
    await expectServed('prod/team/app', '2.0');
    await expectServed('staging/team/app', '2.0');
  });

  it('with retag: prod also serves it as stable', async () => {
    await promote('staging', { targetRepo: 'prod', dockerRepository: 'team/app', tag: '2.0', targetTag: 'stable', copy: true });
    await expectServed('prod/team/app', 'stable');
  });

  it('by move: qa serves it and staging no longer does', async () => {
    await promote('staging', { targetRepo: 'qa', dockerRepository: 'team/app', tag: '2.0', copy: false });
    await expectServed('qa/team/app', '2.0');
    await expect(skopeoInspectRaw(`${reg.host}/staging/team/app:2.0`, CREDS)).rejects.toThrow(/manifest unknown/i);
    await expect(skopeoInspectRaw(`${reg.host}/staging/team/app@${built.indexDigest}`, CREDS)).rejects.toThrow(/manifest unknown/i);
    // The promotion history of each side tells the story.
    const r = await reg.fetch('/api/docker/staging/v2/promotions');
    const body = (await r.json()) as { promotions: Array<{ targetRepo: string; tag: string; targetTag: string; digest: string; copy: boolean }> };
    expect(body.promotions.map((p) => [p.targetRepo, p.tag, p.targetTag, p.digest, p.copy])).toEqual([
      ['qa', '2.0', '2.0', built.indexDigest, false],
      ['prod', '2.0', 'stable', built.indexDigest, true],
      ['prod', '2.0', '2.0', built.indexDigest, true],
    ]);
  });
});
