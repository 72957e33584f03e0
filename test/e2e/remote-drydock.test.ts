/**
 * drydock as the upstream of another drydock: two `node dist/cli.js serve`
 * processes. The upstream answers the registry API with Docker token auth
 * (401 + `WWW-Authenticate: Bearer realm=…/v2/token`); the downstream's remote
 * repository logs in as the upstream's admin and follows that flow. Images and
 * an index pushed to the upstream's `docker-local` are pulled through the
 * downstream with skopeo; the upstream's own metrics show how often its token
 * endpoint was called (tokens are reused across blobs), and with the upstream
 * stopped the downstream still serves what it cached.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDrydock, stopAllDrydocks, type DrydockProcess } from '../helpers/drydock-process.js';
import { expectOciError, sha256 } from '../helpers/oci-client.js';
import { buildImage, buildIndex, readBlob, REF_NAME_ANNOTATION, type BuiltImage, type BuiltIndex } from '../helpers/oci-layout.js';
import { skopeoCopy, skopeoInspectRaw } from '../helpers/skopeo.js';

let tmp = '';
let up: DrydockProcess;
let dd: DrydockProcess;
let appDir = '';
let app: BuiltImage;
let multiDir = '';
let multi: BuiltIndex;

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'e2e-remote-drydock-'));
  appDir = join(tmp, 'app');
  multiDir = join(tmp, 'multi');
  await Promise.all([
    startDrydock().then((p) => (up = p)),
    startDrydock().then((p) => (dd = p)),
    buildImage(appDir, { tag: 'v1', layers: 3, layerSize: 32 * 1024 }).then((b) => (app = b)),
    buildIndex(multiDir, {
      tag: 'multi',
      platforms: [
        { os: 'linux', architecture: 'amd64' },
        { os: 'linux', architecture: 'arm64', variant: 'v8' },
      ],
      layers: 2,
    }).then((b) => (multi = b)),
  ]);
  await skopeoCopy(`oci:${appDir}:v1`, `docker://${up.host}/docker-local/team/app:v1`, { destCreds: up.creds });
  await skopeoCopy(`oci:${multiDir}:multi`, `docker://${up.host}/docker-local/team/multi:1`, { destCreds: up.creds, all: true });
  await createRemote('updd', { url: up.url, username: 'admin', password: up.adminPassword, enableTokenAuthentication: true });
});

afterAll(async () => {
  await stopAllDrydocks();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

async function createRemote(key: string, body: Record<string, unknown>): Promise<void> {
  const r = await fetch(`${dd.url}/api/repositories/${key}`, {
    method: 'PUT',
    headers: { authorization: dd.authorization, 'content-type': 'application/json' },
    body: JSON.stringify({ key, rclass: 'remote', ...body }),
  });
  expect({ key, status: r.status, body: await r.text() }).toEqual({ key, status: 200, body: `Successfully created repository '${key}'` });
}

/** Sum of a Prometheus counter's samples whose labels include `labels`. */
async function counter(p: DrydockProcess, name: string, labels: Record<string, string>): Promise<number> {
  const r = await fetch(`${p.url}/metrics`);
  expect(r.status).toBe(200);
  let sum = 0;
  for (const line of (await r.text()).split('\n')) {
    const m = /^(\w+)\{(.*)\} (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...m[2]!.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1]!, x[2]!]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) sum += Number(m[3]);
  }
  return sum;
}

const tokenRequests = (p: DrydockProcess) => counter(p, 'drydock_http_requests_total', { route: '/v2/token', method: 'GET', status: '200' });
const blobGets = (p: DrydockProcess) => counter(p, 'drydock_http_requests_total', { route: '/v2/{name}/blobs/{digest}', method: 'GET', status: '200' });

async function taggedDigest(layout: string, tag: string): Promise<string | undefined> {
  const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string; annotations?: Record<string, string> }> };
  return index.manifests.find((d) => d.annotations?.[REF_NAME_ANNOTATION] === tag)?.digest;
}

async function expectSameBlobs(source: string, pulled: string, digests: string[]): Promise<void> {
  for (const d of digests) {
    const bytes = await readBlob(pulled, d);
    expect([d, sha256(bytes)]).toEqual([d, d]);
    expect(bytes.equals(await readBlob(source, d))).toBe(true);
  }
}

