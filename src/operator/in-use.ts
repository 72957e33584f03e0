/**
 * In-use protection (SPEC §9): the digests running Pods were started from are
 * never garbage-collected or pruned. Pure functions from the Pods the operator
 * sees to the rows `protected_digests` should hold.
 */
import type { ProtectedDigestRecord } from '../metadata/store.js';
import type { KubeObject } from './resources.js';

/** The `reason` of rows this operator owns; rows with another reason were added by hand and are left alone. */
export const POD_REASON = 'running pod';

interface ContainerStatus {
  imageID?: string;
}

interface PodStatus {
  phase?: string;
  containerStatuses?: ContainerStatus[];
  initContainerStatuses?: ContainerStatus[];
  ephemeralContainerStatuses?: ContainerStatus[];
}

const DIGEST = /@(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;

/**
 * The registry host and digest of a container's `imageID`
 * (`docker-pullable://host/repo@sha256:…` or `host/repo@sha256:…`); undefined
 * for a bare image id, which names no registry.
 */
export function parseImageId(imageId: string): { host: string; digest: string } | undefined {
  const ref = imageId.replace(/^[a-z-]+:\/\//, '');
  const m = DIGEST.exec(ref);
  if (!m) return undefined;
  const slash = ref.indexOf('/');
  if (slash < 0) return undefined;
  return { host: ref.slice(0, slash).toLowerCase(), digest: m[1]! };
}

/** The registry references (`host`, `digest`) of the containers of Pods that are not finished. */
function* runningImages(pods: Iterable<KubeObject>): Generator<{ host: string; digest: string; pod: string }> {
  for (const pod of pods) {
    const status = (pod.status ?? {}) as PodStatus;
    if (status.phase === 'Succeeded' || status.phase === 'Failed') continue;
    const all = [...(status.containerStatuses ?? []), ...(status.initContainerStatuses ?? []), ...(status.ephemeralContainerStatuses ?? [])];
    for (const c of all) {
      const parsed = c.imageID ? parseImageId(c.imageID) : undefined;
      if (parsed) yield { ...parsed, pod: `${pod.metadata.namespace ?? ''}/${pod.metadata.name}` };
    }
  }
}

/** The registry hosts running Pods pulled their images from. */
export function imageHosts(pods: Iterable<KubeObject>): Set<string> {
  const out = new Set<string>();
  for (const image of runningImages(pods)) out.add(image.host);
  return out;
}

/**
 * Digest → the first Pod (`namespace/name`) running it, for Pods that are not
 * finished. With `hosts`, only images pulled from those registry hosts count —
 * drydock's own, and the upstreams it mirrors for containerd, whose pulls name
 * the upstream in `imageID`; without, every image does (a digest drydock does
 * not hold costs one row).
 */
export function digestsInUse(pods: Iterable<KubeObject>, hosts?: Iterable<string>): Map<string, string> {
  const wanted = hosts ? new Set([...hosts].map((h) => h.toLowerCase())) : undefined;
  const out = new Map<string, string>();
  for (const { host, digest, pod } of runningImages(pods)) {
    if (wanted && !wanted.has(host)) continue;
    if (!out.has(digest)) out.set(digest, pod);
  }
  return out;
}

/** The rows to add and remove so the operator's protections match `inUse`. */
export function protectionChanges(
  inUse: ReadonlyMap<string, string>,
  stored: readonly ProtectedDigestRecord[],
): { protect: Array<{ digest: string; pod: string }>; unprotect: string[] } {
  const storedDigests = new Set(stored.map((r) => r.digest));
  const protect = [...inUse].filter(([digest]) => !storedDigests.has(digest)).map(([digest, pod]) => ({ digest, pod }));
  const unprotect = stored.filter((r) => r.reason === POD_REASON && !inUse.has(r.digest)).map((r) => r.digest);
  return { protect, unprotect };
}
