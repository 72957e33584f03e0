/**
 * The metadata port: everything but blob bytes. One implementation (pg/) runs the
 * same SQL on a PostgreSQL server (pg.Pool) and on embedded PGlite. Every method
 * is a single statement or runs inside the caller's transaction; none buffers blobs.
 * Every implementation must pass test/conformance/metadata-store.ts.
 *
 * Ordering: every list of names is in byte-wise lexical order (COLLATE "C"),
 * which is what the distribution spec's `last`/`n` pagination expects.
 */
export interface MetadataStore {
  readonly repositories: RepositoriesStore;
  readonly blobs: BlobsStore;
  readonly manifests: ManifestsStore;
  readonly tags: TagsStore;
  readonly uploads: UploadsStore;
  readonly users: UsersStore;
  readonly groups: GroupsStore;
  readonly permissions: PermissionsStore;
  readonly accessTokens: AccessTokensStore;
  readonly audit: AuditStore;
  readonly leases: LeasesStore;
  readonly settings: SettingsStore;
  readonly promotions: PromotionsStore;
  readonly gc: GcStore;

  /**
   * Runs `fn` in one database transaction; the store handed to `fn` is bound to it.
   * Commits when `fn` resolves, rolls back when it throws (and rethrows).
   * Nested calls on a transaction-bound store run inside the same transaction.
   */
  transaction<T>(fn: (tx: MetadataStore) => Promise<T>): Promise<T>;

  /** Takes a transaction-scoped advisory lock (pg_advisory_xact_lock) on `name`; only valid inside `transaction`. */
  lock(name: string): Promise<void>;

  /** Round-trips to the database (for /readyz). */
  ping(): Promise<void>;

  /**
   * Tells every process subscribed to `channel` (PostgreSQL NOTIFY; inside a
   * transaction it is delivered at commit, and not at all on rollback).
   */
  notify(channel: string, payload: string): Promise<void>;

  /**
   * Calls `handler` for each notification on `channel` (this process's own
   * included) until the returned function is called. Reconnects by itself after
   * a database outage; notifications sent meanwhile are lost, so callers keep a
   * periodic resync as well.
   */
  subscribe(channel: string, handler: (payload: string) => void): Promise<() => Promise<void>>;

  close(): Promise<void>;
}

export type RepositoryClass = 'local' | 'remote' | 'virtual';

export interface RepositoryRecord {
  key: string;
  rclass: RepositoryClass;
  /** The Artifactory-shaped configuration, already validated by the caller. */
  config: Record<string, unknown>;
  /** `namespace/name` of the DockerRepository resource that owns it, or null. */
  managedBy: string | null;
  createdAt: Date;
  updatedAt: Date;
}

export interface RepositoryInput {
  key: string;
  rclass: RepositoryClass;
  config: Record<string, unknown>;
  managedBy?: string | null;
}

export interface RepositoriesStore {
  /** All repositories ordered by key, optionally of one class. */
  list(rclass?: RepositoryClass): Promise<RepositoryRecord[]>;
  get(key: string): Promise<RepositoryRecord | undefined>;
  /** Inserts; resolves false (and changes nothing) when the key exists. */
  create(input: RepositoryInput): Promise<boolean>;
  /** Replaces class, config and managedBy; resolves false when the key does not exist. */
  update(input: RepositoryInput): Promise<boolean>;
  /** Deletes the repository and (by cascade) its links, manifests, tags and uploads. False when absent. */
  delete(key: string): Promise<boolean>;
}

export interface BlobRecord {
  digest: string;
  size: number;
  /** Storage key the bytes live under. */
  storageKey: string;
  createdAt: Date;
}

