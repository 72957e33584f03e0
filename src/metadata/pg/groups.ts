import type { GroupRecord, GroupsStore } from '../store.js';
import type { Db } from './db.js';

interface GroupRow {
  name: string;
  description: string | null;
  created_at: Date;
  updated_at: Date;
}

const COLUMNS = 'name, description, created_at, updated_at';

/** The two ends of a membership: the row a replacement locks, and the column pair it rewrites. */
const SIDES = {
  group: { lock: 'SELECT 1 FROM groups WHERE name = $1 FOR NO KEY UPDATE', column: 'group_name', other: 'user_name' },
  user: { lock: 'SELECT 1 FROM users WHERE name = $1 FOR NO KEY UPDATE', column: 'user_name', other: 'group_name' },
} as const;

function toRecord(r: GroupRow): GroupRecord {
  return { name: r.name, description: r.description, createdAt: r.created_at, updatedAt: r.updated_at };
}

/** Groups of users and their memberships (both sides of the many-to-many). */
export class PgGroups implements GroupsStore {
  constructor(private readonly db: Db) {}

  async get(name: string): Promise<GroupRecord | undefined> {
    const { rows } = await this.db.query<GroupRow>(`SELECT ${COLUMNS} FROM groups WHERE name = $1`, [name]);
    return rows[0] && toRecord(rows[0]);
  }

  async list(): Promise<GroupRecord[]> {
    const { rows } = await this.db.query<GroupRow>(`SELECT ${COLUMNS} FROM groups ORDER BY name COLLATE "C"`);
    return rows.map(toRecord);
  }

  /**
   * An omitted `description` is null for a new group and left as it was for an
   * existing one; `null` clears it (the same convention as `users.upsert`'s email).
   */
  async upsert(group: { name: string; description?: string | null }): Promise<void> {
    await this.db.query(
      `INSERT INTO groups (name, description) VALUES ($1, $2)
       ON CONFLICT (name) DO UPDATE SET
         description = CASE WHEN $3::boolean THEN EXCLUDED.description ELSE groups.description END,
         updated_at = now()`,
      [group.name, group.description ?? null, group.description !== undefined],
    );
  }

  async delete(name: string): Promise<boolean> {
    // Memberships go by ON DELETE CASCADE.
    const { rowCount } = await this.db.query('DELETE FROM groups WHERE name = $1', [name]);
    return rowCount > 0;
  }

  async members(name: string): Promise<string[]> {
    const { rows } = await this.db.query<{ user_name: string }>(
      'SELECT user_name FROM group_members WHERE group_name = $1 ORDER BY user_name COLLATE "C"',
      [name],
    );
    return rows.map((r) => r.user_name);
  }

  setMembers(name: string, users: string[]): Promise<void> {
    return this.replace('group', name, users);
  }

  async ofUser(user: string): Promise<string[]> {
    const { rows } = await this.db.query<{ group_name: string }>(
      'SELECT group_name FROM group_members WHERE user_name = $1 ORDER BY group_name COLLATE "C"',
      [user],
    );
    return rows.map((r) => r.group_name);
  }

  setUserGroups(user: string, groups: string[]): Promise<void> {
    return this.replace('user', user, groups);
  }

  /**
   * Makes the memberships of one group (or user) `key` exactly `values`. One
   * transaction, so a failed insert (a missing user or group: the FK error
   * propagates) leaves the previous memberships in place. The row lock on the
   * group (or user) serializes concurrent replacements of the same side: in READ
   * COMMITTED each later statement then sees the winner's rows, so the last
   * replacement wins instead of the two sets being merged. FOR NO KEY UPDATE
   * does not block the FOR KEY SHARE locks that other inserts' FK checks take.
   */
  private replace(side: keyof typeof SIDES, key: string, values: string[]): Promise<void> {
    const { lock, column, other } = SIDES[side];
    return this.db.transaction(async (tx) => {
      await tx.query(lock, [key]);
      // Only the memberships that go away: the kept ones stay untouched.
      await tx.query(`DELETE FROM group_members WHERE ${column} = $1 AND ${other} <> ALL($2::text[])`, [key, values]);
      if (values.length > 0) {
        // DO NOTHING skips kept memberships and duplicates in `values`.
        await tx.query(
          `INSERT INTO group_members (${column}, ${other}) SELECT $1, v FROM unnest($2::text[]) AS v ON CONFLICT DO NOTHING`,
          [key, values],
        );
      }
    });
  }
}
