import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import {
  ConfigError,
  formatZodIssues,
  loadConfig,
  parseConfig,
  repositorySchema,
  type Config,
} from '../../src/core/config/index.js';
import { PRINCIPAL_NAME_RULE } from '../../src/core/config/security.js';
import { hashPassword } from '../../src/registry/auth/passwords.js';

const EXAMPLE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../config/drydock.example.yaml');

let dir: string;

beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'drydock-config-'));
});

afterEach(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

async function write(name: string, content: string): Promise<string> {
  const file = path.join(dir, name);
  await fs.mkdir(path.dirname(file), { recursive: true });
  await fs.writeFile(file, content);
  return file;
}

/** Loads expecting failure; returns the ConfigError. */
async function loadError(opts: Parameters<typeof loadConfig>[0]): Promise<ConfigError> {
  const err = await loadConfig(opts).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ConfigError);
  return err as ConfigError;
}

function repoProblems(body: unknown): string[] {
  const r = repositorySchema.safeParse(body);
  expect(r.success).toBe(false);
  return r.success ? [] : formatZodIssues(r.error);
}

describe('loadConfig', () => {
  it('uses every default when there is no file and no environment', async () => {
    const config = await loadConfig({ cwd: dir, env: {} });
    expect(config).toEqual({
      server: { host: '0.0.0.0', port: 5000, trustProxy: false, shutdownTimeoutMs: 10000 },
      dataDir: path.join(dir, 'data'),
      database: { poolSize: 10, statementTimeoutMs: 30000 },
      storage: { driver: 'filesystem', filesystem: { root: path.join(dir, 'data', 'blobs') } },
      auth: { anonymousAccess: false, tokenTtlSecs: 300, loginThrottle: { perUser: 10, perAddress: 100, windowSecs: 300 } },
      uploads: { staleAfterSecs: 86400 },
      gc: { graceSecs: 3600, untaggedRetentionSecs: 86400, batchSize: 500 },
      log: { level: 'info' },
      metrics: { requireAuth: false },
      repositories: [],
      users: [],
      groups: [],
      permissions: [],
    });
  });

  it('finds drydock.config.yaml in cwd and fills defaults around it', async () => {
    await write(
      'drydock.config.yaml',
      ['server:', '  port: 6000', 'dataDir: state', 'repositories:', '  - { key: team-a, rclass: local, maxUniqueTags: 5 }'].join('\n'),
    );
    const config = await loadConfig({ cwd: dir, env: {} });
    expect(config.server).toEqual({ host: '0.0.0.0', port: 6000, trustProxy: false, shutdownTimeoutMs: 10000 });
    expect(config.dataDir).toBe(path.join(dir, 'state'));
    expect(config.storage.filesystem.root).toBe(path.join(dir, 'state', 'blobs'));
    expect(config.repositories).toEqual([
      { key: 'team-a', rclass: 'local', packageType: 'docker', maxUniqueTags: 5, platformTags: true, tagImmutability: [] },
    ]);
  });

  it('reads a .drydockrc.json file', async () => {
    await write('.drydockrc.json', JSON.stringify({ log: { level: 'debug' }, auth: { anonymousAccess: true } }));
    const config = await loadConfig({ cwd: dir, env: {} });
    expect(config.log.level).toBe('debug');
    expect(config.auth.anonymousAccess).toBe(true);
  });

  it('reads the drydock key of package.json and ignores a package.json without one', async () => {
    await write('package.json', JSON.stringify({ name: 'x' }));
    expect((await loadConfig({ cwd: dir, env: {} })).server.port).toBe(5000);
    await write('package.json', JSON.stringify({ name: 'x', drydock: { server: { port: 7000 } } }));
    expect((await loadConfig({ cwd: dir, env: {} })).server.port).toBe(7000);
  });

  it('does not search parent directories', async () => {
    await write('drydock.config.yaml', 'server: { port: 6000 }\n');
    const child = path.join(dir, 'child');
    await fs.mkdir(child);
    expect((await loadConfig({ cwd: child, env: {} })).server.port).toBe(5000);
  });

  it('loads the file named by DRYDOCK_CONFIG, relative to cwd, instead of searching', async () => {
    await write('drydock.config.yaml', 'server: { port: 6000 }\n');
    await write('conf/registry.yml', 'server: { port: 6100 }\n');
    const config = await loadConfig({ cwd: dir, env: { DRYDOCK_CONFIG: 'conf/registry.yml' } });
    expect(config.server.port).toBe(6100);
  });

  it('refuses a DRYDOCK_CONFIG that names a missing file', async () => {
    const err = await loadError({ cwd: dir, env: { DRYDOCK_CONFIG: 'nope.yaml' } });
    expect(err.source).toBe(path.join(dir, 'nope.yaml'));
    expect(err.message).toContain('DRYDOCK_CONFIG');
    expect(err.message).toContain(path.join(dir, 'nope.yaml'));
  });

  it('loads exactly opts.file, which wins over DRYDOCK_CONFIG', async () => {
    const file = await write('a.yaml', 'server: { port: 6200 }\n');
    await write('b.yaml', 'server: { port: 6300 }\n');
    const config = await loadConfig({ cwd: dir, file, env: { DRYDOCK_CONFIG: 'b.yaml' } });
    expect(config.server.port).toBe(6200);
  });

  it('treats an empty or comment-only file as all defaults', async () => {
    await write('drydock.config.yaml', '# nothing configured yet\n');
    expect((await loadConfig({ cwd: dir, env: {} })).server.port).toBe(5000);
  });

  it('lets the environment win over the file', async () => {
    await write(
      'drydock.config.yaml',
      [
        'server: { host: 127.0.0.1, port: 6000, baseUrl: "http://file.example" }',
        'dataDir: from-file',
        'auth: { adminPassword: file-pw }',
        'database: { url: "postgres://file/db" }',
        'log: { level: warn }',
      ].join('\n'),
    );
    const config = await loadConfig({
      cwd: dir,
      env: {
        DRYDOCK_PORT: '7000',
        DRYDOCK_HOST: '::',
        DRYDOCK_DATA_DIR: '/var/lib/drydock',
        DRYDOCK_ADMIN_PASSWORD: 'env-pw',
        DATABASE_URL: 'postgres://env/db',
        DRYDOCK_BASE_URL: 'https://registry.example.com',
        DRYDOCK_LOG_LEVEL: 'debug',
      },
    });
    expect(config.server).toMatchObject({ host: '::', port: 7000, baseUrl: 'https://registry.example.com' });
    expect(config.dataDir).toBe('/var/lib/drydock');
    expect(config.storage.filesystem.root).toBe('/var/lib/drydock/blobs');
    expect(config.auth.adminPassword).toBe('env-pw');
    expect(config.database.url).toBe('postgres://env/db');
    expect(config.log.level).toBe('debug');
  });

  it('ignores empty environment variables', async () => {
    await write('drydock.config.yaml', 'server: { port: 6000 }\n');
    const config = await loadConfig({ cwd: dir, env: { DRYDOCK_PORT: '', DATABASE_URL: '' } });
    expect(config.server.port).toBe(6000);
    expect(config.database.url).toBeUndefined();
  });

  it('names the variable when an environment value is invalid', async () => {
    const err = await loadError({ cwd: dir, env: { DRYDOCK_PORT: 'http' } });
    expect(err.source).toBe('environment');
    expect(err.problems).toEqual([expect.stringMatching(/^server\.port: .*\(set by DRYDOCK_PORT\)$/)]);
  });

  it('lists every problem of an invalid file by path, in one error', async () => {
    const file = await write('drydock.config.yaml', ['servr:', '  port: 1', 'server:', '  port: "5000"', 'log: { level: loud }'].join('\n'));
    const err = await loadError({ cwd: dir, env: {} });
    expect(err.source).toBe(file);
    expect(err.problems).toHaveLength(3);
    expect(err.problems).toEqual(
      expect.arrayContaining([
        'servr: unknown field',
        expect.stringMatching(/^server\.port: expected number, received string/),
        expect.stringMatching(/^log\.level: .*"info"/),
      ]),
    );
    // The message carries every problem, one per line.
    for (const p of err.problems) expect(err.message.split('\n')).toContain(`  - ${p}`);
  });

  it('names every unknown key, nested ones by their full path', async () => {
    await write('drydock.config.yaml', 'server: { prot: 1, hots: x }\nstorage: { filesystem: { rot: /x } }\n');
    const err = await loadError({ cwd: dir, env: {} });
    expect(err.problems).toEqual(
      expect.arrayContaining(['server.prot: unknown field', 'server.hots: unknown field', 'storage.filesystem.rot: unknown field']),
    );
  });

  it('reports a YAML syntax error as a ConfigError naming the file', async () => {
    const file = await write('drydock.config.yaml', 'server:\n  port: 1\n  port: 2\n');
    const err = await loadError({ cwd: dir, env: {} });
    expect(err.source).toBe(file);
    expect(err.problems[0]).toMatch(/^cannot parse: .*unique/);
  });

  it('refuses a document that is not a mapping', async () => {
    await write('drydock.config.yaml', '- a\n- b\n');
    const err = await loadError({ cwd: dir, env: {} });
    expect(err.problems).toEqual([expect.stringMatching(/^\(root\): expected object/)]);
  });

  it('names an unknown field in a repository', async () => {
    await write('drydock.config.yaml', 'repositories:\n  - { key: team-a, rclass: local, maxUniqueTagz: 5 }\n');
    const err = await loadError({ cwd: dir, env: {} });
    expect(err.problems).toEqual(['repositories.0.maxUniqueTagz: unknown field']);
  });

  it('refuses duplicate repository keys, naming the key, alongside other problems', async () => {
    await write(
      'drydock.config.yaml',
      [
        'server: { port: nope }',
        'repositories:',
        '  - { key: team-a, rclass: local }',
        '  - { key: dockerhub, rclass: remote, url: "https://registry-1.docker.io/" }',
        '  - { key: team-a, rclass: virtual, repositories: [dockerhub] }',
      ].join('\n'),
    );
    const err = await loadError({ cwd: dir, env: {} });
    expect(err.problems).toHaveLength(2);
    expect(err.problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^server\.port: /),
        'repositories.2.key: duplicate repository key "team-a" (also repositories.0)',
      ]),
    );
  });

  it('refuses repository ports that collide', async () => {
    await write(
      'drydock.config.yaml',
      [
        'server: { port: 5000 }',
        'repositories:',
        '  - { key: a, rclass: local, port: 5001 }',
        '  - { key: b, rclass: local, port: 5001 }',
        '  - { key: c, rclass: local, port: 5000 }',
      ].join('\n'),
    );
    const err = await loadError({ cwd: dir, env: {} });
    expect(err.problems).toEqual([
      'repositories.1.port: port 5001 is already used by repositories.0',
      'repositories.2.port: port 5000 is server.port',
    ]);
  });

  it('returns a deeply frozen config', async () => {
    await write('drydock.config.yaml', 'repositories:\n  - { key: team-a, rclass: local, tagImmutability: ["v*"] }\n');
    const config: Config = await loadConfig({ cwd: dir, env: {} });
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.server)).toBe(true);
    expect(Object.isFrozen(config.storage.filesystem)).toBe(true);
    expect(Object.isFrozen(config.repositories)).toBe(true);
    expect(Object.isFrozen(config.repositories[0])).toBe(true);
    const repo = config.repositories[0]!;
    expect(repo.rclass === 'local' && Object.isFrozen(repo.tagImmutability)).toBe(true);
    expect(() => {
      (config.server as { port: number }).port = 1;
    }).toThrow(TypeError);
    expect(() => config.repositories.push(config.repositories[0]!)).toThrow(TypeError);
  });
});

