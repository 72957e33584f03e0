/**
 * The repository configuration schema: one definition shared by the REST API
 * (`PUT /api/repositories/<key>`), the config file's `repositories:` list and the
 * `DockerRepository` custom resource, so the three cannot drift. Field names are
 * Artifactory's repository configuration JSON, plus drydock's own
 * (`platformTags`, `tagImmutability`, `port` and the remote network settings).
 *
 * Every object is strict: an unknown field is an error naming the field, because a
 * misspelt setting silently ignored (`maxUniqueTagz: 5`) is worse than a refusal.
 */
import { z } from 'zod';
import { REPO_KEY_PATTERN } from '../oci/reference.js';

/** The three repository classes, in Artifactory's words. */
export const REPOSITORY_CLASSES = ['local', 'remote', 'virtual'] as const;
export type RepositoryClass = (typeof REPOSITORY_CLASSES)[number];

/** Why a repository key was refused; the same text wherever a key is validated. */
export const REPOSITORY_KEY_RULE =
  "must be 1-64 characters of lower-case letters, digits, '.' and '-' (no underscores: the Docker client refuses them), starting and ending with a letter or digit";

const REPO_KEY_RE = new RegExp(REPO_KEY_PATTERN);

/** A drydock repository key (also used for virtual members and `defaultDeploymentRepo`). */
export const repositoryKeySchema = z.string().regex(REPO_KEY_RE, {
  error: (iss) =>
    typeof iss.input === 'string' ? `invalid repository key ${JSON.stringify(iss.input)}: ${REPOSITORY_KEY_RULE}` : undefined,
});

const portSchema = z.int().min(1).max(65535);

/** Only the format failure gets the custom text; a missing value keeps zod's type issue ("required"). */
const httpUrl = (what: string) =>
  z.url({
    protocol: /^https?$/,
    error: (iss) => (iss.code === 'invalid_format' ? `invalid ${what}: must be an absolute http:// or https:// URL` : undefined),
  });

/** Fields every repository class has. */
const common = {
  key: repositoryKeySchema,
  packageType: z.literal('docker').default('docker'),
  description: z.string().optional(),
  notes: z.string().optional(),
  // Artifactory clients send it on every create; 'V2' is the only API drydock serves.
  dockerApiVersion: z.literal('V2').optional(),
  /** Serve this repository at the root of its own port as well (the "port method"). */
  port: portSchema.optional(),
  /**
   * Artifactory's switch for a repository taken out of service: it resolves
   * nothing and accepts nothing, but keeps its content (a `DockerRepository`
   * deleted with `deletionPolicy: Retain` leaves its repository so).
   */
  blackedOut: z.boolean().optional(),
};

export const localRepositorySchema = z.strictObject({
  ...common,
  rclass: z.literal('local'),
  /** Keep the N most recently updated tags per image; 0 keeps all. */
  maxUniqueTags: z.int().min(0).default(0),
  /** Also tag each platform of a pushed index as `<tag>-<os>-<arch>[-<variant>]`. */
  platformTags: z.boolean().default(true),
  /** Tag globs (`v*`, `release-**`) that may never be re-pointed once pushed. */
  tagImmutability: z.array(z.string().min(1)).default([]),
});

export const remoteRepositorySchema = z.strictObject({
  ...common,
  rclass: z.literal('remote'),
  url: httpUrl('upstream URL'),
  username: z.string().optional(),
  password: z.string().optional(),
  /** Follow the upstream's Bearer token challenge (Docker Hub needs it). */
  enableTokenAuthentication: z.boolean().default(true),
  /** How long a tag→digest answer is trusted before it is revalidated with a HEAD. */
  retrievalCachePeriodSecs: z.int().min(0).default(600),
  /** Serve only what is cached; never contact the upstream. */
  offline: z.boolean().default(false),
  externalDependenciesEnabled: z.boolean().default(false),
  /** Ant-style patterns (`*`, `**`, `?`) a foreign layer's URL must match to be fetched. */
  externalDependenciesPatterns: z.array(z.string().min(1)).default(['**']),
  // Network settings, as on Artifactory's "Network Settings" tab.
  socketTimeoutMillis: z.int().min(1).default(15000),
  retries: z.int().min(0).max(10).default(2),
  proxy: httpUrl('proxy URL').optional(),
  caCert: z
    .string()
    .regex(/-----BEGIN CERTIFICATE-----/, { error: 'must be a PEM certificate (-----BEGIN CERTIFICATE-----)' })
    .optional(),
  insecureSkipVerify: z.boolean().default(false),
});

