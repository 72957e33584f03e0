import type { LeasesStore } from '../store.js';
import type { Db } from './db.js';

export class PgLeases implements LeasesStore {
  constructor(private readonly db: Db) {}

  async acquire(key: string, owner: string, ttlMs: number): Promise<boolean> {
    // One statement: insert, or take over an expired (or our own) lease; otherwise no row comes back.
    const { rows } = await this.db.query<{ owner: string }>(
      `INSERT INTO fetch_leases (key, owner, expires_at) VALUES ($1, $2, now() + make_interval(secs => $3::double precision / 1000))
       ON CONFLICT (key) DO UPDATE SET owner = EXCLUDED.owner, expires_at = EXCLUDED.expires_at
         WHERE fetch_leases.expires_at < now() OR fetch_leases.owner = EXCLUDED.owner
       RETURNING owner`,
      [key, owner, ttlMs],
    );
    return rows.length === 1;
  }

  async release(key: string, owner: string): Promise<void> {
    await this.db.query('DELETE FROM fetch_leases WHERE key = $1 AND owner = $2', [key, owner]);
  }
}