describe('the example config file', () => {
  it('loads as-is and equals the defaults', async () => {
    const config = await loadConfig({ cwd: dir, file: EXAMPLE, env: {} });
    expect(config).toEqual(await loadConfig({ cwd: dir, env: {} }));
  });

  it('has valid repository examples once uncommented', async () => {
    const text = await fs.readFile(EXAMPLE, 'utf8');
    const lines = text.split('\n');
    const start = lines.indexOf('# repositories:');
    expect(start).toBeGreaterThan(0);
    const block = lines
      .slice(start)
      .map((l) => (l === '#' ? '' : l.replace(/^# /, '')))
      .join('\n');
    const parsed = YAML.parse(block) as { repositories: unknown[] };
    expect(parsed.repositories.map((r) => (r as { rclass: string }).rclass)).toEqual(['local', 'remote', 'virtual']);
    const config = parseConfig(parsed, { cwd: dir });
    expect(config.repositories.map((r) => r.key)).toEqual(['docker-local', 'docker-remote', 'docker']);
  });

  it('documents every key of the schema', async () => {
    const text = await fs.readFile(EXAMPLE, 'utf8');
    const defaults = await loadConfig({ cwd: dir, env: {} });
    const keys = new Set<string>();
    const walk = (v: unknown): void => {
      if (typeof v !== 'object' || v === null || Array.isArray(v)) return;
      for (const [k, child] of Object.entries(v)) {
        keys.add(k);
        walk(child);
      }
    };
    walk(defaults);
    const optional = ['baseUrl', 'subdomainOf', 'url', 'adminPassword', 'root'];
    for (const key of [...keys, ...optional]) expect(text).toMatch(new RegExp(`^\\s*#?\\s*${key}:`, 'm'));
  });

  it('has valid users, groups and permissions examples once uncommented, documenting every field', async () => {
    const lines = (await fs.readFile(EXAMPLE, 'utf8')).split('\n');
    const start = lines.indexOf('# users:');
    const end = lines.findIndex((l) => l.startsWith('# Repositories created'));
    expect(start).toBeGreaterThan(0);
    expect(end).toBeGreaterThan(start);
    const block = lines
      .slice(start, end)
      .map((l) => (l === '#' ? '' : l.replace(/^# /, '')))
      .join('\n');
    const parsed = YAML.parse(block) as Record<string, unknown>;
    expect(Object.keys(parsed)).toEqual(['users', 'groups', 'permissions']);
    const config = parseConfig(parsed, { cwd: dir });
    expect(config.users.map((u) => u.name)).toEqual(['ci-bot', 'alice', 'bob', 'dave']);
    expect(config.groups).toEqual([{ name: 'ci', description: 'Build pipelines', users: ['ci-bot'] }]);
    expect(config.permissions[0]!.repo.actions).toEqual({ users: { alice: ['read'] }, groups: { ci: ['write'] } });
    const fields = ['name', 'email', 'admin', 'groups', 'password', 'passwordEnv', 'passwordFile', 'passwordHash', 'description', 'users'];
    for (const key of [...fields, 'repositories', 'include_patterns', 'exclude_patterns', 'actions']) expect(block).toMatch(new RegExp(`^\\s*-?\\s*${key}:`, 'm'));
  });
});

describe('repositorySchema', () => {
  it('fills Artifactory defaults for each class', () => {
    expect(repositorySchema.parse({ key: 'dockerhub', rclass: 'remote', url: 'https://registry-1.docker.io/' })).toEqual({
      key: 'dockerhub',
      rclass: 'remote',
      packageType: 'docker',
      url: 'https://registry-1.docker.io/',
      enableTokenAuthentication: true,
      retrievalCachePeriodSecs: 600,
      offline: false,
      externalDependenciesEnabled: false,
      externalDependenciesPatterns: ['**'],
      socketTimeoutMillis: 15000,
      retries: 2,
      insecureSkipVerify: false,
    });
    expect(repositorySchema.parse({ key: 'docker', rclass: 'virtual', dockerApiVersion: 'V2' })).toEqual({
      key: 'docker',
      rclass: 'virtual',
      packageType: 'docker',
      dockerApiVersion: 'V2',
      repositories: [],
      resolveDockerTagsByTimestamp: false,
    });
  });

  it('refuses url on a local repository', () => {
    expect(repoProblems({ key: 'team-a', rclass: 'local', url: 'https://x.example' })).toEqual(['url: unknown field']);
  });

  it('refuses a remote repository without url, or with a non-http url', () => {
    expect(repoProblems({ key: 'dockerhub', rclass: 'remote' })).toEqual(['url: required (string)']);
    expect(repoProblems({ key: 'dockerhub', rclass: 'remote', url: 'ftp://x.example' })).toEqual([
      expect.stringMatching(/^url: invalid upstream URL: must be an absolute http/),
    ]);
  });

  it('refuses a key with an underscore, saying what a key may contain', () => {
    const [line] = repoProblems({ key: 'team_a', rclass: 'local' });
    expect(line).toMatch(/^key: invalid repository key "team_a": /);
    expect(line).toContain("lower-case letters, digits, '.' and '-'");
    expect(line).toContain('no underscores');
    expect(line).toContain('1-64 characters');
  });

  it.each([['A'], ['-a'], ['a'.repeat(65)], ['']])('refuses key %j', (key) => {
    expect(repoProblems({ key, rclass: 'local' })).toEqual([expect.stringMatching(/^key: /)]);
  });

  it('says which classes exist when rclass is missing or wrong', () => {
    expect(repoProblems({ key: 'a' })).toEqual(['rclass: missing; must be one of: local, remote, virtual']);
    expect(repoProblems({ key: 'a', rclass: 'federated' })).toEqual([
      'rclass: invalid value "federated"; must be one of: local, remote, virtual',
    ]);
  });

  it('lists every unknown field, one line each, under the prefix', () => {
    const r = repositorySchema.safeParse({ key: 'a', rclass: 'local', foo: 1, bar: 2 });
    expect(r.success).toBe(false);
    if (!r.success) {
      expect(formatZodIssues(r.error, 'repositories.3')).toEqual([
        'repositories.3.foo: unknown field',
        'repositories.3.bar: unknown field',
      ]);
    }
  });

  it('checks a virtual repository against its own members', () => {
    expect(repoProblems({ key: 'v', rclass: 'virtual', repositories: ['a', 'v', 'a'], defaultDeploymentRepo: 'b' })).toEqual([
      'repositories.1: a virtual repository cannot include itself',
      'repositories.2: "a" is listed twice',
      'defaultDeploymentRepo: "b" must be one of this repository\'s "repositories"',
    ]);
  });
});

describe('users, groups and permissions in the config file', () => {
  async function problems(yaml: string, env: Record<string, string> = {}): Promise<string[]> {
    await write('drydock.config.yaml', yaml);
    return (await loadError({ cwd: dir, env })).problems;
  }

  it('parses them, filling the permission target defaults and leaving unset user fields out', async () => {
    const hash = await hashPassword('secret');
    await write(
      'drydock.config.yaml',
      YAML.stringify({
        users: [
          { name: 'ci-bot', email: 'ci@example.com', groups: ['ci'], passwordEnv: 'CI_PASSWORD' },
          { name: 'ops@corp', admin: true, passwordFile: '/run/secrets/ops' },
          { name: 'Bob_1.x', passwordHash: hash },
          { name: 'existing' },
        ],
        groups: [{ name: 'ci', description: 'pipelines', users: ['ci-bot'] }, { name: 'empty' }],
        permissions: [{ name: 'ci deploys', repo: { repositories: ['ANY LOCAL'], actions: { groups: { ci: ['write'] } } } }],
      }),
    );
    const config = await loadConfig({ cwd: dir, env: {} });
    expect(config.users).toEqual([
      { name: 'ci-bot', email: 'ci@example.com', groups: ['ci'], passwordEnv: 'CI_PASSWORD' },
      { name: 'ops@corp', admin: true, passwordFile: '/run/secrets/ops' },
      { name: 'Bob_1.x', passwordHash: hash },
      { name: 'existing' },
    ]);
    expect(config.groups).toEqual([{ name: 'ci', description: 'pipelines', users: ['ci-bot'] }, { name: 'empty' }]);
    expect(config.permissions).toEqual([
      {
        name: 'ci deploys',
        repo: { repositories: ['ANY LOCAL'], include_patterns: ['**'], exclude_patterns: [], actions: { users: {}, groups: { ci: ['write'] } } },
      },
    ]);
    expect(Object.isFrozen(config.users[0])).toBe(true);
  });

  it('refuses more than one password source, naming both', async () => {
    expect(await problems('users:\n  - { name: a, password: x, passwordEnv: A_PW }\n')).toEqual([
      'users.0.passwordEnv: give one password source, not password and passwordEnv',
    ]);
    expect(await problems('users:\n  - { name: a, passwordFile: /x, passwordHash: "scrypt$1$1$1$a$b" }\n')).toEqual([
      'users.0.passwordHash: give one password source, not passwordFile and passwordHash',
    ]);
  });

  it('refuses anonymous, bad names, bad sources and unknown fields, each by its path', async () => {
    const found = await problems(
      [
        'users:',
        '  - { name: anonymous, password: x }',
        '  - { name: "a b", password: x }',
        '  - { name: c, passwordEnv: "not a name" }',
        '  - { name: d, passwordHash: "md5:abc" }',
        '  - { name: e, email: nope, pasword: x }',
        'groups:',
        '  - { name: "g/1", users: [anonymous] }',
        '  - { name: g2, autoJoin: true }',
      ].join('\n'),
    );
    expect(found).toEqual([
      "users.0.name: 'anonymous' is reserved for requests without credentials",
      `users.1.name: invalid user name "a b": ${PRINCIPAL_NAME_RULE}`,
      'users.2.passwordEnv: must be an environment variable name',
      'users.3.passwordHash: must be an scrypt$N$r$p$salt$hash string as drydock writes it',
      'users.4.email: must be an e-mail address',
      'users.4.pasword: unknown field',
      `groups.0.name: invalid group name "g/1": ${PRINCIPAL_NAME_RULE}`,
      "groups.0.users.0: 'anonymous' is reserved for requests without credentials",
      'groups.1.autoJoin: unknown field',
    ]);
  });

  it('checks permission targets with the API schema', async () => {
    const found = await problems(
      [
        'permissions:',
        '  - { name: p, repo: { repositories: [], actions: { users: { bob: [read, deploy] } } } }',
        '  - { name: q, repo: { repositories: [ANY] }, build: {} }',
      ].join('\n'),
    );
    expect(found).toEqual([
      'permissions.0.repo.repositories: name at least one repository, or ANY / ANY LOCAL / ANY REMOTE',
      'permissions.0.repo.actions.users.bob.1: actions must be among read, annotate, write, delete, manage',
      'permissions.1.build: unknown field',
    ]);
  });

  it('refuses duplicate names in each list, alongside other problems', async () => {
    const found = await problems(
      [
        'server: { port: nope }',
        'users: [{ name: a, password: x }, { name: a, password: y }]',
        'groups: [{ name: g }, { name: g }]',
        'permissions: [{ name: p, repo: { repositories: [ANY] } }, { name: p, repo: { repositories: [ANY] } }]',
      ].join('\n'),
    );
    expect(found).toEqual([
      expect.stringMatching(/^server\.port: /),
      'users.1.name: duplicate name "a" (also users.0)',
      'groups.1.name: duplicate name "g" (also groups.0)',
      'permissions.1.name: duplicate name "p" (also permissions.0)',
    ]);
  });

  it("refuses the admin user's password in users: when auth.adminPassword sets it too", async () => {
    expect(await problems('users:\n  - { name: admin, passwordEnv: ADMIN_PW }\n', { DRYDOCK_ADMIN_PASSWORD: 'from-env' })).toEqual([
      "users.0.passwordEnv: the admin user's password is auth.adminPassword (DRYDOCK_ADMIN_PASSWORD); set it in one place only",
    ]);
    // Without a password source, admin's other fields may be declared.
    await write('drydock.config.yaml', 'users:\n  - { name: admin, email: root@example.com, groups: [ops] }\n');
    expect((await loadConfig({ cwd: dir, env: { DRYDOCK_ADMIN_PASSWORD: 'x' } })).users).toEqual([
      { name: 'admin', email: 'root@example.com', groups: ['ops'] },
    ]);
  });
});

describe('storage.s3', () => {
  it('fills the s3 defaults', async () => {
    await write('drydock.config.yaml', 'storage: { driver: s3, s3: { bucket: reg } }\n');
    const config = await loadConfig({ cwd: dir, env: {} });
    expect(config.storage.driver).toBe('s3');
    expect(config.storage.s3).toEqual({
      bucket: 'reg',
      region: 'us-east-1',
      forcePathStyle: false,
      prefix: '',
      redirect: { mode: 'none', ttlSecs: 300 },
      multipartPartSize: 8 * 1024 * 1024,
    });
  });

  it('refuses a missing section, a small part size, half credentials and cdn without a base URL', async () => {
    await write('drydock.config.yaml', 'storage: { driver: s3 }\n');
    expect((await loadError({ cwd: dir, env: {} })).problems).toEqual(['storage.s3: required when storage.driver is s3']);
    await write(
      'drydock.config.yaml',
      'storage: { driver: s3, s3: { bucket: b, multipartPartSize: 1048576, accessKeyId: AK, redirect: { mode: cdn }, bukket: x } }\n',
    );
    expect((await loadError({ cwd: dir, env: {} })).problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^storage\.s3\.multipartPartSize: must be at least 5 MiB/),
        'storage.s3.bukket: unknown field',
      ]),
    );
    await write('drydock.config.yaml', 'storage: { driver: s3, s3: { bucket: b, accessKeyId: AK, redirect: { mode: cdn } } }\n');
    expect((await loadError({ cwd: dir, env: {} })).problems).toEqual(
      expect.arrayContaining([
        'storage.s3.redirect.cdnBaseUrl: required when redirect.mode is cdn',
        'storage.s3.secretAccessKey: accessKeyId and secretAccessKey go together',
      ]),
    );
  });
});

describe('storage.gcs', () => {
  it('fills the gcs defaults', async () => {
    await write('drydock.config.yaml', 'storage: { driver: gcs, gcs: { bucket: reg } }\n');
    const config = await loadConfig({ cwd: dir, env: {} });
    expect(config.storage.driver).toBe('gcs');
    expect(config.storage.gcs).toEqual({
      bucket: 'reg',
      prefix: '',
      redirect: { mode: 'none', ttlSecs: 300 },
      chunkSize: 8 * 1024 * 1024,
    });
  });

  it('refuses a missing section, a chunk size off 256 KiB, cdn without a base URL and signed without a key', async () => {
    await write('drydock.config.yaml', 'storage: { driver: gcs }\n');
    expect((await loadError({ cwd: dir, env: {} })).problems).toEqual(['storage.gcs: required when storage.driver is gcs']);
    await write('drydock.config.yaml', 'storage: { driver: gcs, gcs: { bucket: b, chunkSize: 300000, redirect: { mode: cdn }, bukket: x } }\n');
    expect((await loadError({ cwd: dir, env: {} })).problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^storage\.gcs\.chunkSize: must be a multiple of 256 KiB/),
        'storage.gcs.redirect.cdnBaseUrl: required when redirect.mode is cdn',
        'storage.gcs.bukket: unknown field',
      ]),
    );
    await write('drydock.config.yaml', 'storage: { driver: gcs, gcs: { bucket: b, redirect: { mode: signed } } }\n');
    expect((await loadError({ cwd: dir, env: {} })).problems).toEqual([
      'storage.gcs.keyFilename: required when redirect.mode is signed (signing needs a service-account key)',
    ]);
  });
});
