/**
 * `maxUniqueTags` of a local repository: which tags of an image go when a push
 * leaves more than N. Pure: the manifest service gathers the facts inside the
 * push's transaction and deletes what this answers.
 */

export interface RetentionInput {
  /** Keep this many units; 0 or less keeps everything. */
  max: number;
  /** The image's tags, most recently updated first. */
  tags: readonly string[];
  /**
   * Tags set by the push being committed. They rank first whatever their
   * timestamp says: in PostgreSQL `now()` is the transaction's start, which can
   * be older than a concurrent push that committed meanwhile.
   */
  pushed?: Iterable<string>;
  /** Platform tag → the index tag it belongs to; the two form one unit. */
  indexTagOf?: ReadonlyMap<string, string>;
  /** True for tags `tagImmutability` protects: never removed. */
  isProtected?: (tag: string) => boolean;
}

/**
 * Tags grouped into units (an index tag with its platform tags; any other tag
 * alone), ordered most recent first: a unit ranks by its most recent member,
 * units holding a just-pushed tag first.
 */
export function retentionUnits(input: Omit<RetentionInput, 'max' | 'isProtected'>): string[][] {
  const present = new Set(input.tags);
  const pushed = new Set([...(input.pushed ?? [])].filter((t) => present.has(t)));
  const ordered = [...input.tags.filter((t) => pushed.has(t)), ...input.tags.filter((t) => !pushed.has(t))];
  const units = new Map<string, string[]>();
  for (const tag of ordered) {
    const parent = input.indexTagOf?.get(tag);
    // A platform tag whose index tag is gone stands alone.
    const key = parent !== undefined && present.has(parent) ? parent : tag;
    const unit = units.get(key);
    if (unit) unit.push(tag);
    else units.set(key, [tag]);
  }
  return [...units.values()];
}

/**
 * The tags to remove: every member of the units ranked beyond `max`, except
 * units with a protected member. Those stay whole (an index tag and its
 * platform tags are always kept or removed together) without freeing a slot:
 * the limit picks the N most recent units first, and protection only vetoes
 * removals, so a recent protected tag takes one of the N places while an old
 * one simply survives beyond them.
 */
export function tagsBeyondLimit(input: RetentionInput): string[] {
  if (input.max <= 0 || input.tags.length <= input.max) return [];
  const isProtected = input.isProtected ?? (() => false);
  return retentionUnits(input)
    .slice(input.max)
    .filter((unit) => !unit.some(isProtected))
    .flat();
}
