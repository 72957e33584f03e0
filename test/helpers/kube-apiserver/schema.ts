/** Structural schemas of custom resources (openAPIV3Schema): pruning of unknown fields, defaulting, validation and CEL rules. */
import { compileRule, isTransitionRule } from './cel.js';
import { fieldErr, type FieldError, joinPath } from './errors.js';
import { clone, deepEqual, isObj, jsonTypeName, type Obj } from './json.js';

export interface Schema {
  type?: string;
  properties?: Record<string, Schema>;
  additionalProperties?: Schema | boolean;
  items?: Schema;
  required?: string[];
  enum?: unknown[];
  pattern?: string;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: boolean;
  exclusiveMaximum?: boolean;
  multipleOf?: number;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  uniqueItems?: boolean;
  minProperties?: number;
  maxProperties?: number;
  nullable?: boolean;
  default?: unknown;
  format?: string;
  allOf?: Schema[];
  anyOf?: Schema[];
  oneOf?: Schema[];
  not?: Schema;
  'x-kubernetes-preserve-unknown-fields'?: boolean;
  'x-kubernetes-embedded-resource'?: boolean;
  'x-kubernetes-int-or-string'?: boolean;
  'x-kubernetes-validations'?: Array<{ rule: string; message?: string; fieldPath?: string; reason?: string }>;
  $ref?: string;
}

const OBJECT_META_FIELDS = new Set([
  'name',
  'generateName',
  'namespace',
  'selfLink',
  'uid',
  'resourceVersion',
  'generation',
  'creationTimestamp',
  'deletionTimestamp',
  'deletionGracePeriodSeconds',
  'labels',
  'annotations',
  'ownerReferences',
  'finalizers',
  'managedFields',
]);

export function pruneMetadata(meta: unknown, path: string, unknown: string[]): void {
  if (!isObj(meta)) return;
  for (const key of Object.keys(meta)) {
    if (OBJECT_META_FIELDS.has(key)) continue;
    unknown.push(joinPath(path, key));
    delete meta[key];
  }
}

/** Drops fields the schema does not declare, recording their paths (for Strict/Warn field validation). */
export function prune(value: unknown, schema: Schema | undefined, path: string, unknown: string[], embedded: boolean): void {
  if (!schema) return;
  if (Array.isArray(value)) {
    if (schema.items) value.forEach((item, i) => prune(item, schema.items, `${path}[${i}]`, unknown, schema.items?.['x-kubernetes-embedded-resource'] === true));
    return;
  }
  if (!isObj(value)) return;
  const preserve = schema['x-kubernetes-preserve-unknown-fields'] === true;
  for (const key of Object.keys(value)) {
    if (embedded && (key === 'apiVersion' || key === 'kind')) continue;
    if (embedded && key === 'metadata') {
      pruneMetadata(value.metadata, joinPath(path, 'metadata'), unknown);
      continue;
    }
    const prop = schema.properties?.[key] ?? (isObj(schema.additionalProperties) ? (schema.additionalProperties as Schema) : undefined);
    const childPath = schema.properties?.[key] ? joinPath(path, key) : `${path}[${key}]`;
    if (prop) prune(value[key], prop, childPath, unknown, prop['x-kubernetes-embedded-resource'] === true);
    else if (!(preserve || schema.additionalProperties === true)) {
      unknown.push(joinPath(path, key));
      delete value[key];
    }
  }
}

export function applyDefaults(value: unknown, schema: Schema | undefined): void {
  if (!schema) return;
  if (Array.isArray(value)) {
    const items = schema.items;
    if (!items) return;
    value.forEach((item, i) => {
      if (item === null && items.default !== undefined && !items.nullable) value[i] = clone(items.default);
      applyDefaults(value[i], items);
    });
    return;
  }
  if (!isObj(value)) return;
  for (const [key, prop] of Object.entries(schema.properties ?? {})) {
    const absent = !(key in value) || (value[key] === null && !prop.nullable);
    if (absent && prop.default !== undefined) value[key] = clone(prop.default);
    if (key in value) applyDefaults(value[key], prop);
  }
  if (isObj(schema.additionalProperties)) {
    for (const key of Object.keys(value)) if (!schema.properties?.[key]) applyDefaults(value[key], schema.additionalProperties as Schema);
  }
}

