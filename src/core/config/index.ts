/** drydock configuration: the schema, the loader and the repository configuration shared with the REST API and CRDs. */
export { ConfigError, isConfigError } from './errors.js';
export {
  CONFIG_ENV_OVERRIDES,
  CONFIG_SEARCH_PLACES,
  loadConfig,
  parseConfig,
  type LoadConfigOptions,
  type ParseConfigOptions,
} from './load.js';
export {
  formatZodIssues,
  localRepositorySchema,
  remoteRepositorySchema,
  REPOSITORY_CLASSES,
  REPOSITORY_KEY_RULE,
  repositoryKeySchema,
  repositorySchema,
  virtualRepositorySchema,
  type LocalRepositoryConfig,
  type RemoteRepositoryConfig,
  type RepositoryClass,
  type RepositoryConfig,
  type RepositoryInputBody,
  type VirtualRepositoryConfig,
} from './repository.js';
export {
  configSchema,
  LOG_LEVELS,
  type Config,
  type ConfigInput,
  type DeepReadonly,
  type LogLevel,
  type ParsedConfig,
} from './schema.js';
