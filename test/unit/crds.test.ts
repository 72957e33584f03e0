import { describe, expect, it } from '@jest/globals';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { compileRule, isTransitionRule } from '../helpers/kube-apiserver/cel.js';
import { dockerRepositoryCrd, promotionCrd, renderCrdFiles, toStructural } from '../../src/operator/crd-schema.js';

const CRDS_DIR = join(process.cwd(), 'crds');

type Node = Record<string, unknown>;

/** Every way the schema breaks the API server's structural-schema rules, by path. */
function structuralProblems(node: Node, path: string, out: string[] = []): string[] {
  for (const key of ['anyOf', 'oneOf', 'allOf', 'not', 'const', '$ref', '$defs', '$schema', 'definitions']) {
    if (key in node) out.push(`${path}: has ${key}`);
  }
  if (node.additionalProperties === false) out.push(`${path}: additionalProperties: false`);
  if (node.additionalProperties !== undefined && node.properties !== undefined) out.push(`${path}: additionalProperties beside properties`);
  for (const key of ['exclusiveMinimum', 'exclusiveMaximum']) {
    if (key in node && typeof node[key] !== 'boolean') out.push(`${path}: numeric ${key}`);
  }
  if (typeof node.type !== 'string' && node['x-kubernetes-preserve-unknown-fields'] !== true) out.push(`${path}: no type`);
  if (node.properties !== undefined && node.type !== 'object') out.push(`${path}: properties without type object`);
  if (typeof node.pattern === 'string' && /\(\?<?[=!]/.test(node.pattern)) out.push(`${path}: lookaround in pattern`);
  if (node.properties !== undefined) {
    for (const [k, v] of Object.entries(node.properties as Record<string, Node>)) structuralProblems(v, `${path}.${k}`, out);
  }
  if (node.items !== undefined) structuralProblems(node.items as Node, `${path}[]`, out);
  if (typeof node.additionalProperties === 'object' && node.additionalProperties !== null) {
    structuralProblems(node.additionalProperties as Node, `${path}{}`, out);
  }
  return out;
}

function version(crd: Node): Node {
  return ((crd.spec as Node).versions as Node[])[0]!;
}

function openApi(crd: Node): Node {
  return (version(crd).schema as Node).openAPIV3Schema as Node;
}

describe('crds/*.yaml', () => {
  it.each(Object.entries(renderCrdFiles()))('%s equals a fresh generation', (name, fresh) => {
    let committed = '';
    try {
      committed = readFileSync(join(CRDS_DIR, name), 'utf8');
    } catch {
      committed = '(missing)';
    }
    if (committed !== fresh) {
      throw new Error(`crds/${name} is stale or missing: run \`npm run crds\` (scripts/generate-crds.mjs) and commit the result`);
    }
    expect(parse(committed)).toEqual(parse(fresh));
  });

  it.each([
    ['DockerRepository', dockerRepositoryCrd()],
    ['Promotion', promotionCrd()],
  ])('%s schema is structural', (_kind, crd) => {
    expect(structuralProblems(openApi(crd), 'openAPIV3Schema')).toEqual([]);
  });

  it('the structural walk catches what a raw zod dump contains', () => {
    const raw = { type: 'object', additionalProperties: false, properties: { a: { anyOf: [{ type: 'string' }, { type: 'null' }] }, b: { const: 'x' } } };
    expect(structuralProblems(raw, 'x').length).toBeGreaterThan(0);
    expect(structuralProblems(toStructural(raw), 'x')).toEqual([]);
    expect(toStructural({ type: 'number', exclusiveMinimum: 0 })).toEqual({ type: 'number', minimum: 0, exclusiveMinimum: true });
  });

  it('DockerRepository: names, columns, status subresource and CEL rules', () => {
    const crd = dockerRepositoryCrd();
    const spec = crd.spec as Node;
    expect(spec.group).toBe('drydock.dev');
    expect(spec.scope).toBe('Namespaced');
    expect((spec.names as Node).shortNames).toEqual(['dr', 'dockerrepo']);
    const v = version(crd);
    expect(v.name).toBe('v1alpha1');
    expect(v.subresources).toEqual({ status: {} });
    expect((v.additionalPrinterColumns as Node[]).map((c) => c.name)).toEqual(['Type', 'Ready', 'URL', 'Age']);
    const specSchema = (openApi(crd).properties as Record<string, Node>).spec!;
    const rules = (specSchema['x-kubernetes-validations'] as Node[]).map((r) => r.rule as string);
    expect(rules.some((r) => r.includes('self.key.matches'))).toBe(true);
    expect(rules.some((r) => r.includes('self.remote.url'))).toBe(true);
    expect(rules.some((r) => r.includes('self.virtual.repositories'))).toBe(true);
    const props = specSchema.properties as Record<string, Node>;
    expect(props.deletionPolicy!.enum).toEqual(['Retain', 'Delete']);
    expect(new RegExp(props.key!.pattern as string).test('team_a')).toBe(false);
    expect(new RegExp(props.key!.pattern as string).test('team-a')).toBe(true);
  });

  it('Promotion: immutable spec, phase/digest/age columns', () => {
    const crd = promotionCrd();
    expect(((crd.spec as Node).names as Node).shortNames).toEqual(['promo']);
    const v = version(crd);
    expect((v.additionalPrinterColumns as Node[]).map((c) => c.name)).toEqual(['Phase', 'Digest', 'Age']);
    const specSchema = (openApi(crd).properties as Record<string, Node>).spec!;
    expect(specSchema['x-kubernetes-validations']).toEqual([{ rule: 'self == oldSelf', message: 'a Promotion spec is immutable once set' }]);
    expect(Object.keys(specSchema.properties as Node)).toEqual(
      expect.arrayContaining(['sourceRepo', 'targetRepo', 'dockerRepository', 'targetDockerRepository', 'tag', 'targetTag', 'copy']),
    );
  });

  describe('CEL rules, run by a CEL implementation', () => {
    const specSchema = (crd: Node): Node => (openApi(crd).properties as Record<string, Node>).spec!;
    /** The messages of the rules `spec` breaks (transition rules see `old`). */
    const broken = (crd: Node, spec: unknown, old?: unknown): string[] => {
      const schema = specSchema(crd);
      return (schema['x-kubernetes-validations'] as Array<{ rule: string; message: string }>)
        .filter((r) => old !== undefined || !isTransitionRule(r.rule))
        .filter((r) => !compileRule(r.rule)(spec, old, schema).ok)
        .map((r) => r.message);
    };
    const samples = (dir: string, kind: string): Node[] =>
      readdirSync(dir)
        .filter((f) => f.endsWith('.yaml'))
        .map((f) => parse(readFileSync(join(dir, f), 'utf8')) as Node)
        .filter((o) => o.kind === kind);

    it('every DockerRepository sample passes them', () => {
      const all = samples(join(process.cwd(), 'config/samples'), 'DockerRepository');
      expect(all.length).toBeGreaterThanOrEqual(4);
      for (const o of all) expect({ name: (o.metadata as Node).name, broken: broken(dockerRepositoryCrd(), o.spec) }).toEqual({ name: (o.metadata as Node).name, broken: [] });
    });

    it('refuse a key with an underscore or too long, and a remote or virtual repository without its settings', () => {
      const crd = dockerRepositoryCrd();
      expect(broken(crd, { type: 'local', key: 'team_a' })).toEqual([expect.stringMatching(/^key must be 1-64 characters/)]);
      expect(broken(crd, { type: 'local', key: `a${'b'.repeat(64)}` })).toEqual([expect.stringMatching(/^key must be 1-64 characters/)]);
      expect(broken(crd, { type: 'local', key: 'team-a.images' })).toEqual([]);
      expect(broken(crd, { type: 'local', key: '-team' })).toEqual([expect.stringMatching(/^key must/)]);
      expect(broken(crd, { type: 'remote' })).toEqual(['a remote repository needs remote.url']);
      expect(broken(crd, { type: 'remote', remote: { url: 'https://registry-1.docker.io' } })).toEqual([]);
      expect(broken(crd, { type: 'virtual' })).toEqual(['a virtual repository needs virtual.repositories']);
      expect(broken(crd, { type: 'virtual', virtual: { repositories: ['a', 'b'] } })).toEqual([]);
    });

    it('keep a Promotion spec as it was, field by field', () => {
      const crd = promotionCrd();
      const [sample] = samples(join(process.cwd(), 'config/samples/promotions'), 'Promotion');
      const spec = sample!.spec as Node;
      expect(broken(crd, spec)).toEqual([]);
      expect(broken(crd, spec, structuredClone(spec))).toEqual([]);
      expect(broken(crd, { ...spec, targetRepo: 'elsewhere' }, spec)).toEqual(['a Promotion spec is immutable once set']);
      expect(broken(crd, { ...spec, copy: !spec.copy }, spec)).toEqual(['a Promotion spec is immutable once set']);
    });
  });
});
