export const MediaTypes = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociEmpty: 'application/vnd.oci.empty.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerSchema1: 'application/vnd.docker.distribution.manifest.v1+json',
  dockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
} as const;

export const INDEX_MEDIA_TYPES: ReadonlySet<string> = new Set([MediaTypes.ociIndex, MediaTypes.dockerList]);
export const IMAGE_MEDIA_TYPES: ReadonlySet<string> = new Set([MediaTypes.ociManifest, MediaTypes.dockerManifest]);
export const MANIFEST_MEDIA_TYPES: ReadonlySet<string> = new Set([...INDEX_MEDIA_TYPES, ...IMAGE_MEDIA_TYPES]);
export const SCHEMA1_MEDIA_TYPES: ReadonlySet<string> = new Set([
  MediaTypes.dockerSchema1,
  MediaTypes.dockerSchema1Signed,
]);

export function isIndexMediaType(mt: string): boolean {
  return INDEX_MEDIA_TYPES.has(mt);
}
