/**
 * Access control as real clients see it, against a spawned drydock whose
 * config file declares two users: `ci` (write on docker-local) and `viewer`
 * (read on docker-local), their passwords from environment variables.
 * skopeo with --creds and with `skopeo login`, the docker CLI (client only)
 * with `docker login`, and an access token as the password of both.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dockerCli } from '../helpers/docker-cli.js';
import { startDrydock, stopAllDrydocks, type DrydockProcess } from '../helpers/drydock-process.js';
import { buildImage, readBlob, type BuiltImage } from '../helpers/oci-layout.js';
import { skopeo, skopeoCopy, skopeoInspectRaw, skopeoLogin } from '../helpers/skopeo.js';

const CI_PASSWORD = `ci-${randomBytes(9).toString('base64url')}`;
const VIEWER_PASSWORD = `viewer-${randomBytes(9).toString('base64url')}`;

let tmp = '';
let dd: DrydockProcess | undefined;
let layout = '';
let image: BuiltImage | undefined;

function drydock(): DrydockProcess {
  if (!dd) throw new Error('drydock not started');
  return dd;
}

const basicAuth = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

const docker = dockerCli;

/** Whether `docker-local/<image>:<tag>` exists, asked as the admin. */
async function tagExists(image: string, tag: string): Promise<boolean> {
  const p = drydock();
  const r = await fetch(`${p.url}/v2/docker-local/${image}/manifests/${tag}`, { method: 'HEAD', headers: { authorization: p.authorization } });
  expect([200, 404]).toContain(r.status);
  return r.status === 200;
}

/** skopeo's failure, as the rejected error's message (command line, exit code, stderr). */
async function failure(p: Promise<unknown>): Promise<string> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err as Error,
  );
  expect(e).toBeInstanceOf(Error);
  return e!.message;
}

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'e2e-access-'));
  dd = await startDrydock({
    env: { DD_E2E_CI_PASSWORD: CI_PASSWORD, DD_E2E_VIEWER_PASSWORD: VIEWER_PASSWORD },
    config: {
      users: [
        { name: 'ci', email: 'ci@example.com', passwordEnv: 'DD_E2E_CI_PASSWORD' },
        { name: 'viewer', passwordEnv: 'DD_E2E_VIEWER_PASSWORD' },
      ],
      permissions: [
        { name: 'ci-deploys', repo: { repositories: ['docker-local'], actions: { users: { ci: ['write'] } } } },
        { name: 'viewers', repo: { repositories: ['docker-local'], actions: { users: { viewer: ['read'] } } } },
      ],
    },
  });
  layout = join(tmp, 'layout');
  image = await buildImage(layout, { tag: '1.0', layers: 2, layerSize: 8 * 1024, labels: { 'dev.drydock.e2e': 'access' } });
});

