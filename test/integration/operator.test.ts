/**
 * The operator against the Kubernetes API server emulator (test/helpers/kube-apiserver.ts)
 * through @kubernetes/client-node, writing to a registry's database in-process:
 * DockerRepository → repository configuration, status, events, finalizers and
 * deletion policies; Promotion phases, exactly once across a restart, retries;
 * Pods → protected digests; 410 re-list; Lease leader election; /metrics.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { parseConfig } from '../../src/core/config/index.js';
import { silentLogger } from '../../src/core/log.js';
import { HttpKubeClient, loadKubeConfig } from '../../src/operator/kube.js';
import { startOperator, type RunningOperator } from '../../src/operator/main.js';
import { PromotionController } from '../../src/operator/promotion-controller.js';
import { createOperatorMetrics } from '../../src/operator/metrics.js';
import { WorkQueue } from '../../src/operator/queue.js';
import { KubeEventRecorder } from '../../src/operator/events.js';
import { POD_REASON } from '../../src/operator/in-use.js';
import { REPOSITORY_FINALIZER } from '../../src/operator/docker-repository.js';
import { Registry } from 'prom-client';
import { startKubeApiServer, type KubeApiServer, type KubeObject } from '../helpers/kube-apiserver.js';
import { ADMIN_PASSWORD, startTestRegistry, type TestRegistry } from '../helpers/registry.js';
import { expectOciError, pushImage } from '../helpers/oci-client.js';

const DR = { apiVersion: 'drydock.dev/v1alpha1', kind: 'DockerRepository' };
const PROMO = { apiVersion: 'drydock.dev/v1alpha1', kind: 'Promotion' };
const BASE_URL = 'https://registry.example.com';

let kube: KubeApiServer;
let reg: TestRegistry;
let op: RunningOperator;

function operatorConfig() {
  return parseConfig({ log: { level: 'silent' }, server: { baseUrl: BASE_URL }, auth: { adminPassword: ADMIN_PASSWORD } });
}

function start(identity: string): Promise<RunningOperator> {
  return startOperator({
    config: operatorConfig(),
    log: silentLogger(),
    // 'isolated' is not watched: a test drives a controller there by hand.
    namespaces: ['team-a', 'platform', 'apps'],
    leaseNamespace: 'drydock',
    port: 0,
    host: '127.0.0.1',
    identity,
    client: new HttpKubeClient(loadKubeConfig({ kubeconfig: kube.kubeconfigPath })),
    store: reg.running.services.store,
    leaseDurationSecs: 2,
    imageCountRefreshMs: 200,
  });
}

async function waitFor<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function healthz(o: RunningOperator): Promise<{ leader: boolean; synced: boolean }> {
  return (await (await fetch(`${o.url}/healthz`)).json()) as { leader: boolean; synced: boolean };
}

function repoResource(namespace: string, name: string, spec: Record<string, unknown>): KubeObject {
  return { ...DR, metadata: { name, namespace }, spec };
}

function condition(obj: KubeObject | undefined, type: string): { status: string; reason: string; message: string } | undefined {
  const conditions = (obj?.status as { conditions?: Array<{ type: string; status: string; reason: string; message: string }> } | undefined)?.conditions;
  return conditions?.find((c) => c.type === type);
}

function getRepo(namespace: string, name: string): KubeObject | undefined {
  return kube.get({ ...DR, namespace, name });
}

function ready(namespace: string, name: string, generation = 1) {
  return waitFor(`${namespace}/${name} Ready`, () => {
    const obj = getRepo(namespace, name);
    const status = obj?.status as { observedGeneration?: number } | undefined;
    return condition(obj, 'Ready')?.status === 'True' && status?.observedGeneration === generation && obj;
  });
}

function eventsFor(namespace: string, name: string): Array<{ reason: string; type: string; message: string }> {
  return kube
    .list({ apiVersion: 'v1', kind: 'Event', namespace })
    .filter((e) => (e.involvedObject as { name?: string }).name === name) as unknown as Array<{ reason: string; type: string; message: string }>;
}

/**
 * The events of a resource once they include every reason in `reasons`: the
 * operator records an event after the status write it reports, so a test that
 * saw the status can be a moment ahead of the event.
 */
function eventsWith(namespace: string, name: string, reasons: string[]): Promise<Array<{ reason: string; type: string; message: string }>> {
  return waitFor(`events ${reasons.join(', ')} on ${namespace}/${name}`, () => {
    const events = eventsFor(namespace, name);
    return reasons.every((r) => events.some((e) => e.reason === r)) && events;
  });
}

