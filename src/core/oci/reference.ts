import { RegistryError } from '../errors.js';

// Grammar from the OCI distribution spec: path components separated by '/',
// each component lower-case alphanumerics joined by '.', '_', '__' or runs of '-'.
const COMPONENT = '[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*';
const NAME_RE = new RegExp(`^${COMPONENT}(?:/${COMPONENT})*$`);
const TAG_RE = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;
/** drydock repository keys: no underscores (the docker client refuses them), 1–64 chars. */
const REPO_KEY_RE = /^[a-z0-9](?:[a-z0-9.-]{0,62}[a-z0-9])?$/;

/** Longest image name accepted (the spec allows registries to cap the full name). */
export const MAX_NAME_LENGTH = 255;

export function isValidImageName(name: string): boolean {
  return name.length > 0 && name.length <= MAX_NAME_LENGTH && NAME_RE.test(name);
}

export function assertImageName(name: string): void {
  if (!isValidImageName(name)) throw new RegistryError('NAME_INVALID', `invalid image name: ${name}`);
}

export function isValidTag(tag: string): boolean {
  return TAG_RE.test(tag);
}

export function assertTag(tag: string): void {
  if (!isValidTag(tag)) throw new RegistryError('TAG_INVALID', `invalid tag: ${tag}`);
}

export function isValidRepoKey(key: string): boolean {
  return REPO_KEY_RE.test(key);
}

export const REPO_KEY_PATTERN = REPO_KEY_RE.source;
