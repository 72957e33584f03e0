import { RegistryError } from '../../../core/errors.js';
import { assertImageName, isValidRepoKey } from '../../../core/oci/reference.js';

/**
 * Where a registry API request points, whatever addressing method the client
 * used (SPEC §3): the repository path method (`/v2/<repoKey>/<image>/…`), or a
 * prefix that fixes the repository (`/api/docker/<repoKey>/v2/…`, its
 * `/artifactory` alias; later the subdomain and port methods).
 */
export interface V2Address {
  /** The repository fixed by the prefix; undefined for the path method. */
  fixedRepoKey?: string;
  /** Path prefix up to and including `/v2`, as the client sent it. */
  prefix: string;
  /** The part after `<prefix>/`, e.g. `team/app/manifests/1.0`. */
  rest: string;
}

const DIRECT_API = /^(\/artifactory)?\/api\/docker\/([^/]+)\/v2(?:\/(.*))?$/;

/** Parses the request path; undefined when it is not a registry API path. */
export function parseV2Path(path: string): V2Address | undefined {
  if (path === '/v2' || path === '/v2/') return { prefix: '/v2', rest: '' };
  if (path.startsWith('/v2/')) return { prefix: '/v2', rest: path.slice(4) };
  const m = DIRECT_API.exec(path);
  if (m) {
    const repoKey = decodeKey(m[2]!);
    return { fixedRepoKey: repoKey, prefix: `${m[1] ?? ''}/api/docker/${m[2]}/v2`, rest: m[3] ?? '' };
  }
  return undefined;
}

/** A malformed escape (`%zz`) stays as sent, to be refused as an invalid key rather than crash the request. */
function decodeKey(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}

export interface ResolvedName {
  repoKey: string;
  image: string;
  /** The name as the client addressed it (`docker-local/team/app`, or `team/app` under a fixed repository). */
  clientName: string;
  /** `<prefix>/<clientName>`, the base for Location and Link headers. */
  namePath: string;
}

/** Splits the `<name>` of a route into repository key and image, validating both. */
export function resolveName(addr: V2Address, name: string): ResolvedName {
  let repoKey: string;
  let image: string;
  if (addr.fixedRepoKey !== undefined) {
    repoKey = addr.fixedRepoKey;
    image = name;
  } else {
    const slash = name.indexOf('/');
    if (slash < 0) {
      throw new RegistryError(
        'NAME_INVALID',
        `'${name}' names no image: address images as <host>/<repository key>/<image>, e.g. <host>/docker-local/${name}`,
        { name },
      );
    }
    repoKey = name.slice(0, slash);
    image = name.slice(slash + 1);
  }
  if (!isValidRepoKey(repoKey)) {
    throw new RegistryError('NAME_INVALID', `invalid repository key '${repoKey}'`, { name });
  }
  assertImageName(image);
  return { repoKey, image, clientName: name, namePath: `${addr.prefix}/${name}` };
}

/** Set by a port-method listener (SPEC §3): the repository a whole port serves. */
export const PORT_REPOSITORY = Symbol('drydock.portRepository');

/**
 * The repository the Host header names under the subdomain method
 * (`<key>.<subdomainOf>`), or undefined.
 */
export function repoKeyFromHost(hostname: string | undefined, subdomainOf: string | undefined): string | undefined {
  if (!hostname || !subdomainOf) return undefined;
  const suffix = `.${subdomainOf.toLowerCase()}`;
  const host = hostname.toLowerCase();
  if (!host.endsWith(suffix)) return undefined;
  const label = host.slice(0, -suffix.length);
  return isValidRepoKey(label) && !label.includes('.') ? label : undefined;
}
