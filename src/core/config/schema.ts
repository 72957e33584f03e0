/**
 * The configuration schema: every setting drydock reads, with its default. Every
 * object is strict, so a misspelt key is an error rather than a silently ignored
 * setting. `loadConfig` (load.ts) applies it to the config file plus environment
 * overrides, then resolves paths and freezes the result.
 */
import { z } from 'zod';
import { repositorySchema } from './repository.js';
import { checkSecurityConfig, groupConfigSchema, permissionTargetSchema, userConfigSchema } from './security.js';

// `.prefault({})` (not `.default({})`): zod 4 returns a `.default` value as-is,
// unparsed, so the nested defaults would be lost when the whole section is absent.

const serverSchema = z
  .strictObject({
    host: z.string().min(1).default('0.0.0.0'),
    // 0 lets the OS pick a free port (tests).
    port: z.int().min(0).max(65535).default(5000),
    /** The external URL clients use (token realm, Location headers, Set Me Up). */
    baseUrl: z
      .url({
        protocol: /^https?$/,
        error: (iss) => (iss.code === 'invalid_format' ? 'must be an absolute http:// or https:// URL' : undefined),
      })
      .optional(),
    /** Serve `<repoKey>.<subdomainOf>` by Host header (the subdomain method). */
    subdomainOf: z.hostname({ error: 'must be a DNS domain name such as registry.example.com' }).optional(),
    /** Trust X-Forwarded-* from a reverse proxy (express `trust proxy`). */
    trustProxy: z.boolean().default(false),
    /** How long in-flight requests may run after SIGTERM before the process exits. */
    shutdownTimeoutMs: z.int().min(0).default(10000),
  })
  .prefault({});

const databaseSchema = z
  .strictObject({
    /** PostgreSQL connection string; absent = embedded PostgreSQL (PGlite) under dataDir. */
    url: z.string().min(1).optional(),
    poolSize: z.int().min(1).default(10),
    // 0 disables PostgreSQL's statement_timeout.
    statementTimeoutMs: z.int().min(0).default(30000),
  })
  .prefault({});

const MiB = 1024 * 1024;

const s3Schema = z
  .strictObject({
    bucket: z.string().min(1),
    region: z.string().min(1).default('us-east-1'),
    /** For S3-compatible stores (MinIO, Ceph RGW); absent = AWS. */
    endpoint: z.url({ protocol: /^https?$/ }).optional(),
    /** Path-style URLs (`endpoint/bucket/key`), which most S3-compatible stores need. */
    forcePathStyle: z.boolean().default(false),
    /** Static credentials (both or neither); absent = the SDK's default chain (env, IRSA, instance role). */
    accessKeyId: z.string().min(1).optional(),
    secretAccessKey: z.string().min(1).optional(),
    /** Key prefix inside the bucket, so several registries can share one. */
    prefix: z.string().default(''),
    /** How blob GETs are answered: proxied (`none`), or 307 to a presigned URL or a CDN. */
    redirect: z
      .strictObject({
        mode: z.enum(['none', 'presigned', 'cdn']).default('none'),
        ttlSecs: z.int().min(1).max(604800).default(300),
        cdnBaseUrl: z.url({ protocol: /^https?$/ }).optional(),
      })
      .prefault({})
      .refine((r) => r.mode !== 'cdn' || r.cdnBaseUrl !== undefined, { path: ['cdnBaseUrl'], message: 'required when redirect.mode is cdn' }),
    /** Multipart part size in bytes; also the memory one streamed write holds. S3 needs at least 5 MiB. */
    multipartPartSize: z
      .int()
      .min(5 * MiB, { error: 'must be at least 5 MiB (5242880), the smallest S3 part' })
      .max(5 * 1024 * MiB)
      .default(8 * MiB),
  })
  .refine((s) => (s.accessKeyId === undefined) === (s.secretAccessKey === undefined), {
    path: ['secretAccessKey'],
    message: 'accessKeyId and secretAccessKey go together',
  });