afterAll(async () => {
  await stopAllDrydocks();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('skopeo with credentials', () => {
  it('pushes with --dest-creds of a user who may write', async () => {
    const p = drydock();
    await skopeoCopy(`oci:${layout}:1.0`, `docker://${p.host}/docker-local/team/app:1.0`, { destCreds: `ci:${CI_PASSWORD}` });
    expect((await skopeoInspectRaw(`${p.host}/docker-local/team/app:1.0`, `ci:${CI_PASSWORD}`)).digest).toBe(image!.manifestDigest);
  });

  it('refuses a push with the creds of a user who may only read, and writes nothing', async () => {
    const p = drydock();
    const message = await failure(skopeoCopy(`oci:${layout}:1.0`, `docker://${p.host}/docker-local/team/denied:1.0`, { destCreds: `viewer:${VIEWER_PASSWORD}` }));
    expect(message).toMatch(/exit code [1-9]/);
    expect(message).toMatch(/denied|unauthorized/i);
    expect(message).toMatch(/denied: viewer may not write on docker-local\/team\/denied/);
    expect(await tagExists('team/denied', '1.0')).toBe(false);
    // Not even a blob: the catalog (as the admin) has no such image.
    const catalog = await fetch(`${p.url}/v2/_catalog`, { headers: { authorization: p.authorization } });
    expect(((await catalog.json()) as { repositories: string[] }).repositories).not.toContain('docker-local/team/denied');
  });

  it('pulls with --src-creds of a user who may read, byte-for-byte', async () => {
    const p = drydock();
    const pulled = join(tmp, 'pulled');
    await skopeoCopy(`docker://${p.host}/docker-local/team/app:1.0`, `oci:${pulled}:1.0`, { srcCreds: `viewer:${VIEWER_PASSWORD}` });
    const raw = await readBlob(pulled, image!.manifestDigest);
    expect(raw.equals(await readBlob(layout, image!.manifestDigest))).toBe(true);
  });

  it('pushes without --creds after skopeo login', async () => {
    const p = drydock();
    const authfile = join(tmp, 'skopeo-auth.json');
    await skopeoLogin(p.host, 'ci', CI_PASSWORD, authfile);
    const stored = JSON.parse(await readFile(authfile, 'utf8')) as { auths: Record<string, { auth: string }> };
    expect(Buffer.from(stored.auths[p.host]!.auth, 'base64').toString('utf8')).toBe(`ci:${CI_PASSWORD}`);
    await skopeoCopy(`oci:${layout}:1.0`, `docker://${p.host}/docker-local/team/app:after-login`, { authfile });
    expect(await tagExists('team/app', 'after-login')).toBe(true);
    // A wrong password is no login at all.
    const message = await failure(skopeoLogin(p.host, 'ci', 'not-the-password', join(tmp, 'skopeo-wrong.json')));
    expect(message).toMatch(/invalid username\/password|unauthorized/i);
  });
});

describe('docker CLI', () => {
  it('docker login as viewer, then docker manifest inspect --insecure; a wrong password fails', async () => {
    const p = drydock();
    const config = join(tmp, 'docker-viewer');
    const login = await docker(config, ['login', p.host, '-u', 'viewer', '--password-stdin'], `${VIEWER_PASSWORD}\n`);
    expect(login).toMatchObject({ code: 0, stdout: expect.stringMatching(/Login Succeeded/) });
    const inspect = await docker(config, ['manifest', 'inspect', '--insecure', `${p.host}/docker-local/team/app:1.0`]);
    expect(inspect.code).toBe(0);
    expect(JSON.parse(inspect.stdout)).toEqual(JSON.parse((await readBlob(layout, image!.manifestDigest)).toString('utf8')));

    const wrongConfig = join(tmp, 'docker-wrong');
    const wrong = await docker(wrongConfig, ['login', p.host, '-u', 'viewer', '--password-stdin'], 'not-the-password\n');
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr).toMatch(/unauthorized|401|incorrect username or password/i);
    const stored = await readFile(join(wrongConfig, 'config.json'), 'utf8').catch(() => '{}');
    expect((JSON.parse(stored) as { auths?: Record<string, unknown> }).auths?.[p.host]).toBeUndefined();
  });
});

describe('an access token as the password', () => {
  it('works for skopeo --dest-creds and docker login, and stops working once revoked', async () => {
    const p = drydock();
    const created = await fetch(`${p.url}/api/security/token`, {
      method: 'POST',
      headers: { authorization: basicAuth('ci', CI_PASSWORD), 'content-type': 'application/x-www-form-urlencoded' },
      body: 'scope=applied-permissions/user&expires_in=3600&description=e2e',
    });
    expect(created.status).toBe(200);
    const { access_token: token, token_id: id } = (await created.json()) as { access_token: string; token_id: string };

    await skopeoCopy(`oci:${layout}:1.0`, `docker://${p.host}/docker-local/team/app:with-token`, { destCreds: `ci:${token}` });
    expect(await tagExists('team/app', 'with-token')).toBe(true);

    const config = join(tmp, 'docker-token');
    const login = await docker(config, ['login', p.host, '-u', 'ci', '--password-stdin'], `${token}\n`);
    expect(login).toMatchObject({ code: 0, stdout: expect.stringMatching(/Login Succeeded/) });
    const inspect = await docker(config, ['manifest', 'inspect', '--insecure', `${p.host}/docker-local/team/app:with-token`]);
    expect(inspect.code).toBe(0);
    expect(JSON.parse(inspect.stdout)).toMatchObject({ config: { digest: image!.configDigest } });

    // The token is ci's only: not a password for viewer.
    expect(await failure(skopeo(['inspect', '--raw', '--tls-verify=false', '--creds', `viewer:${token}`, `docker://${p.host}/docker-local/team/app:1.0`]))).toMatch(
      /unauthorized|authentication required/i,
    );

    const revoked = await fetch(`${p.url}/api/security/token/revoke`, {
      method: 'POST',
      headers: { authorization: basicAuth('ci', CI_PASSWORD), 'content-type': 'application/x-www-form-urlencoded' },
      body: `token_id=${id}`,
    });
    expect(revoked.status).toBe(200);
    const message = await failure(skopeo(['inspect', '--raw', '--tls-verify=false', '--creds', `ci:${token}`, `docker://${p.host}/docker-local/team/app:1.0`]));
    expect(message).toMatch(/unauthorized|authentication required/i);
    // The password itself still works.
    expect((await skopeoInspectRaw(`${p.host}/docker-local/team/app:1.0`, `ci:${CI_PASSWORD}`)).digest).toBe(image!.manifestDigest);
  });
});
