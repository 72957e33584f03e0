import type { V2Route } from './call.js';
import { deleteBlob, getBlob } from './blobs.js';
import { base, catalog, listReferrers, listTags } from './listing.js';
import { deleteManifest, getManifest, putManifest } from './manifests.js';
import { issueToken } from './token.js';
import { cancelUpload, completeUpload, patchUpload, startUpload, uploadStatus } from './uploads.js';

/**
 * Every registry API URL, matched against the path after `/v2/` (the same
 * table serves `/v2/<repoKey>/<image>/…` and `/api/docker/<repoKey>/v2/<image>/…`).
 * Order matters: upload routes before the blob route that would also match them.
 */
export const V2_ROUTES: readonly V2Route[] = [
  {
    template: '/v2/',
    pattern: /^$/,
    methods: {
      GET: { scope: 'registry', action: 'authenticated', handler: base },
      HEAD: { scope: 'registry', action: 'authenticated', handler: base },
    },
  },
  { template: '/v2/token', pattern: /^token$/, methods: { GET: { scope: 'registry', action: 'public', handler: issueToken } } },
  {
    template: '/v2/_catalog',
    pattern: /^_catalog$/,
    methods: { GET: { scope: 'registry', action: 'authenticated', handler: catalog, tokenScope: 'registry:catalog:*' } },
  },
  {
    template: '/v2/{name}/manifests/{reference}',
    pattern: /^(?<name>.+)\/manifests\/(?<reference>[^/]+)$/,
    methods: {
      GET: { scope: 'repository', action: 'read', handler: getManifest, leaf: 'reference' },
      HEAD: { scope: 'repository', action: 'read', handler: getManifest, leaf: 'reference' },
      PUT: { scope: 'repository', action: 'write', handler: putManifest, leaf: 'reference', audit: 'manifest.put' },
      DELETE: { scope: 'repository', action: 'delete', handler: deleteManifest, leaf: 'reference', audit: 'manifest.delete' },
    },
  },
  {
    template: '/v2/{name}/blobs/uploads/',
    pattern: /^(?<name>.+)\/blobs\/uploads\/?$/,
    methods: { POST: { scope: 'repository', action: 'write', handler: startUpload, audit: 'blob.upload' } },
  },
  {
    template: '/v2/{name}/blobs/uploads/{uuid}',
    pattern: /^(?<name>.+)\/blobs\/uploads\/(?<uuid>[^/]+)$/,
    methods: {
      GET: { scope: 'repository', action: 'write', handler: uploadStatus },
      PATCH: { scope: 'repository', action: 'write', handler: patchUpload },
      PUT: { scope: 'repository', action: 'write', handler: completeUpload, audit: 'blob.upload' },
      DELETE: { scope: 'repository', action: 'write', handler: cancelUpload, audit: 'upload.cancel' },
    },
  },
  {
    template: '/v2/{name}/blobs/{digest}',
    pattern: /^(?<name>.+)\/blobs\/(?<digest>[^/]+)$/,
    methods: {
      GET: { scope: 'repository', action: 'read', handler: getBlob },
      HEAD: { scope: 'repository', action: 'read', handler: getBlob },
      DELETE: { scope: 'repository', action: 'delete', handler: deleteBlob, audit: 'blob.delete' },
    },
  },
  {
    template: '/v2/{name}/tags/list',
    pattern: /^(?<name>.+)\/tags\/list$/,
    methods: { GET: { scope: 'repository', action: 'read', handler: listTags } },
  },
  {
    template: '/v2/{name}/referrers/{digest}',
    pattern: /^(?<name>.+)\/referrers\/(?<digest>[^/]+)$/,
    methods: { GET: { scope: 'repository', action: 'read', handler: listReferrers } },
  },
];
