import type { UserRecord, UsersStore } from '../store.js';
import type { Db } from './db.js';

interface UserRow {
  name: string;
  password_hash: string | null;
  email: string | null;
  admin: boolean;
  created_at: Date;
  updated_at: Date;
}

const COLUMNS = 'name, password_hash, email, admin, created_at, updated_at';

function toRecord(r: UserRow): UserRecord {
  return {
    name: r.name,
    passwordHash: r.password_hash,
    email: r.email,
    admin: r.admin,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

/** Local users. */
export class PgUsers implements UsersStore {
  constructor(private readonly db: Db) {}

  async get(name: string): Promise<UserRecord | undefined> {
    const { rows } = await this.db.query<UserRow>(`SELECT ${COLUMNS} FROM users WHERE name = $1`, [name]);
    return rows[0] && toRecord(rows[0]);
  }

  async list(): Promise<UserRecord[]> {
    const { rows } = await this.db.query<UserRow>(`SELECT ${COLUMNS} FROM users ORDER BY name COLLATE "C"`);
    return rows.map(toRecord);
  }

  /** An omitted `email` is null for a new user and left as it was for an existing one; `null` clears it. */
  async upsert(user: { name: string; passwordHash: string | null; email?: string | null; admin: boolean }): Promise<void> {
    await this.db.query(
      `INSERT INTO users (name, password_hash, email, admin) VALUES ($1, $2, $3, $4)
       ON CONFLICT (name) DO UPDATE SET
         password_hash = EXCLUDED.password_hash,
         email = CASE WHEN $5::boolean THEN EXCLUDED.email ELSE users.email END,
         admin = EXCLUDED.admin,
         updated_at = now()`,
      [user.name, user.passwordHash, user.email ?? null, user.admin, user.email !== undefined],
    );
  }

  async delete(name: string): Promise<boolean> {
    const { rowCount } = await this.db.query('DELETE FROM users WHERE name = $1', [name]);
    return rowCount > 0;
  }
}