/** Marks "there is no old value here" for transition rules (create, or a field new in this update). */
export const ABSENT = Symbol('absent');
type OldValue = unknown | typeof ABSENT;

function typeMatches(value: unknown, schema: Schema): boolean {
  if (schema['x-kubernetes-int-or-string']) return typeof value === 'string' || (typeof value === 'number' && Number.isInteger(value));
  switch (schema.type) {
    case 'object':
      return isObj(value);
    case 'array':
      return Array.isArray(value);
    case 'string':
      return typeof value === 'string';
    case 'integer':
      return typeof value === 'number' && Number.isInteger(value);
    case 'number':
      return typeof value === 'number';
    case 'boolean':
      return typeof value === 'boolean';
    default:
      return true;
  }
}

/** `x-kubernetes-validations` at this node (see ./cel.ts for what is evaluated and how). */
function evaluateRules(value: unknown, old: OldValue, schema: Schema, path: string, errors: FieldError[]): void {
  for (const rule of schema['x-kubernetes-validations'] ?? []) {
    const transition = isTransitionRule(rule.rule);
    if (transition && old === ABSENT) continue;
    const outcome = compileRule(rule.rule)(value, transition ? old : undefined, schema);
    if (outcome.ok) continue;
    const field = rule.fieldPath ? joinPath(path, rule.fieldPath.replace(/^\./, '')) : path;
    const message = outcome.error !== undefined ? `${rule.message ?? rule.rule}: ${outcome.error}` : (rule.message ?? `failed rule: ${rule.rule}`);
    const err = fieldErr.invalid(field, schema.type ?? 'object', message);
    if (rule.reason) err.reason = rule.reason as FieldError['reason'];
    errors.push(err);
  }
}

function validateAgainst(value: unknown, schema: Schema, path: string, old: OldValue): FieldError[] {
  const errors: FieldError[] = [];
  validateNode(value, schema, path, old, errors);
  return errors;
}

export function validateNode(value: unknown, schema: Schema, path: string, old: OldValue, errors: FieldError[]): void {
  const shown = path || '<root>';
  if (value === null) {
    if (schema.nullable || (!schema.type && !schema['x-kubernetes-int-or-string'])) return;
    errors.push(fieldErr.typeInvalid(path, 'null', `${shown} in body must be of type ${schema.type ?? 'int-or-string'}: "null"`));
    return;
  }
  if (!typeMatches(value, schema)) {
    const expected = schema['x-kubernetes-int-or-string'] ? 'integer,string' : schema.type;
    errors.push(fieldErr.typeInvalid(path, jsonTypeName(value), `${shown} in body must be of type ${expected}: "${jsonTypeName(value)}"`));
    return;
  }
  if (schema.enum && !schema.enum.some((e) => deepEqual(e, value))) errors.push(fieldErr.notSupported(path, value, schema.enum));
  if (typeof value === 'string') validateString(value, schema, path, shown, errors);
  if (typeof value === 'number') validateNumber(value, schema, path, shown, errors);
  if (Array.isArray(value)) validateArray(value, schema, path, shown, errors);
  if (isObj(value)) validateObject(value, schema, path, old, errors);
  validateCombinators(value, schema, path, shown, errors);
  evaluateRules(value, old, schema, path, errors);
}

function validateString(value: string, schema: Schema, path: string, shown: string, errors: FieldError[]): void {
  if (schema.maxLength !== undefined && value.length > schema.maxLength) errors.push(fieldErr.tooLong(path, schema.maxLength));
  if (schema.minLength !== undefined && value.length < schema.minLength) {
    errors.push(fieldErr.invalid(path, value, `${shown} in body should be at least ${schema.minLength} chars long`));
  }
  if (schema.pattern !== undefined && !new RegExp(schema.pattern, 'u').test(value)) {
    errors.push(fieldErr.invalid(path, value, `${shown} in body should match '${schema.pattern}'`));
  }
}

