/** Patch bodies applied to an object: JSON merge patch, JSON patch (RFC 6902), strategic merge patch (approximated). */
import { badRequest } from './errors.js';
import { clone, deepEqual, isObj, type Obj } from './json.js';
import { KubeApiError, type KubeObject, type PatchType } from './types.js';

function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isObj(patch)) return clone(patch);
  const out: Obj = isObj(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

/**
 * Strategic merge patch as a merge patch: enough for metadata, maps and
 * replaced lists. Lists that Kubernetes merges by key (containers, conditions)
 * are replaced here; see the header of ../kube-apiserver.ts.
 */
function strategicPatch(target: unknown, patch: unknown): unknown {
  if (!isObj(patch)) return clone(patch);
  if (patch.$patch === 'delete') return undefined;
  const replace = patch.$patch === 'replace';
  const out: Obj = isObj(target) && !replace ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (k.startsWith('$deleteFromPrimitiveList/')) {
      const field = k.slice('$deleteFromPrimitiveList/'.length);
      const drop = Array.isArray(v) ? v : [];
      if (Array.isArray(out[field])) out[field] = (out[field] as unknown[]).filter((x) => !drop.some((d) => deepEqual(d, x)));
      continue;
    }
    if (k.startsWith('$')) continue;
    if (v === null) delete out[k];
    else {
      const next = strategicPatch(out[k], v);
      if (next === undefined) delete out[k];
      else out[k] = next;
    }
  }
  return out;
}

function parsePointer(pointer: string): string[] {
  if (pointer === '') return [];
  if (!pointer.startsWith('/')) throw badRequest(`invalid JSON pointer: ${JSON.stringify(pointer)}`);
  return pointer
    .slice(1)
    .split('/')
    .map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function pointerGet(doc: unknown, tokens: string[]): unknown {
  let cur = doc;
  for (const t of tokens) {
    if (Array.isArray(cur)) cur = cur[Number(t)];
    else if (isObj(cur)) cur = cur[t];
    else return undefined;
  }
  return cur;
}

function patchFailed(message: string): KubeApiError {
  return new KubeApiError(422, 'Invalid', `the server rejected our request due to an error in our request: ${message}`);
}

/** Applies one JSON Patch operation in place on `root` (a wrapper so the document itself can be replaced). */
function jsonPatchOp(root: { doc: unknown }, op: Obj): void {
  const path = parsePointer(String(op.path ?? ''));
  const parentTokens = path.slice(0, -1);
  const last = path[path.length - 1];
  const container = (): Obj | unknown[] => {
    const p = pointerGet(root.doc, parentTokens);
    if (!isObj(p) && !Array.isArray(p)) throw patchFailed(`doc is missing path: "${String(op.path)}"`);
    return p;
  };
  const setAt = (value: unknown, insert: boolean): void => {
    if (last === undefined) {
      root.doc = value;
      return;
    }
    const c = container();
    if (Array.isArray(c)) {
      const i = last === '-' ? c.length : Number(last);
      if (!Number.isInteger(i) || i < 0 || i > c.length || (!insert && i >= c.length)) throw patchFailed(`index out of range: "${String(op.path)}"`);
      if (insert) c.splice(i, 0, value);
      else c[i] = value;
    } else {
      if (!insert && !(last in c)) throw patchFailed(`doc is missing key: "${String(op.path)}"`);
      c[last] = value;
    }
  };
  const removeAt = (tokens: string[]): unknown => {
    const parent = pointerGet(root.doc, tokens.slice(0, -1));
    const key = tokens[tokens.length - 1] ?? '';
    if (Array.isArray(parent) && Number(key) < parent.length) return parent.splice(Number(key), 1)[0];
    if (isObj(parent) && key in parent) {
      const v = parent[key];
      delete parent[key];
      return v;
    }
    throw patchFailed(`unable to remove nonexistent key: ${key}`);
  };
  switch (op.op) {
    case 'add':
      return setAt(clone(op.value), true);
    case 'replace':
      return setAt(clone(op.value), false);
    case 'remove':
      removeAt(path);
      return;
    case 'move':
      return setAt(removeAt(parsePointer(String(op.from ?? ''))), true);
    case 'copy':
      return setAt(clone(pointerGet(root.doc, parsePointer(String(op.from ?? '')))), true);
    case 'test':
      if (!deepEqual(pointerGet(root.doc, path), op.value)) throw patchFailed(`testing value ${String(op.path)} failed`);
      return;
    default:
      throw badRequest(`Unexpected kind: ${String(op.op)}`);
  }
}

function jsonPatch(doc: unknown, ops: unknown): unknown {
  if (!Array.isArray(ops)) throw badRequest('json: cannot unmarshal object into Go value of type jsonpatch.Patch');
  const root = { doc: clone(doc) };
  for (const op of ops) jsonPatchOp(root, isObj(op) ? op : {});
  return root.doc;
}

/** The patched object, before validation; server-side apply is approximated by a merge patch (see ../kube-apiserver.ts). */
export function applyPatch(patchType: PatchType, current: KubeObject, body: unknown): unknown {
  switch (patchType) {
    case 'json':
      return jsonPatch(current, body);
    case 'strategic':
      return strategicPatch(current, body);
    case 'apply':
    case 'merge':
      if (!isObj(body)) throw badRequest('the patch is not a JSON object');
      return mergePatch(current, body);
  }
}
