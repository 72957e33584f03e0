import { describe, expect, it } from '@jest/globals';
import { RegistryError } from '../../src/core/errors.js';
import { digestOf } from '../../src/core/oci/digest.js';
import { isForeignLayer, MAX_MANIFEST_BYTES, parseManifest } from '../../src/core/oci/manifest.js';
import { MediaTypes } from '../../src/core/oci/media-types.js';

const d = (s: string) => digestOf(s);
const config = { mediaType: MediaTypes.ociConfig, digest: d('config'), size: 6 };
const layer = { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: d('layer'), size: 5 };
const dockerConfig = { mediaType: MediaTypes.dockerConfig, digest: d('dconfig'), size: 7 };
const dockerLayer = { mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', digest: d('dlayer'), size: 6 };
const child = { mediaType: MediaTypes.ociManifest, digest: d('child'), size: 500, platform: { architecture: 'amd64', os: 'linux' } };

const buf = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v));

/** The RegistryError `fn` throws (fails the test when it does not throw one). */
function errorOf(fn: () => unknown): RegistryError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(RegistryError);
    return e as RegistryError;
  }
  throw new Error('expected a RegistryError');
}

describe('parseManifest: media types', () => {
  it('OCI image manifest', () => {
    const p = parseManifest(buf({ schemaVersion: 2, mediaType: MediaTypes.ociManifest, config, layers: [layer], annotations: { a: 'b' } }), MediaTypes.ociManifest);
    expect(p).toEqual({
      mediaType: MediaTypes.ociManifest,
      kind: 'image',
      blobs: [config, layer],
      manifests: [],
      subject: undefined,
      artifactType: MediaTypes.ociConfig,
      annotations: { a: 'b' },
      config,
    });
  });

  it('OCI image index', () => {
    const p = parseManifest(buf({ schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests: [child] }), MediaTypes.ociIndex);
    expect(p).toMatchObject({ mediaType: MediaTypes.ociIndex, kind: 'index', blobs: [], manifests: [child] });
    expect(p.config).toBeUndefined();
  });

  it('Docker schema 2 manifest', () => {
    const p = parseManifest(
      buf({ schemaVersion: 2, mediaType: MediaTypes.dockerManifest, config: dockerConfig, layers: [dockerLayer] }),
      MediaTypes.dockerManifest,
    );
    expect(p).toMatchObject({ mediaType: MediaTypes.dockerManifest, kind: 'image', blobs: [dockerConfig, dockerLayer], config: dockerConfig });
  });

  it('Docker manifest list', () => {
    const entry = { ...child, mediaType: MediaTypes.dockerManifest };
    const p = parseManifest(buf({ schemaVersion: 2, mediaType: MediaTypes.dockerList, manifests: [entry] }), MediaTypes.dockerList);
    expect(p).toMatchObject({ mediaType: MediaTypes.dockerList, kind: 'index', manifests: [entry] });
  });

  it('OCI artifact: artifactType and subject', () => {
    const subject = { mediaType: MediaTypes.ociManifest, digest: d('subject'), size: 10 };
    const empty = { mediaType: MediaTypes.ociEmpty, digest: d('{}'), size: 2 };
    const p = parseManifest(
      buf({ schemaVersion: 2, mediaType: MediaTypes.ociManifest, artifactType: 'application/vnd.example.sig', config: empty, layers: [layer], subject }),
      MediaTypes.ociManifest,
    );
    expect(p.artifactType).toBe('application/vnd.example.sig');
    expect(p.subject).toEqual(subject);
    const idx = parseManifest(buf({ schemaVersion: 2, mediaType: MediaTypes.ociIndex, artifactType: 'application/x', manifests: [], subject }), undefined);
    expect(idx).toMatchObject({ kind: 'index', artifactType: 'application/x', subject });
  });

  it('without artifactType, an image manifest\'s artifact type is its config media type', () => {
    const p = parseManifest(buf({ schemaVersion: 2, config: { ...config, mediaType: 'application/vnd.example.config' }, layers: [] }), undefined);
    expect(p.artifactType).toBe('application/vnd.example.config');
  });

  it('an empty layers list is valid', () => {
    expect(parseManifest(buf({ schemaVersion: 2, config, layers: [] }), MediaTypes.ociManifest).blobs).toEqual([config]);
  });

  it('keeps unknown fields of descriptors (looseObject) without complaint', () => {
    const p = parseManifest(buf({ schemaVersion: 2, config: { ...config, 'x-extra': 1 }, layers: [], extra: true }), undefined);
    expect(p.config).toEqual({ ...config, 'x-extra': 1 });
  });
});

