import type { UploadRecord, UploadsStore } from '../store.js';
import type { Db } from './db.js';

interface UploadRow {
  id: string;
  repo_key: string;
  image: string;
  size: number;
  driver_state: Record<string, unknown>;
  created_at: Date;
  updated_at: Date;
}

const COLUMNS = 'id, repo_key, image, size, driver_state, created_at, updated_at';

function toRecord(r: UploadRow): UploadRecord {
  return {
    id: r.id,
    repoKey: r.repo_key,
    image: r.image,
    size: r.size,
    driverState: r.driver_state,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

/** Upload sessions, shared by every process so any of them can continue one. */
export class PgUploads implements UploadsStore {
  constructor(private readonly db: Db) {}

  async create(upload: { id: string; repoKey: string; image: string; driverState: Record<string, unknown> }): Promise<UploadRecord> {
    const { rows } = await this.db.query<UploadRow>(
      `INSERT INTO uploads (id, repo_key, image, driver_state) VALUES ($1, $2, $3, $4::jsonb) RETURNING ${COLUMNS}`,
      [upload.id, upload.repoKey, upload.image, JSON.stringify(upload.driverState)],
    );
    return toRecord(rows[0]!);
  }

  async get(id: string): Promise<UploadRecord | undefined> {
    const { rows } = await this.db.query<UploadRow>(`SELECT ${COLUMNS} FROM uploads WHERE id = $1`, [id]);
    return rows[0] && toRecord(rows[0]);
  }

  async advance(id: string, expectedSize: number, size: number, driverState: Record<string, unknown>): Promise<boolean> {
    const { rowCount } = await this.db.query(
      'UPDATE uploads SET size = $3, driver_state = $4::jsonb, updated_at = now() WHERE id = $1 AND size = $2',
      [id, expectedSize, size, JSON.stringify(driverState)],
    );
    return rowCount > 0;
  }

  async delete(id: string): Promise<boolean> {
    const { rowCount } = await this.db.query('DELETE FROM uploads WHERE id = $1', [id]);
    return rowCount > 0;
  }

  async stale(before: Date, limit: number): Promise<UploadRecord[]> {
    const { rows } = await this.db.query<UploadRow>(
      `SELECT ${COLUMNS} FROM uploads WHERE updated_at < $1 ORDER BY updated_at, id COLLATE "C" LIMIT $2`,
      [before, limit],
    );
    return rows.map(toRecord);
  }
}
