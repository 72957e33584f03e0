/**
 * Ant-style path patterns, as Artifactory uses them for permission targets and
 * external dependency rules: `?` one character, `*` any characters within a
 * segment, `**` any number of whole segments (zero included).
 */
export interface AntMatchOptions {
  /**
   * True: the pattern may match something *under* `path` (or `path` itself).
   * Used to decide whether an image is visible at all when a pattern names tags.
   */
  partial?: boolean;
}

const segmentCache = new Map<string, RegExp>();

export function antMatch(pattern: string, path: string, opts: AntMatchOptions = {}): boolean {
  const p = split(pattern);
  const s = split(path);
  return matchFrom(p, 0, s, 0, opts.partial ?? false);
}

function split(x: string): string[] {
  return x.split('/').filter((seg) => seg !== '');
}

function matchFrom(p: string[], pi: number, s: string[], si: number, partial: boolean): boolean {
  while (pi < p.length) {
    const seg = p[pi]!;
    if (seg === '**') {
      // Collapse runs of '**', then try every split point.
      while (pi + 1 < p.length && p[pi + 1] === '**') pi++;
      if (pi + 1 === p.length) return true;
      for (let k = si; k <= s.length; k++) if (matchFrom(p, pi + 1, s, k, partial)) return true;
      return false;
    }
    if (si >= s.length) return partial;
    if (!segmentMatch(seg, s[si]!)) return false;
    pi++;
    si++;
  }
  return si === s.length;
}

function segmentMatch(pattern: string, segment: string): boolean {
  if (pattern === '*') return true;
  if (!pattern.includes('*') && !pattern.includes('?')) return pattern === segment;
  let re = segmentCache.get(pattern);
  if (!re) {
    const body = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]');
    re = new RegExp(`^${body}$`);
    if (segmentCache.size > 10_000) segmentCache.clear();
    segmentCache.set(pattern, re);
  }
  return re.test(segment);
}