describe('parseManifest: media type resolution', () => {
  it('infers an OCI manifest when neither Content-Type nor mediaType say', () => {
    expect(parseManifest(buf({ schemaVersion: 2, config, layers: [layer] }), undefined).mediaType).toBe(MediaTypes.ociManifest);
  });

  it('infers an OCI index from a manifests array', () => {
    expect(parseManifest(buf({ schemaVersion: 2, manifests: [child] }), undefined)).toMatchObject({ mediaType: MediaTypes.ociIndex, kind: 'index' });
  });

  it.each(['application/json', 'application/octet-stream', '', undefined])('takes the body\'s mediaType under Content-Type %p', (ct) => {
    const p = parseManifest(buf({ schemaVersion: 2, mediaType: MediaTypes.dockerManifest, config: dockerConfig, layers: [] }), ct);
    expect(p.mediaType).toBe(MediaTypes.dockerManifest);
  });

  it('takes the Content-Type when the body has no mediaType', () => {
    expect(parseManifest(buf({ schemaVersion: 2, config: dockerConfig, layers: [] }), MediaTypes.dockerManifest).mediaType).toBe(MediaTypes.dockerManifest);
  });

  it('ignores Content-Type parameters and case', () => {
    const p = parseManifest(buf({ schemaVersion: 2, config, layers: [] }), `${MediaTypes.ociManifest.toUpperCase()}; charset=utf-8`);
    expect(p.mediaType).toBe(MediaTypes.ociManifest);
  });

  it('refuses a Content-Type that differs from mediaType', () => {
    const e = errorOf(() => parseManifest(buf({ schemaVersion: 2, mediaType: MediaTypes.ociManifest, config, layers: [] }), MediaTypes.dockerManifest));
    expect(e.code).toBe('MANIFEST_INVALID');
    expect(e.message).toBe(`Content-Type ${MediaTypes.dockerManifest} does not match the manifest's mediaType ${MediaTypes.ociManifest}`);
  });

  it('refuses an index body pushed as an image manifest (shape checked against the media type)', () => {
    const e = errorOf(() => parseManifest(buf({ schemaVersion: 2, manifests: [child] }), MediaTypes.ociManifest));
    expect(e.code).toBe('MANIFEST_INVALID');
    expect((e.detail as { problems: string[] }).problems).toEqual(expect.arrayContaining([expect.stringMatching(/^config: /), expect.stringMatching(/^layers: /)]));
  });

  it('refuses unsupported media types', () => {
    const e = errorOf(() => parseManifest(buf({ schemaVersion: 2 }), 'application/vnd.example+json'));
    expect(e.code).toBe('MANIFEST_INVALID');
    expect(e.message).toBe('unsupported manifest media type: application/vnd.example+json');
    expect(errorOf(() => parseManifest(buf({ schemaVersion: 2, mediaType: 'text/plain', config, layers: [] }), undefined)).message).toBe(
      'unsupported manifest media type: text/plain',
    );
  });
});

