import type { PermissionsStore, PermissionTargetRecord } from '../store.js';
import type { Db } from './db.js';

interface PermissionTargetRow {
  name: string;
  target: Record<string, unknown>;
  created_at: Date;
  updated_at: Date;
}

const COLUMNS = 'name, target, created_at, updated_at';

function toRecord(r: PermissionTargetRow): PermissionTargetRecord {
  return { name: r.name, target: r.target, createdAt: r.created_at, updatedAt: r.updated_at };
}

/** Artifactory v2 permission targets, kept whole as JSON. */
export class PgPermissions implements PermissionsStore {
  constructor(private readonly db: Db) {}

  async list(): Promise<PermissionTargetRecord[]> {
    const { rows } = await this.db.query<PermissionTargetRow>(`SELECT ${COLUMNS} FROM permission_targets ORDER BY name COLLATE "C"`);
    return rows.map(toRecord);
  }

  async get(name: string): Promise<PermissionTargetRecord | undefined> {
    const { rows } = await this.db.query<PermissionTargetRow>(`SELECT ${COLUMNS} FROM permission_targets WHERE name = $1`, [name]);
    return rows[0] && toRecord(rows[0]);
  }

  async upsert(name: string, target: Record<string, unknown>): Promise<boolean> {
    // One statement, so concurrent upserts of a new name cannot both report
    // "created". A freshly inserted row version has xmax 0; the ON CONFLICT
    // path locks the row first and its new version carries that lock's xmax.
    const { rows } = await this.db.query<{ created: boolean }>(
      `INSERT INTO permission_targets (name, target) VALUES ($1, $2::jsonb)
       ON CONFLICT (name) DO UPDATE SET target = EXCLUDED.target, updated_at = now()
       RETURNING (xmax = 0) AS created`,
      [name, JSON.stringify(target)],
    );
    return rows[0]!.created;
  }

  async delete(name: string): Promise<boolean> {
    const { rowCount } = await this.db.query('DELETE FROM permission_targets WHERE name = $1', [name]);
    return rowCount > 0;
  }
}
