import { expect } from '@jest/globals';
import { createHash } from 'node:crypto';
import { MediaTypes } from '../../src/core/oci/media-types.js';
import type { TestRegistry } from './registry.js';

/** Small building blocks for registry API integration tests: digests, blobs, manifests, error bodies. */

export const sha256 = (b: Buffer | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;
export const sha512 = (b: Buffer | string): string => `sha512:${createHash('sha512').update(b).digest('hex')}`;

export { MediaTypes };

export const basic = (user: string, password: string): string => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

/** A unique image name per call, so tests sharing one registry never see each other's content. */
let counter = 0;
export function uniqueImage(prefix = 'img'): string {
  counter += 1;
  return `${prefix}-${process.pid}-${counter}`;
}

export interface PushedBlob {
  digest: string;
  size: number;
  data: Buffer;
}

/** Monolithic upload; asserts 201. */
export async function pushBlob(reg: TestRegistry, name: string, data: Buffer | string): Promise<PushedBlob> {
  const buf = Buffer.isBuffer(data) ? data : Buffer.from(data);
  const digest = sha256(buf);
  const r = await reg.fetch(`/v2/${name}/blobs/uploads/?digest=${digest}`, { method: 'POST', body: buf });
  expect(r.status).toBe(201);
  return { digest, size: buf.length, data: buf };
}

export interface Desc {
  mediaType: string;
  digest: string;
  size: number;
  [k: string]: unknown;
}

export const desc = (mediaType: string, blob: { digest: string; size: number }, extra: object = {}): Desc => ({
  mediaType,
  digest: blob.digest,
  size: blob.size,
  ...extra,
});

export function ociManifest(config: Desc, layers: Desc[], extra: object = {}): Buffer {
  return Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.ociManifest, config, layers, ...extra }));
}

export function ociIndex(manifests: Desc[], extra: object = {}): Buffer {
  return Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests, ...extra }));
}

export async function putManifest(
  reg: TestRegistry,
  name: string,
  reference: string,
  body: Buffer,
  contentType: string | undefined = MediaTypes.ociManifest,
): Promise<Response> {
  return reg.fetch(`/v2/${name}/manifests/${reference}`, {
    method: 'PUT',
    body,
    headers: contentType ? { 'content-type': contentType } : {},
  });
}

export interface PushedImage {
  digest: string;
  manifest: Buffer;
  config: PushedBlob;
  layer: PushedBlob;
  descriptor: Desc;
}

/** Pushes a one-layer OCI image (unique content) and tags it when `tag` is given; asserts 201. */
export async function pushImage(reg: TestRegistry, name: string, tag?: string, extra: object = {}): Promise<PushedImage> {
  const salt = `${name}-${tag ?? ''}-${Math.random()}`;
  const config = await pushBlob(reg, name, `{"architecture":"amd64","os":"linux","salt":"${salt}"}`);
  const layer = await pushBlob(reg, name, `layer of ${salt}`);
  const manifest = ociManifest(desc(MediaTypes.ociConfig, config), [desc('application/vnd.oci.image.layer.v1.tar', layer)], extra);
  const digest = sha256(manifest);
  const r = await putManifest(reg, name, tag ?? digest, manifest);
  expect(r.status).toBe(201);
  return { digest, manifest, config, layer, descriptor: desc(MediaTypes.ociManifest, { digest, size: manifest.length }) };
}

export interface OciErrorBody {
  errors: Array<{ code: string; message: string; detail: unknown }>;
}

/**
 * Asserts status, error code and the exact OCI error shape
 * (`{"errors":[{"code","message","detail"}]}`, JSON); resolves the one error entry.
 */
export async function expectOciError(r: Response, status: number, code: string): Promise<{ code: string; message: string; detail: unknown }> {
  const text = await r.text();
  let body: OciErrorBody | undefined;
  try {
    body = JSON.parse(text) as OciErrorBody;
  } catch {
    body = undefined;
  }
  // Status and code together, so a failure shows both (and the raw body when it is not JSON).
  expect({ status: r.status, code: body?.errors?.[0]?.code ?? text }).toEqual({ status, code });
  expect(r.headers.get('content-type')).toMatch(/^application\/json/);
  expect(Object.keys(body!)).toEqual(['errors']);
  expect(body!.errors).toHaveLength(1);
  expect(Object.keys(body!.errors[0]!).sort()).toEqual(['code', 'detail', 'message']);
  return body!.errors[0]!;
}

export const bytesOf = async (r: Response): Promise<Buffer> => Buffer.from(await r.arrayBuffer());
