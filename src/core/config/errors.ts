/**
 * The configuration could not be loaded. Thrown before anything starts, so the
 * process can print `message` and exit: it names the source and lists every
 * problem, one per line, each starting with the path of the offending setting.
 */
export class ConfigError extends Error {
  /** One line per problem: `<dotted.path>: <what is wrong>` (`(root)` for the whole document). */
  readonly problems: string[];
  /** The config file's absolute path, or `'environment'` when no file was read. */
  readonly source: string;

  constructor(source: string, problems: string[]) {
    const list = problems.map((p) => `  - ${p}`).join('\n');
    super(`invalid configuration (${source}): ${problems.length} problem${problems.length === 1 ? '' : 's'}\n${list}`);
    this.name = 'ConfigError';
    this.source = source;
    this.problems = [...problems];
  }
}

export function isConfigError(e: unknown): e is ConfigError {
  return e instanceof ConfigError;
}
