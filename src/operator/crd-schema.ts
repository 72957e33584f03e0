/**
 * The `DockerRepository` and `Promotion` custom resource definitions (SPEC §8),
 * built from the same zod schemas as the REST bodies so the three cannot drift,
 * and turned into structural OpenAPI v3 schemas a real API server accepts:
 * no `additionalProperties: false` beside `properties`, `nullable: true` instead
 * of `anyOf` with `null`, `enum` instead of `const`, boolean `exclusiveMinimum`,
 * no `$ref`/`$defs`, and a `type` on every schema.
 *
 * `scripts/generate-crds.mjs` (`npm run crds`) writes `crds/*.yaml` from here.
 */
import { z } from 'zod';
import { stringify } from 'yaml';
import { localRepositorySchema, remoteRepositorySchema, repositoryKeySchema, virtualRepositorySchema } from '../core/config/repository.js';
import { PERMISSION_ACTIONS } from '../core/config/security.js';
import { REPO_KEY_PATTERN } from '../core/oci/reference.js';
import { promotionRequestSchema } from '../registry/service/promotion.js';

export const CRD_GROUP = 'drydock.dev';
export const CRD_VERSION = 'v1alpha1';

const local = localRepositorySchema.shape;
const remote = remoteRepositorySchema.shape;
const virtual = virtualRepositorySchema.shape;

const accessRuleSchema = z.object({
  users: z.array(z.string().min(1)).optional(),
  groups: z.array(z.string().min(1)).optional(),
  actions: z.array(z.enum(PERMISSION_ACTIONS)).min(1),
  /** Ant patterns on `<image>/<tag>`; absent → `**`. */
  include: z.array(z.string()).optional(),
  exclude: z.array(z.string()).optional(),
});

/** `DockerRepository.spec`: the repository configuration, one sub-object per type. */
export const dockerRepositorySpecSchema = z.object({
  type: z.enum(['local', 'remote', 'virtual']),
  key: repositoryKeySchema.max(64).optional(),
  description: local.description,
  local: z
    .object({ maxUniqueTags: local.maxUniqueTags, platformTags: local.platformTags, tagImmutability: local.tagImmutability })
    .optional(),
  remote: z
    .object({
      url: remote.url,
      enableTokenAuthentication: remote.enableTokenAuthentication,
      retrievalCachePeriodSecs: remote.retrievalCachePeriodSecs,
      offline: remote.offline,
      externalDependencies: z
        .object({ enabled: remote.externalDependenciesEnabled, patterns: remote.externalDependenciesPatterns })
        .optional(),
      /** A Secret in the resource's namespace with keys `username` and `password`. */
      credentialsSecretRef: z.object({ name: z.string().min(1) }).optional(),
    })
    .optional(),
  virtual: z
    .object({
      // No default here: a virtual resource must name its members (CEL rule below).
      repositories: virtual.repositories.unwrap(),
      defaultDeploymentRepo: virtual.defaultDeploymentRepo,
      resolveDockerTagsByTimestamp: virtual.resolveDockerTagsByTimestamp,
    })
    .optional(),
  access: z
    .object({
      anonymousRead: z.boolean().default(false),
      rules: z.array(accessRuleSchema).default([]),
    })
    .optional(),
  deletionPolicy: z.enum(['Retain', 'Delete']).default('Retain'),
});

const promo = promotionRequestSchema.shape;

/**
 * `Promotion.spec`: the promote request plus its source repository. The length
 * bounds (the OCI limits) keep the CEL immutability rule within the API
 * server's cost budget.
 */
export const promotionSpecSchema = z.object({
  sourceRepo: promo.sourceRepo.max(64),
  targetRepo: promo.targetRepo.max(64),
  dockerRepository: promo.dockerRepository.max(255),
  targetDockerRepository: promo.targetDockerRepository.unwrap().unwrap().max(255).nullish(),
  tag: promo.tag.unwrap().unwrap().max(128).nullish(),
  targetTag: promo.targetTag.unwrap().unwrap().max(128).nullish(),
  copy: promo.copy,
});

