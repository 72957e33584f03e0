/**
 * OCI image layouts on disk for skopeo/buildah tests. The implementation is
 * shared with the benchmark harness (bench/oci-layout.mjs, plain ESM so the
 * bench needs no build); this module is its typed entry point for tests.
 *
 *   const img = await buildImage(dir, { tag: 'v1', layers: 3, history: true });
 *   await skopeoCopy(`oci:${dir}:v1`, `docker://${host}/repo/img:v1`);
 */
export {
  MEDIA_TYPES,
  REF_NAME_ANNOTATION,
  blobPath,
  buildImage,
  buildIndex,
  initLayout,
  pseudoRandomChunks,
  readBlob,
  sha256Digest,
  tarHeader,
  tarStream,
  writeBlob,
} from '../../bench/oci-layout.mjs';
export type {
  BuildImageOptions,
  BuildIndexOptions,
  BuiltImage,
  BuiltIndex,
  BuiltIndexEntry,
  Platform,
  TarEntry,
} from '../../bench/oci-layout.mjs';
