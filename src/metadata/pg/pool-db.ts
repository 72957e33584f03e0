import pg from 'pg';
import type { Db, QueryResult } from './db.js';
import { TransactionAbortedError } from './db.js';
import { toMetadataError } from './unavailable.js';

const INT8_OID = 20;

export interface PgDbOptions {
  connectionString: string;
  /** Maximum connections in the pool (default 10). */
  poolSize?: number;
  /** Server-side `statement_timeout` in ms (default 30000; 0 disables). */
  statementTimeoutMs?: number;
  /** How long to wait for a new connection before failing as unavailable (default 10000 ms). */
  connectTimeoutMs?: number;
}

/**
 * Type parsers for this pool only: the process-global `pg.types` stays
 * untouched, so other pg users in the process keep their own behaviour.
 */
function poolTypes(): pg.CustomTypesConfig {
  const types = new pg.TypeOverrides();
  // int8 arrives as text; blob sizes and counts stay far below 2^53.
  types.setTypeParser(INT8_OID, 'text', (v: string) => Number(v));
  return types;
}

/** A PostgreSQL server through a `pg.Pool`. */
export class PgDb implements Db {
  readonly inTransaction = false;
  private readonly pool: pg.Pool;

  constructor(private readonly opts: PgDbOptions) {
    this.pool = new pg.Pool({
      connectionString: opts.connectionString,
      max: opts.poolSize ?? 10,
      statement_timeout: opts.statementTimeoutMs ?? 30_000,
      application_name: 'drydock',
      connectionTimeoutMillis: opts.connectTimeoutMs ?? 10_000,
      // Detects a server that vanished without closing the socket.
      keepAlive: true,
      types: poolTypes(),
    });
    // An idle client whose socket fails emits 'error' on the pool; unhandled,
    // that would crash the process. The pool drops the client, and the next
    // query reports the outage as MetadataUnavailableError.
    this.pool.on('error', () => undefined);
  }

  async query<T = Record<string, unknown>>(text: string, params: readonly unknown[] = []): Promise<QueryResult<T>> {
    return runQuery<T>(this.pool, text, params);
  }

  exec(script: string): Promise<void> {
    return runScript(this.pool, script);
  }

  async transaction<T>(fn: (db: Db) => Promise<T>): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (e) {
      throw toMetadataError(e);
    }
    // While checked out, a client's socket error is emitted on the client, and
    // pg-pool listens only on idle ones: without this the process would crash.
    // The failing query itself rejects, and ROLLBACK below then marks it broken.
    const onError = (): void => undefined;
    client.on('error', onError);
    // A client whose ROLLBACK failed is in an unknown state: destroy, do not reuse.
    let broken: Error | undefined;
    try {
      await runQuery(client, 'BEGIN', []);
      const result = await fn(new PgClientDb(client));
      const commit = await client.query('COMMIT').catch((e: unknown) => {
        throw toMetadataError(e);
      });
      // The server answers COMMIT of a failed transaction with ROLLBACK, not an error.
      if (commit.command === 'ROLLBACK') throw new TransactionAbortedError();
      return result;
    } catch (e) {
      await client.query('ROLLBACK').catch((rollbackError: unknown) => {
        broken = new Error('ROLLBACK failed; discarding the connection', { cause: rollbackError });
      });
      throw toMetadataError(e);
    } finally {
      client.off('error', onError);
      client.release(broken);
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.listeners].map((stop) => stop()));
    await this.pool.end();
  }

  private readonly listeners = new Set<() => Promise<void>>();

  /**
   * LISTEN needs a session of its own, outside the pool. When the connection
   * drops (a database restart), it reconnects with backoff and LISTENs again.
   */
  async listen(channel: string, onMessage: (payload: string) => void): Promise<() => Promise<void>> {
    let stopped = false;
    let client: pg.Client | undefined;
    let retry: NodeJS.Timeout | undefined;
    const connect = async (delay: number): Promise<void> => {
      if (stopped) return;
      const c = new pg.Client({ connectionString: this.opts.connectionString, application_name: 'drydock-listen', keepAlive: true });
      c.on('notification', (n) => {
        if (n.channel === channel) onMessage(n.payload ?? '');
      });
      const again = () => {
        if (stopped || client !== c) return;
        client = undefined;
        retry = setTimeout(() => void connect(Math.min(delay * 2, 5000)), delay);
        retry.unref();
      };
      c.on('error', again);
      c.on('end', again);
      client = c;
      try {
        await c.connect();
        await c.query(`LISTEN ${pg.escapeIdentifier(channel)}`);
      } catch {
        c.end().catch(() => undefined);
        again();
        return;
      }
    };
    await connect(250);
    const stop = async () => {
      stopped = true;
      if (retry) clearTimeout(retry);
      this.listeners.delete(stop);
      await client?.end().catch(() => undefined);
    };
    this.listeners.add(stop);
    return stop;
  }
}

/** The Db handed to a transaction callback: every query on the transaction's client. */
class PgClientDb implements Db {
  readonly inTransaction = true;

  constructor(private readonly client: pg.PoolClient) {}

  query<T = Record<string, unknown>>(text: string, params: readonly unknown[] = []): Promise<QueryResult<T>> {
    return runQuery<T>(this.client, text, params);
  }

  exec(script: string): Promise<void> {
    return runScript(this.client, script);
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

async function runQuery<T>(target: pg.Pool | pg.PoolClient, text: string, params: readonly unknown[]): Promise<QueryResult<T>> {
  try {
    const result = await target.query(text, [...params]);
    return { rows: result.rows as T[], rowCount: result.rowCount ?? result.rows.length };
  } catch (e) {
    throw toMetadataError(e);
  }
}

async function runScript(target: pg.Pool | pg.PoolClient, script: string): Promise<void> {
  try {
    // Without parameters node-postgres uses the simple protocol, which runs several statements.
    await target.query(script);
  } catch (e) {
    throw toMetadataError(e);
  }
}