export interface BlobsStore {
  /** The blob if any repository holds it. */
  get(digest: string): Promise<BlobRecord | undefined>;
  /** Inserts the blob if absent; resolves the stored record (the existing one when present). */
  put(blob: { digest: string; size: number; storageKey: string }): Promise<BlobRecord>;
  /** Links a stored blob into an image of a repository; idempotent. */
  link(repoKey: string, image: string, digest: string): Promise<void>;
  /** The blob when it is linked into this image of this repository. */
  getLinked(repoKey: string, image: string, digest: string): Promise<BlobRecord | undefined>;
  /** Removes a link; false when there was none. The blob row stays (GC decides). */
  unlink(repoKey: string, image: string, digest: string): Promise<boolean>;
  /** Of `digests`, those NOT linked into this image of this repository (input order kept). */
  missing(repoKey: string, image: string, digests: string[]): Promise<string[]>;
}

export interface ManifestRecord {
  repoKey: string;
  image: string;
  digest: string;
  mediaType: string;
  artifactType: string | null;
  /** Digest of the OCI 1.1 `subject`, when the manifest has one. */
  subject: string | null;
  size: number;
  /** Exact bytes as pushed. */
  content: Buffer;
  annotations: Record<string, string> | null;
  createdAt: Date;
}

export type ManifestSummary = Omit<ManifestRecord, 'content'>;

export interface ManifestReference {
  digest: string;
  kind: 'blob' | 'manifest';
}

export interface ManifestsStore {
  get(repoKey: string, image: string, digest: string): Promise<ManifestRecord | undefined>;
  /**
   * Inserts the manifest and its references if absent (a digest's bytes never
   * change, so an existing row is kept as it is). Resolves true when inserted.
   */
  put(manifest: Omit<ManifestRecord, 'createdAt'>, references: ManifestReference[]): Promise<boolean>;
  /** Deletes the manifest, its references and (by cascade) the tags pointing at it. False when absent. */
  delete(repoKey: string, image: string, digest: string): Promise<boolean>;
  /** Of `digests`, those with no manifest in this image of this repository (input order kept). */
  missing(repoKey: string, image: string, digests: string[]): Promise<string[]>;
  /** Manifests whose subject is `subject`, optionally only of one artifactType, ordered by digest. */
  referrers(repoKey: string, image: string, subject: string, artifactType?: string): Promise<ManifestSummary[]>;
  /** The references a stored manifest was put with. */
  references(repoKey: string, image: string, digest: string): Promise<ManifestReference[]>;
  /** Digests of the manifests of this image that reference `child` (blob or manifest), ordered. */
  referencing(repoKey: string, image: string, child: string): Promise<string[]>;
  /**
   * Images of the repositories, `repoKey/image` pairs holding at least one
   * manifest, ordered by `repoKey || '/' || image`, after `last` (that same
   * joined form), at most `limit`. `repoKeys` undefined means all repositories.
   */
  catalog(opts: { repoKeys?: string[]; last?: string; limit?: number }): Promise<Array<{ repoKey: string; image: string }>>;
  /** True when the image holds at least one manifest. */
  imageExists(repoKey: string, image: string): Promise<boolean>;
  /**
   * Per image of a repository, ordered by name: how many tags and manifests it
   * has and the bytes it holds (its manifests and linked blobs, each counted once).
   */
  imageStats(repoKey: string): Promise<Array<{ image: string; tags: number; manifests: number; size: number }>>;
  /**
   * How many images (names holding at least one manifest) each repository has,
   * for `repoKeys` or all; repositories without images are absent.
   */
  imageCounts(repoKeys?: readonly string[]): Promise<Map<string, number>>;
}

export interface TagRecord {
  repoKey: string;
  image: string;
  name: string;
  digest: string;
  createdAt: Date;
  updatedAt: Date;
}