beforeAll(async () => {
  kube = await startKubeApiServer({ crdFiles: ['crds/dockerrepositories.yaml', 'crds/promotions.yaml'] });
  for (const name of ['team-a', 'platform', 'drydock', 'apps', 'isolated']) kube.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
  reg = await startTestRegistry();
  op = await start('op-1');
  await waitFor('the operator to lead and sync', async () => {
    const h = await healthz(op);
    return h.leader && h.synced;
  });
}, 60_000);

afterAll(async () => {
  await op?.close();
  await reg?.close();
  await kube?.close();
});

describe('DockerRepository', () => {
  it('creates the repository, marks it managed, adds the finalizer, reports status and an event', async () => {
    kube.create(repoResource('team-a', 'team-a', { type: 'local', description: 'Team A', local: { maxUniqueTags: 20, tagImmutability: ['v*'] } }));
    const obj = await ready('team-a', 'team-a');
    const status = obj.status as Record<string, unknown>;
    expect(status).toMatchObject({ url: 'registry.example.com/team-a', imageCount: 0, observedGeneration: 1 });
    expect(status.setMeUp).toContain('docker push registry.example.com/team-a/<image>:<tag>');
    expect(condition(obj, 'KeyConflict')?.status).toBe('False');
    expect(condition(obj, 'InvalidSpec')?.status).toBe('False');
    expect(obj.metadata.finalizers).toContain(REPOSITORY_FINALIZER);
    const rec = await reg.running.services.repositories.current('team-a');
    expect(rec).toMatchObject({ managedBy: 'team-a/team-a', config: { rclass: 'local', description: 'Team A', maxUniqueTags: 20, tagImmutability: ['v*'] } });
    expect(await eventsWith('team-a', 'team-a', ['Created'])).toEqual(expect.arrayContaining([expect.objectContaining({ type: 'Normal', reason: 'Created' })]));
  });

  it('is read-only through the REST API', async () => {
    const put = await reg.fetch('/api/repositories/team-a', { method: 'POST', body: JSON.stringify({ description: 'hijack' }), headers: { 'content-type': 'application/json' } });
    expect(put.status).toBe(409);
    expect(JSON.stringify(await put.json())).toContain('managed by the DockerRepository resource team-a/team-a');
    const del = await reg.fetch('/api/repositories/team-a', { method: 'DELETE' });
    expect(del.status).toBe(409);
  });

  it('applies an edited spec and moves observedGeneration', async () => {
    kube.patch({ ...DR, namespace: 'team-a', name: 'team-a' }, { spec: { local: { maxUniqueTags: 5 } } });
    await ready('team-a', 'team-a', 2);
    await waitFor('maxUniqueTags 5', async () => (await reg.running.services.repositories.current('team-a'))?.config.rclass === 'local' && ((await reg.running.services.repositories.current('team-a'))!.config as { maxUniqueTags: number }).maxUniqueTags === 5);
  });

  it('grants spec.access as permission targets', async () => {
    kube.create(repoResource('team-a', 'shared', { type: 'local', access: { anonymousRead: true, rules: [{ groups: ['team-a-ci'], actions: ['read', 'write'] }] } }));
    await ready('team-a', 'shared');
    const names = (await reg.running.services.store.permissions.list()).map((p) => p.name).filter((n) => n.startsWith('k8s.team-a.shared.'));
    expect(names.sort()).toEqual(['k8s.team-a.shared.0', 'k8s.team-a.shared.anonymous']);
    const target = await reg.running.services.store.permissions.get('k8s.team-a.shared.0');
    expect(target?.target).toMatchObject({ repo: { repositories: ['shared'], actions: { groups: { 'team-a-ci': ['read', 'write'] } } } });
    // Declared access is read-only through the REST API, like the repository.
    const edit = await reg.fetch('/api/v2/security/permissions/k8s.team-a.shared.0', { method: 'DELETE' });
    expect(edit.status).toBe(409);
    expect(JSON.stringify(await edit.json())).toContain('managed by a DockerRepository resource');
  });

  it('reports an invalid spec without touching the database', async () => {
    kube.create(repoResource('platform', 'broken', { type: 'virtual', virtual: { repositories: ['team-a'], defaultDeploymentRepo: 'elsewhere' } }));
    const obj = await waitFor('InvalidSpec', () => condition(getRepo('platform', 'broken'), 'InvalidSpec')?.status === 'True' && getRepo('platform', 'broken'));
    expect(condition(obj, 'InvalidSpec')?.message).toMatch(/defaultDeploymentRepo/);
    expect(condition(obj, 'Ready')?.status).toBe('False');
    expect(await reg.running.services.repositories.current('broken')).toBeUndefined();
  });

  it('reads upstream credentials from the Secret, and again when it changes', async () => {
    kube.create(repoResource('platform', 'hub', { type: 'remote', remote: { url: 'https://upstream.example/', credentialsSecretRef: { name: 'hub-creds' } } }));
    await waitFor('SecretNotFound', () => condition(getRepo('platform', 'hub'), 'Ready')?.reason === 'SecretNotFound');
    expect(await reg.running.services.repositories.current('hub')).toBeUndefined();
    const secret = { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'hub-creds', namespace: 'platform' }, data: { username: b64('bot'), password: b64('first') } };
    kube.create(secret);
    await ready('platform', 'hub');
    await waitFor('password first', async () => (await reg.running.services.repositories.current('hub'))?.config.rclass === 'remote');
    expect((await reg.running.services.repositories.current('hub'))!.config).toMatchObject({ username: 'bot', password: 'first' });
    // Stored encrypted, shown masked through the REST API.
    const stored = await reg.running.services.store.repositories.get('hub');
    expect(JSON.stringify(stored?.config)).not.toContain('first');
    const latest = kube.get({ apiVersion: 'v1', kind: 'Secret', namespace: 'platform', name: 'hub-creds' })!;
    kube.update({ ...latest, data: { username: b64('bot'), password: b64('second') } });
    await waitFor('password second', async () => ((await reg.running.services.repositories.current('hub'))?.config as { password?: string }).password === 'second');
  });

  it('deletionPolicy Retain keeps the images and blacks the key out; Delete removes the repository', async () => {
    kube.create(repoResource('team-a', 'keep', { type: 'local' }));
    kube.create(repoResource('team-a', 'drop', { type: 'local', deletionPolicy: 'Delete' }));
    await ready('team-a', 'keep');
    await ready('team-a', 'drop');
    const image = await pushImage(reg, 'keep/app', '1.0');
    await pushImage(reg, 'drop/app', '1.0');
    // Pushes move status.imageCount without any change to the resource.
    await waitFor('imageCount 1', () => (getRepo('team-a', 'keep')?.status as { imageCount?: number }).imageCount === 1, 10_000);

    kube.delete({ ...DR, namespace: 'team-a', name: 'keep' });
    kube.delete({ ...DR, namespace: 'team-a', name: 'drop' });
    await waitFor('both resources gone', () => !getRepo('team-a', 'keep') && !getRepo('team-a', 'drop'));
    const kept = await reg.running.services.repositories.current('keep');
    expect(kept).toMatchObject({ managedBy: null, config: { blackedOut: true } });
    expect(await reg.running.services.store.tags.resolve('keep', 'app', '1.0')).toBe(image.digest);
    await expectOciError(await reg.fetch('/v2/keep/app/manifests/1.0'), 404, 'NAME_UNKNOWN');
    expect(await reg.running.services.repositories.current('drop')).toBeUndefined();
    expect((await eventsWith('team-a', 'keep', ['Retained'])).map((e) => e.reason)).toContain('Retained');
  });

  it('releases the former key when spec.key is edited', async () => {
    kube.create(repoResource('team-a', 'movable', { type: 'local', key: 'old-key' }));
    await ready('team-a', 'movable');
    kube.patch({ ...DR, namespace: 'team-a', name: 'movable' }, { spec: { key: 'new-key' } });
    await ready('team-a', 'movable', 2);
    await waitFor('old key released', async () => (await reg.running.services.repositories.current('old-key'))?.managedBy === null);
    expect((await reg.running.services.repositories.current('old-key'))?.config).toMatchObject({ blackedOut: true });
    expect((await reg.running.services.repositories.current('new-key'))?.managedBy).toBe('team-a/movable');
    expect((getRepo('team-a', 'movable')?.status as { url?: string }).url).toBe('registry.example.com/new-key');
  });

  it('gives a contested key to the older resource, and to the newer once the older is gone', async () => {
    kube.create(repoResource('team-a', 'first', { type: 'local', key: 'contested' }));
    await ready('team-a', 'first');
    await new Promise((r) => setTimeout(r, 1100)); // creationTimestamps have second resolution
    kube.create(repoResource('platform', 'second', { type: 'local', key: 'contested', description: 'the newer one' }));
    const loser = await waitFor('KeyConflict', () => condition(getRepo('platform', 'second'), 'KeyConflict')?.status === 'True' && getRepo('platform', 'second'));
    expect(condition(loser, 'KeyConflict')?.message).toContain('team-a/first');
    expect(loser.metadata.finalizers ?? []).not.toContain(REPOSITORY_FINALIZER);
    expect((await reg.running.services.repositories.current('contested'))?.managedBy).toBe('team-a/first');

    kube.delete({ ...DR, namespace: 'team-a', name: 'first' });
    await waitFor('the newer to take the key', async () => (await reg.running.services.repositories.current('contested'))?.managedBy === 'platform/second');
    const winner = await ready('platform', 'second');
    expect(condition(winner, 'KeyConflict')?.status).toBe('False');
    const current = await reg.running.services.repositories.current('contested');
    expect(current?.config).toMatchObject({ description: 'the newer one' });
    expect((current?.config as { blackedOut?: boolean }).blackedOut).toBeUndefined();
  });
});