const conditionSchema = z.object({
  type: z.string(),
  status: z.enum(['True', 'False', 'Unknown']),
  reason: z.string().optional(),
  message: z.string().optional(),
  lastTransitionTime: z.string().optional(),
  observedGeneration: z.int().min(0).optional(),
});

export const dockerRepositoryStatusSchema = z.object({
  conditions: z.array(conditionSchema).optional(),
  observedGeneration: z.int().min(0).optional(),
  url: z.string().optional(),
  imageCount: z.int().min(0).optional(),
  setMeUp: z.string().optional(),
});

export const promotionStatusSchema = z.object({
  phase: z.enum(['Pending', 'Running', 'Succeeded', 'Failed']).optional(),
  digest: z.string().optional(),
  message: z.string().optional(),
  completionTime: z.string().optional(),
  conditions: z.array(conditionSchema).optional(),
  observedGeneration: z.int().min(0).optional(),
});

export type JsonSchema = { [key: string]: unknown };

/** OpenAPI formats the API server knows; others are dropped. */
const KNOWN_FORMATS = new Set(['uri', 'email', 'hostname', 'ipv4', 'ipv6', 'uuid', 'date-time', 'date', 'byte', 'int32', 'int64']);
const SAFE = Number.MAX_SAFE_INTEGER;

/** Rewrites one JSON Schema node (and its children) into structural OpenAPI v3. */
export function toStructural(node: JsonSchema): JsonSchema {
  let src: JsonSchema = { ...node };
  let nullable = false;
  if (Array.isArray(src.anyOf)) {
    const variants = (src.anyOf as JsonSchema[]).filter((v) => v.type !== 'null');
    if (variants.length !== 1) throw new Error(`cannot make a structural schema of anyOf: ${JSON.stringify(src.anyOf)}`);
    nullable = variants.length < (src.anyOf as JsonSchema[]).length;
    const { anyOf: _drop, ...rest } = src;
    src = { ...rest, ...variants[0] };
  }
  if (Array.isArray(src.type)) {
    const types = (src.type as string[]).filter((t) => t !== 'null');
    if (types.length !== 1) throw new Error(`cannot make a structural schema of type ${JSON.stringify(src.type)}`);
    nullable = nullable || types.length < (src.type as string[]).length;
    src = { ...src, type: types[0] };
  }
  const out: JsonSchema = {};
  for (const [k, v] of Object.entries(src)) {
    switch (k) {
      case '$schema':
      case '$ref':
      case '$defs':
      case 'definitions':
      case 'id':
      case '$id':
        break;
      case 'additionalProperties':
        if (v !== false && typeof v === 'object' && v !== null) out[k] = toStructural(v as JsonSchema);
        break;
      case 'const':
        out.enum = [v];
        if (src.type === undefined) out.type = typeof v === 'number' ? (Number.isInteger(v) ? 'integer' : 'number') : typeof v;
        break;
      case 'exclusiveMinimum':
      case 'exclusiveMaximum':
        if (typeof v === 'number') {
          out[k === 'exclusiveMinimum' ? 'minimum' : 'maximum'] = v;
          out[k] = true;
        } else out[k] = v;
        break;
      case 'minimum':
        if (v !== -SAFE) out[k] = v;
        break;
      case 'maximum':
        if (v !== SAFE) out[k] = v;
        break;
      case 'format':
        if (typeof v === 'string' && KNOWN_FORMATS.has(v)) out[k] = v;
        break;
      case 'properties':
        out[k] = Object.fromEntries(Object.entries(v as Record<string, JsonSchema>).map(([p, s]) => [p, toStructural(s)]));
        break;
      case 'items':
        out[k] = toStructural(v as JsonSchema);
        break;
      default:
        out[k] = v;
    }
  }
  if (out.type === undefined) {
    if (out.properties !== undefined) out.type = 'object';
    else throw new Error(`schema without a type: ${JSON.stringify(node)}`);
  }
  if (nullable) out.nullable = true;
  return out;
}