describe('parseManifest: refusals', () => {
  it.each([
    ['a schema 1 Content-Type', { schemaVersion: 2, config, layers: [] }, MediaTypes.dockerSchema1],
    ['a signed schema 1 Content-Type', { schemaVersion: 1, name: 'x' }, MediaTypes.dockerSchema1Signed],
    ['schemaVersion 1 in the body', { schemaVersion: 1, name: 'x', fsLayers: [] }, undefined],
    ['schemaVersion 1 under application/json', { schemaVersion: 1 }, 'application/json'],
  ])('schema 1 (%s) is MANIFEST_INVALID', (_what, body, ct) => {
    const e = errorOf(() => parseManifest(buf(body), ct));
    expect(e.code).toBe('MANIFEST_INVALID');
    expect(e.message).toBe('Docker schema 1 manifests are not supported; push schema 2 or OCI');
  });

  it.each([
    ['not JSON', '{"schemaVersion":', 'manifest is not valid JSON'],
    ['empty', '', 'manifest is not valid JSON'],
    ['an array', '[]', 'manifest must be a JSON object'],
    ['null', 'null', 'manifest must be a JSON object'],
    ['a string', '"x"', 'manifest must be a JSON object'],
  ])('%s is MANIFEST_INVALID', (_what, text, message) => {
    const e = errorOf(() => parseManifest(Buffer.from(text), MediaTypes.ociManifest));
    expect(e.code).toBe('MANIFEST_INVALID');
    expect(e.message).toBe(message);
  });

  it('a subject on a Docker schema 2 manifest is MANIFEST_INVALID', () => {
    const subject = { mediaType: MediaTypes.dockerManifest, digest: d('s'), size: 1 };
    const e = errorOf(() => parseManifest(buf({ schemaVersion: 2, mediaType: MediaTypes.dockerManifest, config: dockerConfig, layers: [], subject }), undefined));
    expect(e.message).toBe('Docker schema 2 manifests cannot carry a subject');
  });

  it.each([
    ['schemaVersion 3', { schemaVersion: 3, config, layers: [] }, 'schemaVersion: '],
    ['no schemaVersion', { config, layers: [] }, 'schemaVersion: '],
    ['no config', { schemaVersion: 2, layers: [] }, 'config: '],
    ['layers not an array', { schemaVersion: 2, config, layers: {} }, 'layers: '],
    ['a malformed digest', { schemaVersion: 2, config, layers: [{ ...layer, digest: 'sha256:abc' }] }, 'layers.0.digest: invalid digest'],
    ['an unsupported digest algorithm', { schemaVersion: 2, config: { ...config, digest: `md5:${'a'.repeat(32)}` }, layers: [] }, 'config.digest: invalid digest'],
    ['a negative size', { schemaVersion: 2, config, layers: [{ ...layer, size: -1 }] }, 'layers.0.size: '],
    ['a fractional size', { schemaVersion: 2, config, layers: [{ ...layer, size: 1.5 }] }, 'layers.0.size: '],
    ['a string size', { schemaVersion: 2, config: { ...config, size: '6' }, layers: [] }, 'config.size: '],
    ['an empty mediaType', { schemaVersion: 2, config: { ...config, mediaType: '' }, layers: [] }, 'config.mediaType: '],
    ['no descriptor mediaType', { schemaVersion: 2, config, layers: [{ digest: layer.digest, size: 1 }] }, 'layers.0.mediaType: '],
    ['non-string annotations', { schemaVersion: 2, config, layers: [], annotations: { a: 1 } }, 'annotations.a: '],
    ['urls not strings', { schemaVersion: 2, config, layers: [{ ...layer, urls: [1] }] }, 'layers.0.urls.0: '],
    ['a malformed subject', { schemaVersion: 2, config, layers: [], subject: { mediaType: 'x', digest: 'nope', size: 1 } }, 'subject.digest: invalid digest'],
  ])('an image manifest with %s is MANIFEST_INVALID naming the path', (_what, body, problem) => {
    const e = errorOf(() => parseManifest(buf(body), MediaTypes.ociManifest));
    expect(e.code).toBe('MANIFEST_INVALID');
    const problems = (e.detail as { problems: string[] }).problems;
    expect(problems.some((p) => p.startsWith(problem))).toBe(true);
    expect(e.message).toBe(`manifest invalid: ${problems.join('; ')}`);
  });

  it.each([
    ['a child without digest', { schemaVersion: 2, manifests: [{ mediaType: MediaTypes.ociManifest, size: 1 }] }, 'manifests.0.digest: '],
    ['a platform without os', { schemaVersion: 2, manifests: [{ ...child, platform: { architecture: 'amd64' } }] }, 'manifests.0.platform.os: '],
    ['manifests not an array', { schemaVersion: 2, manifests: 'x' }, 'manifests: '],
  ])('an index with %s is MANIFEST_INVALID naming the path', (_what, body, problem) => {
    const e = errorOf(() => parseManifest(buf(body), MediaTypes.ociIndex));
    expect(e.code).toBe('MANIFEST_INVALID');
    expect((e.detail as { problems: string[] }).problems.some((p) => p.startsWith(problem))).toBe(true);
  });
});

describe('parseManifest: size limit', () => {
  it('refuses more than MAX_MANIFEST_BYTES with MANIFEST_TOO_LARGE (413)', () => {
    const e = errorOf(() => parseManifest(Buffer.alloc(MAX_MANIFEST_BYTES + 1, ' '), MediaTypes.ociManifest));
    expect(e.code).toBe('MANIFEST_TOO_LARGE');
    expect(e.status).toBe(413);
    expect(e.message).toBe(`manifest is ${MAX_MANIFEST_BYTES + 1} bytes, the limit is ${MAX_MANIFEST_BYTES}`);
  });

  it('accepts exactly MAX_MANIFEST_BYTES', () => {
    const base = JSON.stringify({ schemaVersion: 2, config, layers: [], annotations: { pad: '' } });
    const padded = base.replace('"pad":""', `"pad":"${'p'.repeat(MAX_MANIFEST_BYTES - base.length)}"`);
    const bytes = Buffer.from(padded);
    expect(bytes.length).toBe(MAX_MANIFEST_BYTES);
    expect(parseManifest(bytes, MediaTypes.ociManifest).kind).toBe('image');
  });
});

describe('isForeignLayer', () => {
  it.each([
    ['application/vnd.docker.image.rootfs.foreign.diff.tar.gzip', true],
    ['application/vnd.oci.image.layer.nondistributable.v1.tar+gzip', true],
    ['application/vnd.oci.image.layer.v1.tar+gzip', false],
    ['application/vnd.docker.image.rootfs.diff.tar.gzip', false],
  ])('%s → %s', (mediaType, foreign) => {
    expect(isForeignLayer({ mediaType, digest: d('x'), size: 1 })).toBe(foreign);
  });
});
