import { RegistryError } from '../../core/errors.js';
import { parseManifest, type Descriptor } from '../../core/oci/manifest.js';
import type { RepositoryBackend, RequestContext } from '../repos/types.js';

/** What Artifactory's Tag Info and Docker Tag Visualization show for a tag (SPEC §6). */
export interface TagInfo {
  tag: string;
  digest: string;
  mediaType: string;
  /** Config plus layers; for an index, the sum over its platforms. */
  totalSize: number;
  labelCount: number;
  labels: Record<string, string>;
  platforms: PlatformInfo[];
  history: HistoryEntry[];
}

export interface PlatformInfo {
  digest: string;
  size: number;
  os: string;
  architecture: string;
  variant?: string;
  /** The platform's own info URL. */
  infoUrl: string;
}

export interface HistoryEntry {
  created?: string;
  createdBy?: string;
  emptyLayer: boolean;
  /** The layer this step produced (absent for empty layers). */
  digest?: string;
  size?: number;
}

/** Image configs are small JSON documents; anything larger is not one. */
const MAX_CONFIG_BYTES = 8 * 1024 * 1024;

interface ImageConfig {
  config?: { Labels?: Record<string, string> | null };
  history?: Array<{ created?: string; created_by?: string; empty_layer?: boolean }>;
}

/**
 * Reads a tag's manifest and image config through the repository backend (so
 * it works for local, remote and virtual repositories alike) and assembles
 * the tag info: sizes, labels, platforms and history aligned with layers.
 */
export async function tagInfo(
  repo: RepositoryBackend,
  image: string,
  reference: string,
  ctx: RequestContext,
  infoUrl: (digest: string) => string,
): Promise<TagInfo> {
  const m = await repo.getManifest(image, reference, ctx);
  const parsed = parseManifest(m.content, m.mediaType);
  if (parsed.kind === 'index') {
    const platforms: PlatformInfo[] = [];
    let totalSize = 0;
    for (const child of parsed.manifests) {
      if (!child.platform || child.platform.os === 'unknown') continue;
      platforms.push({
        digest: child.digest,
        size: child.size,
        os: child.platform.os,
        architecture: child.platform.architecture,
        ...(child.platform.variant ? { variant: child.platform.variant } : {}),
        infoUrl: infoUrl(child.digest),
      });
      const childManifest = await repo.getManifest(image, child.digest, ctx).catch(() => undefined);
      if (childManifest) totalSize += sizeOf(parseManifest(childManifest.content, childManifest.mediaType).blobs);
    }
    return { tag: reference, digest: m.digest, mediaType: m.mediaType, totalSize, labelCount: 0, labels: {}, platforms, history: [] };
  }
  const config = parsed.config ? await readConfig(repo, image, parsed.config, ctx) : {};
  const labels = config.config?.Labels ?? {};
  const layers = parsed.blobs.slice(1);
  return {
    tag: reference,
    digest: m.digest,
    mediaType: m.mediaType,
    totalSize: sizeOf(parsed.blobs),
    labelCount: Object.keys(labels).length,
    labels,
    platforms: [],
    history: alignHistory(config.history ?? [], layers),
  };
}

/** Pairs each non-empty history step with the next layer, in order (the image spec's rule). */
export function alignHistory(history: NonNullable<ImageConfig['history']>, layers: Descriptor[]): HistoryEntry[] {
  let next = 0;
  return history.map((h) => {
    const base = { ...(h.created ? { created: h.created } : {}), ...(h.created_by ? { createdBy: h.created_by } : {}) };
    if (h.empty_layer) return { ...base, emptyLayer: true };
    const layer = layers[next++];
    return { ...base, emptyLayer: false, ...(layer ? { digest: layer.digest, size: layer.size } : {}) };
  });
}

function sizeOf(blobs: Descriptor[]): number {
  return blobs.reduce((n, b) => n + b.size, 0);
}

async function readConfig(repo: RepositoryBackend, image: string, config: Descriptor, ctx: RequestContext): Promise<ImageConfig> {
  if (config.size > MAX_CONFIG_BYTES) return {};
  const opened = await repo.openBlob(image, config.digest, undefined, ctx);
  if (!opened.stream) return {};
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of opened.stream) {
    size += (chunk as Buffer).length;
    if (size > MAX_CONFIG_BYTES) {
      opened.stream.destroy();
      return {};
    }
    chunks.push(chunk as Buffer);
  }
  try {
    const json = JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
    return typeof json === 'object' && json !== null ? (json as ImageConfig) : {};
  } catch {
    // An artifact's "config" need not be JSON: it simply has no labels or history.
    return {};
  }
}

export function assertReference(reference: string | undefined): string {
  if (!reference) throw new RegistryError('BAD_REQUEST', 'name a tag or digest: /api/docker/<repoKey>/info/<image>/<tag>');
  return reference;
}
