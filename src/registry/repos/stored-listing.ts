import { RegistryError } from '../../core/errors.js';
import type { MetadataStore } from '../../metadata/store.js';
import type { TagPage } from './types.js';

/** One page of the tags a repository holds for an image (NAME_UNKNOWN when it holds none of the image). */
export async function storedTags(store: MetadataStore, repoKey: string, image: string, page: { last?: string; n?: number }): Promise<TagPage> {
  if (!(await store.manifests.imageExists(repoKey, image))) {
    throw new RegistryError('NAME_UNKNOWN', `repository ${repoKey} has no image ${image}`, { name: `${repoKey}/${image}` });
  }
  if (page.n === 0) return { tags: [], more: false };
  const tags = await store.tags.list(repoKey, image, { last: page.last, limit: page.n === undefined ? undefined : page.n + 1 });
  const more = page.n !== undefined && tags.length > page.n;
  return { tags: more ? tags.slice(0, page.n) : tags, more };
}

/** One page of the image names a repository holds. */
export async function storedImages(store: MetadataStore, repoKey: string, page: { last?: string; n?: number }): Promise<{ images: string[]; more: boolean }> {
  if (page.n === 0) return { images: [], more: false };
  const rows = await store.manifests.catalog({
    repoKeys: [repoKey],
    last: page.last === undefined ? undefined : `${repoKey}/${page.last}`,
    limit: page.n === undefined ? undefined : page.n + 1,
  });
  const more = page.n !== undefined && rows.length > page.n;
  return { images: (more ? rows.slice(0, page.n) : rows).map((r) => r.image), more };
}
