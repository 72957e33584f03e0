import type { TagRecord, TagsStore } from '../store.js';
import type { Db } from './db.js';

interface TagRow {
  repo_key: string;
  image: string;
  name: string;
  digest: string;
  created_at: Date;
  updated_at: Date;
}

/** Tags: names pointing at a manifest of the same image (deleted with it by cascade). */
export class PgTags implements TagsStore {
  constructor(private readonly db: Db) {}

  async resolve(repoKey: string, image: string, tag: string): Promise<string | undefined> {
    const { rows } = await this.db.query<{ digest: string }>(
      'SELECT digest FROM tags WHERE repo_key = $1 AND image = $2 AND name = $3',
      [repoKey, image, tag],
    );
    return rows[0]?.digest;
  }

  set(repoKey: string, image: string, tag: string, digest: string): Promise<{ previous?: string }> {
    return this.db.transaction(async (tx) => {
      // FOR UPDATE: a concurrent set of the same tag waits for our commit and
      // then reads our digest as its previous one. (Two first-time sets of one
      // new tag racing both see none: there is no row to lock yet.)
      const old = await tx.query<{ digest: string }>(
        'SELECT digest FROM tags WHERE repo_key = $1 AND image = $2 AND name = $3 FOR UPDATE',
        [repoKey, image, tag],
      );
      // A push is an update, so updated_at moves even when the digest is the same.
      await tx.query(
        `INSERT INTO tags (repo_key, image, name, digest) VALUES ($1, $2, $3, $4)
         ON CONFLICT (repo_key, image, name) DO UPDATE SET digest = EXCLUDED.digest, updated_at = now()`,
        [repoKey, image, tag, digest],
      );
      const previous = old.rows[0]?.digest;
      return previous === undefined ? {} : { previous };
    });
  }

  async delete(repoKey: string, image: string, tag: string): Promise<boolean> {
    const { rowCount } = await this.db.query('DELETE FROM tags WHERE repo_key = $1 AND image = $2 AND name = $3', [
      repoKey,
      image,
      tag,
    ]);
    return rowCount > 0;
  }

  async list(repoKey: string, image: string, opts: { last?: string; limit?: number } = {}): Promise<string[]> {
    const { rows } = await this.db.query<{ name: string }>(
      `SELECT name FROM tags
       WHERE repo_key = $1 AND image = $2 AND ($3::text IS NULL OR name COLLATE "C" > $3::text)
       ORDER BY name COLLATE "C" LIMIT $4`,
      [repoKey, image, opts.last ?? null, opts.limit ?? null],
    );
    return rows.map((r) => r.name);
  }

  async records(repoKey: string, image: string): Promise<TagRecord[]> {
    const { rows } = await this.db.query<TagRow>(
      `SELECT repo_key, image, name, digest, created_at, updated_at FROM tags
       WHERE repo_key = $1 AND image = $2 ORDER BY updated_at DESC, name COLLATE "C"`,
      [repoKey, image],
    );
    return rows.map((r) => ({
      repoKey: r.repo_key,
      image: r.image,
      name: r.name,
      digest: r.digest,
      createdAt: r.created_at,
      updatedAt: r.updated_at,
    }));
  }

  async forDigest(repoKey: string, image: string, digest: string): Promise<string[]> {
    const { rows } = await this.db.query<{ name: string }>(
      'SELECT name FROM tags WHERE repo_key = $1 AND image = $2 AND digest = $3 ORDER BY name COLLATE "C"',
      [repoKey, image, digest],
    );
    return rows.map((r) => r.name);
  }
}
