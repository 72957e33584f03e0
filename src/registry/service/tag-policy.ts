import { RegistryError } from '../../core/errors.js';

/**
 * Tag immutability (SPEC §5, a local repository's `tagImmutability`), pure so
 * that every path that points or removes tags — manifest push and delete,
 * promotion, the operator — applies the same rule. Patterns are globs over the
 * whole tag: `*` any run of characters (so `**` is the same as `*`), `?`
 * exactly one; everything else matches itself.
 */

/** What the rule needs of a repository configuration (remote and virtual ones have no patterns). */
export interface TagPolicyConfig {
  key: string;
  tagImmutability?: readonly string[];
}

/** Compiled patterns; matched on every tag write. */
const compiled = new Map<string, RegExp>();

/** The glob `pattern` as an anchored regular expression (no `g` flag: `test` stays stateless). */
export function globToRegExp(pattern: string): RegExp {
  let re = compiled.get(pattern);
  if (!re) {
    const body = [...pattern].map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[.+^${}()|[\]\\]/g, '\\$&'))).join('');
    re = new RegExp(`^${body}$`, 's');
    // Patterns come from repository configurations: few, but bound the cache anyway.
    if (compiled.size >= 1000) compiled.clear();
    compiled.set(pattern, re);
  }
  return re;
}

/** The first `tagImmutability` pattern of the repository that matches `tag`, or undefined. */
export function immutableRule(config: TagPolicyConfig, tag: string): string | undefined {
  return config.tagImmutability?.find((p) => globToRegExp(p).test(tag));
}

/**
 * Throws unless `tag` may go from `current` to `next` (undefined `current`:
 * the tag does not exist yet; undefined `next`: it is being deleted). A tag
 * matching a `tagImmutability` rule may be created, or set again to the digest
 * it already names; re-pointing it is TAG_INVALID (400) and deleting it DENIED
 * (403), both naming the rule.
 */
export function assertTagMutable(config: TagPolicyConfig, tag: string, current: string | undefined, next: string | undefined): void {
  if (current === undefined || current === next) return;
  const rule = immutableRule(config, tag);
  if (rule === undefined) return;
  const what = `tag '${tag}' is immutable in repository '${config.key}' (rule '${rule}')`;
  const detail = { repository: config.key, tag, rule, current, ...(next === undefined ? {} : { next }) };
  if (next === undefined) throw new RegistryError('DENIED', `${what}: it cannot be deleted`, detail);
  throw new RegistryError('TAG_INVALID', `${what}: it points at ${current} and cannot be re-pointed to ${next}`, detail);
}

/**
 * The advisory lock (`MetadataStore.lock`) every writer of an image's tags
 * takes inside its transaction, so decisions that read the tags and then write
 * them (immutability, retention, promotion) never interleave.
 */
export function imageTagsLock(repoKey: string, image: string): string {
  // Repository keys have no '/', so the joined form names one image only.
  return `image-tags:${repoKey}/${image}`;
}
