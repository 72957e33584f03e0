/**
 * The operator's Kubernetes machinery against the API server emulator
 * (test/helpers/kube-apiserver.ts) through @kubernetes/client-node: the
 * informer's resume from bookmarks and re-list after 410, and Lease leader
 * election when a leader dies without giving the Lease up.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { silentLogger } from '../../src/core/log.js';
import { Informer } from '../../src/operator/informer.js';
import { HttpKubeClient, loadKubeConfig, type KubeClient } from '../../src/operator/kube.js';
import { LeaderElector } from '../../src/operator/leader.js';
import { DOCKER_REPOSITORIES } from '../../src/operator/resources.js';
import { startKubeApiServer, type KubeApiServer, type KubeObject } from '../helpers/kube-apiserver.js';

let kube: KubeApiServer;
let client: HttpKubeClient;

beforeAll(async () => {
  kube = await startKubeApiServer({ crdFiles: ['crds/dockerrepositories.yaml'], bookmarkIntervalMs: 0 });
  for (const name of ['a', 'b', 'leases']) kube.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
  client = new HttpKubeClient(loadKubeConfig({ kubeconfig: kube.kubeconfigPath }));
});

afterAll(async () => {
  await kube?.close();
});

async function waitFor(what: string, cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function repo(namespace: string, name: string): KubeObject {
  return { apiVersion: 'drydock.dev/v1alpha1', kind: 'DockerRepository', metadata: { name, namespace }, spec: { type: 'local' } };
}

describe('Informer', () => {
  it('resumes from the last bookmark instead of listing again', async () => {
    const seen: string[] = [];
    const informer = new Informer({ client, type: DOCKER_REPOSITORIES, namespaces: ['a'], log: silentLogger(), onChange: (key, obj) => seen.push(`${obj ? 'set' : 'gone'} ${key}`) });
    await informer.start();
    kube.create(repo('a', 'one'));
    await waitFor('one', () => seen.includes('set a/one'));
    // Changes elsewhere move the global resourceVersion past the last one this watch saw…
    for (let i = 0; i < 5; i++) kube.create(repo('b', `other-${i}`));
    // …and a bookmark tells the informer so.
    kube.sendBookmarks();
    await new Promise((r) => setTimeout(r, 100));
    kube.closeWatches();
    kube.compactHistory();
    kube.create(repo('a', 'two'));
    await waitFor('two', () => seen.includes('set a/two'));
    expect(informer.relists).toBe(0);
    await informer.stop();
  });

  it('lists again after 410 Gone and reports what changed while it was away', async () => {
    const seen: string[] = [];
    const informer = new Informer({ client, type: DOCKER_REPOSITORIES, namespaces: ['a'], log: silentLogger(), onChange: (key, obj) => seen.push(`${obj ? 'set' : 'gone'} ${key}`) });
    await informer.start();
    expect(informer.list().map((o) => o.metadata.name).sort()).toEqual(['one', 'two']);
    // Away: a deletion and a creation it never sees as events.
    kube.closeWatches();
    kube.delete({ apiVersion: 'drydock.dev/v1alpha1', kind: 'DockerRepository', namespace: 'a', name: 'one' });
    kube.create(repo('a', 'three'));
    kube.compactHistory();
    await waitFor('the re-list', () => seen.includes('gone a/one') && seen.includes('set a/three'));
    expect(informer.relists).toBe(1);
    expect(informer.list().map((o) => o.metadata.name).sort()).toEqual(['three', 'two']);
    await informer.stop();
  });
});

describe('LeaderElector', () => {
  /** A client that can be cut off, as a crashed or partitioned pod would be. */
  function severable(): { client: KubeClient; cut(): void } {
    let down = false;
    const fail = async (): Promise<never> => {
      throw new Error('connection refused');
    };
    const wrapped: KubeClient = {
      list: (...a) => (down ? fail() : client.list(...a)),
      watch: (...a) => (down ? fail() : client.watch(...a)),
      get: (...a) => (down ? fail() : client.get(...a)),
      create: (...a) => (down ? fail() : client.create(...a)),
      replace: (...a) => (down ? fail() : client.replace(...a)),
      replaceStatus: (...a) => (down ? fail() : client.replaceStatus(...a)),
    };
    return { client: wrapped, cut: () => (down = true) };
  }

  it('hands over when the leader stops renewing, and the old leader steps down by itself', async () => {
    const log: string[] = [];
    const a = severable();
    const make = (identity: string, c: KubeClient) =>
      new LeaderElector({
        client: c,
        namespace: 'leases',
        identity,
        leaseDurationSecs: 1,
        renewEveryMs: 200,
        retryMs: 100,
        log: silentLogger(),
        onStartedLeading: () => log.push(`${identity} leads`),
        onStoppedLeading: () => log.push(`${identity} stops`),
      });
    const first = make('pod-a', a.client);
    first.start();
    await waitFor('pod-a to lead', () => first.isLeader);
    const second = make('pod-b', client);
    second.start();
    await new Promise((r) => setTimeout(r, 1500));
    expect(second.isLeader).toBe(false);

    a.cut();
    await waitFor('pod-b to lead', () => second.isLeader, 5000);
    await waitFor('pod-a to step down', () => !first.isLeader, 5000);
    const lease = kube.get({ apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', namespace: 'leases', name: 'drydock-operator' });
    expect(lease?.spec).toMatchObject({ holderIdentity: 'pod-b', leaseTransitions: 1 });
    expect(log).toEqual(['pod-a leads', expect.stringMatching(/^pod-(a stops|b leads)$/), expect.stringMatching(/^pod-(a stops|b leads)$/)]);
    await first.stop();
    await second.stop();
    // A leader that stops gives the Lease up at once.
    expect((kube.get({ apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', namespace: 'leases', name: 'drydock-operator' })?.spec as { holderIdentity?: string }).holderIdentity).toBe('');
  }, 20_000);
});
