import type { ManifestRecord, ManifestReference, ManifestsStore, ManifestSummary } from '../store.js';
import type { Db } from './db.js';
import { deleteRow, missingRows } from './per-image.js';

interface ManifestRow {
  repo_key: string;
  image: string;
  digest: string;
  media_type: string;
  artifact_type: string | null;
  subject: string | null;
  size: number;
  content?: Buffer;
  annotations: Record<string, string> | null;
  created_at: Date;
}

const SUMMARY_COLUMNS = 'repo_key, image, digest, media_type, artifact_type, subject, size, annotations, created_at';

function toSummary(r: ManifestRow): ManifestSummary {
  return {
    repoKey: r.repo_key,
    image: r.image,
    digest: r.digest,
    mediaType: r.media_type,
    artifactType: r.artifact_type,
    subject: r.subject,
    size: r.size,
    annotations: r.annotations,
    createdAt: r.created_at,
  };
}

/** Manifests with their exact bytes, what they reference, and the catalog built from them. */
export class PgManifests implements ManifestsStore {
  constructor(private readonly db: Db) {}

  async get(repoKey: string, image: string, digest: string): Promise<ManifestRecord | undefined> {
    const { rows } = await this.db.query<ManifestRow & { content: Buffer }>(
      `SELECT ${SUMMARY_COLUMNS}, content FROM manifests WHERE repo_key = $1 AND image = $2 AND digest = $3`,
      [repoKey, image, digest],
    );
    const row = rows[0];
    return row && { ...toSummary(row), content: row.content };
  }

  put(manifest: Omit<ManifestRecord, 'createdAt'>, references: ManifestReference[]): Promise<boolean> {
    // The manifest and its references land together or not at all.
    return this.db.transaction(async (tx) => {
      const inserted = await tx.query(
        `INSERT INTO manifests
           (repo_key, image, digest, media_type, artifact_type, subject, size, content, annotations)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb)
         ON CONFLICT DO NOTHING`,
        [
          manifest.repoKey,
          manifest.image,
          manifest.digest,
          manifest.mediaType,
          manifest.artifactType,
          manifest.subject,
          manifest.size,
          manifest.content,
          manifest.annotations === null ? null : JSON.stringify(manifest.annotations),
        ],
      );
      // An existing row already has the references of these same bytes.
      if (inserted.rowCount === 0) return false;
      if (references.length > 0) {
        await tx.query(
          `INSERT INTO manifest_references (repo_key, image, digest, child_digest, child_kind)
           SELECT $1, $2, $3, r.child_digest, r.child_kind FROM unnest($4::text[], $5::text[]) AS r(child_digest, child_kind)
           ON CONFLICT DO NOTHING`,
          [manifest.repoKey, manifest.image, manifest.digest, references.map((r) => r.digest), references.map((r) => r.kind)],
        );
      }
      return true;
    });
  }

  delete(repoKey: string, image: string, digest: string): Promise<boolean> {
    return deleteRow(this.db, 'manifests', repoKey, image, digest);
  }

  missing(repoKey: string, image: string, digests: string[]): Promise<string[]> {
    return missingRows(this.db, 'manifests', repoKey, image, digests);
  }

  async referrers(repoKey: string, image: string, subject: string, artifactType?: string): Promise<ManifestSummary[]> {
    const { rows } = await this.db.query<ManifestRow>(
      `SELECT ${SUMMARY_COLUMNS} FROM manifests
       WHERE repo_key = $1 AND image = $2 AND subject = $3 AND ($4::text IS NULL OR artifact_type = $4)
       ORDER BY digest COLLATE "C"`,
      [repoKey, image, subject, artifactType ?? null],
    );
    return rows.map(toSummary);
  }

  async references(repoKey: string, image: string, digest: string): Promise<ManifestReference[]> {
    const { rows } = await this.db.query<{ child_digest: string; child_kind: ManifestReference['kind'] }>(
      `SELECT child_digest, child_kind FROM manifest_references
       WHERE repo_key = $1 AND image = $2 AND digest = $3 ORDER BY child_digest COLLATE "C"`,
      [repoKey, image, digest],
    );
    return rows.map((r) => ({ digest: r.child_digest, kind: r.child_kind }));
  }

  async imageStats(repoKey: string): Promise<Array<{ image: string; tags: number; manifests: number; size: number }>> {
    const { rows } = await this.db.query<{ image: string; tags: number; manifests: number; size: number }>(
      `SELECT m.image,
              (SELECT count(*) FROM tags t WHERE t.repo_key = m.repo_key AND t.image = m.image)::int8 AS tags,
              count(*)::int8 AS manifests,
              (sum(m.size) + COALESCE((SELECT sum(b.size) FROM repository_blobs l JOIN blobs b ON b.digest = l.digest
                                        WHERE l.repo_key = m.repo_key AND l.image = m.image), 0))::int8 AS size
         FROM manifests m WHERE m.repo_key = $1
        GROUP BY m.repo_key, m.image ORDER BY m.image COLLATE "C"`,
      [repoKey],
    );
    return rows.map((r) => ({ image: r.image, tags: Number(r.tags), manifests: Number(r.manifests), size: Number(r.size) }));
  }

  async imageCounts(repoKeys?: readonly string[]): Promise<Map<string, number>> {
    const { rows } = await this.db.query<{ repo_key: string; images: number }>(
      `SELECT repo_key, count(DISTINCT image)::int8 AS images FROM manifests
        WHERE $1::text[] IS NULL OR repo_key = ANY($1::text[]) GROUP BY repo_key`,
      [repoKeys ? [...repoKeys] : null],
    );
    return new Map(rows.map((r) => [r.repo_key, Number(r.images)]));
  }

  async referencing(repoKey: string, image: string, child: string): Promise<string[]> {
    const { rows } = await this.db.query<{ digest: string }>(
      `SELECT digest FROM manifest_references
       WHERE repo_key = $1 AND image = $2 AND child_digest = $3 ORDER BY digest COLLATE "C"`,
      [repoKey, image, child],
    );
    return rows.map((r) => r.digest);
  }

  async catalog(opts: { repoKeys?: string[]; last?: string; limit?: number }): Promise<Array<{ repoKey: string; image: string }>> {
    const { rows } = await this.db.query<{ repo_key: string; image: string }>(
      `SELECT repo_key, image FROM (
         SELECT DISTINCT repo_key, image FROM manifests WHERE $1::text[] IS NULL OR repo_key = ANY($1::text[])
       ) AS images
       WHERE $2::text IS NULL OR (repo_key || '/' || image) COLLATE "C" > $2::text
       ORDER BY (repo_key || '/' || image) COLLATE "C"
       LIMIT $3`,
      [opts.repoKeys ?? null, opts.last ?? null, opts.limit ?? null],
    );
    return rows.map((r) => ({ repoKey: r.repo_key, image: r.image }));
  }

  async imageExists(repoKey: string, image: string): Promise<boolean> {
    const { rows } = await this.db.query<{ exists: boolean }>(
      'SELECT EXISTS (SELECT 1 FROM manifests WHERE repo_key = $1 AND image = $2) AS exists',
      [repoKey, image],
    );
    return rows[0]?.exists === true;
  }
}
