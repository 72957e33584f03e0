import type { SettingsStore } from '../store.js';
import type { Db } from './db.js';

function toJson(name: string, value: unknown): string {
  const json = JSON.stringify(value);
  if (json === undefined) throw new TypeError(`setting ${name}: value is not representable as JSON`);
  return json;
}

/** Small JSON values by name (generated secrets, first-start markers). */
export class PgSettings implements SettingsStore {
  constructor(private readonly db: Db) {}

  async get<T = unknown>(name: string): Promise<T | undefined> {
    const { rows } = await this.db.query<{ value: T }>('SELECT value FROM settings WHERE name = $1', [name]);
    return rows.length === 0 ? undefined : rows[0]!.value;
  }

  async set(name: string, value: unknown): Promise<void> {
    await this.db.query(
      `INSERT INTO settings (name, value) VALUES ($1, $2::jsonb)
       ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value, updated_at = now()`,
      [name, toJson(name, value)],
    );
  }

  async setIfAbsent<T>(name: string, value: T): Promise<T> {
    // DO UPDATE (to the same value) rather than DO NOTHING: it returns the row a
    // concurrent transaction just committed, which this statement's snapshot
    // could not see, so racing callers all resolve the winner's value.
    const { rows } = await this.db.query<{ value: T }>(
      `INSERT INTO settings (name, value) VALUES ($1, $2::jsonb)
       ON CONFLICT (name) DO UPDATE SET value = settings.value
       RETURNING value`,
      [name, toJson(name, value)],
    );
    return rows[0]!.value;
  }
}
