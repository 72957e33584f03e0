/**
 * Protobuf request bodies.
 *
 * kubectl's generators (`kubectl create namespace|secret|configmap|serviceaccount`)
 * use typed clients that send protobuf. Responses are always JSON (those clients
 * accept it); request bodies of these kinds are decoded here. Field numbers are
 * those of k8s.io/api's generated.proto.
 */
import { badRequest } from './errors.js';
import { isObj, type Obj } from './json.js';
import { KubeApiError } from './types.js';

type ProtoKind = 'string' | 'bytes' | 'int' | 'bool' | 'time' | { map: 'string' | 'bytes' } | ProtoMessage;
interface ProtoField {
  name: string;
  kind: ProtoKind;
  repeated?: boolean;
}
interface ProtoMessage {
  fields: Record<number, ProtoField>;
}

const msg = (fields: Record<number, ProtoField>): ProtoMessage => ({ fields });
const f = (name: string, kind: ProtoKind, repeated = false): ProtoField => ({ name, kind, repeated });

const PROTO_OWNER_REFERENCE = msg({ 1: f('kind', 'string'), 3: f('name', 'string'), 4: f('uid', 'string'), 5: f('apiVersion', 'string'), 6: f('controller', 'bool'), 7: f('blockOwnerDeletion', 'bool') });
const PROTO_OBJECT_META = msg({
  1: f('name', 'string'),
  2: f('generateName', 'string'),
  3: f('namespace', 'string'),
  5: f('uid', 'string'),
  6: f('resourceVersion', 'string'),
  7: f('generation', 'int'),
  8: f('creationTimestamp', 'time'),
  9: f('deletionTimestamp', 'time'),
  10: f('deletionGracePeriodSeconds', 'int'),
  11: f('labels', { map: 'string' }),
  12: f('annotations', { map: 'string' }),
  13: f('ownerReferences', PROTO_OWNER_REFERENCE, true),
  14: f('finalizers', 'string', true),
});
const PROTO_OBJECT_REFERENCE = msg({ 1: f('kind', 'string'), 2: f('namespace', 'string'), 3: f('name', 'string'), 4: f('uid', 'string'), 5: f('apiVersion', 'string') });
const PROTO_KINDS: Record<string, ProtoMessage> = {
  'v1/Namespace': msg({ 1: f('metadata', PROTO_OBJECT_META), 2: f('spec', msg({ 1: f('finalizers', 'string', true) })), 3: f('status', msg({ 1: f('phase', 'string') })) }),
  'v1/Secret': msg({ 1: f('metadata', PROTO_OBJECT_META), 2: f('data', { map: 'bytes' }), 3: f('type', 'string'), 4: f('stringData', { map: 'string' }), 5: f('immutable', 'bool') }),
  'v1/ConfigMap': msg({ 1: f('metadata', PROTO_OBJECT_META), 2: f('data', { map: 'string' }), 3: f('binaryData', { map: 'bytes' }), 4: f('immutable', 'bool') }),
  'v1/ServiceAccount': msg({
    1: f('metadata', PROTO_OBJECT_META),
    2: f('secrets', PROTO_OBJECT_REFERENCE, true),
    3: f('imagePullSecrets', msg({ 1: f('name', 'string') }), true),
    4: f('automountServiceAccountToken', 'bool'),
  }),
};

class ProtoReader {
  pos = 0;
  constructor(private readonly buf: Buffer) {}
  done(): boolean {
    return this.pos >= this.buf.length;
  }
  varint(): number {
    let result = 0;
    let scale = 1;
    for (;;) {
      const b = this.buf[this.pos++];
      if (b === undefined) throw badRequest('truncated protobuf body');
      result += (b & 0x7f) * scale;
      if (b < 0x80) return result;
      scale *= 128;
    }
  }
  bytes(): Buffer {
    const n = this.varint();
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  skip(wireType: number): void {
    if (wireType === 0) this.varint();
    else if (wireType === 1) this.pos += 8;
    else if (wireType === 2) this.bytes();
    else if (wireType === 5) this.pos += 4;
    else throw badRequest(`unsupported protobuf wire type ${wireType}`);
  }
}

/** Go's JSON of the decoded struct drops empty strings and zero numbers (omitempty); messages are kept. */
function decodeProtoMessage(buf: Buffer, desc: ProtoMessage): Obj {
  const r = new ProtoReader(buf);
  const out: Obj = {};
  while (!r.done()) {
    const key = r.varint();
    const field = desc.fields[Math.floor(key / 8)];
    const wireType = key & 7;
    if (!field) {
      r.skip(wireType);
      continue;
    }
    const value = decodeProtoValue(r, wireType, field.kind);
    if (value === undefined) continue;
    if (isObj(value) && typeof field.kind === 'object' && 'map' in field.kind) out[field.name] = { ...(isObj(out[field.name]) ? (out[field.name] as Obj) : {}), ...value };
    else if (field.repeated) out[field.name] = [...(Array.isArray(out[field.name]) ? (out[field.name] as unknown[]) : []), value];
    else out[field.name] = value;
  }
  return out;
}

function decodeProtoValue(r: ProtoReader, wireType: number, kind: ProtoKind): unknown {
  if (kind === 'int' || kind === 'bool') {
    const n = wireType === 0 ? r.varint() : (r.skip(wireType), 0);
    return kind === 'bool' ? n !== 0 : n === 0 ? undefined : n;
  }
  const bytes = r.bytes();
  if (kind === 'string') return bytes.length ? bytes.toString('utf8') : undefined;
  if (kind === 'bytes') return bytes.toString('base64');
  if (kind === 'time') {
    const t = decodeProtoMessage(bytes, msg({ 1: f('seconds', 'int') }));
    return typeof t.seconds === 'number' ? new Date(t.seconds * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z') : undefined;
  }
  if ('map' in kind) {
    const entry = decodeProtoMessage(bytes, msg({ 1: f('key', 'string'), 2: f('value', kind.map) }));
    return { [String(entry.key ?? '')]: entry.value ?? '' };
  }
  return decodeProtoMessage(bytes, kind);
}

/** The `k8s\0` + runtime.Unknown envelope: typeMeta (1), raw (2). */
export function decodeProtobufBody(raw: Buffer): Obj {
  if (raw.subarray(0, 4).toString('latin1') !== 'k8s\0') throw badRequest('protobuf body without the k8s envelope');
  const envelope = decodeProtoMessage(raw.subarray(4), msg({ 1: f('typeMeta', msg({ 1: f('apiVersion', 'string'), 2: f('kind', 'string') })), 2: f('raw', 'bytes') }));
  const typeMeta = isObj(envelope.typeMeta) ? envelope.typeMeta : {};
  const gvk = `${String(typeMeta.apiVersion)}/${String(typeMeta.kind)}`;
  const desc = PROTO_KINDS[gvk];
  if (!desc) {
    throw new KubeApiError(415, 'UnsupportedMediaType', `the emulator decodes protobuf only for ${Object.keys(PROTO_KINDS).join(', ')}; send ${gvk} as application/json`);
  }
  const obj = decodeProtoMessage(Buffer.from(String(envelope.raw ?? ''), 'base64'), desc);
  return { apiVersion: typeMeta.apiVersion, kind: typeMeta.kind, ...obj };
}