function validateNumber(value: number, schema: Schema, path: string, shown: string, errors: FieldError[]): void {
  if (schema.minimum !== undefined) {
    const bad = schema.exclusiveMinimum ? value <= schema.minimum : value < schema.minimum;
    if (bad) errors.push(fieldErr.invalid(path, value, `${shown} in body should be greater than ${schema.exclusiveMinimum ? '' : 'or equal to '}${schema.minimum}`));
  }
  if (schema.maximum !== undefined) {
    const bad = schema.exclusiveMaximum ? value >= schema.maximum : value > schema.maximum;
    if (bad) errors.push(fieldErr.invalid(path, value, `${shown} in body should be less than ${schema.exclusiveMaximum ? '' : 'or equal to '}${schema.maximum}`));
  }
  if (schema.multipleOf !== undefined && value % schema.multipleOf !== 0) {
    errors.push(fieldErr.invalid(path, value, `${shown} in body should be a multiple of ${schema.multipleOf}`));
  }
}

function validateArray(value: unknown[], schema: Schema, path: string, shown: string, errors: FieldError[]): void {
  if (schema.minItems !== undefined && value.length < schema.minItems) {
    errors.push(fieldErr.invalid(path, value.length, `${shown} in body should have at least ${schema.minItems} items`));
  }
  if (schema.maxItems !== undefined && value.length > schema.maxItems) errors.push(fieldErr.tooMany(path, value.length, schema.maxItems));
  if (schema.uniqueItems) {
    value.forEach((v, i) => {
      if (value.slice(0, i).some((w) => deepEqual(v, w))) errors.push(fieldErr.duplicate(`${path}[${i}]`, v));
    });
  }
  // Array elements are not correlated with the old list (atomic lists), so rules below see no oldSelf.
  if (schema.items) value.forEach((v, i) => validateNode(v, schema.items as Schema, `${path}[${i}]`, ABSENT, errors));
}

function validateObject(value: Obj, schema: Schema, path: string, old: OldValue, errors: FieldError[]): void {
  for (const key of schema.required ?? []) if (!(key in value)) errors.push(fieldErr.required(joinPath(path, key)));
  const n = Object.keys(value).length;
  if (schema.minProperties !== undefined && n < schema.minProperties) {
    errors.push(fieldErr.invalid(path, n, `${path || '<root>'} in body should have at least ${schema.minProperties} properties`));
  }
  if (schema.maxProperties !== undefined && n > schema.maxProperties) errors.push(fieldErr.tooMany(path, n, schema.maxProperties));
  const oldObj = old !== ABSENT && isObj(old) ? old : undefined;
  for (const [key, v] of Object.entries(value)) {
    const declared = schema.properties?.[key];
    const sub = declared ?? (isObj(schema.additionalProperties) ? (schema.additionalProperties as Schema) : undefined);
    if (!sub || (path === '' && key === 'metadata')) continue;
    const childOld: OldValue = oldObj && key in oldObj ? oldObj[key] : ABSENT;
    validateNode(v, sub, declared ? joinPath(path, key) : `${path}[${key}]`, childOld, errors);
  }
}

function validateCombinators(value: unknown, schema: Schema, path: string, shown: string, errors: FieldError[]): void {
  const passes = (s: Schema): boolean => validateAgainst(value, { type: undefined, ...s }, path, ABSENT).length === 0;
  for (const s of schema.allOf ?? []) validateNode(value, s, path, ABSENT, errors);
  if (schema.anyOf && !schema.anyOf.some(passes)) errors.push(fieldErr.invalid(path, jsonTypeName(value), `${shown} in body must match at least one schema in anyOf`));
  if (schema.oneOf && schema.oneOf.filter(passes).length !== 1) errors.push(fieldErr.invalid(path, jsonTypeName(value), `${shown} in body must match exactly one schema in oneOf`));
  if (schema.not && passes(schema.not)) errors.push(fieldErr.invalid(path, jsonTypeName(value), `${shown} in body should not match the schema in not`));
}
