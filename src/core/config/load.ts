/**
 * Finding, reading and validating the configuration: config file (cosmiconfig,
 * module name `drydock`) → environment overrides → strict schema → resolved paths
 * → deep freeze. Done once at start; everything after reads the frozen result.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { cosmiconfig, defaultLoaders, type Loader } from 'cosmiconfig';
import YAML from 'yaml';
import { ConfigError } from './errors.js';
import { formatZodIssues } from './repository.js';
import { configSchema, type Config, type ParsedConfig } from './schema.js';

type Env = Record<string, string | undefined>;

/** Where `loadConfig` looks, in this order, in the working directory only. */
export const CONFIG_SEARCH_PLACES = [
  'drydock.config.yaml',
  'drydock.config.yml',
  'drydock.config.json',
  '.drydockrc',
  '.drydockrc.json',
  '.drydockrc.yaml',
  '.drydockrc.yml',
  'package.json',
] as const;

interface EnvOverride {
  readonly name: string;
  readonly path: readonly string[];
  readonly parse?: (value: string) => unknown;
}

/** Environment variables that override the file (SPEC §2), and the setting each one sets. */
export const CONFIG_ENV_OVERRIDES: readonly EnvOverride[] = [
  // Digits become a number; anything else stays a string so the schema reports it.
  { name: 'DRYDOCK_PORT', path: ['server', 'port'], parse: (v) => (/^\d+$/.test(v) ? Number(v) : v) },
  { name: 'DRYDOCK_HOST', path: ['server', 'host'] },
  { name: 'DRYDOCK_BASE_URL', path: ['server', 'baseUrl'] },
  { name: 'DRYDOCK_DATA_DIR', path: ['dataDir'] },
  { name: 'DRYDOCK_ADMIN_PASSWORD', path: ['auth', 'adminPassword'] },
  { name: 'DATABASE_URL', path: ['database', 'url'] },
  { name: 'DRYDOCK_LOG_LEVEL', path: ['log', 'level'], parse: (v) => v.toLowerCase() },
];

export interface LoadConfigOptions {
  /** Directory searched for a config file and against which relative paths resolve; default `process.cwd()`. */
  cwd?: string;
  /** Environment to read overrides and `DRYDOCK_CONFIG` from; default `process.env`. */
  env?: Env;
  /** Load exactly this file (relative to `cwd`) instead of searching; it must exist. */
  file?: string;
}

export interface ParseConfigOptions {
  /** Base for relative `dataDir` and `storage.filesystem.root`; default `process.cwd()`. */
  cwd?: string;
  /** Environment overrides to apply; default none. */
  env?: Env;
  /** Named in a `ConfigError`; default `'config object'`. */
  source?: string;
}

// An empty variable counts as unset: `DATABASE_URL=` in a compose file or a
// Kubernetes manifest means "not configured", not "connect to ''".
function envValue(env: Env, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v === '' ? undefined : v;
}

// YAML for `.yaml`, `.yml`, the extension-less `.drydockrc` and any other name
// given explicitly (YAML reads JSON too). The `yaml` package is strict about
// duplicate keys, which the schema could not catch once parsed.
const loadYaml: Loader = (_filepath, content) => {
  const doc: unknown = YAML.parse(content, { prettyErrors: true, merge: true });
  // A file of only comments is an empty config (defaults), not "no file here".
  return doc ?? undefined;
};

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The first line of a parser error, without the code frame `prettyErrors` adds. */
function firstLine(e: unknown): string {
  const message = e instanceof Error ? e.message : String(e);
  return message.split('\n')[0]!.replace(/:$/, '');
}

async function readConfigFile(cwd: string, env: Env, file: string | undefined): Promise<{ filepath: string; config: unknown } | undefined> {
  const explorer = cosmiconfig('drydock', {
    searchPlaces: [...CONFIG_SEARCH_PLACES],
    // Only `cwd`: a config file in some parent directory is never picked up by surprise.
    searchStrategy: 'none',
    // The first file present wins even when empty, rather than falling through to the next.
    ignoreEmptySearchPlaces: false,
    cache: false,
    loaders: { '.json': defaultLoaders['.json'], '.yaml': loadYaml, '.yml': loadYaml, noExt: loadYaml, default: loadYaml },
  });

  const named = file ?? envValue(env, 'DRYDOCK_CONFIG');
  let filepath: string | undefined;
  if (named !== undefined) {
    filepath = path.resolve(cwd, named);
    const by = file !== undefined ? 'config file' : 'config file named by DRYDOCK_CONFIG';
    const stat = await fs.stat(filepath).catch(() => undefined);
    if (stat === undefined) throw new ConfigError(filepath, [`${by} does not exist: ${filepath}`]);
    if (!stat.isFile()) throw new ConfigError(filepath, [`${by} is not a file: ${filepath}`]);
  }

  try {
    const result = filepath !== undefined ? await explorer.load(filepath) : await explorer.search(cwd);
    if (result === null) {
      // An explicitly named package.json without a `drydock` key: nothing configured.
      return filepath !== undefined ? { filepath, config: undefined } : undefined;
    }
    return { filepath: result.filepath, config: result.config };
  } catch (e) {
    const where = (e as { filepath?: unknown }).filepath;
    const source = typeof where === 'string' ? where : (filepath ?? cwd);
    throw new ConfigError(source, [`cannot parse: ${firstLine(e)}`]);
  }
}

