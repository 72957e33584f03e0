/**
 * The `drydock` command line as users run it (`node dist/cli.js`): usage,
 * refusal of an invalid configuration with every problem listed by its path,
 * and the generated admin password printed once at first start.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GENERATED_PASSWORD_RE, runDrydockCli, startDrydock, stopAllDrydocks } from '../helpers/drydock-process.js';

let tmp = '';

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'e2e-cli-'));
});

afterAll(async () => {
  await stopAllDrydocks();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

function basic(user: string, pass: string): string {
  return `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
}

async function v2Status(url: string, authorization?: string): Promise<number> {
  const res = await fetch(`${url}/v2/`, { headers: authorization ? { authorization } : {} });
  await res.arrayBuffer();
  return res.status;
}

describe('drydock CLI', () => {
  it('prints the usage with --help', async () => {
    for (const flag of ['--help', '-h', 'help']) {
      const res = await runDrydockCli([flag]);
      expect(res.code).toBe(0);
      expect(res.stdout).toMatch(/^usage: drydock <command>/);
      expect(res.stdout).toMatch(/^\s+serve\s/m);
      expect(res.stdout).toMatch(/^\s+migrate\s/m);
      expect(res.stdout).toMatch(/^\s+operator\s/m);
      expect(res.stdout).toMatch(/DRYDOCK_PORT/);
    }
  });

  it('refuses to serve with an invalid config file, listing every problem by its path', async () => {
    const cwd = join(tmp, 'bad-config');
    await mkdir(cwd, { recursive: true });
    await writeFile(join(cwd, 'drydock.config.yaml'), 'server: { port: "x" }\nservr: {}\n');
    const res = await runDrydockCli(['serve'], { cwd, env: { DRYDOCK_DATA_DIR: join(cwd, 'data') }, timeoutMs: 30_000 });
    expect(res.code).not.toBe(0);
    expect(res.code).not.toBeNull();
    expect(res.stderr).toContain(join(cwd, 'drydock.config.yaml'));
    expect(res.stderr).toMatch(/2 problems/);
    expect(res.stderr).toMatch(/^\s*- server\.port: .*number/m);
    expect(res.stderr).toMatch(/^\s*- servr: .*unknown/m);
    expect(res.stdout).not.toMatch(/drydock is serving/);
  });

  it('refuses to run the operator without its database or Kubernetes, saying what is missing', async () => {
    const noDb = await runDrydockCli(['operator'], { env: { DRYDOCK_DATA_DIR: join(tmp, 'op-data') } });
    expect(noDb.code).toBe(2);
    expect(noDb.stderr).toMatch(/set DATABASE_URL/);
    const badPort = await runDrydockCli(['operator'], { env: { DRYDOCK_OPERATOR_PORT: 'http', DATABASE_URL: 'postgres://127.0.0.1:1/x' } });
    expect(badPort.code).toBe(2);
    expect(badPort.stderr).toMatch(/DRYDOCK_OPERATOR_PORT: not a port number: "http"/);
    const badRefresh = await runDrydockCli(['operator'], { env: { DRYDOCK_IMAGE_COUNT_REFRESH_SECS: '0', DATABASE_URL: 'postgres://127.0.0.1:1/x' } });
    expect(badRefresh.code).toBe(2);
    expect(badRefresh.stderr).toMatch(/DRYDOCK_IMAGE_COUNT_REFRESH_SECS: not a positive number of seconds: "0"/);
    const emptyKubeconfig = join(tmp, 'kubeconfig.yaml');
    await writeFile(emptyKubeconfig, 'apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n');
    const noCluster = await runDrydockCli(['operator'], {
      // Nothing listens there: the kubeconfig must be refused before any database connection.
      env: { KUBECONFIG: emptyKubeconfig, DATABASE_URL: 'postgres://postgres@127.0.0.1:1/nothing', DRYDOCK_OPERATOR_PORT: '0', DRYDOCK_DATA_DIR: join(tmp, 'op-data') },
      timeoutMs: 30_000,
    });
    expect(noCluster.code).toBe(1);
    expect(noCluster.stderr).toMatch(/drydock operator: no Kubernetes cluster configured/);
  });

  it('names the environment variable that set a bad value', async () => {
    const cwd = join(tmp, 'bad-env');
    await mkdir(cwd, { recursive: true });
    const res = await runDrydockCli(['serve'], { cwd, env: { DRYDOCK_PORT: 'eighty', DRYDOCK_DATA_DIR: join(cwd, 'data') } });
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(/server\.port: .*\(set by DRYDOCK_PORT\)/);
  });

  it('prints a generated admin password once at first start; it works, and a restart does not print it again', async () => {
    const dataDir = join(tmp, 'generated-password-data');
    const first = await startDrydock({ dataDir, env: { DRYDOCK_ADMIN_PASSWORD: '' } });
    const printed = [...first.stdout().matchAll(GENERATED_PASSWORD_RE)].map((m) => m[1]);
    expect(printed).toHaveLength(1);
    const password = printed[0]!;
    expect(password.length).toBeGreaterThanOrEqual(16);
    expect(first.adminPassword).toBe(password);
    // Shown on the console once, never in a log line.
    expect((first.stdout() + first.stderr()).split(password)).toHaveLength(2);

    expect(await v2Status(first.url)).toBe(401);
    expect(await v2Status(first.url, basic('admin', password))).toBe(200);
    expect(await v2Status(first.url, basic('admin', `${password}x`))).toBe(401);
    expect(await first.stop()).toBe(0);

    const second = await startDrydock({ dataDir, env: { DRYDOCK_ADMIN_PASSWORD: '' } });
    expect(second.stdout()).not.toMatch(/generated password/);
    expect(second.stdout()).not.toContain(password);
    expect(second.adminPassword).toBe('');
    expect(await v2Status(second.url, basic('admin', password))).toBe(200);
    expect(await second.stop()).toBe(0);
  });
});