export interface TagsStore {
  /** Digest the tag points at, or undefined. */
  resolve(repoKey: string, image: string, tag: string): Promise<string | undefined>;
  /** Points the tag at a stored manifest (creating or re-pointing it); resolves the previous digest, if any. */
  set(repoKey: string, image: string, tag: string, digest: string): Promise<{ previous?: string }>;
  /** False when the tag did not exist. */
  delete(repoKey: string, image: string, tag: string): Promise<boolean>;
  /** Tag names in lexical order, strictly after `last`, at most `limit`. */
  list(repoKey: string, image: string, opts?: { last?: string; limit?: number }): Promise<string[]>;
  /** Full records for one image, most recently updated first. */
  records(repoKey: string, image: string): Promise<TagRecord[]>;
  /** Tag names pointing at `digest`, lexical order. */
  forDigest(repoKey: string, image: string, digest: string): Promise<string[]>;
}

export interface UploadRecord {
  id: string;
  repoKey: string;
  image: string;
  /** Bytes received so far (the next PATCH must start here). */
  size: number;
  driverState: Record<string, unknown>;
  createdAt: Date;
  updatedAt: Date;
}

export interface UploadsStore {
  create(upload: { id: string; repoKey: string; image: string; driverState: Record<string, unknown> }): Promise<UploadRecord>;
  get(id: string): Promise<UploadRecord | undefined>;
  /**
   * Compare-and-set: moves the session from `expectedSize` to `size` with the new
   * driver state. False (nothing changed) when the stored size is not `expectedSize`
   * or the session is gone — another request got there first.
   */
  advance(id: string, expectedSize: number, size: number, driverState: Record<string, unknown>): Promise<boolean>;
  /** False when absent. */
  delete(id: string): Promise<boolean>;
  /** Sessions not touched since `before`, oldest first, at most `limit`. */
  stale(before: Date, limit: number): Promise<UploadRecord[]>;
}

export interface UserRecord {
  name: string;
  passwordHash: string | null;
  email: string | null;
  admin: boolean;
  createdAt: Date;
  updatedAt: Date;
}

export interface UsersStore {
  get(name: string): Promise<UserRecord | undefined>;
  list(): Promise<UserRecord[]>;
  /** Creates or replaces the user's fields. */
  upsert(user: { name: string; passwordHash: string | null; email?: string | null; admin: boolean }): Promise<void>;
  delete(name: string): Promise<boolean>;
}

export interface SettingsStore {
  get<T = unknown>(name: string): Promise<T | undefined>;
  set(name: string, value: unknown): Promise<void>;
  /** Stores `value` unless the name is set; resolves the value that is stored afterwards. */
  setIfAbsent<T>(name: string, value: T): Promise<T>;
}

export interface GroupRecord {
  name: string;
  description: string | null;
  createdAt: Date;
  updatedAt: Date;
}

export interface GroupsStore {
  get(name: string): Promise<GroupRecord | undefined>;
  /** All groups ordered by name. */
  list(): Promise<GroupRecord[]>;
  /** Creates or replaces the description. */
  upsert(group: { name: string; description?: string | null }): Promise<void>;
  /** Deletes the group and its memberships; false when absent. */
  delete(name: string): Promise<boolean>;
  /** User names in the group, ordered. */
  members(name: string): Promise<string[]>;
  /** Replaces the group's members (users must exist, else the FK error propagates). */
  setMembers(name: string, users: string[]): Promise<void>;
  /** Group names the user belongs to, ordered. */
  ofUser(user: string): Promise<string[]>;
  /** Replaces the user's memberships (groups must exist). */
  setUserGroups(user: string, groups: string[]): Promise<void>;
}

export interface PermissionTargetRecord {
  name: string;
  /** The Artifactory v2 permission target JSON, validated by the caller. */
  target: Record<string, unknown>;
  createdAt: Date;
  updatedAt: Date;
}

export interface PermissionsStore {
  /** All permission targets ordered by name. */
  list(): Promise<PermissionTargetRecord[]>;
  get(name: string): Promise<PermissionTargetRecord | undefined>;
  /** Creates or replaces; resolves true when created. */
  upsert(name: string, target: Record<string, unknown>): Promise<boolean>;
  delete(name: string): Promise<boolean>;
}

