import { describe, expect, it } from '@jest/globals';
import AjvModule from 'ajv';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { parseAllDocuments, parse, stringify } from 'yaml';
import { parseConfig } from '../../src/core/config/index.js';

type Obj = { apiVersion?: unknown; kind?: unknown; metadata?: { name?: unknown; namespace?: unknown }; spec?: Record<string, unknown>; data?: Record<string, string>; [k: string]: unknown };
type Schema = Record<string, unknown>;

const ROOT = process.cwd();
const DIRS = ['manifests/base', 'manifests/overlays/s3', 'manifests/overlays/gcs'];
const IMAGE = 'drydock:latest';

/** `kubectl kustomize DIR`: throws (with kubectl's stderr) on a non-zero exit. */
function kustomize(dir: string): Obj[] {
  const out = execFileSync('kubectl', ['kustomize', dir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return parseAllDocuments(out).map((d) => d.toJS() as Obj);
}
const rendered = new Map<string, Obj[]>();
/** A directory of the repository, rendered once: the tests only read. */
function render(dir: string): Obj[] {
  let objects = rendered.get(dir);
  if (!objects) {
    objects = kustomize(join(ROOT, dir));
    rendered.set(dir, objects);
  }
  return objects;
}

/** Renders `manifests/overlays/s3` with what a GitOps tool adds on top (its images and patches). */
function renderOverlaid(extra: Record<string, unknown>): Obj[] {
  const dir = mkdtempSync(join(tmpdir(), 'drydock-kustomize-'));
  try {
    const kustomization = { apiVersion: 'kustomize.config.k8s.io/v1beta1', kind: 'Kustomization', resources: [relative(dir, join(ROOT, 'manifests/overlays/s3'))], ...extra };
    writeFileSync(join(dir, 'kustomization.yaml'), stringify(kustomization));
    return kustomize(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The registry's view of a rendered drydock-config ConfigMap: drydock's own strict config validation. */
function drydockConfigOf(objects: Obj[], env: Record<string, string> = {}) {
  const cm = objects.find((o) => o.kind === 'ConfigMap' && o.metadata?.name === 'drydock-config')!;
  return parseConfig(parse(cm.data!['drydock.config.yaml']!), { env, source: 'drydock-config' });
}

function yamlFile(path: string): Obj[] {
  return parseAllDocuments(readFileSync(join(ROOT, path), 'utf8')).map((d) => {
    if (d.errors.length) throw new Error(`${path}: ${d.errors.map((e) => e.message).join('; ')}`);
    return d.toJS() as Obj;
  });
}

const clone = <T>(o: T): T => structuredClone(o);

// ---------------------------------------------------------------------------
// Validation against the Kubernetes 1.32 OpenAPI definitions
// (test/fixtures/kubernetes-openapi/README.md) and the drydock CRDs.

const K8S_DEFINITIONS = (JSON.parse(readFileSync(join(ROOT, 'test/fixtures/kubernetes-openapi/definitions-v1.32.json'), 'utf8')) as { definitions: Record<string, Schema> }).definitions;
const QUANTITY = 'io.k8s.apimachinery.pkg.api.resource.Quantity';

/**
 * The API server rejects unknown fields (kubectl's default field validation is
 * Strict), which the published schemas leave open: every schema that lists
 * its properties gets `additionalProperties: false`, unless it says unknown
 * fields are kept. Only real schema positions are walked, so a property
 * *named* `properties` (as in JSONSchemaProps) stays a property.
 */
function strict(schema: Schema): Schema {
  const s: Schema = { ...schema };
  if (s.format === 'int-or-string') {
    delete s.format;
    s.type = ['integer', 'string'];
  }
  if (s.properties) {
    s.properties = Object.fromEntries(Object.entries(s.properties as Record<string, Schema>).map(([k, v]) => [k, strict(v)]));
    if (s.additionalProperties === undefined && s['x-kubernetes-preserve-unknown-fields'] !== true) s.additionalProperties = false;
  }
  if (s.items && typeof s.items === 'object') s.items = strict(s.items as Schema);
  if (s.additionalProperties && typeof s.additionalProperties === 'object') s.additionalProperties = strict(s.additionalProperties as Schema);
  for (const k of ['allOf', 'anyOf', 'oneOf']) if (Array.isArray(s[k])) s[k] = (s[k] as Schema[]).map(strict);
  return s;
}

// ajv is CommonJS: under Node's ESM loader its class is the default export itself.
const Ajv = ((AjvModule as unknown as { default?: unknown }).default ?? AjvModule) as typeof AjvModule.default;
// strict: false lets Kubernetes' own keywords (x-kubernetes-*, nullable) through as annotations.
const ajv = new Ajv({ strict: false, allErrors: true });
const inRange = (min: number, max: number) => (n: number) => Number.isInteger(n) && n >= min && n <= max;
ajv.addFormat('int32', { type: 'number', validate: inRange(-(2 ** 31), 2 ** 31 - 1) });
ajv.addFormat('int64', { type: 'number', validate: (n: number) => Number.isInteger(n) });
ajv.addFormat('double', { type: 'number', validate: () => true });
ajv.addFormat('byte', /^[A-Za-z0-9+/]*={0,2}$/);
ajv.addFormat('date-time', true);
ajv.addFormat('uri', (s: string) => URL.canParse(s));
ajv.addSchema(
  {
    $id: 'k8s',
    definitions: Object.fromEntries(
      Object.entries(K8S_DEFINITIONS).map(([name, d]) => [name, name === QUANTITY ? { type: ['string', 'number'] } : strict(d)]),
    ),
  },
);

/** `group/version/Kind` (core: `version/Kind`) → the definition's name. */
const BUILTIN = new Map<string, string>();
for (const [name, d] of Object.entries(K8S_DEFINITIONS)) {
  for (const g of (d['x-kubernetes-group-version-kind'] as { group: string; version: string; kind: string }[] | undefined) ?? []) {
    BUILTIN.set(`${g.group ? `${g.group}/` : ''}${g.version}/${g.kind}`, name);
  }
}

/** The drydock custom resources, validated as the API server would with the CRDs in crds/. */
const CUSTOM = new Map<string, Schema>();
for (const file of ['crds/dockerrepositories.yaml', 'crds/promotions.yaml']) {
  for (const crd of yamlFile(file)) {
    const spec = crd.spec as { group: string; names: { kind: string }; versions: { name: string; schema: { openAPIV3Schema: Schema } }[] };
    for (const v of spec.versions) CUSTOM.set(`${spec.group}/${v.name}/${spec.names.kind}`, strict(v.schema.openAPIV3Schema));
  }
}

const validators = new Map<string, ReturnType<typeof ajv.compile>>();
function validatorFor(gvk: string) {
  let v = validators.get(gvk);
  if (!v) {
    const builtin = BUILTIN.get(gvk);
    const schema = builtin ? { $ref: `k8s#/definitions/${builtin}` } : CUSTOM.get(gvk);
    if (!schema) return undefined;
    v = ajv.compile(schema);
    validators.set(gvk, v);
  }
  return v;
}

/** What the API server would refuse about `o`, one line per problem; [] when it is valid. */
function problems(o: Obj): string[] {
  const gvk = `${String(o.apiVersion)}/${String(o.kind)}`;
  const where = `${gvk} ${String(o.metadata?.name)}`;
  if (typeof o.metadata?.name !== 'string' || o.metadata.name === '') return [`${where}: no metadata.name`];
  const validate = validatorFor(gvk);
  if (!validate) return [`${where}: no Kubernetes 1.32 or drydock schema for ${gvk}`];
  if (validate(o)) return [];
  return (validate.errors ?? []).map((e) => {
    const extra = (e.params as { additionalProperty?: string }).additionalProperty;
    return `${where}: ${e.instancePath || '/'} ${e.message}${extra ? ` '${extra}'` : ''}`;
  });
}

function deploymentOf(dir: string, name: string): Obj {
  return clone(render(dir).find((o) => o.kind === 'Deployment' && o.metadata?.name === name)!);
}
function podOf(workload: Obj): Record<string, any> {
  const spec = workload.spec as Record<string, any>;
  return (workload.kind === 'CronJob' ? spec.jobTemplate.spec.template.spec : spec.template.spec) as Record<string, any>;
}

describe('rendered manifests against the Kubernetes 1.32 OpenAPI schemas', () => {
  it.each(DIRS)('every object %s renders is valid for its apiVersion and kind', (dir) => {
    const objects = render(dir);
    expect(objects.length).toBeGreaterThan(10);
    expect(objects.flatMap(problems)).toEqual([]);
  });

  it('the schemas cover every kind the manifests use', () => {
    const kinds = new Set(DIRS.flatMap((d) => render(d).map((o) => `${String(o.apiVersion)}/${String(o.kind)}`)));
    for (const k of [
      'v1/Namespace', 'apiextensions.k8s.io/v1/CustomResourceDefinition', 'v1/ServiceAccount',
      'rbac.authorization.k8s.io/v1/ClusterRole', 'rbac.authorization.k8s.io/v1/ClusterRoleBinding',
      'rbac.authorization.k8s.io/v1/Role', 'rbac.authorization.k8s.io/v1/RoleBinding', 'v1/ConfigMap', 'v1/Secret',
      'apps/v1/Deployment', 'v1/Service', 'policy/v1/PodDisruptionBudget', 'autoscaling/v2/HorizontalPodAutoscaler',
      'batch/v1/CronJob',
    ]) {
      expect(kinds).toContain(k);
      expect(validatorFor(k)).toBeDefined();
    }
  });

  it('the config samples are valid DockerRepository and Promotion resources', () => {
    const files = (readdirSync(join(ROOT, 'config/samples'), { recursive: true }) as string[]).filter((f) => /\.ya?ml$/.test(f));
    const samples = files.flatMap((f) => yamlFile(join('config/samples', f)));
    expect(new Set(samples.map((s) => s.kind))).toEqual(new Set(['DockerRepository', 'Promotion']));
    expect(samples.flatMap(problems)).toEqual([]);
  });

  describe('the validator bites', () => {
    const registry = () => deploymentOf('manifests/base', 'drydock-registry');
    const expectRefused = (o: Obj, match: RegExp) => {
      const p = problems(o);
      expect(p.length).toBeGreaterThan(0);
      expect(p.join('\n')).toMatch(match);
    };

    it('a valid Deployment passes', () => {
      expect(problems(registry())).toEqual([]);
    });

    it('unknown fields are refused, at any depth', () => {
      const d = registry();
      (d.spec as any).replica = 2;
      expectRefused(d, /\/spec must NOT have additional properties 'replica'/);
      const c = registry();
      podOf(c).containers[0].imagePullPolcy = 'Always';
      expectRefused(c, /\/spec\/template\/spec\/containers\/0 must NOT have additional properties 'imagePullPolcy'/);
      const top = registry();
      top.specs = {};
      expectRefused(top, /additional properties 'specs'/);
      const meta = registry();
      (meta.metadata as any).label = { a: 'b' };
      expectRefused(meta, /\/metadata must NOT have additional properties 'label'/);
    });

    it('wrong types are refused', () => {
      const port = registry();
      podOf(port).containers[0].ports[0].containerPort = '5000';
      expectRefused(port, /containerPort must be integer/);
      const big = registry();
      (big.spec as any).replicas = 2 ** 40;
      expectRefused(big, /\/spec\/replicas must match format "int32"/);
      const args = registry();
      podOf(args).containers[0].args = 'serve';
      expectRefused(args, /args must be array/);
      const env = registry();
      podOf(env).containers[0].env[0].value = 5000;
      expectRefused(env, /env\/0\/value must be string/);
      const label = registry();
      (label.metadata as any).labels = { replicas: 2 };
      expectRefused(label, /labels\/replicas must be string/);
    });

    it('required fields are enforced', () => {
      const noName = registry();
      delete podOf(noName).containers[0].name;
      expectRefused(noName, /must have required property 'name'/);
      const noSelector = registry();
      delete (noSelector.spec as any).selector;
      expectRefused(noSelector, /\/spec must have required property 'selector'/);
      const svc = clone(render('manifests/base').find((o) => o.kind === 'Service')!);
      delete (svc.spec as any).ports[0].port;
      expectRefused(svc, /must have required property 'port'/);
    });

    it('int-or-string and quantities take both forms, nothing else', () => {
      const svc = clone(render('manifests/base').find((o) => o.kind === 'Service')!);
      (svc.spec as any).ports[0].targetPort = 5000;
      expect(problems(svc)).toEqual([]);
      (svc.spec as any).ports[0].targetPort = { port: 5000 };
      expectRefused(svc, /targetPort must be integer,string/);
      const res = registry();
      podOf(res).containers[0].resources.requests.cpu = 1;
      expect(problems(res)).toEqual([]);
      podOf(res).containers[0].resources.requests.cpu = true;
      expectRefused(res, /cpu must be string,number/);
    });

    it('an unknown apiVersion or kind has no schema', () => {
      const d = registry();
      d.apiVersion = 'apps/v1beta1';
      expectRefused(d, /no Kubernetes 1.32 or drydock schema for apps\/v1beta1\/Deployment/);
    });

    it('the CRDs are checked as CustomResourceDefinitions, and resources against them', () => {
      const crd = clone(render('manifests/base').find((o) => o.kind === 'CustomResourceDefinition')!);
      expect(problems(crd)).toEqual([]);
      (crd.spec as any).versions[0].servd = true;
      expectRefused(crd, /additional properties 'servd'/);
      const badSchema = clone(render('manifests/base').find((o) => o.kind === 'CustomResourceDefinition')!);
      (badSchema.spec as any).versions[0].schema.openAPIV3Schema.required = 'spec';
      expectRefused(badSchema, /openAPIV3Schema\/required must be array/);

      const repo: Obj = { apiVersion: 'drydock.dev/v1alpha1', kind: 'DockerRepository', metadata: { name: 'team-a', namespace: 'team-a' }, spec: { type: 'local', deletionPolicy: 'Retain' } };
      expect(problems(repo)).toEqual([]);
      const typo = clone(repo);
      (typo.spec as any).deletionPolcy = 'Delete';
      expectRefused(typo, /\/spec must NOT have additional properties 'deletionPolcy'/);
      const badType = clone(repo);
      (badType.spec as any).type = 'cache';
      expectRefused(badType, /\/spec\/type must be equal to one of the allowed values/);
    });
  });
});

// ---------------------------------------------------------------------------
// What the manifests must say (SPEC §8, docs/kubernetes.md).

describe('manifests/', () => {
  it.each(DIRS)('%s has every part of the installation, all on the one image', (dir) => {
    const objects = render(dir);
    const kinds = new Set(objects.map((o) => o.kind));
    for (const k of ['Namespace', 'CustomResourceDefinition', 'ServiceAccount', 'ClusterRole', 'Role', 'Deployment', 'Service', 'PodDisruptionBudget', 'HorizontalPodAutoscaler', 'CronJob', 'ConfigMap', 'Secret']) {
      expect(kinds).toContain(k);
    }
    const deployments = objects.filter((o) => o.kind === 'Deployment');
    expect(deployments.map((d) => d.metadata?.name).sort()).toEqual(['drydock-operator', 'drydock-registry']);
    for (const w of objects.filter((o) => o.kind === 'Deployment' || o.kind === 'CronJob')) {
      for (const c of podOf(w).containers as { image: string }[]) expect(c.image).toBe(IMAGE);
    }
    const namespaced = objects.filter((o) => !['Namespace', 'CustomResourceDefinition', 'ClusterRole', 'ClusterRoleBinding'].includes(String(o.kind)));
    for (const o of namespaced) expect(o.metadata?.namespace).toBe('drydock');
  });

  it('each config is valid for drydock and sets its overlay\'s storage driver', () => {
    for (const [dir, driver] of [['manifests/base', 'filesystem'], ['manifests/overlays/s3', 's3'], ['manifests/overlays/gcs', 'gcs']] as const) {
      const objects = render(dir);
      const secret = objects.find((o) => o.kind === 'Secret' && o.metadata?.name === 'drydock-secrets')!;
      const config = drydockConfigOf(objects, secret.stringData as Record<string, string>);
      expect(config.storage.driver).toBe(driver);
      expect(config.database.url).toMatch(/^postgres:\/\//);
    }
  });

  it('the commented settings the docs tell you to uncomment are valid', () => {
    const cm = clone(render('manifests/overlays/gcs').find((o) => o.kind === 'ConfigMap')!);
    const text = cm.data!['drydock.config.yaml']!;
    for (const line of ['# baseUrl: https://registry.example.com', '# keyFilename: /var/run/secrets/drydock-gcs/sa.json']) expect(text).toContain(line);
    cm.data!['drydock.config.yaml'] = text.replace('# baseUrl:', 'baseUrl:').replace('# keyFilename:', 'keyFilename:');
    const config = drydockConfigOf([cm]);
    expect(config.server.baseUrl).toBe('https://registry.example.com');
    expect((config.storage as { gcs?: { keyFilename?: string } }).gcs?.keyFilename).toBe('/var/run/secrets/drydock-gcs/sa.json');
  });

  it('the registry: probes, resources, non-root, scaled by the HPA, no session affinity', () => {
    const objects = render('manifests/base');
    const reg = deploymentOf('manifests/base', 'drydock-registry');
    const pod = podOf(reg);
    expect(pod.securityContext.runAsNonRoot).toBe(true);
    expect(pod.automountServiceAccountToken).toBe(false);
    const c = pod.containers[0];
    expect(c.args).toEqual(['serve']);
    expect(c.readinessProbe.httpGet.path).toBe('/readyz');
    expect(c.livenessProbe.httpGet.path).toBe('/healthz');
    expect(c.resources.requests).toBeDefined();
    expect(c.securityContext.readOnlyRootFilesystem).toBe(true);
    // The HPA owns the replica count; a Deployment value would fight it on every apply.
    expect(reg.spec!.replicas).toBeUndefined();
    const hpa = objects.find((o) => o.kind === 'HorizontalPodAutoscaler')!;
    expect(hpa.spec!.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: 'drydock-registry' });
    expect(hpa.spec!.minReplicas).toBeGreaterThanOrEqual(2);
    const pdb = objects.find((o) => o.kind === 'PodDisruptionBudget')!;
    expect(pdb.spec!.selector).toEqual(reg.spec!.selector);
    // Upload sessions live in PostgreSQL: any pod takes any chunk.
    const svc = objects.find((o) => o.kind === 'Service')!;
    expect(svc.spec!.sessionAffinity).toBeUndefined();
    expect(svc.spec!.selector).toEqual((reg.spec!.selector as { matchLabels: unknown }).matchLabels);
  });

  it('the operator: its command, environment, probes and only the database secret', () => {
    const op = deploymentOf('manifests/base', 'drydock-operator');
    const pod = podOf(op);
    expect(pod.serviceAccountName).toBe('drydock-operator');
    const c = pod.containers[0];
    expect(c.args).toEqual(['operator']);
    const env = Object.fromEntries((c.env as { name: string }[]).map((e) => [e.name, e]));
    expect(env.DRYDOCK_NAMESPACE).toEqual({ name: 'DRYDOCK_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } });
    expect(env.DRYDOCK_OPERATOR_PORT).toEqual({ name: 'DRYDOCK_OPERATOR_PORT', value: '8080' });
    expect(env.DATABASE_URL).toEqual({ name: 'DATABASE_URL', valueFrom: { secretKeyRef: { name: 'drydock-secrets', key: 'DATABASE_URL' } } });
    expect(c.envFrom).toBeUndefined();
    expect(c.ports).toEqual([{ name: 'metrics', containerPort: 8080 }]);
    expect(c.readinessProbe.httpGet).toEqual({ path: '/healthz', port: 'metrics' });
    expect(c.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'metrics' });
    const secret = render('manifests/base').find((o) => o.kind === 'Secret')!;
    expect(Object.keys(secret.stringData as object)).toEqual(expect.arrayContaining(['DATABASE_URL', 'DRYDOCK_ADMIN_PASSWORD']));
  });

  it('RBAC is least privilege: the operator gets exactly what it uses, the registry nothing', () => {
    const objects = render('manifests/base');
    const rulesOf = (kind: string, name: string) =>
      (objects.find((o) => o.kind === kind && o.metadata?.name === name)!.rules as { apiGroups: string[]; resources: string[]; verbs: string[] }[]);
    expect(rulesOf('ClusterRole', 'drydock-operator')).toEqual([
      { apiGroups: ['drydock.dev'], resources: ['dockerrepositories', 'promotions'], verbs: ['get', 'list', 'watch', 'update', 'patch'] },
      { apiGroups: ['drydock.dev'], resources: ['dockerrepositories/status', 'promotions/status'], verbs: ['get', 'update', 'patch'] },
      { apiGroups: ['drydock.dev'], resources: ['dockerrepositories/finalizers', 'promotions/finalizers'], verbs: ['update'] },
      { apiGroups: [''], resources: ['secrets'], verbs: ['get', 'list', 'watch'] },
      { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch'] },
      { apiGroups: ['', 'events.k8s.io'], resources: ['events'], verbs: ['create', 'patch'] },
    ]);
    // Leases only in its own namespace, for leader election.
    const role = objects.find((o) => o.kind === 'Role')!;
    expect(role.metadata?.namespace).toBe('drydock');
    expect(role.rules).toEqual([{ apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'list', 'watch', 'create', 'update', 'patch'] }]);
    for (const o of objects.filter((x) => x.kind === 'ClusterRole' || x.kind === 'Role')) {
      for (const r of o.rules as { apiGroups: string[]; resources: string[]; verbs: string[] }[]) {
        expect([...r.apiGroups, ...r.resources, ...r.verbs]).not.toContain('*');
      }
    }
    const bindings = objects.filter((o) => o.kind === 'ClusterRoleBinding' || o.kind === 'RoleBinding');
    const subjects = bindings.flatMap((b) => b.subjects as { kind: string; name: string; namespace: string }[]);
    expect(new Set(subjects.map((s) => `${s.kind}:${s.namespace}/${s.name}`))).toEqual(new Set(['ServiceAccount:drydock/drydock-operator']));
    const registrySa = objects.find((o) => o.kind === 'ServiceAccount' && o.metadata?.name === 'drydock-registry')!;
    expect(registrySa.automountServiceAccountToken).toBe(false);
  });

  it('the nightly gc CronJob runs `drydock gc` with the registry\'s config and secrets', () => {
    const cron = render('manifests/base').find((o) => o.kind === 'CronJob')!;
    expect(cron.spec!.concurrencyPolicy).toBe('Forbid');
    const c = podOf(cron).containers[0];
    expect(c.args).toEqual(['gc']);
    expect(c.envFrom).toEqual([{ secretRef: { name: 'drydock-secrets' } }]);
  });

  it('the gcs overlay mounts the optional key Secret in the pods that touch the bucket', () => {
    const objects = render('manifests/overlays/gcs');
    for (const w of objects.filter((o) => (o.kind === 'Deployment' && o.metadata?.name === 'drydock-registry') || o.kind === 'CronJob')) {
      const pod = podOf(w);
      expect(pod.volumes).toContainEqual({ name: 'gcs-key', secret: { secretName: 'drydock-gcs-key', optional: true } });
      expect(pod.containers[0].volumeMounts).toContainEqual({ name: 'gcs-key', mountPath: '/var/run/secrets/drydock-gcs', readOnly: true });
    }
  });
});

describe('Dockerfile', () => {
  it('builds one non-root image for every command', () => {
    const text = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
    expect(text.match(/^FROM node:20-slim/gm)).toHaveLength(2);
    expect(text).toMatch(/^USER 1000:1000$/m);
    expect(text).toMatch(/^ENTRYPOINT \["node", "dist\/cli.js"\]$/m);
    expect(text).not.toMatch(/later operator/);
  });
});

// ---------------------------------------------------------------------------
// docs/kubernetes.md and the GitOps examples.

describe('docs/kubernetes.md', () => {
  it('every YAML example is a valid Kubernetes or drydock object', () => {
    const blocks = [...readFileSync(join(ROOT, 'docs/kubernetes.md'), 'utf8').matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!);
    expect(blocks.length).toBeGreaterThan(3);
    const all = blocks.flatMap((b) => parseAllDocuments(b).map((d) => d.toJS() as Obj)).filter((o) => o !== null);
    // kustomization.yaml files are kustomize's input, not API objects.
    const objects = all.filter((o) => o.apiVersion !== 'kustomize.config.k8s.io/v1beta1');
    expect(all.length - objects.length).toBe(1);
    const kinds = new Set(objects.map((o) => o.kind));
    for (const k of ['DockerRepository', 'Promotion', 'Secret']) expect(kinds).toContain(k);
    expect(objects.flatMap(problems)).toEqual([]);
    const types = objects.filter((o) => o.kind === 'DockerRepository').map((o) => o.spec!.type);
    expect(new Set(types)).toEqual(new Set(['local', 'remote', 'virtual']));
  });
});

describe('examples/', () => {
  type Patch = { patch: string; target?: Record<string, string> };

  /** The install must come out as valid objects, with no placeholder Secret and the tool's config. */
  function expectInstall(objects: Obj[], image: string) {
    expect(objects.flatMap(problems)).toEqual([]);
    expect(objects.filter((o) => o.kind === 'Secret')).toEqual([]);
    for (const w of objects.filter((o) => o.kind === 'Deployment' || o.kind === 'CronJob')) expect(podOf(w).containers[0].image).toBe(image);
    const config = drydockConfigOf(objects, { DATABASE_URL: 'postgres://u:p@db/drydock' });
    expect(config.storage.driver).toBe('s3');
    expect(config.server.baseUrl).toBe('https://registry.example.com');
  }

  it('argocd/application.yaml: Argo CD Applications for drydock and a team\'s repositories', () => {
    const apps = yamlFile('examples/argocd/application.yaml');
    expect(apps.length).toBeGreaterThanOrEqual(2);
    for (const a of apps) {
      expect(a.apiVersion).toBe('argoproj.io/v1alpha1');
      expect(a.kind).toBe('Application');
      expect(typeof a.metadata?.name).toBe('string');
      const spec = a.spec as { source: { repoURL: string; path: string }; destination: { server: string; namespace: string }; project: string };
      expect(spec.project).toBe('default');
      expect(spec.source.repoURL).toMatch(/^https:\/\//);
      expect(typeof spec.source.path).toBe('string');
      expect(spec.destination.server).toBe('https://kubernetes.default.svc');
    }
    const install = apps.find((a) => (a.spec as { source: { path: string } }).source.path === 'manifests/overlays/s3')!;
    const k = (install.spec as { source: { kustomize: { images: string[]; patches: Patch[] } } }).source.kustomize;
    // Argo CD's `name=newName:newTag` image form, as kustomize's.
    const images = k.images.map((i) => {
      const [name, ref] = i.split('=') as [string, string];
      const colon = ref.lastIndexOf(':');
      return { name, newName: ref.slice(0, colon), newTag: ref.slice(colon + 1) };
    });
    expectInstall(renderOverlaid({ images, patches: k.patches }), k.images[0]!.split('=')[1]!);
  });

  it('argocd/argocd-cm-health.yaml: a ConfigMap with health checks for both kinds', () => {
    const [cm] = yamlFile('examples/argocd/argocd-cm-health.yaml');
    expect(problems(cm!)).toEqual([]);
    expect(Object.keys(cm!.data!).sort()).toEqual(['resource.customizations.health.drydock.dev_DockerRepository', 'resource.customizations.health.drydock.dev_Promotion']);
  });

  it('flux/kustomization.yaml: Flux GitRepositories and the Kustomizations applying from them', () => {
    const docs = yamlFile('examples/flux/kustomization.yaml');
    const repos = docs.filter((d) => d.kind === 'GitRepository');
    expect(repos.length).toBeGreaterThanOrEqual(1);
    for (const r of repos) expect(r.apiVersion).toBe('source.toolkit.fluxcd.io/v1');
    const kustomizations = docs.filter((d) => d.kind === 'Kustomization');
    expect(kustomizations.length).toBeGreaterThanOrEqual(2);
    expect(docs.length).toBe(repos.length + kustomizations.length);
    for (const k of kustomizations) {
      expect(k.apiVersion).toBe('kustomize.toolkit.fluxcd.io/v1');
      const ref = (k.spec as { sourceRef: { kind: string; name: string } }).sourceRef;
      expect(ref.kind).toBe('GitRepository');
      expect(repos.map((r) => r.metadata!.name)).toContain(ref.name);
    }
    const install = kustomizations.find((k) => (k.spec as { path: string }).path === './manifests/overlays/s3')!;
    expect(existsSync(join(ROOT, 'manifests/overlays/s3/kustomization.yaml'))).toBe(true);
    const spec = install.spec as { images: { name: string; newName: string; newTag: string }[]; patches: Patch[] };
    expectInstall(renderOverlaid({ images: spec.images, patches: spec.patches }), `${spec.images[0]!.newName}:${spec.images[0]!.newTag}`);
    // The team's resources wait for drydock's CRDs and operator.
    const team = kustomizations.find((k) => k !== install)!;
    expect((team.spec as { dependsOn: { name: string }[] }).dependsOn).toEqual([{ name: install.metadata!.name }]);
  });
});
