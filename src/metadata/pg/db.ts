/**
 * The one seam between the metadata SQL and a PostgreSQL engine. Two
 * implementations run the same SQL and return the same JS values:
 * - `PgDb` (pool-db.ts): a PostgreSQL server through a `pg.Pool`;
 * - `PgliteDb` (pglite-db.ts): embedded PGlite (PostgreSQL in WASM), in-process.
 *
 * Values come back normalized on both: int8 → `number` (sizes fit in 2^53),
 * bytea → Node `Buffer`, timestamptz → `Date`, json/jsonb → parsed JSON.
 * Pass JSON parameters as `JSON.stringify(...)` text cast with `$n::jsonb`
 * (node-postgres would turn a JS array into a PostgreSQL array literal).
 */
export interface Db {
  /** True for the Db handed to a `transaction` callback. */
  readonly inTransaction: boolean;

  /**
   * Runs one statement with `$1…$n` parameters. `rowCount` is the number of
   * rows returned (SELECT) or changed (INSERT/UPDATE/DELETE without RETURNING).
   * Availability failures reject with `MetadataUnavailableError`.
   */
  query<T = Record<string, unknown>>(text: string, params?: readonly unknown[]): Promise<QueryResult<T>>;

  /** Runs a script of several statements without parameters (migrations). */
  exec(script: string): Promise<void>;

  /**
   * Runs `fn` in one transaction on one connection: commits when it resolves,
   * rolls back and rethrows when it rejects. A COMMIT that the server turns
   * into a rollback (an earlier statement failed and `fn` swallowed the error)
   * rejects too. Called on a transaction's Db, `fn` runs inside that same
   * transaction (no savepoint). Inside `fn` use only the Db it is given: on
   * PGlite a query on the outer Db waits for the transaction to end.
   */
  transaction<T>(fn: (db: Db) => Promise<T>): Promise<T>;
  /** LISTENs on `channel` until the returned function is called (not on a transaction's Db). */
  listen(channel: string, onMessage: (payload: string) => void): Promise<() => Promise<void>>;

  /** Releases connections (or the embedded engine). Not valid on a transaction's Db. */
  close(): Promise<void>;
}

export interface QueryResult<T> {
  rows: T[];
  rowCount: number;
}

export interface OpenDbOptions {
  /** `postgres://…` of a PostgreSQL server; when set it wins over `dataDir`. */
  databaseUrl?: string;
  /** PGlite data directory; omitted (and no `databaseUrl`) means an in-memory database. */
  dataDir?: string;
  /** Pool size for the server (default 10). */
  poolSize?: number;
  /** Server-side `statement_timeout` in ms (default 30000; 0 disables). */
  statementTimeoutMs?: number;
}

/** Thrown when COMMIT turned into a rollback because the transaction had already failed. */
export class TransactionAbortedError extends Error {
  constructor() {
    super('transaction was aborted by an earlier failed statement; COMMIT rolled it back');
    this.name = 'TransactionAbortedError';
  }
}

/** Opens a `PgDb` when `databaseUrl` is given, else a `PgliteDb` (on `dataDir`, or in memory). */
export async function openDb(opts: OpenDbOptions): Promise<Db> {
  if (opts.databaseUrl) {
    const { PgDb } = await import('./pool-db.js');
    return new PgDb({
      connectionString: opts.databaseUrl,
      poolSize: opts.poolSize,
      statementTimeoutMs: opts.statementTimeoutMs,
    });
  }
  // Loaded on demand: a server deployment never pays for the WASM module.
  const { PgliteDb } = await import('./pglite-db.js');
  return PgliteDb.open({ dataDir: opts.dataDir });
}
