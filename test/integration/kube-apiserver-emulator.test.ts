/**
 * The Kubernetes API server emulator (test/helpers/kube-apiserver.ts) proven
 * with the clients the operator and its end-to-end tests use: the real
 * kubectl 1.32 (discovery, OpenAPI v3, client-side and server-side apply,
 * Table output, delete waiting on finalizers) and @kubernetes/client-node 1.4.0
 * (CRUD, optimistic concurrency, the status subresource, validation, watches
 * with resume, 410 Expired and bookmarks, built-in kinds).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import {
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  EventsV1Api,
  KubeConfig,
  PatchStrategy,
  Watch,
  makeInformer,
  setHeaderOptions,
  type V1Lease,
  type V1Pod,
} from '@kubernetes/client-node';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { startKubeApiServer, type KubeApiServer, type KubeObject, type KubeStatus } from '../helpers/kube-apiserver.js';
import { kubectl, requireKubectl, type KubectlResult } from '../helpers/kubectl.js';

const ROOT = process.cwd();
const CRD_FILES = [join(ROOT, 'crds/dockerrepositories.yaml'), join(ROOT, 'crds/promotions.yaml')];
const GROUP = 'drydock.dev';
const VERSION = 'v1alpha1';
const API_VERSION = `${GROUP}/${VERSION}`;
const DR = { group: GROUP, version: VERSION, plural: 'dockerrepositories' };
const MERGE = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
const JSON_PATCH = setHeaderOptions('Content-Type', PatchStrategy.JsonPatch);
const STRATEGIC = setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch);

/** Polls until `fn` returns something other than undefined. */
async function waitFor<T>(fn: () => T | undefined, what: string, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** The HTTP status and Status body of a client-node call that must fail. */
async function apiError(p: Promise<unknown>): Promise<{ code: number; status: KubeStatus }> {
  try {
    await p;
  } catch (e) {
    const err = e as { code?: number; body?: unknown };
    const body = typeof err.body === 'string' ? (JSON.parse(err.body) as KubeStatus) : (err.body as KubeStatus);
    return { code: err.code ?? 0, status: body };
  }
  throw new Error('the call succeeded');
}

function expectOk(r: KubectlResult): string {
  if (r.code !== 0) throw new Error(`kubectl exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

/** The first document of each YAML file directly in `dir`. */
async function samplesIn(dir: string): Promise<KubeObject[]> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.yaml')).sort();
  const docs = await Promise.all(files.map(async (f) => parseAllDocuments(await readFile(join(dir, f), 'utf8')).map((d) => d.toJS() as KubeObject)));
  return docs.flat();
}

function dockerRepository(namespace: string, name: string, spec: Record<string, unknown> = { type: 'local' }): KubeObject {
  return { apiVersion: API_VERSION, kind: 'DockerRepository', metadata: { namespace, name }, spec };
}

describe('kubectl 1.32 against the emulator', () => {
  let server: KubeApiServer;
  const k = (args: string[], input?: string): Promise<KubectlResult> => kubectl(server, args, { input, cwd: ROOT });

  beforeAll(async () => {
    requireKubectl();
    server = await startKubeApiServer();
  });
  afterAll(async () => server?.close());

  it('installs the CRDs from crds/ and serves them in discovery', async () => {
    // -f on the directory also reads kustomization.yaml, which is no resource: kubectl applies the CRDs and exits 1.
    const byFile = await k(['apply', '-f', 'crds/']);
    expect(byFile.stdout).toContain('customresourcedefinition.apiextensions.k8s.io/dockerrepositories.drydock.dev created');
    expect(byFile.stdout).toContain('customresourcedefinition.apiextensions.k8s.io/promotions.drydock.dev created');
    expect(byFile.stderr).toContain('crds/kustomization.yaml');

    const byKustomize = expectOk(await k(['apply', '-k', 'crds/']));
    expect(byKustomize).toContain('dockerrepositories.drydock.dev unchanged');
    expect(byKustomize).toContain('promotions.drydock.dev unchanged');

    const resources = expectOk(await k(['api-resources', '--api-group=drydock.dev', '--no-headers']));
    expect(resources).toMatch(/^dockerrepositories\s+dr,dockerrepo\s+drydock\.dev\/v1alpha1\s+true\s+DockerRepository$/m);
    expect(resources).toMatch(/^promotions\s+promo\s+drydock\.dev\/v1alpha1\s+true\s+Promotion$/m);
    // kubectl learns from OpenAPI v3 that the server validates fields itself.
    expect(server.requests.some((r) => r.path === '/openapi/v3')).toBe(true);
    expect(server.requests.some((r) => r.path.startsWith('/openapi/v3/apis/apiextensions.k8s.io/v1'))).toBe(true);
  });

  it('creates namespaces and a secret (protobuf bodies) and applies the samples', async () => {
    expect(expectOk(await k(['create', 'namespace', 'team-a']))).toContain('namespace/team-a created');
    expectOk(await k(['create', 'namespace', 'platform']));
    const secret = expectOk(await k(['create', 'secret', 'generic', 'dockerhub-creds', '-n', 'platform', '--from-literal=username=bob', '--from-literal=password=pw']));
    expect(secret).toContain('secret/dockerhub-creds created');
    const stored = server.get({ apiVersion: 'v1', kind: 'Secret', namespace: 'platform', name: 'dockerhub-creds' });
    expect(stored).toMatchObject({ type: 'Opaque', data: { username: Buffer.from('bob').toString('base64'), password: Buffer.from('pw').toString('base64') } });

    const samples = await samplesIn(join(ROOT, 'config/samples'));
    expect(samples.length).toBeGreaterThan(0);
    const out = expectOk(await k(['apply', '-f', 'config/samples/']));
    for (const s of samples) {
      expect(out).toContain(`${s.kind.toLowerCase()}.drydock.dev/${s.metadata.name} created`);
      const obj = server.get({ apiVersion: s.apiVersion, kind: s.kind, namespace: s.metadata.namespace, name: s.metadata.name ?? '' });
      expect(obj?.metadata).toMatchObject({ generation: 1, uid: expect.any(String), resourceVersion: expect.stringMatching(/^\d+$/) });
    }
    // Defaults from the schema are applied on the way in.
    expect(server.get({ apiVersion: API_VERSION, kind: 'DockerRepository', namespace: 'team-a', name: 'team-a' })?.spec).toMatchObject({ deletionPolicy: 'Retain' });
  });

  it('prints the printer columns and resolves short names', async () => {
    server.patchStatus(
      { apiVersion: API_VERSION, kind: 'DockerRepository', namespace: 'team-a', name: 'team-a' },
      { url: 'http://registry.test/team-a', conditions: [{ type: 'Synced', status: 'False' }, { type: 'Ready', status: 'True' }] },
    );
    const all = expectOk(await k(['get', 'dockerrepositories', '-A'])).split('\n');
    expect(all[0]).toMatch(/^NAMESPACE\s+NAME\s+TYPE\s+READY\s+URL\s+AGE$/);
    expect(all).toContainEqual(expect.stringMatching(/^team-a\s+team-a\s+local\s+True\s+http:\/\/registry\.test\/team-a\s+\d+s$/));
    expect(all).toContainEqual(expect.stringMatching(/^platform\s+dockerhub\s+remote\s+\d+s$/));

    const short = expectOk(await k(['get', 'dr', '-n', 'team-a'])).split('\n');
    expect(short[0]).toMatch(/^NAME\s+TYPE\s+READY\s+URL\s+AGE$/);
    expect(short[1]).toMatch(/^team-a\s+local\s+True\s+http/);
    expect(expectOk(await k(['get', 'dockerrepo', 'dockerhub', '-n', 'platform', '-o', 'jsonpath={.spec.remote.url}']))).toBe('https://registry-1.docker.io/');
    expect(expectOk(await k(['get', 'ns', 'team-a', '--no-headers'])).trim()).toMatch(/^team-a\s+Active\s+\d+s$/);
  });

  it('re-applies idempotently and bumps generation only for spec changes', async () => {
    const rv = server.resourceVersion();
    const again = expectOk(await k(['apply', '-f', 'config/samples/']));
    expect(again).not.toMatch(/created|configured/);
    expect(again).toContain('dockerrepository.drydock.dev/team-a unchanged');
    expect(server.resourceVersion()).toBe(rv);

    const [local] = (await samplesIn(join(ROOT, 'config/samples'))).filter((s) => s.metadata.name === 'team-a');
    const edited = { ...local, spec: { ...(local?.spec as object), description: 'edited by the test' } };
    expect(expectOk(await k(['apply', '-f', '-'], JSON.stringify(edited)))).toContain('dockerrepository.drydock.dev/team-a configured');
    const after = server.get({ apiVersion: API_VERSION, kind: 'DockerRepository', namespace: 'team-a', name: 'team-a' });
    expect(after?.metadata.generation).toBe(2);
    expect(after?.status).toMatchObject({ url: 'http://registry.test/team-a' });

    expect(expectOk(await k(['label', 'dr', 'team-a', '-n', 'team-a', 'tier=gold']))).toContain('labeled');
    expect(server.get({ apiVersion: API_VERSION, kind: 'DockerRepository', namespace: 'team-a', name: 'team-a' })?.metadata).toMatchObject({ generation: 2, labels: { tier: 'gold' } });
  });

  it('refuses invalid objects with a useful message', async () => {
    const apply = (spec: unknown): Promise<KubectlResult> => k(['apply', '-f', '-'], JSON.stringify({ ...dockerRepository('team-a', 'bad'), spec }));
    const badType = await apply({ type: 'nonsense' });
    expect(badType.code).toBe(1);
    expect(badType.stderr).toContain('The DockerRepository "bad" is invalid: spec.type: Unsupported value: "nonsense": supported values: "local", "remote", "virtual"');

    const unknownField = await apply({ type: 'local', bogus: true });
    expect(unknownField.stderr).toContain('strict decoding error: unknown field "spec.bogus"');

    const badKey = await apply({ type: 'local', key: 'Bad_Key' });
    expect(badKey.stderr).toContain("spec.key in body should match '^[a-z0-9]");

    // The CRD's CEL rules, evaluated as the API server would.
    const virtualWithout = await apply({ type: 'virtual' });
    expect(virtualWithout.code).toBe(1);
    expect(virtualWithout.stderr).toContain('The DockerRepository "bad" is invalid: spec: Invalid value: "object": a virtual repository needs virtual.repositories');
    const remoteWithout = await apply({ type: 'remote', local: { maxUniqueTags: 3 } });
    expect(remoteWithout.stderr).toContain('spec: Invalid value: "object": a remote repository needs remote.url');

    const noSpec = await k(['apply', '-f', '-'], JSON.stringify({ apiVersion: API_VERSION, kind: 'DockerRepository', metadata: { name: 'bad', namespace: 'team-a' } }));
    expect(noSpec.stderr).toContain('spec: Required value');
    expect(server.get({ apiVersion: API_VERSION, kind: 'DockerRepository', namespace: 'team-a', name: 'bad' })).toBeUndefined();
  });

  it('refuses a change to an immutable Promotion spec', async () => {
    const [promotion] = await samplesIn(join(ROOT, 'config/samples/promotions'));
    if (!promotion) throw new Error('no Promotion sample in config/samples/promotions');
    expect(expectOk(await k(['apply', '-f', 'config/samples/promotions/']))).toContain(`promotion.drydock.dev/${promotion.metadata.name} created`);
    const changed = { ...promotion, spec: { ...(promotion.spec as object), targetRepo: 'somewhere-else' } };
    const r = await k(['apply', '-f', '-'], JSON.stringify(changed));
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`The Promotion "${promotion.metadata.name}" is invalid: spec: Invalid value: "object": a Promotion spec is immutable once set`);
    // Status is still writable: the rule guards spec only.
    const ref = { apiVersion: API_VERSION, kind: 'Promotion', namespace: promotion.metadata.namespace, name: promotion.metadata.name ?? '' };
    expect(server.patchStatus(ref, { phase: 'Succeeded' }).status).toEqual({ phase: 'Succeeded' });
    expect(expectOk(await k(['get', 'promo', '-A']))).toMatch(/^NAMESPACE\s+NAME\s+PHASE\s+DIGEST\s+AGE\n.*\s+Succeeded\s+/);
  });

  it('deletes, and waits for a finalizer a controller removes later', async () => {
    expect(expectOk(await k(['delete', 'dr', 'docker', '-n', 'platform']))).toContain('dockerrepository.drydock.dev "docker" deleted');
    expect(server.get({ apiVersion: API_VERSION, kind: 'DockerRepository', namespace: 'platform', name: 'docker' })).toBeUndefined();

    const ref = { apiVersion: API_VERSION, kind: 'DockerRepository', namespace: 'platform', name: 'dockerhub' };
    server.patch(ref, { metadata: { finalizers: ['drydock.dev/cleanup'] } });
    const started = Date.now();
    const deleting = k(['delete', 'dr', 'dockerhub', '-n', 'platform']);
    await waitFor(() => server.get(ref)?.metadata.deletionTimestamp, 'deletionTimestamp');
    // kubectl is now watching for the object to disappear.
    await waitFor(() => (server.watchCount() > 0 ? true : undefined), 'kubectl to watch');
    expect(server.get(ref)?.metadata).toMatchObject({ deletionGracePeriodSeconds: 0, finalizers: ['drydock.dev/cleanup'] });
    server.patch(ref, { metadata: { finalizers: null } });
    const r = await deleting;
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('dockerrepository.drydock.dev "dockerhub" deleted');
    expect(server.get(ref)).toBeUndefined();
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('streams changes to kubectl get --watch', async () => {
    const watching = k(['get', 'dr', 'team-a', '-n', 'team-a', '--watch', '--no-headers', '--request-timeout=10s']);
    await waitFor(() => (server.watchCount() > 0 ? true : undefined), 'kubectl to watch');
    server.patchStatus({ apiVersion: API_VERSION, kind: 'DockerRepository', namespace: 'team-a', name: 'team-a' }, { url: 'http://registry.test/moved' });
    await new Promise((r) => setTimeout(r, 200));
    server.closeWatches();
    const lines = expectOk(await watching).trim().split('\n');
    expect(lines[lines.length - 1]).toMatch(/^team-a\s+local\s+True\s+http:\/\/registry\.test\/moved\s+\d+s$/);
  });
});

describe('@kubernetes/client-node against the emulator', () => {
  let server: KubeApiServer;
  let kc: KubeConfig;
  let custom: CustomObjectsApi;
  let core: CoreV1Api;

  beforeAll(async () => {
    server = await startKubeApiServer({ crdFiles: CRD_FILES });
    kc = new KubeConfig();
    kc.loadFromFile(server.kubeconfigPath);
    custom = kc.makeApiClient(CustomObjectsApi);
    core = kc.makeApiClient(CoreV1Api);
    for (const name of ['apps', 'watch', 'builtins']) server.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
  });
  afterAll(async () => server?.close());

  /** Records the events of one watch; `done` settles when the stream ends. */
  async function watch(path: string, params: Record<string, string | number | boolean | undefined>) {
    const events: Array<{ type: string; object: KubeObject & Partial<KubeStatus> }> = [];
    let finished!: (err: unknown) => void;
    const done = new Promise<unknown>((resolve) => (finished = resolve));
    const controller = await new Watch(kc).watch(path, params, (type, object: KubeObject & Partial<KubeStatus>) => events.push({ type, object }), (err) => finished(err));
    return { events, done, stop: () => controller.abort() };
  }

  it('loads the kubeconfig: plain HTTP with skipTLSVerify and a token', () => {
    expect(kc.getCurrentCluster()).toMatchObject({ server: server.url, skipTLSVerify: true });
    expect(kc.getCurrentUser()?.token).toBeTruthy();
  });

  it('creates custom resources with server-set metadata and schema defaults', async () => {
    const created = (await custom.createNamespacedCustomObject({ ...DR, namespace: 'apps', body: dockerRepository('apps', 'one', { type: 'local', local: {} }) })) as KubeObject;
    expect(created.metadata).toMatchObject({ name: 'one', namespace: 'apps', generation: 1, uid: expect.any(String), resourceVersion: expect.stringMatching(/^\d+$/) });
    expect(created.metadata.creationTimestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(created.spec).toEqual({ type: 'local', deletionPolicy: 'Retain', local: { maxUniqueTags: 0, platformTags: true, tagImmutability: [] } });

    const generated = (await custom.createNamespacedCustomObject({ ...DR, namespace: 'apps', body: { ...dockerRepository('apps', ''), metadata: { generateName: 'gen-' } } })) as KubeObject;
    expect(generated.metadata.name).toMatch(/^gen-[a-z0-9]{5}$/);

    const dup = await apiError(custom.createNamespacedCustomObject({ ...DR, namespace: 'apps', body: dockerRepository('apps', 'one') }));
    expect(dup.code).toBe(409);
    expect(dup.status).toEqual({
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: 'dockerrepositories.drydock.dev "one" already exists',
      reason: 'AlreadyExists',
      details: { name: 'one', group: GROUP, kind: 'dockerrepositories' },
      code: 409,
    });

    const noNamespace = await apiError(custom.createNamespacedCustomObject({ ...DR, namespace: 'nowhere', body: dockerRepository('nowhere', 'x') }));
    expect(noNamespace).toMatchObject({ code: 404, status: { reason: 'NotFound', message: 'namespaces "nowhere" not found' } });
  });

  it('lists with label and field selectors and a list resourceVersion', async () => {
    await custom.createNamespacedCustomObject({ ...DR, namespace: 'apps', body: { ...dockerRepository('apps', 'labelled'), metadata: { name: 'labelled', labels: { team: 'a' } } } });
    const byLabel = (await custom.listNamespacedCustomObject({ ...DR, namespace: 'apps', labelSelector: 'team=a' })) as { items: KubeObject[]; metadata: { resourceVersion: string } };
    expect(byLabel.items.map((i) => i.metadata.name)).toEqual(['labelled']);
    expect(byLabel.metadata.resourceVersion).toBe(server.resourceVersion());
    const notA = (await custom.listClusterCustomObject({ ...DR, labelSelector: 'team notin (a)' })) as { items: KubeObject[] };
    expect(notA.items.map((i) => i.metadata.name)).toContain('one');
    expect(notA.items.map((i) => i.metadata.name)).not.toContain('labelled');
    const byName = (await custom.listClusterCustomObject({ ...DR, fieldSelector: 'metadata.name=one' })) as { items: KubeObject[] };
    expect(byName.items).toHaveLength(1);
    expect(byName.items[0]).toMatchObject({ apiVersion: API_VERSION, kind: 'DockerRepository' });
    const badField = await apiError(custom.listClusterCustomObject({ ...DR, fieldSelector: 'spec.type=local' }));
    expect(badField).toMatchObject({ code: 400, status: { reason: 'BadRequest', message: 'field label not supported: spec.type' } });
  });

  it('replaces with optimistic concurrency: 409 on a stale resourceVersion, generation on spec changes only', async () => {
    const current = (await custom.getNamespacedCustomObject({ ...DR, namespace: 'apps', name: 'one' })) as KubeObject;
    const updated = (await custom.replaceNamespacedCustomObject({
      ...DR,
      namespace: 'apps',
      name: 'one',
      body: { ...current, spec: { ...(current.spec as object), description: 'v2' } },
    })) as KubeObject;
    expect(updated.metadata.generation).toBe(2);
    expect(Number(updated.metadata.resourceVersion)).toBeGreaterThan(Number(current.metadata.resourceVersion));

    const stale = await apiError(custom.replaceNamespacedCustomObject({ ...DR, namespace: 'apps', name: 'one', body: { ...current, spec: { type: 'remote' } } }));
    expect(stale.code).toBe(409);
    expect(stale.status).toMatchObject({
      reason: 'Conflict',
      message: 'Operation cannot be fulfilled on dockerrepositories.drydock.dev "one": the object has been modified; please apply your changes to the latest version and try again',
      details: { name: 'one', group: GROUP, kind: 'dockerrepositories' },
    });

    const noRv = await apiError(custom.replaceNamespacedCustomObject({ ...DR, namespace: 'apps', name: 'one', body: { ...updated, metadata: { name: 'one', namespace: 'apps' } } }));
    expect(noRv).toMatchObject({ code: 422, status: { reason: 'Invalid' } });
    expect(noRv.status.message).toContain('metadata.resourceVersion: Invalid value: 0: must be specified for an update');

    const labelled = (await custom.patchNamespacedCustomObject({ ...DR, namespace: 'apps', name: 'one', body: { metadata: { labels: { x: 'y' } } } }, MERGE)) as KubeObject;
    expect(labelled.metadata).toMatchObject({ generation: 2, labels: { x: 'y' } });

    // A write that changes nothing is not stored: same resourceVersion.
    const same = (await custom.replaceNamespacedCustomObject({ ...DR, namespace: 'apps', name: 'one', body: labelled })) as KubeObject;
    expect(same.metadata.resourceVersion).toBe(labelled.metadata.resourceVersion);
  });

  it('patches with merge and JSON patch, and refuses strategic merge for custom resources (415)', async () => {
    const merged = (await custom.patchNamespacedCustomObject({ ...DR, namespace: 'apps', name: 'one', body: { spec: { description: null, key: 'one-key' } } }, MERGE)) as KubeObject;
    expect(merged.spec).toMatchObject({ key: 'one-key' });
    expect(merged.spec).not.toHaveProperty('description');
    const jsonPatched = (await custom.patchNamespacedCustomObject(
      {
        ...DR,
        namespace: 'apps',
        name: 'one',
        body: [
          { op: 'test', path: '/spec/key', value: 'one-key' },
          { op: 'add', path: '/spec/local/tagImmutability/-', value: 'v*' },
        ],
      },
      JSON_PATCH,
    )) as KubeObject;
    expect(jsonPatched.spec).toMatchObject({ local: { tagImmutability: ['v*'] } });
    const failedTest = await apiError(custom.patchNamespacedCustomObject({ ...DR, namespace: 'apps', name: 'one', body: [{ op: 'test', path: '/spec/key', value: 'nope' }] }, JSON_PATCH));
    expect(failedTest.code).toBe(422);
    const strategic = await apiError(custom.patchNamespacedCustomObject({ ...DR, namespace: 'apps', name: 'one', body: { spec: {} } }, STRATEGIC));
    expect(strategic).toMatchObject({ code: 415, status: { reason: 'UnsupportedMediaType' } });
  });

  it('validates against the schema: 422 Invalid with causes; strict field validation; pruning otherwise', async () => {
    const invalid = await apiError(
      custom.createNamespacedCustomObject({ ...DR, namespace: 'apps', body: dockerRepository('apps', 'bad', { type: 'nonsense', access: { rules: [{ actions: [] }] }, local: { maxUniqueTags: -1 } }) }),
    );
    expect(invalid.code).toBe(422);
    expect(invalid.status.reason).toBe('Invalid');
    expect(invalid.status.details).toMatchObject({ name: 'bad', group: GROUP, kind: 'DockerRepository' });
    expect(invalid.status.details?.causes).toEqual(
      expect.arrayContaining([
        { reason: 'FieldValueNotSupported', field: 'spec.type', message: 'Unsupported value: "nonsense": supported values: "local", "remote", "virtual"' },
        { reason: 'FieldValueInvalid', field: 'spec.access.rules[0].actions', message: 'Invalid value: 0: spec.access.rules[0].actions in body should have at least 1 items' },
        { reason: 'FieldValueInvalid', field: 'spec.local.maxUniqueTags', message: 'Invalid value: -1: spec.local.maxUniqueTags in body should be greater than or equal to 0' },
      ]),
    );
    const wrongType = await apiError(custom.createNamespacedCustomObject({ ...DR, namespace: 'apps', body: dockerRepository('apps', 'bad', { type: 'local', local: { maxUniqueTags: 'many' } }) }));
    expect(wrongType.status.message).toContain('spec.local.maxUniqueTags: Invalid value: "string": spec.local.maxUniqueTags in body must be of type integer: "string"');

    const strict = await apiError(custom.createNamespacedCustomObject({ ...DR, namespace: 'apps', fieldValidation: 'Strict', body: dockerRepository('apps', 'extra', { type: 'local', extra: 1 }) }));
    expect(strict).toMatchObject({ code: 400, status: { reason: 'BadRequest' } });
    expect(strict.status.message).toContain('strict decoding error: unknown field "spec.extra"');
    const pruned = (await custom.createNamespacedCustomObject({ ...DR, namespace: 'apps', body: { ...dockerRepository('apps', 'extra', { type: 'local', extra: 1 }), junk: true } })) as KubeObject;
    expect(pruned.spec).not.toHaveProperty('extra');
    expect(pruned).not.toHaveProperty('junk');
  });

  it('isolates the status subresource', async () => {
    const before = (await custom.getNamespacedCustomObject({ ...DR, namespace: 'apps', name: 'one' })) as KubeObject;
    // A create or a write to the main resource cannot set status.
    const created = (await custom.createNamespacedCustomObject({ ...DR, namespace: 'apps', body: { ...dockerRepository('apps', 'st'), status: { url: 'x' } } })) as KubeObject;
    expect(created).not.toHaveProperty('status');
    const main = (await custom.replaceNamespacedCustomObject({ ...DR, namespace: 'apps', name: 'one', body: { ...before, status: { url: 'ignored' } } })) as KubeObject;
    expect(main.status).toBeUndefined();
    expect(main.metadata.resourceVersion).toBe(before.metadata.resourceVersion);

    // A status write changes only status: spec and labels in its body are ignored, generation stays.
    const status = (await custom.replaceNamespacedCustomObjectStatus({
      ...DR,
      namespace: 'apps',
      name: 'one',
      body: { ...before, metadata: { ...before.metadata, labels: { changed: 'yes' } }, spec: { type: 'virtual' }, status: { url: 'http://r/one', observedGeneration: 2 } },
    })) as KubeObject;
    expect(status.status).toEqual({ url: 'http://r/one', observedGeneration: 2 });
    expect(status.spec).toEqual(before.spec);
    expect(status.metadata.labels).toEqual(before.metadata.labels);
    expect(status.metadata.generation).toBe(before.metadata.generation);

    const stale = await apiError(custom.replaceNamespacedCustomObjectStatus({ ...DR, namespace: 'apps', name: 'one', body: { ...before, status: { url: 'late' } } }));
    expect(stale).toMatchObject({ code: 409, status: { reason: 'Conflict' } });
    const patched = (await custom.patchNamespacedCustomObjectStatus({ ...DR, namespace: 'apps', name: 'one', body: { status: { imageCount: 3 } } }, MERGE)) as KubeObject;
    expect(patched.status).toEqual({ url: 'http://r/one', observedGeneration: 2, imageCount: 3 });
    const badStatus = await apiError(custom.patchNamespacedCustomObjectStatus({ ...DR, namespace: 'apps', name: 'one', body: { status: { imageCount: -1 } } }, MERGE));
    expect(badStatus.code).toBe(422);
  });

  it('holds a deleted object while it has finalizers and deletes it when the last one goes', async () => {
    const ref = { apiVersion: API_VERSION, kind: 'DockerRepository', namespace: 'apps', name: 'fin' };
    server.create({ ...dockerRepository('apps', 'fin'), metadata: { namespace: 'apps', name: 'fin', finalizers: ['a.example/x', 'b.example/y'] } });
    const w = await watch('/apis/drydock.dev/v1alpha1/namespaces/apps/dockerrepositories', { resourceVersion: server.resourceVersion(), fieldSelector: 'metadata.name=fin' });

    const deleting = (await custom.deleteNamespacedCustomObject({ ...DR, namespace: 'apps', name: 'fin' })) as KubeObject;
    expect(deleting.metadata).toMatchObject({ deletionTimestamp: expect.any(String), deletionGracePeriodSeconds: 0 });
    expect(server.get(ref)).toBeDefined();

    const refused = await apiError(custom.patchNamespacedCustomObject({ ...DR, namespace: 'apps', name: 'fin', body: { metadata: { finalizers: ['a.example/x', 'b.example/y', 'c.example/z'] } } }, MERGE));
    expect(refused.code).toBe(422);
    expect(refused.status.message).toContain('metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted');

    await custom.patchNamespacedCustomObject({ ...DR, namespace: 'apps', name: 'fin', body: { metadata: { finalizers: ['b.example/y'] } } }, MERGE);
    expect(server.get(ref)).toBeDefined();
    await custom.patchNamespacedCustomObject({ ...DR, namespace: 'apps', name: 'fin', body: [{ op: 'remove', path: '/metadata/finalizers' }] }, JSON_PATCH);
    expect(server.get(ref)).toBeUndefined();
    await waitFor(() => (w.events.length >= 3 ? true : undefined), 'three events');
    expect(w.events.map((e) => e.type)).toEqual(['MODIFIED', 'MODIFIED', 'DELETED']);
    w.stop();
    const gone = await apiError(custom.getNamespacedCustomObject({ ...DR, namespace: 'apps', name: 'fin' }));
    expect(gone).toMatchObject({ code: 404, status: { reason: 'NotFound', message: 'dockerrepositories.drydock.dev "fin" not found', details: { name: 'fin', group: GROUP, kind: 'dockerrepositories' } } });
  });

  it('watches: initial ADDED events, then ADDED/MODIFIED/DELETED, and resumes from a resourceVersion', async () => {
    const path = '/apis/drydock.dev/v1alpha1/namespaces/watch/dockerrepositories';
    server.create(dockerRepository('watch', 'pre'));
    const live = await watch(path, {});
    await waitFor(() => (live.events.length === 1 ? true : undefined), 'the initial ADDED');
    expect(live.events[0]).toMatchObject({ type: 'ADDED', object: { apiVersion: API_VERSION, kind: 'DockerRepository', metadata: { name: 'pre' } } });

    const a = (await custom.createNamespacedCustomObject({ ...DR, namespace: 'watch', body: dockerRepository('watch', 'a') })) as KubeObject;
    const resumeFrom = a.metadata.resourceVersion;
    await custom.patchNamespacedCustomObject({ ...DR, namespace: 'watch', name: 'a', body: { spec: { description: 'changed' } } }, MERGE);
    await custom.deleteNamespacedCustomObject({ ...DR, namespace: 'watch', name: 'a' });
    await waitFor(() => (live.events.length === 4 ? true : undefined), 'four events');
    expect(live.events.slice(1).map((e) => [e.type, e.object.metadata.name])).toEqual([
      ['ADDED', 'a'],
      ['MODIFIED', 'a'],
      ['DELETED', 'a'],
    ]);
    const rvs = live.events.slice(1).map((e) => Number(e.object.metadata.resourceVersion));
    expect(rvs).toEqual([...rvs].sort((x, y) => x - y));
    live.stop();

    // Resuming replays what happened after the resourceVersion, across namespaces for a cluster-wide watch.
    const resumed = await watch('/apis/drydock.dev/v1alpha1/dockerrepositories', { resourceVersion: resumeFrom });
    await waitFor(() => (resumed.events.length === 2 ? true : undefined), 'the replay');
    expect(resumed.events.map((e) => e.type)).toEqual(['MODIFIED', 'DELETED']);
    expect(resumed.events[0]?.object.spec).toMatchObject({ description: 'changed' });
    resumed.stop();
  });

  it('reports 410 Expired for a resourceVersion older than the history, and an informer re-lists', async () => {
    const path = '/apis/drydock.dev/v1alpha1/namespaces/watch/dockerrepositories';
    const old = server.resourceVersion();
    server.create(dockerRepository('watch', 'after-compaction'));
    server.compactHistory();
    const w = await watch(path, { resourceVersion: old });
    expect(await w.done).toBeNull();
    expect(w.events).toEqual([
      {
        type: 'ERROR',
        object: { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: expect.stringContaining(`too old resource version: ${old}`), reason: 'Expired', code: 410 },
      },
    ]);

    const informer = makeInformer(kc, path, () => custom.listNamespacedCustomObject({ ...DR, namespace: 'watch' }) as never);
    const added: string[] = [];
    informer.on('add', (o) => added.push(o.metadata?.name ?? ''));
    await informer.start();
    await waitFor(() => (server.watchCount() > 0 ? true : undefined), 'the informer to watch');
    const lists = (): number => server.requests.filter((r) => r.path === path && !r.query.includes('watch=')).length;
    const listsBefore = lists();
    // Drop the stream, then (in the same tick, before the informer reconnects) change something and forget
    // the history: the informer resumes from a now-expired version, gets 410, and re-lists.
    server.closeWatches();
    server.create(dockerRepository('watch', 'while-expired'));
    server.compactHistory();
    await waitFor(() => (added.includes('while-expired') ? true : undefined), 'the re-list');
    expect(lists()).toBe(listsBefore + 1);
    const expired = server.requests.filter((r) => r.path === path && r.query.includes('watch=')).at(-2);
    expect(expired?.query).toContain(`resourceVersion=${Number(server.resourceVersion()) - 1}`);
    expect(informer.list().map((o) => o.metadata?.name)).toEqual(expect.arrayContaining(['pre', 'after-compaction', 'while-expired']));
    await informer.stop();
  });

  it('sends bookmarks, honours timeoutSeconds, and ends streams on closeWatches()', async () => {
    const path = '/apis/drydock.dev/v1alpha1/namespaces/watch/dockerrepositories';
    const w = await watch(path, { resourceVersion: server.resourceVersion(), allowWatchBookmarks: true });
    server.create(dockerRepository('watch', 'bm'));
    server.sendBookmarks();
    await waitFor(() => w.events.find((e) => e.type === 'BOOKMARK'), 'a bookmark');
    const bookmark = w.events.find((e) => e.type === 'BOOKMARK');
    expect(bookmark?.object).toEqual({ kind: 'DockerRepository', apiVersion: API_VERSION, metadata: { resourceVersion: server.resourceVersion(), creationTimestamp: null } });
    // Periodic bookmarks too (every second by default).
    const count = w.events.filter((e) => e.type === 'BOOKMARK').length;
    await waitFor(() => (w.events.filter((e) => e.type === 'BOOKMARK').length > count ? true : undefined), 'a periodic bookmark', 3000);
    server.closeWatches();
    expect(await w.done).toBeNull();
    expect(server.watchCount()).toBe(0);

    const started = Date.now();
    const timed = await watch(path, { timeoutSeconds: 1 });
    await timed.done;
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
  });

  it('filters watches by label: an object leaving the selector is seen as DELETED', async () => {
    const w = await watch('/apis/drydock.dev/v1alpha1/namespaces/watch/dockerrepositories', { resourceVersion: server.resourceVersion(), labelSelector: 'app=x' });
    server.create({ ...dockerRepository('watch', 'sel'), metadata: { namespace: 'watch', name: 'sel', labels: { app: 'x' } } });
    server.create(dockerRepository('watch', 'other'));
    const ref = { apiVersion: API_VERSION, kind: 'DockerRepository', namespace: 'watch', name: 'sel' };
    server.patch(ref, { metadata: { labels: { app: 'y' } } });
    server.patch(ref, { metadata: { labels: { app: 'x' } } });
    await waitFor(() => (w.events.length === 3 ? true : undefined), 'three events');
    expect(w.events.map((e) => [e.type, e.object.metadata.name])).toEqual([
      ['ADDED', 'sel'],
      ['DELETED', 'sel'],
      ['ADDED', 'sel'],
    ]);
    w.stop();
  });

  it('serves Table output with the printer columns', async () => {
    server.patchStatus({ apiVersion: API_VERSION, kind: 'DockerRepository', namespace: 'apps', name: 'one' }, { conditions: [{ type: 'Ready', status: 'False' }] });
    const res = await fetch(`${server.url}/apis/drydock.dev/v1alpha1/namespaces/apps/dockerrepositories/one`, {
      headers: { Accept: 'application/json;as=Table;v=v1;g=meta.k8s.io,application/json' },
    });
    const table = (await res.json()) as { kind: string; columnDefinitions: Array<{ name: string; type: string }>; rows: Array<{ cells: unknown[]; object: KubeObject }> };
    expect(table.kind).toBe('Table');
    expect(table.columnDefinitions.map((c) => [c.name, c.type])).toEqual([
      ['Name', 'string'],
      ['Type', 'string'],
      ['Ready', 'string'],
      ['URL', 'string'],
      ['Age', 'date'],
    ]);
    expect(table.rows[0]?.cells).toEqual(['one', 'local', 'False', 'http://r/one', expect.stringMatching(/^\d+s$/)]);
    expect(table.rows[0]?.object).toMatchObject({ kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: { name: 'one' } });
  });

  it('serves a CRD created over HTTP at once, and deleting it deletes its objects', async () => {
    const crd = {
      apiVersion: 'apiextensions.k8s.io/v1',
      kind: 'CustomResourceDefinition',
      metadata: { name: 'widgets.example.com' },
      spec: {
        group: 'example.com',
        scope: 'Cluster',
        names: { kind: 'Widget', plural: 'widgets', singular: 'widget', listKind: 'WidgetList' },
        versions: [{ name: 'v1', served: true, storage: true, schema: { openAPIV3Schema: { type: 'object', properties: { spec: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } } } } }],
      },
    };
    const postCrd = (body: unknown) =>
      fetch(`${server.url}/apis/apiextensions.k8s.io/v1/customresourcedefinitions`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
    const res = await postCrd(crd);
    expect(res.status).toBe(201);
    const stored = (await res.json()) as KubeObject;
    expect(stored.status).toMatchObject({ conditions: expect.arrayContaining([expect.objectContaining({ type: 'Established', status: 'True' })]) });
    const discovery = (await (await fetch(`${server.url}/apis/example.com/v1`)).json()) as { resources: Array<{ name: string; namespaced: boolean }> };
    expect(discovery.resources).toEqual([expect.objectContaining({ name: 'widgets', namespaced: false, kind: 'Widget' })]);

    await custom.createClusterCustomObject({ group: 'example.com', version: 'v1', plural: 'widgets', body: { apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'w' }, spec: { anything: { goes: 1 } } } });
    expect(server.get({ apiVersion: 'example.com/v1', kind: 'Widget', name: 'w' })?.spec).toEqual({ anything: { goes: 1 } });

    const structural = await postCrd({
      ...crd,
      metadata: { name: 'gadgets.example.com' },
      spec: { ...crd.spec, names: { kind: 'Gadget', plural: 'gadgets' }, versions: [{ name: 'v1', served: true, storage: true, schema: { openAPIV3Schema: { properties: { spec: { type: 'object', additionalProperties: false, properties: {} } } } } }] },
    });
    expect(structural.status).toBe(422);
    expect(((await structural.json()) as KubeStatus).message).toContain('additionalProperties and properties are mutual exclusive');

    const badRule = await postCrd({
      ...crd,
      metadata: { name: 'gizmos.example.com' },
      spec: {
        ...crd.spec,
        names: { kind: 'Gizmo', plural: 'gizmos' },
        versions: [{ name: 'v1', served: true, storage: true, schema: { openAPIV3Schema: { type: 'object', properties: { spec: { type: 'object', 'x-kubernetes-validations': [{ rule: 'self.size ==' }] } } } } }],
      },
    });
    expect(badRule.status).toBe(422);
    expect(((await badRule.json()) as KubeStatus).message).toMatch(/x-kubernetes-validations\[0\]\.rule: Invalid value: "self\.size ==": compilation failed/);

    await fetch(`${server.url}/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com`, { method: 'DELETE' });
    expect((await fetch(`${server.url}/apis/example.com/v1/widgets`)).status).toBe(404);
  });

  it('does CRUD on Leases with conflicts', async () => {
    const leases = kc.makeApiClient(CoordinationV1Api);
    const lease: V1Lease = { metadata: { name: 'leader', namespace: 'builtins' }, spec: { holderIdentity: 'pod-a', leaseDurationSeconds: 15 } };
    const created = await leases.createNamespacedLease({ namespace: 'builtins', body: lease });
    expect(created.spec?.holderIdentity).toBe('pod-a');
    const renewTime = new Date();
    const renewed = await leases.replaceNamespacedLease({ name: 'leader', namespace: 'builtins', body: { ...created, spec: { ...created.spec, renewTime } } });
    expect(new Date(String(renewed.spec?.renewTime)).toISOString()).toBe(renewTime.toISOString());
    const stolen = await apiError(leases.replaceNamespacedLease({ name: 'leader', namespace: 'builtins', body: { ...created, spec: { ...created.spec, holderIdentity: 'pod-b' } } }));
    expect(stolen).toMatchObject({ code: 409, status: { reason: 'Conflict', details: { group: 'coordination.k8s.io', kind: 'leases' } } });
    expect((await leases.listNamespacedLease({ namespace: 'builtins' })).items.map((l) => l.metadata?.name)).toEqual(['leader']);
    await leases.deleteNamespacedLease({ name: 'leader', namespace: 'builtins' });
    expect((await apiError(leases.readNamespacedLease({ name: 'leader', namespace: 'builtins' }))).code).toBe(404);
  });

  it('stores Secrets (stringData into base64 data) and lists them without per-item kind', async () => {
    await core.createNamespacedSecret({ namespace: 'builtins', body: { metadata: { name: 'creds' }, stringData: { username: 'bob' }, data: { password: Buffer.from('pw').toString('base64') } } });
    const secret = await core.readNamespacedSecret({ name: 'creds', namespace: 'builtins' });
    expect(secret.type).toBe('Opaque');
    expect(secret.data).toEqual({ username: Buffer.from('bob').toString('base64'), password: Buffer.from('pw').toString('base64') });
    expect(secret.stringData).toBeUndefined();
    const res = await fetch(`${server.url}/api/v1/namespaces/builtins/secrets`);
    const list = (await res.json()) as { kind: string; items: KubeObject[] };
    expect(list.kind).toBe('SecretList');
    expect(list.items[0]).not.toHaveProperty('kind');
    const deleted = (await (await fetch(`${server.url}/api/v1/namespaces/builtins/secrets/creds`, { method: 'DELETE' })).json()) as KubeStatus;
    expect(deleted).toMatchObject({ kind: 'Status', status: 'Success', details: { name: 'creds', kind: 'secrets' } });
  });

  it('keeps Pod status behind its subresource', async () => {
    const pod: V1Pod = { metadata: { name: 'p', namespace: 'builtins' }, spec: { containers: [{ name: 'c', image: 'busybox' }] } };
    const created = await core.createNamespacedPod({ namespace: 'builtins', body: pod });
    expect(created.status?.phase).toBe('Pending');
    const running = await core.replaceNamespacedPodStatus({ name: 'p', namespace: 'builtins', body: { ...created, status: { phase: 'Running', podIP: '10.0.0.7' } } });
    expect(running.status).toEqual({ phase: 'Running', podIP: '10.0.0.7' });
    const ignored = await core.replaceNamespacedPod({ name: 'p', namespace: 'builtins', body: { ...running, status: { phase: 'Failed' } } });
    expect(ignored.status?.phase).toBe('Running');
    const byPhase = await core.listNamespacedPod({ namespace: 'builtins', fieldSelector: 'status.phase=Running' });
    expect(byPhase.items.map((p) => p.metadata?.name)).toEqual(['p']);
    const invalid = await apiError(core.createNamespacedPod({ namespace: 'builtins', body: { metadata: { name: 'empty' }, spec: { containers: [] } } }));
    expect(invalid).toMatchObject({ code: 422, status: { reason: 'Invalid', message: 'Pod "empty" is invalid: spec.containers: Required value' } });
  });

  it('creates Events (core/v1 and events.k8s.io/v1) and finds them by involved object', async () => {
    const now = new Date();
    await core.createNamespacedEvent({
      namespace: 'builtins',
      body: {
        metadata: { generateName: 'one.' },
        involvedObject: { apiVersion: API_VERSION, kind: 'DockerRepository', name: 'one', namespace: 'builtins' },
        reason: 'Synced',
        message: 'repository configured',
        type: 'Normal',
        firstTimestamp: now,
        lastTimestamp: now,
        count: 1,
        source: { component: 'drydock-operator' },
      },
    });
    const found = await core.listNamespacedEvent({ namespace: 'builtins', fieldSelector: 'involvedObject.kind=DockerRepository,involvedObject.name=one' });
    expect(found.items.map((e) => [e.reason, e.message])).toEqual([['Synced', 'repository configured']]);
    expect(found.items[0]?.metadata?.name).toMatch(/^one\.[a-z0-9]{5}$/);

    const events = kc.makeApiClient(EventsV1Api);
    const created = await events.createNamespacedEvent({
      namespace: 'builtins',
      body: { metadata: { name: 'e1' }, eventTime: now, reportingController: 'drydock.dev/operator', reportingInstance: 'op-1', action: 'Sync', reason: 'Synced', type: 'Normal' },
    });
    expect(created.reportingController).toBe('drydock.dev/operator');
  });

  it('answers every error with a Status object', async () => {
    const unknownPath = await fetch(`${server.url}/apis/nope.example/v1/things`);
    expect(unknownPath.status).toBe(404);
    expect(await unknownPath.json()).toMatchObject({ kind: 'Status', reason: 'NotFound', message: 'the server could not find the requested resource', code: 404 });
    const post = await fetch(`${server.url}/api/v1/namespaces/builtins/configmaps/x`, { method: 'POST', body: '{}' });
    expect(post.status).toBe(405);
    expect(await post.json()).toMatchObject({ kind: 'Status', reason: 'MethodNotAllowed', code: 405 });
    const badBody = await fetch(`${server.url}/api/v1/namespaces/builtins/configmaps`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{not json' });
    expect(await badBody.json()).toMatchObject({ kind: 'Status', reason: 'BadRequest', code: 400 });
    expect(server.requests.slice(-3).map((r) => [r.method, r.status])).toEqual([
      ['GET', 404],
      ['POST', 405],
      ['POST', 400],
    ]);
  });
});