describe('Promotion', () => {
  let digest = '';

  beforeAll(async () => {
    if (!getRepo('team-a', 'team-a')) kube.create(repoResource('team-a', 'team-a', { type: 'local' }));
    kube.create(repoResource('platform', 'prod', { type: 'local' }));
    await ready('platform', 'prod');
    await waitFor('team-a', () => condition(getRepo('team-a', 'team-a'), 'Ready')?.status === 'True');
    digest = (await pushImage(reg, 'team-a/app', '1.4.2')).digest;
  });

  function promotion(name: string, spec: Record<string, unknown>): KubeObject {
    return { ...PROMO, metadata: { name, namespace: 'team-a' }, spec };
  }

  function phase(name: string): string | undefined {
    return (kube.get({ ...PROMO, namespace: 'team-a', name })?.status as { phase?: string } | undefined)?.phase;
  }

  it('runs through Pending and Running to Succeeded with digest, message and completionTime', async () => {
    kube.create(promotion('app-to-prod', { sourceRepo: 'team-a', targetRepo: 'prod', dockerRepository: 'app', tag: '1.4.2', copy: true }));
    await waitFor('Succeeded', () => phase('app-to-prod') === 'Succeeded');
    const status = kube.get({ ...PROMO, namespace: 'team-a', name: 'app-to-prod' })!.status as Record<string, unknown>;
    expect(status).toMatchObject({ phase: 'Succeeded', digest, message: 'copied team-a/app (1.4.2) to prod/app', observedGeneration: 1 });
    expect(typeof status.completionTime).toBe('string');
    expect(await reg.running.services.store.tags.resolve('prod', 'app', '1.4.2')).toBe(digest);
    expect((await eventsWith('team-a', 'app-to-prod', ['Started', 'Succeeded'])).map((e) => e.reason)).toEqual(expect.arrayContaining(['Started', 'Succeeded']));
    // Phases seen in the watch history: the emulator keeps every event.
    const records = await reg.running.services.store.promotions.list('prod', { limit: 10 });
    expect(records.filter((r) => r.tag === '1.4.2')).toHaveLength(1);
  });

  it('fails for good on an unknown tag', async () => {
    kube.create(promotion('missing-tag', { sourceRepo: 'team-a', targetRepo: 'prod', dockerRepository: 'app', tag: '9.9.9', copy: true }));
    await waitFor('Failed', () => phase('missing-tag') === 'Failed');
    const status = kube.get({ ...PROMO, namespace: 'team-a', name: 'missing-tag' })!.status as { message: string };
    expect(status.message).toMatch(/9\.9\.9/);
  });

  it('refuses to take images from a repository declared in another namespace', async () => {
    kube.create({ ...PROMO, metadata: { name: 'raid', namespace: 'platform' }, spec: { sourceRepo: 'team-a', targetRepo: 'prod', dockerRepository: 'app', tag: '1.4.2', targetTag: 'raided', copy: false } });
    const status = await waitFor('raid Failed', () => {
      const s = kube.get({ ...PROMO, namespace: 'platform', name: 'raid' })?.status as { phase?: string; message?: string } | undefined;
      return s?.phase === 'Failed' && s;
    });
    expect(status.message).toMatch(/declared in namespace team-a .* may promote only from repositories declared in platform/);
    expect(await reg.running.services.store.tags.resolve('team-a', 'app', '1.4.2')).toBe(digest);
    expect(await reg.running.services.store.tags.resolve('prod', 'app', 'raided')).toBeUndefined();
  });

  it('refuses a spec change once created (immutable)', () => {
    expect(() => kube.patch({ ...PROMO, namespace: 'team-a', name: 'app-to-prod' }, { spec: { tag: 'other' } })).toThrow(/immutable/);
  });

  it('after a crash between the promotion and the status write, a restarted operator neither runs it twice nor loses it', async () => {
    await op.close();
    // The resource as the crashed operator left it: Running, promotion committed.
    await pushImage(reg, 'team-a/app', '2.0.0');
    const created = kube.create(promotion('crash', { sourceRepo: 'team-a', targetRepo: 'prod', dockerRepository: 'app', tag: '2.0.0', copy: false }));
    kube.patchStatus({ ...PROMO, namespace: 'team-a', name: 'crash' }, { phase: 'Running', message: 'promoting' });
    const identity = { kind: 'user' as const, name: 'system', admin: true, groups: [] };
    const first = await reg.running.services.promotion.promote(
      { sourceRepo: 'team-a', targetRepo: 'prod', dockerRepository: 'app', tag: '2.0.0', copy: false },
      { identity, requestId: created.metadata.uid },
    );
    op = await start('op-restarted');
    await waitFor('Succeeded after restart', () => phase('crash') === 'Succeeded', 20_000);
    const status = kube.get({ ...PROMO, namespace: 'team-a', name: 'crash' })!.status as { digest: string };
    expect(status.digest).toBe(first.digest);
    // A move ran once: the tag left the source once and arrived once.
    const records = (await reg.running.services.store.promotions.list('prod', { limit: 50 })).filter((r) => r.tag === '2.0.0');
    expect(records).toHaveLength(1);
    expect(await reg.running.services.store.tags.resolve('team-a', 'app', '2.0.0')).toBeUndefined();
  }, 40_000);

  it('retries transient failures with backoff, then succeeds', async () => {
    const client = new HttpKubeClient(loadKubeConfig({ kubeconfig: kube.kubeconfigPath }));
    await pushImage(reg, 'team-a/app', '3.0.0');
    kube.create({ ...promotion('flaky', { sourceRepo: 'team-a', targetRepo: 'prod', dockerRepository: 'app', tag: '3.0.0', copy: true }), metadata: { name: 'flaky', namespace: 'isolated' } });
    kube.patchStatus({ ...PROMO, namespace: 'isolated', name: 'flaky' }, { phase: 'Running', message: 'promoting' });
    let calls = 0;
    const controller = new PromotionController({
      client,
      promotions: { get: () => kube.get({ ...PROMO, namespace: "isolated", name: "flaky" }) as never },
      managerOf: async () => null,
      promotion: {
        promote: async (request, ctx) => {
          calls++;
          if (calls <= 2) throw new Error('connection terminated unexpectedly');
          return reg.running.services.promotion.promote(request, ctx);
        },
      },
      recorder: new KubeEventRecorder({ client, component: 'drydock-operator', instance: 'test', log: silentLogger() }),
      metrics: createOperatorMetrics(new Registry()),
      log: silentLogger(),
      backoff: (attempt) => 50 * attempt,
    });
    const queue = new WorkQueue({ worker: (key) => controller.reconcile(key) });
    queue.add('isolated/flaky');
    await waitFor('flaky Succeeded', () => (kube.get({ ...PROMO, namespace: 'isolated', name: 'flaky' })?.status as { phase?: string } | undefined)?.phase === 'Succeeded');
    await queue.shutdown();
    expect(calls).toBe(3);
    expect(eventsFor('isolated', 'flaky').filter((e) => e.reason === 'Retrying')).toHaveLength(2);
  });
});

