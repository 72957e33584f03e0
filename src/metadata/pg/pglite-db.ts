import { execFile } from 'node:child_process';
import { access, mkdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import type { PGlite, Transaction, TransactionAbortedError as PgliteAbortedError } from '@electric-sql/pglite';
import type { Db, QueryResult } from './db.js';
import { TransactionAbortedError } from './db.js';

const BYTEA_OID = 17;
const INT8_OID = 20;

/**
 * An embedded metadata database is small: PostgreSQL's default 128 MB of
 * shared buffers would be most of the process's memory (WASM memory never
 * shrinks). 8 MB keeps a reopened database at ~100 MiB above Node's baseline.
 */
const EMBEDDED_SETTINGS = ['shared_buffers=8MB'];

async function isInitialized(dataDir: string): Promise<boolean> {
  try {
    await access(path.join(dataDir, 'PG_VERSION'));
    return true;
  } catch {
    return false;
  }
}

/**
 * Creating a PGlite database (initdb) grows its WASM memory to ~800 MiB, which a
 * process never gets back. Doing it in a short-lived child process and then
 * reopening the directory here keeps the server's footprint small from its first start.
 */
async function initializeInChildProcess(dataDir: string): Promise<void> {
  // Built: the child also applies the migrations (their catalog work grows the
  // WASM heap too). From TypeScript sources (tests) only initdb runs there.
  const here = fileURLToPath(import.meta.url);
  const initScript = path.join(path.dirname(here), 'embedded-init.js');
  if (here.endsWith('.js') && (await exists(initScript))) {
    await promisify(execFile)(process.execPath, [initScript, dataDir], { timeout: 120_000 });
    return;
  }
  const entry = createRequire(import.meta.url).resolve('@electric-sql/pglite');
  const script = `require(${JSON.stringify(entry)}).PGlite.create(${JSON.stringify(dataDir)}).then((db) => db.close())`;
  await promisify(execFile)(process.execPath, ['-e', script], { timeout: 120_000 });
}

async function exists(file: string): Promise<boolean> {
  try {
    await access(file);
    return true;
  } catch {
    return false;
  }
}

/**
 * Parsers that make PGlite return what node-postgres returns (see db.ts):
 * PGlite's own give int8 as `bigint` past 2^53 and bytea as `Uint8Array`.
 * timestamptz already parses to `Date` and jsonb to JSON.
 */
const PARSERS = {
  [INT8_OID]: (v: string) => Number(v),
  // bytea text output is `\x` + hex.
  [BYTEA_OID]: (v: string) => Buffer.from(v.slice(2), 'hex'),
};

/**
 * Runs one async function at a time, in call order. PGlite has a single
 * session: a statement sent while a transaction is open would run inside it
 * (and be rolled back with it), so a transaction holds the mutex from BEGIN to
 * COMMIT and every other statement queues behind it.
 */
class Mutex {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.tail.then(fn);
    this.tail = result.catch(() => undefined);
    return result;
  }
}

/**
 * Embedded PostgreSQL (PGlite, WASM) in this process. Statements and
 * transactions are serialized; throughput is a few thousand statements per
 * second, which suits single-node installs and tests.
 */
export class PgliteDb implements Db {
  readonly inTransaction = false;
  private readonly mutex = new Mutex();

  private constructor(
    private readonly pglite: PGlite,
    private readonly abortedError: typeof PgliteAbortedError,
  ) {}

  /**
   * Opens (creating when empty) the database in `dataDir`, or an in-memory one
   * when omitted. Creating takes seconds; reopening a data dir well under one.
   */
  static async open(opts: { dataDir?: string; initializeHere?: boolean } = {}): Promise<PgliteDb> {
    const { PGlite, TransactionAbortedError: abortedError } = await import('@electric-sql/pglite');
    if (opts.dataDir) {
      await mkdir(opts.dataDir, { recursive: true });
      if (!opts.initializeHere && !(await isInitialized(opts.dataDir))) await initializeInChildProcess(opts.dataDir);
    }
    const pglite = await PGlite.create(opts.dataDir, { parsers: PARSERS, postgresqlconf: EMBEDDED_SETTINGS });
    return new PgliteDb(pglite, abortedError);
  }

  query<T = Record<string, unknown>>(text: string, params: readonly unknown[] = []): Promise<QueryResult<T>> {
    return this.mutex.run(() => runQuery<T>(this.pglite, text, params));
  }

  /** PGlite delivers NOTIFY within this process (the only one on an embedded database). */
  listen(channel: string, onMessage: (payload: string) => void): Promise<() => Promise<void>> {
    return this.mutex.run(async () => {
      const unlisten = await this.pglite.listen(channel, onMessage);
      return () => this.mutex.run(() => unlisten());
    });
  }

  exec(script: string): Promise<void> {
    return this.mutex.run(async () => {
      await this.pglite.exec(script);
    });
  }

  transaction<T>(fn: (db: Db) => Promise<T>): Promise<T> {
    return this.mutex.run(async () => {
      try {
        return await this.pglite.transaction((tx) => fn(new PgliteTxDb(tx)));
      } catch (e) {
        // Same error as PgDb for a COMMIT that the engine turned into a rollback.
        if (e instanceof this.abortedError) throw new TransactionAbortedError();
        throw e;
      }
    });
  }

  close(): Promise<void> {
    // Queued behind any running work, so a closing store finishes what it started.
    return this.mutex.run(() => this.pglite.close());
  }
}

/** The Db handed to a transaction callback; PGlite runs its statements in order. */
class PgliteTxDb implements Db {
  readonly inTransaction = true;

  constructor(private readonly tx: Transaction) {}

  query<T = Record<string, unknown>>(text: string, params: readonly unknown[] = []): Promise<QueryResult<T>> {
    return runQuery<T>(this.tx, text, params);
  }

  async exec(script: string): Promise<void> {
    await this.tx.exec(script);
  }

  transaction<T>(fn: (db: Db) => Promise<T>): Promise<T> {
    return fn(this);
  }

  async close(): Promise<void> {
    throw new Error('close() is not valid on a transaction');
  }

  listen(): Promise<() => Promise<void>> {
    throw new Error('listen() is not valid on a transaction');
  }
}

async function runQuery<T>(target: PGlite | Transaction, text: string, params: readonly unknown[]): Promise<QueryResult<T>> {
  const result = await target.query<T>(text, [...params]);
  // PGlite's rowCount comes from the command tag (rows returned or changed);
  // statements without a count (DDL) fall back to the rows returned.
  return { rows: result.rows, rowCount: result.rowCount ?? result.affectedRows ?? result.rows.length };
}
