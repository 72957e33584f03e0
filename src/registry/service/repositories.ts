import { RegistryError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import { formatZodIssues, repositorySchema, type RepositoryConfig } from '../../core/config/repository.js';
import type { MetadataStore, RepositoryClass, RepositoryRecord } from '../../metadata/store.js';
import type { SecretBox } from '../../core/secrets.js';

/** The repositories every new installation starts with (SPEC §2). */
export const DEFAULT_REPOSITORIES: ReadonlyArray<Record<string, unknown>> = [
  { key: 'docker-local', rclass: 'local', description: 'Images pushed by your builds' },
  { key: 'docker-remote', rclass: 'remote', url: 'https://registry-1.docker.io/', description: 'Docker Hub, cached' },
  {
    key: 'docker',
    rclass: 'virtual',
    repositories: ['docker-local', 'docker-remote'],
    defaultDeploymentRepo: 'docker-local',
    description: 'docker-local and docker-remote behind one name',
  },
];

const DEFAULTS_MARKER = 'bootstrap.defaultRepositories';

/** How the operator writes the repositories its resources declare. */
export interface RepositoryWriteOptions {
  /** The `namespace/name` of the DockerRepository resource writing; only it may change the repository. */
  managedBy?: string;
  /** Write even though another resource is recorded as manager (it no longer exists, or lost the key). */
  takeOver?: boolean;
  /** Replace the whole configuration instead of merging the body into it. */
  replace?: boolean;
  /** Record no manager any more (the resource is gone, the repository stays). */
  release?: boolean;
}

/** What GET /api/repositories/<key> shows instead of an upstream password. */
export const PASSWORD_MASK = '************';

/**
 * Repository configuration: create, update, read, delete, and the idempotent
 * apply of the config file's `repositories:`. Bodies are validated by the one
 * repository schema shared with the config file (and the CRD).
 */
export class RepositoryService {
  constructor(
    private readonly deps: {
      store: MetadataStore;
      log: Logger;
      /** Encrypts remote repositories' upstream passwords before they are stored. */
      secrets: SecretBox;
      /** Called after any change, so caches (and other pods) can drop the key. */
      onChange?: (key: string) => void;
    },
  ) {}

  /** Upstream passwords are stored encrypted; a masked value sent back keeps the stored one. */
  private sealed(config: RepositoryConfig, stored?: RepositoryConfig): RepositoryConfig {
    if (config.rclass !== 'remote' || !config.password) return config;
    if (config.password === PASSWORD_MASK) return { ...config, password: stored?.rclass === 'remote' ? stored.password : undefined };
    if (this.deps.secrets.isEncrypted(config.password)) return config;
    return { ...config, password: this.deps.secrets.encrypt(config.password) };
  }

  /** The configuration with the upstream password in clear, for comparisons. */
  private opened(config: RepositoryConfig): RepositoryConfig {
    if (config.rclass !== 'remote' || !config.password || !this.deps.secrets.isEncrypted(config.password)) return config;
    return { ...config, password: this.deps.secrets.decrypt(config.password) };
  }

  async list(rclass?: RepositoryClass): Promise<RepositoryConfig[]> {
    const rows = await this.deps.store.repositories.list(rclass);
    return rows.map((r) => toConfig(r));
  }

  async get(key: string): Promise<RepositoryConfig> {
    const rec = await this.deps.store.repositories.get(key);
    if (!rec) throw new RegistryError('NOT_FOUND', `repository '${key}' does not exist`);
    return toConfig(rec);
  }

  async record(key: string): Promise<RepositoryRecord | undefined> {
    return this.deps.store.repositories.get(key);
  }

  /** The stored configuration with the upstream password in clear, and who manages it (the operator compares these). */
  async current(key: string): Promise<{ config: RepositoryConfig; managedBy: string | null } | undefined> {
    const rec = await this.deps.store.repositories.get(key);
    return rec ? { config: this.opened(toConfig(rec)), managedBy: rec.managedBy } : undefined;
  }

  /** Creates a repository from an Artifactory-shaped body; the URL key wins when the body has none. */
  async create(key: string, body: unknown, opts: { managedBy?: string } = {}): Promise<RepositoryConfig> {
    const config = this.sealed(validate(key, withKey(key, body)));
    await this.checkMembers(config);
    return this.deps.store.transaction(async (tx) => {
      const created = await tx.repositories.create({ key, rclass: config.rclass, config, managedBy: opts.managedBy ?? null });
      if (!created) throw new RegistryError('CONFLICT', `repository '${key}' already exists`);
      this.deps.onChange?.(key);
      return config;
    });
  }

  /**
   * Updates a repository: the body's fields replace the stored ones (Artifactory's
   * partial update); the class cannot change. A managed repository is read-only here.
   */
  async update(key: string, body: unknown, opts: RepositoryWriteOptions = {}): Promise<RepositoryConfig> {
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      throw new RegistryError('BAD_REQUEST', 'the body must be a JSON object');
    }
    return this.deps.store.transaction(async (tx) => {
      const rec = await tx.repositories.get(key);
      if (!rec) throw new RegistryError('NOT_FOUND', `repository '${key}' does not exist`);
      if (!opts.takeOver) this.assertWritable(rec, opts.managedBy);
      const patch = withKey(key, body) as Record<string, unknown>;
      // Checked before merging: validated against the other class's schema, the stored
      // fields would be reported as unknown instead of the actual problem.
      if (patch.rclass !== undefined && patch.rclass !== rec.rclass) {
        throw new RegistryError('BAD_REQUEST', `rclass cannot change (repository '${key}' is ${rec.rclass})`);
      }
      const config = this.sealed(validate(key, opts.replace ? patch : { ...rec.config, ...patch }), toConfig(rec));
      await this.checkMembers(config, tx);
      await tx.repositories.update({ key, rclass: config.rclass, config, managedBy: opts.release ? null : (opts.managedBy ?? rec.managedBy) });
      this.deps.onChange?.(key);
      return config;
    });
  }

  /** Deletes a repository and everything it holds (blob bytes stay until garbage collection). */
  async delete(key: string, opts: { managedBy?: string } = {}): Promise<void> {
    await this.deps.store.transaction(async (tx) => {
      const rec = await tx.repositories.get(key);
      if (!rec) throw new RegistryError('NOT_FOUND', `repository '${key}' does not exist`);
      this.assertWritable(rec, opts.managedBy);
      await tx.repositories.delete(key);
    });
    this.deps.onChange?.(key);
  }

  /**
   * Makes the stored configuration match the declared repositories (the config
   * file's `repositories:`): creates missing ones, updates changed ones, leaves
   * others alone. Idempotent; locals first so virtual members exist.
   */
  async apply(declared: readonly RepositoryConfig[]): Promise<{ created: string[]; updated: string[] }> {
    const order: Record<RepositoryClass, number> = { local: 0, remote: 1, virtual: 2 };
    const sorted = [...declared].sort((a, b) => order[a.rclass] - order[b.rclass]);
    const created: string[] = [];
    const updated: string[] = [];
    for (const config of sorted) {
      const rec = await this.deps.store.repositories.get(config.key);
      if (!rec) {
        await this.create(config.key, config);
        created.push(config.key);
      } else if (JSON.stringify(this.opened(toConfig(rec))) !== JSON.stringify(this.opened(validate(config.key, config)))) {
        if (rec.rclass !== config.rclass) {
          throw new RegistryError('CONFLICT', `repository '${config.key}' exists as ${rec.rclass}, the config file declares ${config.rclass}`);
        }
        await this.deps.store.repositories.update({ key: config.key, rclass: config.rclass, config: this.sealed(config), managedBy: rec.managedBy });
        this.deps.onChange?.(config.key);
        updated.push(config.key);
      }
    }
    return { created, updated };
  }

  /** Creates the default repositories once, at the first start of an installation. */
  async ensureDefaults(): Promise<string[]> {
    return this.deps.store.transaction(async (tx) => {
      await tx.lock(DEFAULTS_MARKER);
      if (await tx.settings.get(DEFAULTS_MARKER)) return [];
      const created: string[] = [];
      for (const body of DEFAULT_REPOSITORIES) {
        const config = validate(String(body.key), body);
        if (await tx.repositories.create({ key: config.key, rclass: config.rclass, config })) created.push(config.key);
      }
      await tx.settings.set(DEFAULTS_MARKER, { at: new Date().toISOString() });
      return created;
    });
  }

  private assertWritable(rec: RepositoryRecord, managedBy: string | undefined): void {
    if (rec.managedBy && rec.managedBy !== managedBy) {
      throw new RegistryError(
        'CONFLICT',
        `repository '${rec.key}' is managed by the DockerRepository resource ${rec.managedBy}; change it there`,
      );
    }
  }

  /** A virtual repository's members must exist, not be itself, and its deployment repository must be a local member. */
  private async checkMembers(config: RepositoryConfig, store: MetadataStore = this.deps.store): Promise<void> {
    if (config.rclass !== 'virtual') return;
    const problems: string[] = [];
    for (const member of config.repositories) {
      if (member === config.key) problems.push(`repositories: '${member}' cannot contain itself`);
      else if (!(await store.repositories.get(member))) problems.push(`repositories: '${member}' does not exist`);
    }
    if (config.defaultDeploymentRepo) {
      const target = await store.repositories.get(config.defaultDeploymentRepo);
      if (!config.repositories.includes(config.defaultDeploymentRepo)) {
        problems.push(`defaultDeploymentRepo: '${config.defaultDeploymentRepo}' is not one of the repositories`);
      } else if (target && target.rclass !== 'local') {
        problems.push(`defaultDeploymentRepo: '${config.defaultDeploymentRepo}' is not a local repository`);
      }
    }
    if (problems.length) throw new RegistryError('BAD_REQUEST', problems.join('; '), { problems });
  }
}

function withKey(key: string, body: unknown): unknown {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return body;
  const b = body as Record<string, unknown>;
  return b.key === undefined ? { ...b, key } : b;
}

/** Validates a body; the key in the body must match the one in the URL. */
export function validate(key: string, body: unknown): RepositoryConfig {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new RegistryError('BAD_REQUEST', 'the body must be a JSON object');
  }
  const r = repositorySchema.safeParse(body);
  if (!r.success) {
    const problems = formatZodIssues(r.error);
    throw new RegistryError('BAD_REQUEST', `invalid repository configuration: ${problems.join('; ')}`, { problems });
  }
  if (r.data.key !== key) {
    throw new RegistryError('BAD_REQUEST', `key '${r.data.key}' in the body does not match '${key}' in the URL`);
  }
  return r.data;
}

/** Stored configuration re-read through the schema, so defaults added later apply to old rows. */
export function toConfig(rec: RepositoryRecord): RepositoryConfig {
  return repositorySchema.parse({ ...rec.config, key: rec.key, rclass: rec.rclass });
}