export interface AccessTokenRecord {
  /** The token's `jti`. */
  id: string;
  userName: string;
  scope: string;
  description: string | null;
  createdAt: Date;
  expiresAt: Date | null;
  revokedAt: Date | null;
}

export interface AccessTokensStore {
  create(token: { id: string; userName: string; scope: string; description?: string | null; expiresAt: Date | null }): Promise<AccessTokenRecord>;
  get(id: string): Promise<AccessTokenRecord | undefined>;
  /** Tokens of one user, or of everybody, newest first. */
  list(userName?: string): Promise<AccessTokenRecord[]>;
  /** Marks the token revoked (idempotent); false when no such token. */
  revoke(id: string): Promise<boolean>;
}

export type AuditOutcome = 'success' | 'failure' | 'denied';

export interface AuditEvent {
  id: number;
  at: Date;
  /** User name, `anonymous`, or `system`. */
  actor: string;
  /** Dotted verb: `login`, `token.create`, `user.update`, `manifest.put`, `blob.delete`, … */
  action: string;
  /** What it was done to: `docker-local/team/app@sha256:…`, a user or repository name. */
  target: string | null;
  outcome: AuditOutcome;
  clientIp: string | null;
  details: Record<string, unknown> | null;
}

export interface AuditStore {
  append(event: Omit<AuditEvent, 'id' | 'at'>): Promise<void>;
  /** Newest first; `before` is an id (exclusive) for paging; filters are exact matches. */
  list(opts: { limit: number; before?: number; actor?: string; action?: string }): Promise<AuditEvent[]>;
}

/** Short-lived exclusive claims shared by every process on the database (one upstream fetch per blob). */
export interface LeasesStore {
  /** Takes `key` for `owner` until `ttlMs` from now, if it is free or expired (or already `owner`'s). */
  acquire(key: string, owner: string, ttlMs: number): Promise<boolean>;
  /** Gives `key` up if `owner` holds it. */
  release(key: string, owner: string): Promise<void>;
}

/** One promoted tag: what went from where to where, by whom, when. */
export interface PromotionRecord {
  id: number;
  at: Date;
  /** User name, or `system` for the operator. */
  actor: string;
  sourceRepo: string;
  targetRepo: string;
  image: string;
  targetImage: string;
  tag: string;
  targetTag: string;
  /** The manifest (image or index) the tag pointed at. */
  digest: string;
  /** False for a move. */
  copy: boolean;
}

/**
 * A promotion run under an idempotency key (the operator's `Promotion`
 * resource uid): recorded in the promotion's transaction, so the key is
 * recorded exactly when the promotion committed.
 */
export interface PromotionRequestRecord {
  requestId: string;
  /** What the key was first used for, as JSON (the caller's normalized request). */
  request: Record<string, unknown>;
  /** What that promotion resolved, as JSON. */
  result: Record<string, unknown>;
  at: Date;
}

export interface PromotionsStore {
  /** Appends one promoted tag; resolves the stored record (id and `at` assigned by the database). */
  record(promotion: Omit<PromotionRecord, 'id' | 'at'>): Promise<PromotionRecord>;
  /**
   * Promotions from or into `repoKey`, newest first (by id: rows of one
   * transaction share `at`), at most `limit`, with ids below `before` when given.
   */
  list(repoKey: string, opts: { limit: number; before?: number }): Promise<PromotionRecord[]>;
  /** The request recorded under `requestId` (by a committed transaction, or this one), if any. */
  getRequest(requestId: string): Promise<PromotionRequestRecord | undefined>;
  /**
   * Only inside `transaction`: holds `requestId` until the transaction ends,
   * first waiting while another transaction holds it; then resolves the
   * request recorded under it, if any — one that transaction committed meanwhile
   * included. Undefined means this transaction may run the request and
   * `recordRequest` it; concurrent holders of one id run one after the other.
   */
  claimRequest(requestId: string): Promise<PromotionRequestRecord | undefined>;
  /**
   * Records a request and its result under `requestId` (in the transaction
   * that claimed the id and made the promotion's writes). Resolves false, and
   * changes nothing, when the id is already recorded.
   */
  recordRequest(input: Omit<PromotionRequestRecord, 'at'>): Promise<boolean>;
}

