import type { AccessTokenRecord, AccessTokensStore } from '../store.js';
import type { Db } from './db.js';

interface AccessTokenRow {
  id: string;
  user_name: string;
  scope: string;
  description: string | null;
  created_at: Date;
  expires_at: Date | null;
  revoked_at: Date | null;
}

const COLUMNS = 'id, user_name, scope, description, created_at, expires_at, revoked_at';

function toRecord(r: AccessTokenRow): AccessTokenRecord {
  return {
    id: r.id,
    userName: r.user_name,
    scope: r.scope,
    description: r.description,
    createdAt: r.created_at,
    expiresAt: r.expires_at,
    revokedAt: r.revoked_at,
  };
}

/** Issued access tokens by `jti` (the signed token itself is never stored). Deleting a user deletes its tokens. */
export class PgAccessTokens implements AccessTokensStore {
  constructor(private readonly db: Db) {}

  async create(token: { id: string; userName: string; scope: string; description?: string | null; expiresAt: Date | null }): Promise<AccessTokenRecord> {
    const { rows } = await this.db.query<AccessTokenRow>(
      `INSERT INTO access_tokens (id, user_name, scope, description, expires_at) VALUES ($1, $2, $3, $4, $5) RETURNING ${COLUMNS}`,
      [token.id, token.userName, token.scope, token.description ?? null, token.expiresAt],
    );
    return toRecord(rows[0]!);
  }

  async get(id: string): Promise<AccessTokenRecord | undefined> {
    const { rows } = await this.db.query<AccessTokenRow>(`SELECT ${COLUMNS} FROM access_tokens WHERE id = $1`, [id]);
    return rows[0] && toRecord(rows[0]);
  }

  async list(userName?: string): Promise<AccessTokenRecord[]> {
    // Tokens created in one transaction share created_at: the id breaks the tie
    // so the order is the same on every call and on both engines.
    const { rows } = await this.db.query<AccessTokenRow>(
      `SELECT ${COLUMNS} FROM access_tokens WHERE ($1::text IS NULL OR user_name = $1)
       ORDER BY created_at DESC, id COLLATE "C" DESC`,
      [userName ?? null],
    );
    return rows.map(toRecord);
  }

  async revoke(id: string): Promise<boolean> {
    // COALESCE keeps the first revocation time, so revoking again changes nothing but still matches the row.
    const { rowCount } = await this.db.query('UPDATE access_tokens SET revoked_at = COALESCE(revoked_at, now()) WHERE id = $1', [id]);
    return rowCount > 0;
  }
}
