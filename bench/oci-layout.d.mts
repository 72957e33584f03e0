export declare const MEDIA_TYPES: {
  readonly ociManifest: 'application/vnd.oci.image.manifest.v1+json';
  readonly ociIndex: 'application/vnd.oci.image.index.v1+json';
  readonly ociConfig: 'application/vnd.oci.image.config.v1+json';
  readonly ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip';
};
export declare const REF_NAME_ANNOTATION: 'org.opencontainers.image.ref.name';

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

export interface BuildImageOptions {
  /** The `org.opencontainers.image.ref.name` the manifest gets in index.json. */
  tag: string;
  /** A layer count (pseudo-random content) or one Buffer per layer (the layer's single file). */
  layers: number | Buffer[];
  /** Uncompressed file bytes per generated layer (default 64 KiB). */
  layerSize?: number;
  /** config.Labels */
  labels?: Record<string, string>;
  /** Add config.history, one entry per layer plus one `empty_layer: true` entry. */
  history?: boolean;
  os?: string;
  architecture?: string;
  variant?: string;
  /** Same seed, same bytes (content and `created`); random when omitted. */
  seed?: string;
}

export interface BuiltImage {
  manifestDigest: string;
  manifestSize: number;
  configDigest: string;
  layerDigests: string[];
  /** Compressed sizes, aligned with layerDigests. */
  layerSizes: number[];
  /** rootfs.diff_ids, aligned with layerDigests. */
  diffIds: string[];
}

export interface BuildIndexOptions {
  tag: string;
  platforms: Platform[];
  /** Layers per platform image (default 1). */
  layers?: number;
  /** Uncompressed bytes per layer (default 16 KiB). */
  layerSize?: number;
  seed?: string;
}

export interface BuiltIndexEntry extends BuiltImage {
  digest: string;
  size: number;
  platform: Platform;
}

export interface BuiltIndex {
  indexDigest: string;
  indexSize: number;
  manifests: BuiltIndexEntry[];
}

export interface TarEntry {
  name: string;
  type?: '0' | '5';
  size?: number;
  chunks?: Iterable<Buffer>;
}

export declare function sha256Digest(bytes: Buffer | string): string;
export declare function blobPath(dir: string, digest: string): string;
export declare function readBlob(dir: string, digest: string): Promise<Buffer>;
export declare function tarHeader(h: { name: string; size?: number; mode?: number; type?: '0' | '5'; mtime?: number }): Buffer;
export declare function tarStream(entries: Iterable<TarEntry>, mtime?: number): Generator<Buffer>;
export declare function pseudoRandomChunks(size: number, ...parts: Array<string | number>): Generator<Buffer>;
export declare function initLayout(dir: string): Promise<void>;
export declare function writeBlob(dir: string, bytes: Buffer): Promise<{ digest: string; size: number }>;
export declare function buildImage(dir: string, opts: BuildImageOptions): Promise<BuiltImage>;
export declare function buildIndex(dir: string, opts: BuildIndexOptions): Promise<BuiltIndex>;
