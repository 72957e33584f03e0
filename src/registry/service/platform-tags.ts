/**
 * Platform tags (`platformTags` of a local repository): an index or manifest
 * list pushed as `T` also tags each platform image `T-<os>-<arch>[-<variant>]`,
 * as Artifactory does for buildx pushes, so one platform can be pulled or
 * scanned by tag. Pure: the manifest service decides when to apply them.
 */
import type { Descriptor } from '../../core/oci/manifest.js';
import { isValidTag } from '../../core/oci/reference.js';

export interface PlatformTag {
  tag: string;
  /** The child manifest the tag points at. */
  digest: string;
}

/** buildx marks its provenance/SBOM entries this way (and gives them platform unknown/unknown). */
const REFERENCE_TYPE_ANNOTATION = 'vnd.docker.reference.type';

/**
 * `<os>-<arch>[-<variant>]` of an index entry, or undefined when the entry is
 * not a runnable platform: no `platform`, or buildx's `unknown/unknown`
 * attestation entries, which would otherwise all claim `T-unknown-unknown`.
 */
export function platformSuffix(child: Pick<Descriptor, 'platform' | 'annotations'>): string | undefined {
  const p = child.platform;
  if (!p || !p.os || !p.architecture) return undefined;
  if (p.os === 'unknown' || p.architecture === 'unknown') return undefined;
  if (child.annotations?.[REFERENCE_TYPE_ANNOTATION] !== undefined) return undefined;
  return p.variant ? `${p.os}-${p.architecture}-${p.variant}` : `${p.os}-${p.architecture}`;
}

/**
 * The platform tags of `children` (an index's `manifests`) under `tag`, in
 * index order. When two entries share a platform (Windows images differing
 * only in `os.version`), the first wins, as a client choosing by platform would
 * pick it. Names outside the tag grammar (over 128 characters, odd platform
 * strings) are skipped rather than failing the push.
 */
export function platformTagsFor(tag: string, children: readonly Pick<Descriptor, 'digest' | 'platform' | 'annotations'>[]): PlatformTag[] {
  const out: PlatformTag[] = [];
  const seen = new Set<string>();
  for (const child of children) {
    const suffix = platformSuffix(child);
    if (suffix === undefined) continue;
    const name = `${tag}-${suffix}`;
    if (seen.has(name) || !isValidTag(name)) continue;
    seen.add(name);
    out.push({ tag: name, digest: child.digest });
  }
  return out;
}

/**
 * Of `names`, those that could be the index tag of another name's platform tag
 * (some other name starts with `<name>-`). Only these are worth reading as
 * indexes when grouping tags into units.
 */
export function possibleIndexTags(names: Iterable<string>): Set<string> {
  const all = new Set(names);
  const out = new Set<string>();
  for (const name of all) {
    for (let i = name.indexOf('-'); i > 0; i = name.indexOf('-', i + 1)) {
      const prefix = name.slice(0, i);
      if (all.has(prefix)) out.add(prefix);
    }
  }
  return out;
}