/** Copies `input` with each set environment override written in; returns which were applied. */
function applyEnvOverrides(input: unknown, env: Env): { value: unknown; applied: EnvOverride[] } {
  // A document that is not a mapping is refused by the schema; overriding into it would hide that.
  if (!isPlainObject(input)) return { value: input, applied: [] };
  const value = structuredClone(input);
  const applied: EnvOverride[] = [];
  for (const override of CONFIG_ENV_OVERRIDES) {
    const raw = envValue(env, override.name);
    if (raw === undefined) continue;
    let target: Record<string, unknown> = value;
    let reachable = true;
    for (const segment of override.path.slice(0, -1)) {
      const next = target[segment];
      if (next === undefined) target[segment] = {};
      else if (!isPlainObject(next)) {
        // The file's own section is malformed (`server: 5`); the schema reports that.
        reachable = false;
        break;
      }
      target = target[segment] as Record<string, unknown>;
    }
    if (!reachable) continue;
    target[override.path[override.path.length - 1]!] = override.parse ? override.parse(raw) : raw;
    applied.push(override);
  }
  return { value, applied };
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

function resolvePaths(data: ParsedConfig, cwd: string): Config {
  const dataDir = path.resolve(cwd, data.dataDir);
  const configuredRoot = data.storage.filesystem.root;
  const root = configuredRoot !== undefined ? path.resolve(cwd, configuredRoot) : path.join(dataDir, 'blobs');
  return { ...data, dataDir, storage: { ...data.storage, filesystem: { ...data.storage.filesystem, root } } };
}

/**
 * Validates an already-read configuration object (`undefined`/`null` = empty)
 * the way `loadConfig` validates a file: environment overrides from `opts.env`
 * applied on top, strict schema, paths resolved against `opts.cwd`, result
 * deep-frozen. Throws `ConfigError` listing every problem. For tests and
 * embedders that build the configuration in code.
 */
export function parseConfig(input: unknown, opts: ParseConfigOptions = {}): Config {
  const cwd = path.resolve(opts.cwd ?? process.cwd());
  const { value, applied } = applyEnvOverrides(input ?? {}, opts.env ?? {});
  const result = configSchema.safeParse(value);
  if (!result.success) {
    const problems = formatZodIssues(result.error).map((line) => {
      // Say where a bad value came from when the environment, not the file, set it.
      const from = applied.find((o) => {
        const p = o.path.join('.');
        return line.startsWith(`${p}:`) || line.startsWith(`${p}.`);
      });
      return from ? `${line} (set by ${from.name})` : line;
    });
    throw new ConfigError(opts.source ?? 'config object', problems);
  }
  return deepFreeze(resolvePaths(result.data, cwd));
}

/**
 * Loads the configuration. The file is `opts.file` if given, else the path in
 * `DRYDOCK_CONFIG` if set (either must exist), else the first of
 * `CONFIG_SEARCH_PLACES` present in `cwd` (`package.json` only with a `drydock`
 * key); with none, every setting takes its default. The environment overrides in
 * `CONFIG_ENV_OVERRIDES` (empty values ignored) are applied on top of the file,
 * then the whole is validated by `configSchema`.
 *
 * Resolves to the validated, deep-frozen config with `dataDir` and
 * `storage.filesystem.root` (default `<dataDir>/blobs`) made absolute against
 * `cwd`. Rejects with `ConfigError` (source = the file's path, or
 * `'environment'` when no file was read) listing every problem at once:
 * unreadable file, unknown keys, bad values, duplicate repository keys.
 */
export async function loadConfig(opts: LoadConfigOptions = {}): Promise<Config> {
  const cwd = path.resolve(opts.cwd ?? process.cwd());
  const env = opts.env ?? process.env;
  const found = await readConfigFile(cwd, env, opts.file);
  return parseConfig(found?.config, { cwd, env, source: found?.filepath ?? 'environment' });
}
