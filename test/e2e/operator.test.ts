/**
 * The platform team's path, end to end with real processes and clients:
 * `kubectl apply` of the CRDs and of config/samples/ against the Kubernetes API
 * server emulator (test/helpers/kube-apiserver.ts), `drydock operator` and
 * `drydock serve` as separate processes on one PostgreSQL database, skopeo
 * pushing to the declared repository, a Promotion applied with kubectl
 * reaching Succeeded, `kubectl get` printing the printer columns, and
 * `kubectl delete` applying each resource's deletion policy.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startKubeApiServer, type KubeApiServer } from '../helpers/kube-apiserver.js';
import { kubectl, requireKubectl, type KubectlResult } from '../helpers/kubectl.js';
import { createTestDatabase, type TestDatabase } from '../helpers/postgres.js';
import { startDrydock, startDrydockOperator, stopAllDrydocks, type DrydockProcess, type OperatorProcess } from '../helpers/drydock-process.js';
import { buildImage, type BuiltImage } from '../helpers/oci-layout.js';
import { skopeoCopy, skopeoInspectRaw } from '../helpers/skopeo.js';

let kube: KubeApiServer;
let db: TestDatabase;
let dd: DrydockProcess;
let operator: OperatorProcess;
let tmp = '';
let app: BuiltImage;

async function k(args: string[], expectOk = true): Promise<KubectlResult> {
  const r = await kubectl(kube, args, { timeoutMs: 60_000 });
  if (expectOk && r.code !== 0) throw new Error(`kubectl ${args.join(' ')} exited ${r.code}\n${r.stdout}\n${r.stderr}\n--- operator ---\n${operator?.stderr().slice(-4000)}${operator?.stdout().slice(-4000)}`);
  return r;
}

async function api(path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  headers.set('authorization', dd.authorization);
  return fetch(`${dd.url}${path}`, { ...init, headers });
}

beforeAll(async () => {
  requireKubectl();
  tmp = await mkdtemp(join(tmpdir(), 'e2e-operator-'));
  kube = await startKubeApiServer();
  db = await createTestDatabase();
  dd = await startDrydock({ databaseUrl: db.url });
  operator = await startDrydockOperator({ kubeconfig: kube.kubeconfigPath, databaseUrl: db.url, env: { DRYDOCK_BASE_URL: dd.url, DRYDOCK_IMAGE_COUNT_REFRESH_SECS: '1' } });
  app = await buildImage(join(tmp, 'app'), { tag: '1.4.2', layers: 2, layerSize: 16 * 1024, history: true });
}, 120_000);

afterAll(async () => {
  // DEBUG_OPERATOR=1 prints the operator's last log lines, for a failing run.
  if (process.env.DEBUG_OPERATOR) process.stdout.write(operator?.stdout().slice(-6000) + operator?.stderr().slice(-3000));
  await operator?.stop();
  await stopAllDrydocks();
  await kube?.close();
  await db?.drop();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('drydock on Kubernetes, driven by kubectl', () => {
  it('installs the CRDs and declares the sample repositories', async () => {
    const crds = await k(['apply', '-k', 'crds/']);
    expect(crds.stdout).toMatch(/dockerrepositories\.drydock\.dev (created|configured|unchanged)/);
    // drydock: where the operator keeps its Lease (the kustomize base creates it).
    for (const ns of ['drydock', 'team-a', 'platform']) await k(['create', 'namespace', ns]);
    await k(['create', 'secret', 'generic', 'dockerhub-creds', '-n', 'platform', '--from-literal=username=bot', '--from-literal=password=hub-token']);
    const applied = await k(['apply', '-f', 'config/samples/']);
    expect(applied.stdout).toMatch(/dockerrepository\.drydock\.dev\/team-a created/);
    expect(applied.stdout).toMatch(/dockerrepository\.drydock\.dev\/docker created/);

    await k(['wait', '--for=condition=Ready', 'dockerrepository/team-a', '-n', 'team-a', '--timeout=60s']);
    await k(['wait', '--for=condition=Ready', 'dockerrepository', '--all', '-n', 'platform', '--timeout=60s']);

    // The registry serves what the resources declare, and refuses REST edits of it.
    const repos = (await (await api('/api/repositories')).json()) as Array<{ key: string; type: string }>;
    expect(repos.map((r) => r.key)).toEqual(expect.arrayContaining(['team-a', 'prod', 'dockerhub', 'docker']));
    const edit = await api('/api/repositories/team-a', { method: 'POST', body: JSON.stringify({ description: 'x' }), headers: { 'content-type': 'application/json' } });
    expect(edit.status).toBe(409);
    const hub = (await (await api('/api/repositories/dockerhub')).json()) as { username?: string; password?: string };
    expect(hub).toMatchObject({ username: 'bot', password: '************' });
  }, 120_000);

  it('lets skopeo push to the declared repository and promotes it with a Promotion', async () => {
    await skopeoCopy(`oci:${join(tmp, 'app')}:1.4.2`, `docker://${dd.host}/team-a/app:1.4.2`, { destCreds: dd.creds });
    // The push shows in the resource's status without touching the resource.
    await k(['wait', '--for=jsonpath={.status.imageCount}=1', 'dockerrepository/team-a', '-n', 'team-a', '--timeout=60s']);
    const applied = await k(['apply', '-f', 'config/samples/promotions/']);
    expect(applied.stdout).toMatch(/promotion\.drydock\.dev\/app-1\.4\.2-to-prod created/);
    await k(['wait', "--for=jsonpath={.status.phase}=Succeeded", 'promotion/app-1.4.2-to-prod', '-n', 'team-a', '--timeout=60s']);
    const digest = (await k(['get', 'promotion', 'app-1.4.2-to-prod', '-n', 'team-a', '-o', 'jsonpath={.status.digest}'])).stdout;
    expect(digest).toBe(app.manifestDigest);
    const promoted = await skopeoInspectRaw(`${dd.host}/prod/app:1.4.2`, dd.creds);
    expect(promoted.digest).toBe(app.manifestDigest);
    // Through the virtual repository too: team-a is a member of `docker`.
    expect((await skopeoInspectRaw(`${dd.host}/docker/app:1.4.2`, dd.creds)).digest).toBe(app.manifestDigest);
    // Once started, the spec cannot change.
    const edit = await k(['patch', 'promotion', 'app-1.4.2-to-prod', '-n', 'team-a', '--type=merge', '-p', '{"spec":{"tag":"9.9.9"}}'], false);
    expect(edit.code).not.toBe(0);
    expect(edit.stderr).toMatch(/immutable/);
  }, 120_000);

  it('shows the printer columns in kubectl get', async () => {
    const out = (await k(['get', 'dockerrepositories,promotions', '-A'])).stdout;
    const lines = out.split('\n');
    expect(lines[0]).toMatch(/^NAMESPACE\s+NAME\s+TYPE\s+READY\s+URL\s+AGE$/);
    expect(out).toMatch(new RegExp(`team-a\\s+dockerrepository\\.drydock\\.dev/team-a\\s+local\\s+True\\s+${dd.host.replace(/\./g, '\\.')}/team-a\\s+\\d+s`));
    expect(out).toMatch(/platform\s+dockerrepository\.drydock\.dev\/dockerhub\s+remote\s+True\s+/);
    expect(out).toMatch(/platform\s+dockerrepository\.drydock\.dev\/docker\s+virtual\s+True\s+/);
    expect(out).toMatch(/NAMESPACE\s+NAME\s+PHASE\s+DIGEST\s+AGE/);
    expect(out).toContain(`promotion.drydock.dev/app-1.4.2-to-prod   Succeeded   ${app.manifestDigest}`);
    const short = (await k(['get', 'dr', '-n', 'platform'])).stdout;
    expect(short).toMatch(/^NAME\s+TYPE\s+READY\s+URL\s+AGE/);
    process.stdout.write(`\n$ kubectl get dockerrepositories,promotions -A\n${out}\n`);
  });

  it('applies the deletion policy when a resource is deleted', async () => {
    // Retain (the sample's policy): the images stay, the key is blacked out.
    await k(['delete', 'dockerrepository', 'team-a', '-n', 'team-a', '--timeout=60s']);
    const kept = (await (await api('/api/repositories/team-a')).json()) as { blackedOut?: boolean };
    expect(kept.blackedOut).toBe(true);
    const pull = await api('/v2/team-a/app/manifests/1.4.2');
    expect(pull.status).toBe(404);
    // Delete: switch the policy, then delete: the repository and its content go.
    await k(['patch', 'dockerrepository', 'prod', '-n', 'platform', '--type=merge', '-p', '{"spec":{"deletionPolicy":"Delete"}}']);
    await k(['delete', 'dockerrepository', 'prod', '-n', 'platform', '--timeout=60s']);
    expect((await api('/api/repositories/prod')).status).toBe(404);
    expect((await api('/v2/prod/app/manifests/1.4.2')).status).toBe(404);
    const left = (await k(['get', 'dr', '-A', '-o', 'name'])).stdout.trim().split('\n').sort();
    expect(left).toEqual(['dockerrepository.drydock.dev/docker', 'dockerrepository.drydock.dev/dockerhub']);
  }, 120_000);
});
