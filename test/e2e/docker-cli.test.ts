/**
 * The docker CLI (client only: no engine here) against a real drydock process:
 * `docker login` (right and wrong password) and `docker manifest inspect`,
 * with DOCKER_CONFIG in a temp dir so the user's config is never touched.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dockerCli } from '../helpers/docker-cli.js';
import { startDrydock, stopAllDrydocks, type DrydockProcess } from '../helpers/drydock-process.js';
import { buildImage, buildIndex, readBlob } from '../helpers/oci-layout.js';
import { skopeoCopy } from '../helpers/skopeo.js';

let tmp = '';
let dockerConfig = '';
let dd: DrydockProcess | undefined;

function drydock(): DrydockProcess {
  if (!dd) throw new Error('drydock not started');
  return dd;
}

/** The docker CLI with this file's private DOCKER_CONFIG. */
const docker = (args: string[], input?: string) => dockerCli(dockerConfig, args, input);

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'e2e-docker-'));
  dockerConfig = join(tmp, 'docker-config');
  dd = await startDrydock();
});

afterAll(async () => {
  await stopAllDrydocks();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('docker CLI against drydock', () => {
  it('refuses docker login with a wrong password (non-zero exit, nothing stored)', async () => {
    const p = drydock();
    const res = await docker(['login', p.host, '-u', 'admin', '--password-stdin'], 'wrong-password\n');
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(/unauthorized|401|incorrect username or password/i);
    const stored = await readFile(join(dockerConfig, 'config.json'), 'utf8').catch(() => '{}');
    expect((JSON.parse(stored) as { auths?: Record<string, unknown> }).auths?.[p.host]).toBeUndefined();
  });

  it('logs in with docker login --password-stdin', async () => {
    const p = drydock();
    const res = await docker(['login', p.host, '-u', 'admin', '--password-stdin'], `${p.adminPassword}\n`);
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(/Login Succeeded/);
    const config = JSON.parse(await readFile(join(dockerConfig, 'config.json'), 'utf8')) as { auths: Record<string, { auth?: string }> };
    expect(Buffer.from(config.auths[p.host]!.auth!, 'base64').toString('utf8')).toBe(p.creds);
  });

  it('docker manifest inspect prints the manifest pushed with skopeo (after the login above)', async () => {
    const p = drydock();
    const dir = join(tmp, 'image');
    const img = await buildImage(dir, { tag: '1.0', layers: 2, layerSize: 8 * 1024, labels: { 'dev.drydock.e2e': 'docker' } });
    await skopeoCopy(`oci:${dir}:1.0`, `docker://${p.host}/docker-local/team/inspect-me:1.0`, { destCreds: p.creds });

    const res = await docker(['manifest', 'inspect', '--insecure', `${p.host}/docker-local/team/inspect-me:1.0`]);
    expect(res.code).toBe(0);
    const pushed = JSON.parse((await readBlob(dir, img.manifestDigest)).toString('utf8')) as unknown;
    expect(JSON.parse(res.stdout)).toEqual(pushed);

    // --verbose names the digest the registry answered with.
    const verbose = await docker(['manifest', 'inspect', '--insecure', '--verbose', `${p.host}/docker-local/team/inspect-me:1.0`]);
    expect(verbose.code).toBe(0);
    expect(JSON.parse(verbose.stdout)).toMatchObject({ Descriptor: { digest: img.manifestDigest } });
  });

  it('docker manifest inspect prints a pushed multi-platform index', async () => {
    const p = drydock();
    const dir = join(tmp, 'index');
    const built = await buildIndex(dir, {
      tag: 'multi',
      platforms: [
        { os: 'linux', architecture: 'amd64' },
        { os: 'linux', architecture: 'arm64', variant: 'v8' },
      ],
    });
    await skopeoCopy(`oci:${dir}:multi`, `docker://${p.host}/docker-local/team/inspect-multi:1.0`, { all: true, destCreds: p.creds });
    const res = await docker(['manifest', 'inspect', '--insecure', `${p.host}/docker-local/team/inspect-multi:1.0`]);
    expect(res.code).toBe(0);
    expect(JSON.parse(res.stdout)).toEqual(JSON.parse((await readBlob(dir, built.indexDigest)).toString('utf8')));
  });
});
