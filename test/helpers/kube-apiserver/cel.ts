/**
 * `x-kubernetes-validations` rules, evaluated with a real CEL implementation
 * (@bufbuild/cel, RE2 regular expressions as in Kubernetes). What the emulator
 * does around it follows the API server: `self` is the value at the schema node,
 * typed by the schema (integer → int, number → double, objects → maps);
 * a rule that mentions `oldSelf` is a transition rule, evaluated only on update
 * when the old value exists; a rule that does not compile makes the CRD invalid.
 * Not emulated: Kubernetes' CEL libraries (`url()`, `quantity()`, `isSorted()`,
 * …) and cost limits.
 */
import { celEnv, isCelError, parse, plan } from '@bufbuild/cel';
import { isObj } from './json.js';
import type { Schema } from './schema.js';

export type CompiledRule = (self: unknown, oldSelf: unknown, schema: Schema) => { ok: true } | { ok: false; error?: string };

const compiled = new Map<string, CompiledRule>();

/** A rule mentioning `oldSelf` only runs on updates that have an old value. */
export function isTransitionRule(rule: string): boolean {
  return /\boldSelf\b/.test(rule);
}

/** Compiles (once per rule text) or throws with the parser's message. */
export function compileRule(rule: string): CompiledRule {
  const hit = compiled.get(rule);
  if (hit) return hit;
  const program = plan(celEnv(), parse(rule));
  const fn: CompiledRule = (self, oldSelf, schema) => {
    const bindings: Record<string, ReturnType<typeof toCel>> = { self: toCel(self, schema) };
    if (oldSelf !== undefined) bindings.oldSelf = toCel(oldSelf, schema);
    const result = program(bindings as never);
    if (isCelError(result)) return { ok: false, error: result.message };
    return result === true ? { ok: true } : { ok: false };
  };
  compiled.set(rule, fn);
  return fn;
}

/** The parse error of a rule, or undefined when it compiles. */
export function ruleCompileError(rule: string): string | undefined {
  try {
    compileRule(rule);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

type CelIn = bigint | number | string | boolean | null | CelIn[] | Map<string, CelIn>;

/** JSON → CEL input, using the schema for the int/double distinction JSON lacks. */
function toCel(value: unknown, schema: Schema | undefined): CelIn {
  if (value === null || value === undefined) return null;
  if (typeof value === 'number') {
    const integer = schema?.type === 'integer' || (schema?.['x-kubernetes-int-or-string'] === true && Number.isInteger(value));
    return integer || (schema?.type === undefined && Number.isInteger(value)) ? BigInt(value) : value;
  }
  if (typeof value === 'string' || typeof value === 'boolean') return value;
  if (Array.isArray(value)) return value.map((v) => toCel(v, schema?.items));
  if (isObj(value)) {
    const entries = Object.entries(value).map(([k, v]): [string, CelIn] => {
      const sub = schema?.properties?.[k] ?? (isObj(schema?.additionalProperties) ? (schema?.additionalProperties as Schema) : undefined);
      return [k, toCel(v, sub)];
    });
    return new Map(entries);
  }
  return null;
}
