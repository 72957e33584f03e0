/** The object store: the write pipeline (decode, prune, default, validate), resourceVersion, generation, finalizers, and the controllers beside it. */
import { randomUUID } from 'node:crypto';
import { builtinTypes } from './builtins.js';
import { typeFromCrd } from './crds.js';
import { badRequest, fieldErr, type FieldError } from './errors.js';
import { clone, deepEqual, isObj, nowTimestamp, type Obj } from './json.js';
import { applyPatch } from './patch.js';
import { groupVersion, present, qualifiedKind, qualifiedResource, type ResourceType, splitApiVersion, typeKey } from './resources.js';
import { ABSENT, applyDefaults, prune, pruneMetadata, validateNode } from './schema.js';
import { matchesFields, matchesLabels, type Selection } from './selectors.js';
import { KubeApiError, type KubeObject, type PatchType } from './types.js';
import { type EventType, type Watcher, WatchHub } from './watch.js';

export interface WriteOptions {
  dryRun?: boolean;
  fieldValidation?: string;
  /** Collects Warning headers (unknown fields under fieldValidation=Warn). */
  warnings?: string[];
}

export interface Target {
  type: ResourceType;
  version: string;
  namespace?: string;
  name?: string;
  subresource?: 'status';
}

const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** Kinds that do not bump generation (no spec; as for ConfigMaps and Secrets on a real server). */
const NO_GENERATION = new Set(['/configmaps', '/secrets', '/serviceaccounts', '/events', 'events.k8s.io/events']);

function objectKey(namespace: string | undefined, name: string): string {
  return `${namespace ?? ''}/${name}`;
}

const GENERATE_NAME_CHARS = 'bcdfghjklmnpqrstvwxz2456789';

function randomSuffix(): string {
  let s = '';
  for (let i = 0; i < 5; i++) s += GENERATE_NAME_CHARS[Math.floor(Math.random() * GENERATE_NAME_CHARS.length)];
  return s;
}

export class Store {
  readonly types = new Map<string, ResourceType>();
  private readonly data = new Map<string, Map<string, KubeObject>>();
  private rv = 0;
  readonly watches: WatchHub;