const gcsSchema = z
  .strictObject({
    bucket: z.string().min(1),
    /** Absent: from the credentials or the environment. */
    projectId: z.string().min(1).optional(),
    /** Another JSON API endpoint (an emulator); the client then sends no credentials. Absent = Google. */
    apiEndpoint: z.url({ protocol: /^https?$/ }).optional(),
    /** Service-account key file; absent = Application Default Credentials (workload identity, metadata server). */
    keyFilename: z.string().min(1).optional(),
    /** Key prefix inside the bucket, so several registries can share one. */
    prefix: z.string().default(''),
    /** How blob GETs are answered: proxied (`none`), or 307 to a v4 signed URL or a CDN. */
    redirect: z
      .strictObject({
        mode: z.enum(['none', 'signed', 'cdn']).default('none'),
        ttlSecs: z.int().min(1).max(604800).default(300),
        cdnBaseUrl: z.url({ protocol: /^https?$/ }).optional(),
      })
      .prefault({})
      .refine((r) => r.mode !== 'cdn' || r.cdnBaseUrl !== undefined, { path: ['cdnBaseUrl'], message: 'required when redirect.mode is cdn' }),
    /**
     * Largest body written in one request (larger ones stream as a resumable upload)
     * and largest upload-session part; also the memory one streamed write holds.
     * A multiple of 256 KiB, as GCS requires of upload chunks.
     */
    chunkSize: z
      .int()
      .min(256 * 1024, { error: 'must be at least 256 KiB (262144)' })
      .max(1024 * MiB)
      .multipleOf(256 * 1024, { error: 'must be a multiple of 256 KiB (262144)' })
      .default(8 * MiB),
  })
  .refine((g) => g.redirect.mode !== 'signed' || g.keyFilename !== undefined, {
    path: ['keyFilename'],
    message: 'required when redirect.mode is signed (signing needs a service-account key)',
  });

const storageSchema = z
  .strictObject({
    driver: z.enum(['filesystem', 's3', 'gcs']).default('filesystem'),
    filesystem: z
      .strictObject({
        /** Blob root; defaults to `<dataDir>/blobs` when the config is resolved. */
        root: z.string().min(1).optional(),
      })
      .prefault({}),
    /** Required when `driver` is `s3`. */
    s3: s3Schema.optional(),
    /** Required when `driver` is `gcs`. */
    gcs: gcsSchema.optional(),
  })
  .prefault({})
  .superRefine((storage, ctx) => {
    if (storage.driver === 's3' && !storage.s3) {
      ctx.addIssue({ code: 'custom', path: ['s3'], message: 'required when storage.driver is s3' });
    }
    if (storage.driver === 'gcs' && !storage.gcs) {
      ctx.addIssue({ code: 'custom', path: ['gcs'], message: 'required when storage.driver is gcs' });
    }
  });

const authSchema = z
  .strictObject({
    /** The bootstrap `admin` user's password; generated and printed once when absent. */
    adminPassword: z.string().min(1).optional(),
    /** Enable the `anonymous` user (its rights still come from permission targets). */
    anonymousAccess: z.boolean().default(false),
    /** Lifetime of registry (Docker) tokens issued by /v2/token. */
    tokenTtlSecs: z.int().min(30).max(86400).default(300),
    /**
     * PEM private key (EC P-256 → ES256, or RSA → RS256) that signs tokens.
     * Absent: an ES256 key is generated once and stored in the database.
     */
    tokenSigningKey: z.string().includes('PRIVATE KEY', { error: 'must be a PEM private key' }).optional(),
    /** Failed logins allowed per user name and per client address within the window, then 429. */
    loginThrottle: z
      .strictObject({
        perUser: z.int().min(1).default(10),
        perAddress: z.int().min(1).default(100),
        windowSecs: z.int().min(1).default(300),
      })
      .prefault({}),
  })
  .prefault({});

const uploadsSchema = z
  .strictObject({
    /** An upload session untouched this long is abandoned and reclaimed. */
    staleAfterSecs: z.int().min(1).default(86400),
  })
  .prefault({});

/** Online garbage collection (`drydock gc`; docs/adr/0005-online-gc.md). */
const gcSchema = z
  .strictObject({
    /** A blob committed or linked this recently is never collected (pushes in flight). */
    graceSecs: z.int().min(0).default(3600),
    /** An untagged manifest younger than this is kept, with its blobs. */
    untaggedRetentionSecs: z.int().min(0).default(86400),
    /** Blobs per sweep transaction and per storage batch delete (S3 DeleteObjects takes 1000). */
    batchSize: z.int().min(1).max(1000).default(500),
  })
  .prefault({});

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

