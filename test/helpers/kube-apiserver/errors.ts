/**
 * Errors as the real server words them: field errors formatted as
 * k8s.io/apimachinery's field.Error, and the generic BadRequest/NotFound/
 * MethodNotAllowed Status errors.
 */
import { KubeApiError } from './types.js';

export interface FieldError {
  reason: 'FieldValueRequired' | 'FieldValueNotSupported' | 'FieldValueInvalid' | 'FieldValueTypeInvalid' | 'FieldValueTooLong' | 'FieldValueTooMany' | 'FieldValueForbidden' | 'FieldValueDuplicate';
  field: string;
  message: string;
}

function showValue(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean' || v === null) return String(v);
  return JSON.stringify(v);
}

export const fieldErr = {
  required: (field: string, detail = ''): FieldError => ({ reason: 'FieldValueRequired', field, message: detail ? `Required value: ${detail}` : 'Required value' }),
  invalid: (field: string, value: unknown, detail: string): FieldError => ({ reason: 'FieldValueInvalid', field, message: `Invalid value: ${showValue(value)}: ${detail}` }),
  typeInvalid: (field: string, value: unknown, detail: string): FieldError => ({ reason: 'FieldValueTypeInvalid', field, message: `Invalid value: ${showValue(value)}: ${detail}` }),
  notSupported: (field: string, value: unknown, allowed: unknown[]): FieldError => ({
    reason: 'FieldValueNotSupported',
    field,
    message: `Unsupported value: ${showValue(value)}: supported values: ${allowed.map(showValue).join(', ')}`,
  }),
  tooLong: (field: string, max: number): FieldError => ({ reason: 'FieldValueTooLong', field, message: `Too long: may not be more than ${max} bytes` }),
  tooMany: (field: string, n: number, max: number): FieldError => ({ reason: 'FieldValueTooMany', field, message: `Too many: ${n}: must have at most ${max} items` }),
  forbidden: (field: string, detail: string): FieldError => ({ reason: 'FieldValueForbidden', field, message: `Forbidden: ${detail}` }),
  duplicate: (field: string, value: unknown): FieldError => ({ reason: 'FieldValueDuplicate', field, message: `Duplicate value: ${showValue(value)}` }),
};

export function joinPath(path: string, key: string): string {
  return path ? `${path}.${key}` : key;
}

export function badRequest(message: string): KubeApiError {
  return new KubeApiError(400, 'BadRequest', message);
}

export const PAGE_NOT_FOUND = (): KubeApiError => new KubeApiError(404, 'NotFound', 'the server could not find the requested resource', {});
export const METHOD_NOT_ALLOWED = (): KubeApiError => new KubeApiError(405, 'MethodNotAllowed', 'the server does not allow this method on the requested resource', {});
