import { describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { parseAllDocuments, parse } from 'yaml';

type Obj = { apiVersion?: unknown; kind?: unknown; metadata?: { name?: unknown }; spec?: Record<string, unknown>; data?: Record<string, string> };

/** `kubectl kustomize DIR`: throws (with kubectl's stderr) on a non-zero exit. */
function render(dir: string): Obj[] {
  const out = execFileSync('kubectl', ['kustomize', join(process.cwd(), dir)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return parseAllDocuments(out).map((d) => d.toJS() as Obj);
}

const IMAGE = 'drydock:latest';

describe('manifests/', () => {
  it.each(['manifests/base', 'manifests/overlays/s3', 'manifests/overlays/gcs'])('%s renders, every object named', (dir) => {
    const objects = render(dir);
    expect(objects.length).toBeGreaterThan(10);
    for (const o of objects) {
      expect(typeof o.apiVersion).toBe('string');
      expect(typeof o.kind).toBe('string');
      expect(typeof o.metadata?.name).toBe('string');
    }
    const kinds = new Set(objects.map((o) => o.kind));
    for (const k of ['Namespace', 'CustomResourceDefinition', 'ServiceAccount', 'ClusterRole', 'Role', 'Deployment', 'Service', 'PodDisruptionBudget', 'HorizontalPodAutoscaler', 'CronJob', 'ConfigMap', 'Secret']) {
      expect(kinds).toContain(k);
    }
    const deployments = objects.filter((o) => o.kind === 'Deployment');
    expect(deployments.map((d) => d.metadata?.name).sort()).toEqual(['drydock-operator', 'drydock-registry']);
    for (const d of deployments) {
      const containers = ((d.spec?.template as { spec: { containers: { image: string }[] } }).spec.containers);
      for (const c of containers) expect(c.image).toBe(IMAGE);
    }
  });

  it('each overlay sets its storage driver in the config', () => {
    for (const driver of ['s3', 'gcs']) {
      const cm = render(`manifests/overlays/${driver}`).find((o) => o.kind === 'ConfigMap' && o.metadata?.name === 'drydock-config');
      const config = parse(cm!.data!['drydock.config.yaml']!) as { storage: { driver: string } };
      expect(config.storage.driver).toBe(driver);
    }
    const base = render('manifests/base').find((o) => o.kind === 'ConfigMap');
    expect((parse(base!.data!['drydock.config.yaml']!) as { storage: { driver: string } }).storage.driver).toBe('filesystem');
  });

  it('the registry has probes, resources, runAsNonRoot and ClientIP affinity', () => {
    const objects = render('manifests/base');
    const reg = objects.find((o) => o.kind === 'Deployment' && o.metadata?.name === 'drydock-registry')!;
    const pod = (reg.spec!.template as { spec: Record<string, any> }).spec;
    expect(pod.securityContext.runAsNonRoot).toBe(true);
    const c = pod.containers[0];
    expect(c.readinessProbe.httpGet.path).toBe('/readyz');
    expect(c.livenessProbe.httpGet.path).toBe('/healthz');
    expect(c.resources.requests).toBeDefined();
    const svc = objects.find((o) => o.kind === 'Service')!;
    expect(svc.spec!.sessionAffinity).toBe('ClientIP');
    expect(objects.every((o) => o.kind === 'Namespace' || o.kind === 'CustomResourceDefinition' || o.kind!.toString().startsWith('Cluster') || (o.metadata as { namespace?: string }).namespace === 'drydock')).toBe(true);
  });
});
