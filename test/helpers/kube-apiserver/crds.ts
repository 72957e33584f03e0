/** CustomResourceDefinitions: their validation, the status the apiextensions controllers would write, and the resource type each one serves. */
import { ruleCompileError } from './cel.js';
import { fieldErr, type FieldError } from './errors.js';
import { isObj, nowTimestamp, type Obj } from './json.js';
import { AGE_COLUMN, compareKubeVersions, type PrinterColumn, type ResourceType } from './resources.js';
import type { Schema } from './schema.js';
import type { KubeObject } from './types.js';

interface CrdVersion {
  name: string;
  served?: boolean;
  storage?: boolean;
  schema?: { openAPIV3Schema?: Schema };
  subresources?: { status?: unknown };
  additionalPrinterColumns?: PrinterColumn[];
}

interface CrdSpec {
  group: string;
  scope: string;
  names: { kind: string; listKind?: string; plural: string; singular?: string; shortNames?: string[]; categories?: string[] };
  versions: CrdVersion[];
}

function crdSpec(obj: KubeObject): CrdSpec {
  return obj.spec as CrdSpec;
}

/** The real server requires structural schemas; these are the rules a generated schema most often breaks. */
function structuralErrors(s: unknown, path: string, errors: FieldError[]): void {
  if (!isObj(s)) return;
  const schema = s as Schema;
  const intOrString = schema['x-kubernetes-int-or-string'] === true;
  const preserve = schema['x-kubernetes-preserve-unknown-fields'] === true;
  if (!schema.type && !intOrString && !preserve) {
    errors.push(fieldErr.required(`${path}.type`, 'must not be empty for specified object fields'));
  }
  if (schema.properties && schema.additionalProperties !== undefined) {
    errors.push(fieldErr.forbidden(`${path}.additionalProperties`, 'additionalProperties and properties are mutual exclusive'));
  }
  if (schema.$ref !== undefined) errors.push(fieldErr.forbidden(`${path}.$ref`, '$ref is not supported'));
  if ('const' in schema) errors.push(fieldErr.forbidden(`${path}.const`, 'const is not supported'));
  (schema['x-kubernetes-validations'] ?? []).forEach((r, i) => {
    const problem = typeof r.rule === 'string' ? ruleCompileError(r.rule) : 'rule must be a string';
    if (problem !== undefined) errors.push(fieldErr.invalid(`${path}.x-kubernetes-validations[${i}].rule`, r.rule, `compilation failed: ${problem}`));
  });
  for (const [k, v] of Object.entries(schema.properties ?? {})) structuralErrors(v, `${path}.properties[${k}]`, errors);
  if (schema.items) structuralErrors(schema.items, `${path}.items`, errors);
  if (isObj(schema.additionalProperties)) structuralErrors(schema.additionalProperties, `${path}.additionalProperties`, errors);
}

export function validateCrd(obj: KubeObject, old: KubeObject | undefined): FieldError[] {
  const errors: FieldError[] = [];
  const spec = isObj(obj.spec) ? (obj.spec as Partial<CrdSpec>) : {};
  const names = isObj(spec.names) ? spec.names : undefined;
  if (!spec.group) errors.push(fieldErr.required('spec.group'));
  if (!names?.plural) errors.push(fieldErr.required('spec.names.plural'));
  if (!names?.kind) errors.push(fieldErr.required('spec.names.kind'));
  if (spec.scope !== 'Namespaced' && spec.scope !== 'Cluster') errors.push(fieldErr.notSupported('spec.scope', spec.scope ?? '', ['Cluster', 'Namespaced']));
  if (spec.group && names?.plural && obj.metadata.name !== `${names.plural}.${spec.group}`) {
    errors.push(fieldErr.invalid('metadata.name', obj.metadata.name ?? '', `must be spec.names.plural+"."+spec.group`));
  }
  const versions = Array.isArray(spec.versions) ? spec.versions : [];
  if (versions.length === 0) errors.push(fieldErr.required('spec.versions', 'must have exactly one version marked as storage version'));
  else if (versions.filter((v) => v.storage).length !== 1) errors.push(fieldErr.invalid('spec.versions', versions.length, 'must have exactly one version marked as storage version'));
  versions.forEach((v, i) => {
    const schema = v.schema?.openAPIV3Schema;
    if (!schema) errors.push(fieldErr.required(`spec.versions[${i}].schema.openAPIV3Schema`, 'schemas are required'));
    else structuralErrors(schema, `spec.versions[${i}].schema.openAPIV3Schema`, errors);
  });
  if (old) {
    const before = crdSpec(old);
    if (spec.group !== before.group) errors.push(fieldErr.invalid('spec.group', spec.group ?? '', 'field is immutable'));
    if (names?.plural !== before.names.plural) errors.push(fieldErr.invalid('status.acceptedNames.plural', names?.plural ?? '', 'field is immutable'));
  }
  return errors;
}

/** What the apiextensions controllers would write at once: names accepted, Established. */
export function setCrdStatus(obj: KubeObject): void {
  const spec = crdSpec(obj);
  // An invalid CRD is refused by validation right after this; leave it alone here.
  if (!isObj(spec) || !isObj(spec.names) || !Array.isArray(spec.versions)) return;
  const now = nowTimestamp();
  const storage = spec.versions.find((v) => v.storage)?.name;
  const condition = (type: string, reason: string, message: string): Obj => ({ type, status: 'True', lastTransitionTime: now, reason, message });
  obj.status = {
    conditions: [condition('NamesAccepted', 'NoConflicts', 'no conflicts found'), condition('Established', 'InitialNamesAccepted', 'the initial names have been accepted')],
    acceptedNames: { ...spec.names, listKind: spec.names.listKind ?? `${spec.names.kind}List`, singular: spec.names.singular ?? spec.names.kind.toLowerCase() },
    storedVersions: storage ? [storage] : [],
  };
}

export function typeFromCrd(crd: KubeObject): ResourceType {
  const spec = crdSpec(crd);
  const served = spec.versions.filter((v) => v.served !== false);
  const schemas = new Map<string, Schema | undefined>();
  const columns = new Map<string, PrinterColumn[]>();
  for (const v of served) {
    schemas.set(v.name, v.schema?.openAPIV3Schema);
    // As the real server: Age is the only column of a version that declares none.
    columns.set(v.name, v.additionalPrinterColumns?.length ? v.additionalPrinterColumns : [AGE_COLUMN]);
  }
  const storage = spec.versions.find((v) => v.storage)?.name ?? spec.versions[0]?.name ?? 'v1';
  return {
    group: spec.group,
    versions: served.map((v) => v.name).sort(compareKubeVersions),
    storageVersion: storage,
    kind: spec.names.kind,
    listKind: spec.names.listKind ?? `${spec.names.kind}List`,
    plural: spec.names.plural,
    singular: spec.names.singular ?? spec.names.kind.toLowerCase(),
    namespaced: spec.scope !== 'Cluster',
    shortNames: spec.names.shortNames ?? [],
    categories: spec.names.categories ?? [],
    // The real server enables the subresource per version; one flag per kind covers single-version CRDs.
    statusSubresource: served.some((v) => v.subresources?.status !== undefined),
    crd: { schemas, columns },
  };
}