describe('in-use protection', () => {
  it('protects the digests running Pods use, and releases them when the Pods go', async () => {
    const digest = (await pushImage(reg, 'team-a/web', '1.0')).digest;
    kube.create({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'web-1', namespace: 'apps' }, spec: { containers: [{ name: 'web', image: 'registry.example.com/team-a/web:1.0' }] } });
    kube.patchStatus({ apiVersion: 'v1', kind: 'Pod', namespace: 'apps', name: 'web-1' }, {
      phase: 'Running',
      containerStatuses: [{ name: 'web', imageID: `registry.example.com/team-a/web@${digest}` }],
    });
    const row = await waitFor('protected', async () => (await reg.running.services.store.gc.listProtected()).find((r) => r.digest === digest));
    expect(row).toMatchObject({ reason: POD_REASON, pod: 'apps/web-1' });
    kube.delete({ apiVersion: 'v1', kind: 'Pod', namespace: 'apps', name: 'web-1' });
    await waitFor('released', async () => !(await reg.running.services.store.gc.listProtected()).some((r) => r.digest === digest));
  });

  it('also protects images nodes pulled through drydock as a containerd mirror, named by their upstream host', async () => {
    kube.create(repoResource('platform', 'dockerhub-mirror', { type: 'remote', remote: { url: 'https://registry-1.docker.io' } }));
    await ready('platform', 'dockerhub-mirror');
    const mirrored = `sha256:${'a'.repeat(64)}`;
    const elsewhere = `sha256:${'b'.repeat(64)}`;
    kube.create({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'nginx-1', namespace: 'apps' }, spec: { containers: [{ name: 'nginx', image: 'nginx:1.27' }, { name: 'tool', image: 'quay.io/x/tool:1' }] } });
    kube.patchStatus({ apiVersion: 'v1', kind: 'Pod', namespace: 'apps', name: 'nginx-1' }, {
      phase: 'Running',
      containerStatuses: [
        // What containerd reports for `nginx:1.27` pulled through a hosts.toml mirror: the upstream's name.
        { name: 'nginx', imageID: `docker.io/library/nginx@${mirrored}` },
        { name: 'tool', imageID: `quay.io/x/tool@${elsewhere}` },
      ],
    });
    const row = await waitFor('mirrored digest protected', async () => (await reg.running.services.store.gc.listProtected()).find((r) => r.digest === mirrored));
    expect(row).toMatchObject({ reason: POD_REASON, pod: 'apps/nginx-1' });
    // No remote repository mirrors quay.io: drydock holds nothing of it to protect.
    expect((await reg.running.services.store.gc.listProtected()).some((r) => r.digest === elsewhere)).toBe(false);
    kube.delete({ apiVersion: 'v1', kind: 'Pod', namespace: 'apps', name: 'nginx-1' });
    await waitFor('released', async () => !(await reg.running.services.store.gc.listProtected()).some((r) => r.digest === mirrored));
  });
});