/** A digest the operator saw in a running Pod: never garbage-collected. */
export interface ProtectedDigestRecord {
  digest: string;
  reason: string | null;
  pod: string | null;
  recordedAt: Date;
}

export interface ManifestKey {
  repoKey: string;
  image: string;
  digest: string;
}

export interface GcBlob {
  digest: string;
  size: number;
  storageKey: string;
}

/**
 * Online garbage collection (docs/adr/0005-online-gc.md). Live manifests: tagged,
 * untagged younger than the retention, protected, and (recursively) index
 * children and referrers of live ones. Live blobs: referenced by a manifest,
 * protected, or committed/linked within the grace window.
 */
export interface GcStore {
  /** Manifests that are not live, ordered by repository, image and digest, after `after`, at most `limit`. */
  deadManifests(opts: { untaggedRetentionSecs: number; limit: number; after?: ManifestKey }): Promise<ManifestKey[]>;
  /**
   * Deletes those of `manifests` that are still untagged, older than the retention,
   * unprotected, no index's child and no existing manifest's referrer (re-checked
   * under row locks, so a tag racing in wins). Resolves the deleted ones.
   */
  deleteManifests(manifests: ManifestKey[], untaggedRetentionSecs: number): Promise<ManifestKey[]>;
  /** How many blob rows there are. */
  countBlobs(): Promise<number>;
  /**
   * Blobs that are not live, by digest after `after`, at most `limit`. With
   * `untaggedRetentionSecs`, only references from live manifests count (a dry run,
   * which deletes no manifest); without it every stored manifest's references do.
   */
  deadBlobs(opts: { graceSecs: number; limit: number; after?: string; untaggedRetentionSecs?: number }): Promise<GcBlob[]>;
  /** Takes the per-digest advisory locks (`blob:<digest>`) in digest order; only inside a transaction. */
  lockBlobs(digests: string[]): Promise<void>;
  /**
   * Inside a transaction holding `lockBlobs(digests)`: deletes the rows (and links)
   * of those of `digests` still not live, queues their objects for deletion and
   * records them as collected. Resolves the deleted ones.
   */
  collect(digests: string[], graceSecs: number): Promise<GcBlob[]>;
  /** Queued objects (rows already deleted), oldest first, at most `limit`. */
  pendingObjects(limit: number): Promise<GcBlob[]>;
  /**
   * Inside a transaction holding `lockBlobs(digests)`: removes them from the queue;
   * resolves the storage keys whose blob is still absent (delete those objects
   * before committing). A blob committed again meanwhile keeps its object.
   */
  settlePending(digests: string[]): Promise<string[]>;
  /** Marks a blob as just committed (restarts its grace window). */
  touch(digest: string): Promise<void>;
  /** Forgets collected digests older than `olderThanSecs`. */
  pruneCollected(olderThanSecs: number): Promise<void>;
  protect(input: { digest: string; reason?: string | null; pod?: string | null }): Promise<void>;
  unprotect(digest: string): Promise<boolean>;
  /** Ordered by digest. */
  listProtected(): Promise<ProtectedDigestRecord[]>;
  /** Records a run in the one-row `gc_state`. */
  saveRun(run: { startedAt: Date; finishedAt: Date | null; summary: Record<string, unknown> }): Promise<void>;
  lastRun(): Promise<{ startedAt: Date; finishedAt: Date | null; summary: Record<string, unknown> | null } | undefined>;
}