const logSchema = z.strictObject({ level: z.enum(LOG_LEVELS).default('info') }).prefault({});

const metricsSchema = z.strictObject({ requireAuth: z.boolean().default(false) }).prefault({});

/** Repository keys, and repository ports against each other and the main port, must not collide. */
function checkRepositoryCollisions(value: unknown, ctx: z.RefinementCtx): void {
  const root = value as { server?: { port?: unknown }; repositories?: unknown } | undefined;
  if (!Array.isArray(root?.repositories)) return;
  const keys = new Map<string, number>();
  const ports = new Map<number, number>();
  const serverPort = root.server?.port;
  root.repositories.forEach((repo: unknown, i: number) => {
    // The value may be partially invalid here (see `when` below): skip what failed its own schema.
    if (typeof repo !== 'object' || repo === null) return;
    const { key, port } = repo as { key?: unknown; port?: unknown };
    if (typeof key === 'string') {
      const first = keys.get(key);
      if (first !== undefined) {
        ctx.addIssue({
          code: 'custom',
          input: key,
          path: ['repositories', i, 'key'],
          message: `duplicate repository key "${key}" (also repositories.${first})`,
        });
      } else keys.set(key, i);
    }
    if (typeof port === 'number') {
      const first = ports.get(port);
      if (port === serverPort) {
        ctx.addIssue({
          code: 'custom',
          input: port,
          path: ['repositories', i, 'port'],
          message: `port ${port} is server.port`,
        });
      } else if (first !== undefined) {
        ctx.addIssue({
          code: 'custom',
          input: port,
          path: ['repositories', i, 'port'],
          message: `port ${port} is already used by repositories.${first}`,
        });
      } else ports.set(port, i);
    }
  });
}

export const configSchema = z
  .strictObject({
    server: serverSchema,
    /** Embedded database and default blob root live here; resolved against the working directory. */
    dataDir: z.string().min(1).default('./data'),
    database: databaseSchema,
    storage: storageSchema,
    auth: authSchema,
    uploads: uploadsSchema,
    gc: gcSchema,
    log: logSchema,
    metrics: metricsSchema,
    /** Repositories created or updated at start, idempotently. */
    repositories: z.array(repositorySchema).default([]),
    /** Users, groups and permission targets created or updated at start (after repositories), idempotently. */
    users: z.array(userConfigSchema).default([]),
    groups: z.array(groupConfigSchema).default([]),
    permissions: z.array(permissionTargetSchema).default([]),
  })
  // `when`: run even when other parts of the file are invalid, so every problem is
  // reported in one go (zod skips refinements after the first failure otherwise).
  .superRefine(
    (value, ctx) => {
      checkRepositoryCollisions(value, ctx);
      checkSecurityConfig(value, ctx);
    },
    { when: () => true },
  );

/** What a config file may contain: every field optional where a default exists. */
export type ConfigInput = z.input<typeof configSchema>;
/** The schema's output, before paths are resolved. */
export type ParsedConfig = z.output<typeof configSchema>;

/**
 * Object properties readonly all the way down. Arrays keep their mutable type on
 * purpose: a `readonly T[]` is not assignable to `T[]`, which would stop passing
 * `config.repositories[i]` to code typed with `RepositoryConfig`. The loaded value
 * is frozen at run time anyway, arrays included.
 */
export type DeepReadonly<T> = T extends (infer U)[]
  ? DeepReadonly<U>[]
  : T extends object
    ? { readonly [K in keyof T]: DeepReadonly<T[K]> }
    : T;

/**
 * The loaded configuration (see `loadConfig`): validated, defaults filled,
 * `dataDir` absolute, `storage.filesystem.root` absolute and always present, frozen.
 */
export type Config = DeepReadonly<
  Omit<ParsedConfig, 'dataDir' | 'storage'> & {
    /** Absolute. */
    dataDir: string;
    storage: Omit<ParsedConfig['storage'], 'filesystem'> & {
      filesystem: Omit<ParsedConfig['storage']['filesystem'], 'root'> & {
        /** Absolute; `<dataDir>/blobs` unless set. */
        root: string;
      };
    };
  }
>;
