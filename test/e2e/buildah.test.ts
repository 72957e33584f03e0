/**
 * buildah against a real drydock process: two-platform manifest lists pushed
 * with `buildah manifest push --all`, as a Docker manifest list (v2s2) and as
 * an OCI index, then read back with skopeo (the list, and each child by digest).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pushManifestListWithBuildah } from '../helpers/buildah.js';
import { startDrydock, stopAllDrydocks, type DrydockProcess } from '../helpers/drydock-process.js';
import { MEDIA_TYPES, sha256Digest } from '../helpers/oci-layout.js';
import { skopeoCopy, skopeoInspectRaw } from '../helpers/skopeo.js';

const FORMATS = {
  v2s2: {
    list: 'application/vnd.docker.distribution.manifest.list.v2+json',
    image: 'application/vnd.docker.distribution.manifest.v2+json',
    config: 'application/vnd.docker.container.image.v1+json',
  },
  oci: { list: MEDIA_TYPES.ociIndex, image: MEDIA_TYPES.ociManifest, config: MEDIA_TYPES.ociConfig },
} as const;

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { os: string; architecture: string; variant?: string };
}

let tmp = '';
let dd: DrydockProcess | undefined;

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'e2e-buildah-'));
  dd = await startDrydock();
});

afterAll(async () => {
  await stopAllDrydocks();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('buildah manifest push --all to drydock', () => {
  it.each(['v2s2', 'oci'] as const)('pushes a two-platform list (%s) that skopeo reads back, child by child', async (format) => {
    if (!dd) throw new Error('drydock not started');
    const p = dd;
    const work = join(tmp, `buildah-${format}`);
    const ref = `docker-local/team/multiarch:${format}`;
    const digest = await pushManifestListWithBuildah(p.host, ref, p.creds, work, { format });

    const list = await skopeoInspectRaw(`${p.host}/${ref}`, p.creds);
    expect(list.digest).toBe(digest);
    expect(list.mediaType).toBe(FORMATS[format].list);
    const children = (list.manifest as unknown as { manifests: Descriptor[] }).manifests;
    expect(children.map((m) => `${m.platform?.os}/${m.platform?.architecture}`).sort()).toEqual(['linux/amd64', 'linux/arm64']);
    expect(children.every((m) => m.mediaType === FORMATS[format].image)).toBe(true);

    // The list by its digest is the same bytes.
    expect((await skopeoInspectRaw(`${p.host}/docker-local/team/multiarch@${digest}`, p.creds)).raw.equals(list.raw)).toBe(true);

    for (const child of children) {
      const arch = child.platform!.architecture;
      const image = await skopeoInspectRaw(`${p.host}/docker-local/team/multiarch@${child.digest}`, p.creds);
      expect(image.digest).toBe(child.digest);
      expect(image.raw.length).toBe(child.size);
      expect(image.mediaType).toBe(FORMATS[format].image);

      // Pull the child by digest into a dir: layout and check every blob.
      const pulled = join(tmp, `pulled-${format}-${arch}`);
      await skopeoCopy(`docker://${p.host}/docker-local/team/multiarch@${child.digest}`, `dir:${pulled}`, { srcCreds: p.creds });
      const manifestBytes = await readFile(join(pulled, 'manifest.json'));
      expect(sha256Digest(manifestBytes)).toBe(child.digest);
      const manifest = JSON.parse(manifestBytes.toString('utf8')) as { config: Descriptor; layers: Descriptor[] };
      expect(manifest.config.mediaType).toBe(FORMATS[format].config);
      for (const d of [manifest.config, ...manifest.layers]) {
        const bytes = await readFile(join(pulled, d.digest.slice('sha256:'.length)));
        expect(sha256Digest(bytes)).toBe(d.digest);
        expect(bytes.length).toBe(d.size);
      }
      const config = JSON.parse((await readFile(join(pulled, manifest.config.digest.slice('sha256:'.length)))).toString('utf8')) as {
        os: string;
        architecture: string;
        config?: { Labels?: Record<string, string> };
      };
      expect(config).toMatchObject({ os: 'linux', architecture: arch, config: { Labels: { 'drydock.test.arch': arch } } });
    }
    await rm(work, { recursive: true, force: true });
  });
});