describe('a drydock process with token auth as the upstream', () => {
  it('answers unauthenticated registry requests with a Bearer challenge (the flow the remote must follow)', async () => {
    const r = await fetch(`${up.url}/v2/docker-local/team/app/manifests/v1`);
    expect(r.status).toBe(401);
    expect(r.headers.get('www-authenticate')).toMatch(/^Bearer realm="[^"]+\/v2\/token",service="drydock"/);
  });

  it('pulls an image and a 2-platform index through the remote with skopeo; tokens are reused across blobs', async () => {
    const tokensBefore = await tokenRequests(up);
    const blobsBefore = await blobGets(up);

    const out = join(tmp, 'app-pulled');
    await skopeoCopy(`docker://${dd.host}/updd/docker-local/team/app:v1`, `oci:${out}:v1`, { srcCreds: dd.creds });
    expect(await taggedDigest(out, 'v1')).toBe(app.manifestDigest);
    await expectSameBlobs(appDir, out, [app.manifestDigest, app.configDigest, ...app.layerDigests]);

    const outMulti = join(tmp, 'multi-pulled');
    await skopeoCopy(`docker://${dd.host}/updd/docker-local/team/multi:1`, `oci:${outMulti}:1`, { srcCreds: dd.creds, all: true });
    expect(await taggedDigest(outMulti, '1')).toBe(multi.indexDigest);
    await expectSameBlobs(multiDir, outMulti, [multi.indexDigest]);
    for (const child of multi.manifests) await expectSameBlobs(multiDir, outMulti, [child.digest, child.configDigest, ...child.layerDigests]);
    const tokens = (await tokenRequests(up)) - tokensBefore;
    const blobs = (await blobGets(up)) - blobsBefore;
    const expectedBlobs = 1 + app.layerDigests.length + multi.manifests.reduce((n, c) => n + 1 + c.layerDigests.length, 0);
    console.log(`drydock upstream: ${tokens} token requests for ${blobs} blob GETs`);
    expect(blobs).toBe(expectedBlobs);
    expect(tokens).toBeGreaterThanOrEqual(1);
    expect(tokens).toBeLessThan(blobs);
    // One token per image name (pull scope): team/app and team/multi.
    expect(tokens).toBeLessThanOrEqual(2);

    const through = await skopeoInspectRaw(`${dd.host}/updd/docker-local/team/multi:1`, dd.creds);
    const direct = await skopeoInspectRaw(`${up.host}/docker-local/team/multi:1`, up.creds);
    expect(through.raw.equals(direct.raw)).toBe(true);
  });

  it('wrong upstream credentials: 503 UNAVAILABLE saying the upstream refused them', async () => {
    await createRemote('updd-bad', { url: up.url, username: 'nobody', password: 'wrong-password', enableTokenAuthentication: true });
    const r = await fetch(`${dd.url}/v2/updd-bad/docker-local/team/app/manifests/v1`, { headers: { authorization: dd.authorization } });
    const err = await expectOciError(r, 503, 'UNAVAILABLE');
    expect(err.message).toMatch(/refused drydock's credentials/);
    expect(err.message).not.toContain('wrong-password');
  });

  it('with the upstream process stopped, the downstream still serves what it cached', async () => {
    await up.stop();
    const out = join(tmp, 'app-after-stop');
    await skopeoCopy(`docker://${dd.host}/updd/docker-local/team/app:v1`, `oci:${out}:v1`, { srcCreds: dd.creds });
    expect(await taggedDigest(out, 'v1')).toBe(app.manifestDigest);
    await expectSameBlobs(appDir, out, [app.manifestDigest, app.configDigest, ...app.layerDigests]);
    const outMulti = join(tmp, 'multi-after-stop');
    await skopeoCopy(`docker://${dd.host}/updd/docker-local/team/multi:1`, `oci:${outMulti}:1`, { srcCreds: dd.creds, all: true });
    expect(await taggedDigest(outMulti, '1')).toBe(multi.indexDigest);
  });
});