  constructor(historyLimit: number) {
    this.watches = new WatchHub(historyLimit, () => this.rv);
    for (const t of builtinTypes()) this.types.set(typeKey(t), t);
    for (const ns of ['default', 'kube-system', 'kube-public', 'kube-node-lease']) {
      this.create(this.target('v1', 'Namespace'), { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } }, {});
    }
  }

  currentRv(): string {
    return String(this.rv);
  }

  // --- type lookup

  /** By URL: group, version and plural resource name. */
  findType(group: string, version: string, plural: string): ResourceType | undefined {
    const t = this.types.get(`${group}/${plural}`);
    return t && t.versions.includes(version) ? t : undefined;
  }

  /** By apiVersion and kind (or plural, singular, short name), for the in-process API. */
  target(apiVersion: string, kind: string, namespace?: string, name?: string): Target {
    const { group, version } = splitApiVersion(apiVersion);
    const lower = kind.toLowerCase();
    for (const t of this.types.values()) {
      if (t.group !== group || !t.versions.includes(version)) continue;
      if (t.kind === kind || t.plural === lower || t.singular === lower || t.shortNames.includes(lower)) {
        return { type: t, version, namespace: t.namespaced ? namespace : undefined, name };
      }
    }
    throw new KubeApiError(404, 'NotFound', `the server could not find the requested resource (${kind} in ${apiVersion})`);
  }

  // --- reads

  private bucket(type: ResourceType): Map<string, KubeObject> {
    let b = this.data.get(typeKey(type));
    if (!b) this.data.set(typeKey(type), (b = new Map()));
    return b;
  }

  /** The stored object as the client sees it in `version`, or undefined. */
  peek(t: Target): KubeObject | undefined {
    const obj = this.bucket(t.type).get(objectKey(t.namespace, t.name ?? ''));
    return obj && present(t.type, t.version, obj);
  }

  get(t: Target): KubeObject {
    const obj = this.peek(t);
    if (!obj) throw this.notFound(t.type, t.name ?? '');
    return obj;
  }

  list(t: Target, sel: Selection): KubeObject[] {
    return [...this.bucket(t.type).entries()]
      .filter(([, o]) => t.namespace === undefined || o.metadata.namespace === t.namespace)
      .filter(([, o]) => matchesLabels(o, sel.labels) && matchesFields(o, sel.fields))
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([, o]) => present(t.type, t.version, o));
  }

  // --- errors

  notFound(type: ResourceType, name: string): KubeApiError {
    return new KubeApiError(404, 'NotFound', `${qualifiedResource(type)} "${name}" not found`, { name, group: type.group, kind: type.plural });
  }

  private invalid(type: ResourceType, name: string, errors: FieldError[]): KubeApiError {
    const causes = errors.map((e) => ({ reason: e.reason, message: e.message, field: e.field }));
    const listed = errors.map((e) => `${e.field}: ${e.message}`);
    const summary = listed.length === 1 ? listed[0] : `[${listed.join(', ')}]`;
    return new KubeApiError(422, 'Invalid', `${qualifiedKind(type)} "${name}" is invalid: ${summary}`, { name, group: type.group, kind: type.kind, causes });
  }

  private conflict(type: ResourceType, name: string, why: string): KubeApiError {
    return new KubeApiError(409, 'Conflict', `Operation cannot be fulfilled on ${qualifiedResource(type)} "${name}": ${why}`, { name, group: type.group, kind: type.plural });
  }

  // --- the write pipeline

  /** Checks apiVersion/kind of a request body against the URL; built-ins default them as the real decoder does. */
  private decodeBody(t: Target, body: unknown): KubeObject {
    if (!isObj(body)) throw badRequest('the body of the request was not a JSON object');
    const expected = groupVersion(t.type.group, t.version);
    if (body.kind === undefined || body.kind === '') {
      if (t.type.crd) throw badRequest(`Object 'Kind' is missing in '${JSON.stringify(body)}'`);
      body.kind = t.type.kind;
    }
    body.apiVersion ??= expected;
    if (body.apiVersion !== expected && !(t.type.crd && t.type.versions.includes(splitApiVersion(String(body.apiVersion)).version))) {
      throw badRequest(`the API version in the data (${String(body.apiVersion)}) does not match the expected API version (${expected})`);
    }
    if (body.kind !== t.type.kind) throw badRequest(`the kind in the data (${String(body.kind)}) does not match the expected kind (${t.type.kind})`);
    if (body.metadata === undefined) body.metadata = {};
    if (!isObj(body.metadata)) throw badRequest(`${t.type.kind} in version "${t.version}" cannot be handled as a ${t.type.kind}: metadata must be an object`);
    return clone(body) as KubeObject;
  }

  /** Structural pruning and defaulting of a custom resource, with fieldValidation handling. */
  private shape(t: Target, obj: KubeObject, opts: WriteOptions): void {
    const schema = t.type.crd?.schemas.get(t.version);
    const unknown: string[] = [];
    if (schema) prune(obj, schema, '', unknown, true);
    else pruneMetadata(obj.metadata, 'metadata', unknown);
    if (unknown.length && opts.fieldValidation === 'Strict') {
      const list = unknown.map((p) => `unknown field "${p}"`).join(', ');
      throw badRequest(`${t.type.kind} in version "${t.version}" cannot be handled as a ${t.type.kind}: strict decoding error: ${list}`);
    }
    if (opts.fieldValidation !== 'Ignore') for (const p of unknown) opts.warnings?.push(`unknown field "${p}"`);
    if (schema) applyDefaults(obj, schema);
  }

  private validate(t: Target, obj: KubeObject, old: KubeObject | undefined): void {
    const errors: FieldError[] = [];
    const name = obj.metadata.name ?? '';
    if (t.type.kind !== 'Namespace' && !(name.length <= 253 && DNS1123_SUBDOMAIN.test(name))) {
      errors.push(
        fieldErr.invalid(
          'metadata.name',
          name,
          "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
        ),
      );
    }
    const schema = t.type.crd?.schemas.get(t.version);
    if (schema) validateNode(obj, schema, '', old ?? ABSENT, errors);
    errors.push(...(t.type.builtin?.validate?.(obj, old) ?? []));
    if (errors.length) throw this.invalid(t.type, name, errors);
  }

  private requireNamespace(t: Target): void {
    if (!t.type.namespaced) return;
    const ns = this.types.get('/namespaces');
    if (!ns || !this.bucket(ns).has(objectKey(undefined, t.namespace ?? ''))) throw this.notFound(ns ?? t.type, t.namespace ?? '');
  }

  create(t: Target, body: unknown, opts: WriteOptions): KubeObject {
    const obj = this.decodeBody(t, body);
    const meta = obj.metadata;
    if (t.type.namespaced) {
      if (meta.namespace && meta.namespace !== t.namespace) throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
      meta.namespace = t.namespace;
    } else delete meta.namespace;
    if (!meta.name) {
      if (!meta.generateName) throw this.invalid(t.type, '', [fieldErr.required('metadata.name', 'name or generateName is required')]);
      meta.name = `${meta.generateName}${randomSuffix()}`;
    }
    this.shape(t, obj, opts);
    // The status subresource owns .status: a create cannot set it (built-ins set their own initial status).
    if (t.type.statusSubresource) delete obj.status;
    t.type.builtin?.prepareCreate?.(obj);
    t.type.builtin?.normalize?.(obj);
    for (const k of ['uid', 'resourceVersion', 'deletionTimestamp', 'deletionGracePeriodSeconds', 'selfLink', 'managedFields']) delete meta[k];
    meta.uid = randomUUID();
    meta.creationTimestamp = nowTimestamp();
    if (!NO_GENERATION.has(typeKey(t.type))) meta.generation = 1;
    else delete meta.generation;
    const target = { ...t, name: meta.name, namespace: meta.namespace };
    this.validate(target, obj, undefined);
    this.requireNamespace(target);
    if (this.bucket(t.type).has(objectKey(meta.namespace, meta.name))) {
      throw new KubeApiError(409, 'AlreadyExists', `${qualifiedResource(t.type)} "${meta.name}" already exists`, { name: meta.name, group: t.type.group, kind: t.type.plural });
    }
    obj.apiVersion = groupVersion(t.type.group, t.type.storageVersion);
    if (opts.dryRun) return present(t.type, t.version, { ...obj, metadata: { ...meta, resourceVersion: '' } });
    return present(t.type, t.version, this.commit(t.type, 'ADDED', obj, undefined));
  }

  update(t: Target, body: unknown, opts: WriteOptions): KubeObject {
    const current = this.get(t);
    const incoming = this.decodeBody(t, body);
    const name = t.name ?? '';
    if (incoming.metadata.name !== undefined && incoming.metadata.name !== name) {
      throw badRequest(`the name of the object (${incoming.metadata.name}) does not match the name on the URL (${name})`);
    }
    if (t.type.namespaced && incoming.metadata.namespace && incoming.metadata.namespace !== t.namespace) {
      throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
    }
    const rv = incoming.metadata.resourceVersion;
    if (rv !== undefined && rv !== '' && rv !== current.metadata.resourceVersion) {
      throw this.conflict(t.type, name, 'the object has been modified; please apply your changes to the latest version and try again');
    }
    if (!rv && t.type.crd) {
      throw this.invalid(t.type, name, [fieldErr.invalid('metadata.resourceVersion', 0, 'must be specified for an update')]);
    }
    this.shape(t, incoming, opts);
    const next = t.subresource === 'status' ? { ...clone(current), status: incoming.status } : this.mergeForMainUpdate(t, incoming, current);
    if (next.status === undefined) delete next.status;
    t.type.builtin?.normalize?.(next);
    return this.finishUpdate(t, next, current, opts);
  }

  /** A write to the main resource keeps what the server owns: identity, deletion state, and status behind a subresource. */
  private mergeForMainUpdate(t: Target, incoming: KubeObject, current: KubeObject): KubeObject {
    const next = incoming;
    const meta: Obj = next.metadata;
    for (const k of ['uid', 'creationTimestamp', 'deletionTimestamp', 'deletionGracePeriodSeconds', 'generation', 'resourceVersion', 'name', 'namespace'] as const) {
      if (current.metadata[k] === undefined) delete meta[k];
      else meta[k] = current.metadata[k];
    }
    if (t.type.statusSubresource) next.status = clone(current.status);
    return next;
  }

  private finishUpdate(t: Target, next: KubeObject, current: KubeObject, opts: WriteOptions): KubeObject {
    const name = t.name ?? '';
    if (current.metadata.deletionTimestamp) {
      const added = (next.metadata.finalizers ?? []).filter((f) => !(current.metadata.finalizers ?? []).includes(f));
      if (added.length) {
        throw this.invalid(t.type, name, [fieldErr.forbidden('metadata.finalizers', `no new finalizers can be added if the object is being deleted, found new finalizers []string{${added.map((f) => JSON.stringify(f)).join(', ')}}`)]);
      }
    }
    if (next.metadata.finalizers?.length === 0) delete next.metadata.finalizers;
    this.validate(t, next, current);
    if (next.metadata.generation !== undefined && this.specChanged(t.type, next, current)) next.metadata.generation = (current.metadata.generation ?? 0) + 1;
    next.apiVersion = current.apiVersion;
    const stored = { ...next, apiVersion: groupVersion(t.type.group, t.type.storageVersion) };
    const before = { ...current, apiVersion: stored.apiVersion };
    // etcd skips a write that changes nothing: same resourceVersion, no event.
    if (deepEqual(stored, before)) return current;
    if (opts.dryRun) return present(t.type, t.version, stored);
    if (stored.metadata.deletionTimestamp && !stored.metadata.finalizers?.length) {
      return present(t.type, t.version, this.commit(t.type, 'DELETED', stored, before));
    }
    return present(t.type, t.version, this.commit(t.type, 'MODIFIED', stored, before));
  }

  /** Generation follows everything but metadata (and status, when a subresource owns it). */
  private specChanged(type: ResourceType, a: KubeObject, b: KubeObject): boolean {
    const strip = (o: KubeObject): Obj => {
      const { metadata: _m, apiVersion: _a, status, ...rest } = o;
      return type.statusSubresource ? rest : { ...rest, status };
    };
    return !deepEqual(strip(a), strip(b));
  }

  patch(t: Target, patchType: PatchType, body: unknown, opts: WriteOptions & { force?: boolean }): { object: KubeObject; created: boolean } {
    if (patchType === 'strategic' && t.type.crd) {
      throw new KubeApiError(
        415,
        'UnsupportedMediaType',
        'the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml',
      );
    }
    const current = this.peek(t);
    if (!current) {
      if (patchType !== 'apply' || t.subresource) throw this.notFound(t.type, t.name ?? '');
      return { object: this.create({ ...t, name: undefined }, body, opts), created: true };
    }
    const patched = applyPatch(patchType, current, body);
    if (!isObj(patched)) throw badRequest('the patch result is not an object');
    const patchedMeta = isObj(patched.metadata) ? patched.metadata : {};
    if (patchedMeta.resourceVersion === undefined) patched.metadata = { ...patchedMeta, resourceVersion: current.metadata.resourceVersion };
    return { object: this.update(t, patched, opts), created: false };
  }

  remove(t: Target, options: Obj, opts: WriteOptions): { object: KubeObject; deleted: boolean } {
    const current = this.get(t);
    const name = t.name ?? '';
    const pre = isObj(options.preconditions) ? options.preconditions : {};
    if (pre.uid !== undefined && pre.uid !== null && pre.uid !== current.metadata.uid) {
      throw this.conflict(t.type, name, `Precondition failed: UID in precondition: ${String(pre.uid)}, UID in object meta: ${current.metadata.uid ?? ''}`);
    }
    if (pre.resourceVersion !== undefined && pre.resourceVersion !== null && pre.resourceVersion !== current.metadata.resourceVersion) {
      throw this.conflict(t.type, name, `Precondition failed: ResourceVersion in precondition: ${String(pre.resourceVersion)}, ResourceVersion in object meta: ${current.metadata.resourceVersion ?? ''}`);
    }
    const stored = this.bucket(t.type).get(objectKey(t.namespace, name)) as KubeObject;
    if (current.metadata.finalizers?.length) {
      if (current.metadata.deletionTimestamp) return { object: current, deleted: false };
      const marked = clone(stored);
      marked.metadata.deletionTimestamp = nowTimestamp();
      marked.metadata.deletionGracePeriodSeconds = 0;
      if (opts.dryRun) return { object: present(t.type, t.version, marked), deleted: false };
      return { object: present(t.type, t.version, this.commit(t.type, 'MODIFIED', marked, stored)), deleted: false };
    }
    if (opts.dryRun) return { object: current, deleted: true };
    return { object: present(t.type, t.version, this.commit(t.type, 'DELETED', clone(stored), stored)), deleted: true };
  }

  /** Stores a new state under a fresh resourceVersion, records it for watch replay, and tells the watchers. */
  private commit(type: ResourceType, event: EventType, obj: KubeObject, previous: KubeObject | undefined): KubeObject {
    this.rv++;
    obj.metadata.resourceVersion = String(this.rv);
    const key = objectKey(obj.metadata.namespace, obj.metadata.name ?? '');
    if (event === 'DELETED') this.bucket(type).delete(key);
    else this.bucket(type).set(key, obj);
    this.watches.record({ rv: this.rv, type: event, key: typeKey(type), object: clone(obj), previous: previous && clone(previous) });
    this.afterCommit(type, event, obj, previous);
    return obj;
  }

  /** The controllers the real server runs beside the store: CRD registration and cleanup, namespace cleanup. */
  private afterCommit(type: ResourceType, event: EventType, obj: KubeObject, previous: KubeObject | undefined): void {
    if (type.kind === 'CustomResourceDefinition' && type.group === 'apiextensions.k8s.io') {
      if (event === 'DELETED') {
        const gone = typeFromCrd(obj);
        this.deleteAll(gone, () => true);
        this.types.delete(typeKey(gone));
        for (const w of [...this.watches.watchers]) if (typeKey(w.type) === typeKey(gone)) w.close();
      } else if (!obj.metadata.deletionTimestamp) {
        const t = typeFromCrd(obj);
        this.types.set(typeKey(t), t);
      }
    }
    if (type.kind === 'Namespace' && type.group === '' && event === 'DELETED' && previous) {
      for (const t of this.types.values()) if (t.namespaced) this.deleteAll(t, (o) => o.metadata.namespace === obj.metadata.name);
    }
  }

  private deleteAll(type: ResourceType, which: (o: KubeObject) => boolean): void {
    for (const o of [...this.bucket(type).values()]) if (which(o)) this.commit(type, 'DELETED', clone(o), o);
    this.data.delete(typeKey(type));
  }

  // --- watch

  /**
   * Starts a watch: initial ADDED events (no resourceVersion, "0", or
   * sendInitialEvents) or a replay of the history after `resourceVersion`.
   * Returns false after sending a 410 Expired ERROR event (the caller ends the stream).
   */
  startWatch(w: Watcher, resourceVersion: string | null, sendInitialEvents: boolean): boolean {
    if (sendInitialEvents || !resourceVersion || resourceVersion === '0') {
      for (const o of this.list({ type: w.type, version: w.version, namespace: w.namespace }, w)) w.send({ type: 'ADDED', object: o });
      if (sendInitialEvents && w.bookmarks) w.send(this.watches.bookmark(w, { 'k8s.io/initial-events-end': 'true' }));
    } else if (!this.watches.replay(w, resourceVersion)) return false;
    this.watches.watchers.add(w);
    return true;
  }
}
