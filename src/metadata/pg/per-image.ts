import type { Db } from './db.js';

/** Tables keyed by (repo_key, image, digest): a blob link or a manifest. */
export type PerImageTable = 'repository_blobs' | 'manifests';

/** Deletes one (repo_key, image, digest) row; false when there was none. */
export async function deleteRow(db: Db, table: PerImageTable, repoKey: string, image: string, digest: string): Promise<boolean> {
  const { rowCount } = await db.query(`DELETE FROM ${table} WHERE repo_key = $1 AND image = $2 AND digest = $3`, [repoKey, image, digest]);
  return rowCount > 0;
}

/** Of `digests`, those with no row in `table` for this image, each once, in input order. */
export async function missingRows(db: Db, table: PerImageTable, repoKey: string, image: string, digests: string[]): Promise<string[]> {
  if (digests.length === 0) return [];
  const { rows } = await db.query<{ digest: string }>(
    `SELECT d.digest FROM unnest($3::text[]) WITH ORDINALITY AS d(digest, ord)
     WHERE NOT EXISTS (SELECT 1 FROM ${table} t WHERE t.repo_key = $1 AND t.image = $2 AND t.digest = d.digest)
     GROUP BY d.digest ORDER BY min(d.ord)`,
    [repoKey, image, digests],
  );
  return rows.map((r) => r.digest);
}