/** A zod object as the structural schema of a CRD field. */
export function crdSchemaOf(schema: z.ZodType): JsonSchema {
  return toStructural(z.toJSONSchema(schema, { io: 'input', unrepresentable: 'throw' }) as JsonSchema);
}

const KEY_RULE = `self.matches('${REPO_KEY_PATTERN.replaceAll('\\', '\\\\')}')`;

function dockerRepositorySpec(): JsonSchema {
  const spec = crdSchemaOf(dockerRepositorySpecSchema);
  spec['x-kubernetes-validations'] = [
    {
      rule: `!has(self.key) || ${KEY_RULE.replace('self.', 'self.key.')}`,
      message: "key must be 1-64 characters of lower-case letters, digits, '.' and '-' (no underscores), starting and ending with a letter or digit",
    },
    { rule: "self.type != 'remote' || (has(self.remote) && has(self.remote.url))", message: 'a remote repository needs remote.url' },
    {
      rule: "self.type != 'virtual' || (has(self.virtual) && has(self.virtual.repositories))",
      message: 'a virtual repository needs virtual.repositories',
    },
  ];
  return spec;
}

function promotionSpec(): JsonSchema {
  const spec = crdSchemaOf(promotionSpecSchema);
  spec['x-kubernetes-validations'] = [{ rule: 'self == oldSelf', message: 'a Promotion spec is immutable once set' }];
  return spec;
}

function rootSchema(spec: JsonSchema, status: JsonSchema): JsonSchema {
  return {
    type: 'object',
    required: ['spec'],
    properties: {
      apiVersion: { type: 'string' },
      kind: { type: 'string' },
      metadata: { type: 'object' },
      spec,
      status,
    },
  };
}

interface CrdNames {
  kind: string;
  plural: string;
  singular: string;
  shortNames: string[];
}

function crd(names: CrdNames, schema: JsonSchema, columns: JsonSchema[]): JsonSchema {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${names.plural}.${CRD_GROUP}` },
    spec: {
      group: CRD_GROUP,
      scope: 'Namespaced',
      names: { kind: names.kind, listKind: `${names.kind}List`, plural: names.plural, singular: names.singular, shortNames: names.shortNames },
      versions: [
        {
          name: CRD_VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: [...columns, { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' }],
          schema: { openAPIV3Schema: schema },
        },
      ],
    },
  };
}

export function dockerRepositoryCrd(): JsonSchema {
  return crd(
    { kind: 'DockerRepository', plural: 'dockerrepositories', singular: 'dockerrepository', shortNames: ['dr', 'dockerrepo'] },
    rootSchema(dockerRepositorySpec(), crdSchemaOf(dockerRepositoryStatusSchema)),
    [
      { name: 'Type', type: 'string', jsonPath: '.spec.type' },
      { name: 'Ready', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].status' },
      { name: 'URL', type: 'string', jsonPath: '.status.url' },
    ],
  );
}

export function promotionCrd(): JsonSchema {
  return crd(
    { kind: 'Promotion', plural: 'promotions', singular: 'promotion', shortNames: ['promo'] },
    rootSchema(promotionSpec(), crdSchemaOf(promotionStatusSchema)),
    [
      { name: 'Phase', type: 'string', jsonPath: '.status.phase' },
      { name: 'Digest', type: 'string', jsonPath: '.status.digest' },
    ],
  );
}

const HEADER = '# Generated by `npm run crds` (scripts/generate-crds.mjs) from src/operator/crd-schema.ts; do not edit.\n';

/** The files under `crds/`, by name, as the generator writes them. */
export function renderCrdFiles(): Record<string, string> {
  return {
    'dockerrepositories.yaml': HEADER + stringify(dockerRepositoryCrd(), { lineWidth: 0 }),
    'promotions.yaml': HEADER + stringify(promotionCrd(), { lineWidth: 0 }),
  };
}
