/**
 * The documented one-by-one multi-arch flow with the real docker CLI (client
 * only: `docker manifest` needs no engine) against a real drydock process:
 * two single-platform images pushed with skopeo, then `docker manifest create
 * --amend … --amend …` and `docker manifest push`. The pushed manifest list
 * gets its platform tags (`platformTags`, on by default). DOCKER_CONFIG lives
 * in a temp dir so the user's config (and manifest store) is never touched.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dockerCli } from '../helpers/docker-cli.js';
import { startDrydock, stopAllDrydocks, type DrydockProcess } from '../helpers/drydock-process.js';
import { buildImage } from '../helpers/oci-layout.js';
import { skopeoCopy, skopeoInspectRaw } from '../helpers/skopeo.js';

let tmp = '';
let dockerConfig = '';
let dd: DrydockProcess | undefined;

function drydock(): DrydockProcess {
  if (!dd) throw new Error('drydock not started');
  return dd;
}

/** The docker CLI with this file's private DOCKER_CONFIG. */
const docker = (args: string[], input?: string) => dockerCli(dockerConfig, args, input);

/** docker, asserting exit 0 (the output is in the failure message otherwise). */
async function dockerOk(args: string[], input?: string): Promise<string> {
  const res = await docker(args, input);
  expect({ args, code: res.code, stderr: res.code === 0 ? '' : res.stderr }).toEqual({ args, code: 0, stderr: '' });
  return res.stdout;
}

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'e2e-docker-manifest-'));
  dockerConfig = join(tmp, 'docker-config');
  dd = await startDrydock();
  await dockerOk(['login', dd.host, '-u', 'admin', '--password-stdin'], `${dd.adminPassword}\n`);
});

afterAll(async () => {
  await stopAllDrydocks();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

interface ListEntry {
  digest: string;
  platform?: { os: string; architecture: string; variant?: string };
}

describe('docker manifest create/push against drydock', () => {
  it('pushes an index of two single-platform images; each platform gets its platform tag', async () => {
    const p = drydock();
    const repo = `${p.host}/docker-local/team/multi`;
    const amdDir = join(tmp, 'amd64');
    const armDir = join(tmp, 'arm64');
    const amd = await buildImage(amdDir, { tag: 'amd64', layers: 1, layerSize: 4096, os: 'linux', architecture: 'amd64' });
    const arm = await buildImage(armDir, { tag: 'arm64', layers: 1, layerSize: 4096, os: 'linux', architecture: 'arm64', variant: 'v8' });
    await skopeoCopy(`oci:${amdDir}:amd64`, `docker://${repo}:amd64`, { destCreds: p.creds });
    await skopeoCopy(`oci:${armDir}:arm64`, `docker://${repo}:arm64`, { destCreds: p.creds });

    await dockerOk(['manifest', 'create', '--insecure', `${repo}:1.0`, '--amend', `${repo}:amd64`, '--amend', `${repo}:arm64`]);
    // Said explicitly, so the list carries the variant whatever the CLI reads from the image config.
    await dockerOk(['manifest', 'annotate', '--os', 'linux', '--arch', 'arm64', '--variant', 'v8', `${repo}:1.0`, `${repo}:arm64`]);
    const pushed = await dockerOk(['manifest', 'push', '--insecure', `${repo}:1.0`]);

    const index = await skopeoInspectRaw(`${repo}:1.0`, p.creds);
    // docker manifest push prints the digest of the list it pushed.
    expect(pushed).toContain(index.digest);
    // The children are OCI manifests (skopeo keeps the layout's format), so the CLI writes an OCI index.
    expect(index.mediaType).toBe('application/vnd.oci.image.index.v1+json');
    const entries = (index.manifest.manifests as ListEntry[]).map((m) => ({ digest: m.digest, platform: m.platform }));
    expect(entries).toEqual([
      { digest: amd.manifestDigest, platform: expect.objectContaining({ os: 'linux', architecture: 'amd64' }) },
      { digest: arm.manifestDigest, platform: expect.objectContaining({ os: 'linux', architecture: 'arm64', variant: 'v8' }) },
    ]);

    expect((await skopeoInspectRaw(`${repo}:1.0-linux-amd64`, p.creds)).digest).toBe(amd.manifestDigest);
    expect((await skopeoInspectRaw(`${repo}:1.0-linux-arm64-v8`, p.creds)).digest).toBe(arm.manifestDigest);

    const tags = await fetch(`${p.url}/v2/docker-local/team/multi/tags/list`, { headers: { authorization: p.authorization } });
    expect(tags.status).toBe(200);
    expect(((await tags.json()) as { tags: string[] }).tags).toEqual(['1.0', '1.0-linux-amd64', '1.0-linux-arm64-v8', 'amd64', 'arm64']);
  });
});
