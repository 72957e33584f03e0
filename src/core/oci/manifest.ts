import { z } from 'zod';
import { RegistryError } from '../errors.js';
import { parseDigest } from './digest.js';
import { INDEX_MEDIA_TYPES, IMAGE_MEDIA_TYPES, MediaTypes, SCHEMA1_MEDIA_TYPES } from './media-types.js';

/** Manifests larger than this are refused (the spec's suggested limit). */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

const digestString = z.string().refine((d) => {
  try {
    parseDigest(d);
    return true;
  } catch {
    return false;
  }
}, 'invalid digest');

export const descriptorSchema = z.looseObject({
  mediaType: z.string().min(1),
  digest: digestString,
  size: z.number().int().nonnegative(),
  urls: z.array(z.string()).optional(),
  annotations: z.record(z.string(), z.string()).optional(),
  artifactType: z.string().optional(),
  platform: z
    .looseObject({
      architecture: z.string(),
      os: z.string(),
      variant: z.string().optional(),
      'os.version': z.string().optional(),
    })
    .optional(),
});
export type Descriptor = z.infer<typeof descriptorSchema>;

const imageManifestSchema = z.looseObject({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  artifactType: z.string().optional(),
  config: descriptorSchema,
  layers: z.array(descriptorSchema),
  subject: descriptorSchema.optional(),
  annotations: z.record(z.string(), z.string()).optional(),
});

const indexSchema = z.looseObject({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  artifactType: z.string().optional(),
  manifests: z.array(descriptorSchema),
  subject: descriptorSchema.optional(),
  annotations: z.record(z.string(), z.string()).optional(),
});

/** What the registry needs to know about a manifest to store and link it. */
export interface ParsedManifest {
  mediaType: string;
  kind: 'image' | 'index';
  /** Blobs the manifest references (config + layers); empty for an index. */
  blobs: Descriptor[];
  /** Child manifests (index only). */
  manifests: Descriptor[];
  subject?: Descriptor;
  /** `artifactType`, or for an image manifest the config media type (OCI 1.1 referrers rule). */
  artifactType?: string;
  annotations?: Record<string, string>;
  config?: Descriptor;
}

/**
 * Validates manifest bytes against the media type the client sent (Content-Type),
 * falling back to the body's own `mediaType`. Schema 1 is refused.
 */
export function parseManifest(bytes: Buffer, contentType: string | undefined): ParsedManifest {
  if (bytes.length > MAX_MANIFEST_BYTES) {
    throw new RegistryError('MANIFEST_TOO_LARGE', `manifest is ${bytes.length} bytes, the limit is ${MAX_MANIFEST_BYTES}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new RegistryError('MANIFEST_INVALID', 'manifest is not valid JSON');
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new RegistryError('MANIFEST_INVALID', 'manifest must be a JSON object');
  }
  const body = json as Record<string, unknown>;
  const ct = normalizeContentType(contentType);
  const bodyType = typeof body.mediaType === 'string' ? body.mediaType : undefined;
  if ((ct && SCHEMA1_MEDIA_TYPES.has(ct)) || body.schemaVersion === 1) {
    throw new RegistryError('MANIFEST_INVALID', 'Docker schema 1 manifests are not supported; push schema 2 or OCI');
  }
  let mediaType = ct && ct !== 'application/json' && ct !== 'application/octet-stream' ? ct : bodyType;
  if (!mediaType) {
    // OCI allows the mediaType field to be absent; infer it from the shape.
    mediaType = Array.isArray(body.manifests) ? MediaTypes.ociIndex : MediaTypes.ociManifest;
  }
  if (bodyType && bodyType !== mediaType) {
    throw new RegistryError('MANIFEST_INVALID', `Content-Type ${mediaType} does not match the manifest's mediaType ${bodyType}`);
  }
  if (INDEX_MEDIA_TYPES.has(mediaType)) {
    const r = indexSchema.safeParse(json);
    if (!r.success) throw invalid(r.error);
    return {
      mediaType,
      kind: 'index',
      blobs: [],
      manifests: r.data.manifests,
      subject: r.data.subject,
      artifactType: r.data.artifactType,
      annotations: r.data.annotations,
    };
  }
  if (IMAGE_MEDIA_TYPES.has(mediaType)) {
    const r = imageManifestSchema.safeParse(json);
    if (!r.success) throw invalid(r.error);
    if (mediaType === MediaTypes.dockerManifest && r.data.subject) {
      throw new RegistryError('MANIFEST_INVALID', 'Docker schema 2 manifests cannot carry a subject');
    }
    return {
      mediaType,
      kind: 'image',
      blobs: [r.data.config, ...r.data.layers],
      manifests: [],
      subject: r.data.subject,
      artifactType: r.data.artifactType ?? r.data.config.mediaType,
      annotations: r.data.annotations,
      config: r.data.config,
    };
  }
  throw new RegistryError('MANIFEST_INVALID', `unsupported manifest media type: ${mediaType}`);
}

function normalizeContentType(ct: string | undefined): string | undefined {
  if (!ct) return undefined;
  return ct.split(';')[0]!.trim().toLowerCase() || undefined;
}

function invalid(error: z.ZodError): RegistryError {
  const problems = error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
  return new RegistryError('MANIFEST_INVALID', `manifest invalid: ${problems.join('; ')}`, { problems });
}

/** True for layers that must not be pushed to a registry (`urls`-carrying foreign layers). */
export function isForeignLayer(d: Descriptor): boolean {
  return d.mediaType.includes('foreign') || d.mediaType.includes('nondistributable');
}