describe('watch resilience, leader election, metrics', () => {
  it('lists again after the API server expires its resourceVersion (410 Gone)', async () => {
    // In one tick: the watches end, an object arrives unseen, and history is
    // compacted past the version the operator will resume from.
    kube.closeWatches();
    kube.create(repoResource('team-a', 'after-gone', { type: 'local' }));
    kube.compactHistory();
    await ready('team-a', 'after-gone');
    const metrics = await (await fetch(`${op.url}/metrics`)).text();
    expect(metrics).toMatch(/drydock_operator_relists_total\{kind="DockerRepository"\} [1-9]/);
  });

  it('serves /metrics and /healthz', async () => {
    const h = await healthz(op);
    expect(h).toMatchObject({ leader: true, synced: true });
    const metrics = await (await fetch(`${op.url}/metrics`)).text();
    expect(metrics).toMatch(/drydock_operator_reconciles_total\{kind="DockerRepository",result="success"\} [1-9]/);
    expect(metrics).toMatch(/drydock_operator_reconcile_duration_seconds_count\{kind="Promotion"\} [1-9]/);
    expect(metrics).toMatch(/drydock_operator_queue_depth\{kind="DockerRepository"\} 0/);
    expect(metrics).toMatch(/drydock_operator_leader 1/);
  });

  it('lets exactly one replica lead; a standby takes over when the leader stops', async () => {
    const standby = await start('op-standby');
    try {
      await new Promise((r) => setTimeout(r, 1500));
      expect((await healthz(standby)).leader).toBe(false);
      expect((await healthz(op)).leader).toBe(true);
      const lease = kube.get({ apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', namespace: 'drydock', name: 'drydock-operator' });
      expect((lease?.spec as { holderIdentity?: string }).holderIdentity).toBe('op-restarted');
      await op.close();
      await waitFor('the standby to lead', async () => (await healthz(standby)).synced, 15_000);
      kube.create(repoResource('team-a', 'under-new-leader', { type: 'local' }));
      await ready('team-a', 'under-new-leader');
    } finally {
      op = standby;
    }
  }, 40_000);
});

function b64(s: string): string {
  return Buffer.from(s).toString('base64');
}
