import type { RepositoriesStore, RepositoryClass, RepositoryInput, RepositoryRecord } from '../store.js';
import type { Db } from './db.js';

interface RepositoryRow {
  key: string;
  rclass: RepositoryClass;
  config: Record<string, unknown>;
  managed_by: string | null;
  created_at: Date;
  updated_at: Date;
}

const COLUMNS = 'key, rclass, config, managed_by, created_at, updated_at';

function toRecord(r: RepositoryRow): RepositoryRecord {
  return {
    key: r.key,
    rclass: r.rclass,
    config: r.config,
    managedBy: r.managed_by,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

/** Repository configuration rows; deleting one cascades to everything stored under its key. */
export class PgRepositories implements RepositoriesStore {
  constructor(private readonly db: Db) {}

  async list(rclass?: RepositoryClass): Promise<RepositoryRecord[]> {
    const { rows } = await this.db.query<RepositoryRow>(
      `SELECT ${COLUMNS} FROM repositories WHERE ($1::text IS NULL OR rclass = $1) ORDER BY key COLLATE "C"`,
      [rclass ?? null],
    );
    return rows.map(toRecord);
  }

  async get(key: string): Promise<RepositoryRecord | undefined> {
    const { rows } = await this.db.query<RepositoryRow>(`SELECT ${COLUMNS} FROM repositories WHERE key = $1`, [key]);
    return rows[0] && toRecord(rows[0]);
  }

  async create(input: RepositoryInput): Promise<boolean> {
    const { rowCount } = await this.db.query(
      `INSERT INTO repositories (key, rclass, config, managed_by) VALUES ($1, $2, $3::jsonb, $4)
       ON CONFLICT (key) DO NOTHING`,
      [input.key, input.rclass, JSON.stringify(input.config), input.managedBy ?? null],
    );
    return rowCount > 0;
  }

  async update(input: RepositoryInput): Promise<boolean> {
    const { rowCount } = await this.db.query(
      `UPDATE repositories SET rclass = $2, config = $3::jsonb, managed_by = $4, updated_at = now() WHERE key = $1`,
      [input.key, input.rclass, JSON.stringify(input.config), input.managedBy ?? null],
    );
    return rowCount > 0;
  }

  async delete(key: string): Promise<boolean> {
    const { rowCount } = await this.db.query('DELETE FROM repositories WHERE key = $1', [key]);
    return rowCount > 0;
  }
}