export const virtualRepositorySchema = z
  .strictObject({
    ...common,
    rclass: z.literal('virtual'),
    /** Member keys; resolution tries locals first, then remotes, each in this order. */
    repositories: z.array(repositoryKeySchema).default([]),
    /** Where pushes to the virtual repository land; without one, pushes are refused. */
    defaultDeploymentRepo: repositoryKeySchema.optional(),
    resolveDockerTagsByTimestamp: z.boolean().default(false),
  })
  .superRefine((repo, ctx) => {
    // Member existence and class are checked where all repositories are known;
    // these rules need only the virtual repository itself.
    const seen = new Set<string>();
    repo.repositories.forEach((member, i) => {
      if (member === repo.key) {
        ctx.addIssue({ code: 'custom', path: ['repositories', i], message: 'a virtual repository cannot include itself' });
      } else if (seen.has(member)) {
        ctx.addIssue({ code: 'custom', path: ['repositories', i], message: `"${member}" is listed twice` });
      }
      seen.add(member);
    });
    if (repo.defaultDeploymentRepo !== undefined && !seen.has(repo.defaultDeploymentRepo)) {
      ctx.addIssue({
        code: 'custom',
        path: ['defaultDeploymentRepo'],
        message: `"${repo.defaultDeploymentRepo}" must be one of this repository's "repositories"`,
      });
    }
  });

/** Any repository configuration, told apart by `rclass`. */
export const repositorySchema = z.discriminatedUnion(
  'rclass',
  [localRepositorySchema, remoteRepositorySchema, virtualRepositorySchema],
  {
    error: (iss) => {
      if (iss.code !== 'invalid_union') return undefined;
      const got = (iss.input as { rclass?: unknown } | undefined)?.rclass;
      const allowed = REPOSITORY_CLASSES.join(', ');
      return got === undefined
        ? `missing; must be one of: ${allowed}`
        : `invalid value ${JSON.stringify(got)}; must be one of: ${allowed}`;
    },
  },
);

/** A validated repository configuration, defaults filled in. */
export type RepositoryConfig = z.output<typeof repositorySchema>;
/** What a client may send: defaulted fields optional. */
export type RepositoryInputBody = z.input<typeof repositorySchema>;
export type LocalRepositoryConfig = z.output<typeof localRepositorySchema>;
export type RemoteRepositoryConfig = z.output<typeof remoteRepositorySchema>;
export type VirtualRepositoryConfig = z.output<typeof virtualRepositorySchema>;

function joinPath(prefix: string | undefined, path: readonly PropertyKey[]): string {
  const parts = path.map((p) => String(p));
  if (prefix) parts.unshift(prefix);
  return parts.length > 0 ? parts.join('.') : '(root)';
}

/**
 * Renders a zod error as one line per problem, each starting with the dotted path
 * of the offending value (`repositories.0.url: ...`), or `(root)` for the value
 * itself. `prefix` is prepended to every path (e.g. `repositories.3` when a single
 * repository is validated on its own). An unknown key gets its own line,
 * `<path>.<key>: unknown field`, so every misspelt key is named.
 */
export function formatZodIssues(error: z.ZodError, prefix?: string): string[] {
  const lines: string[] = [];
  for (const issue of error.issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) lines.push(`${joinPath(prefix, [...issue.path, key])}: unknown field`);
      continue;
    }
    // zod's generic prefix adds nothing once the path says where the problem is.
    let message = issue.message.replace(/^Invalid input: /, '');
    if (issue.code === 'invalid_type' && message.endsWith('received undefined')) message = `required (${issue.expected})`;
    lines.push(`${joinPath(prefix, issue.path)}: ${message}`);
  }
  return lines;
}
