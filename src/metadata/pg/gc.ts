import type { GcBlob, GcStore, ManifestKey, ProtectedDigestRecord } from '../store.js';
import type { Db } from './db.js';

interface BlobRow {
  digest: string;
  size: number;
  storage_key: string;
}

interface ManifestKeyRow {
  repo_key: string;
  image: string;
  digest: string;
}

const toBlob = (r: BlobRow): GcBlob => ({ digest: r.digest, size: r.size, storageKey: r.storage_key });
const toKey = (r: ManifestKeyRow): ManifestKey => ({ repoKey: r.repo_key, image: r.image, digest: r.digest });

/**
 * The live manifests as a CTE (`live`), from `$1` = untagged retention in
 * seconds. Roots: tagged, young, protected. Edges: an index to its children and
 * a subject to its referrers, within one image (where the API puts them).
 */
const LIVE_MANIFESTS = `
  WITH RECURSIVE edges(repo_key, image, parent, child) AS (
    SELECT r.repo_key, r.image, r.digest, r.child_digest FROM manifest_references r WHERE r.child_kind = 'manifest'
    UNION ALL
    SELECT m.repo_key, m.image, m.subject, m.digest FROM manifests m WHERE m.subject IS NOT NULL
  ),
  live(repo_key, image, digest) AS (
    SELECT m.repo_key, m.image, m.digest FROM manifests m
     WHERE m.created_at >= now() - make_interval(secs => $1::double precision)
        OR EXISTS (SELECT 1 FROM tags t WHERE t.repo_key = m.repo_key AND t.image = m.image AND t.digest = m.digest)
        OR EXISTS (SELECT 1 FROM protected_digests p WHERE p.digest = m.digest)
    UNION
    SELECT e.repo_key, e.image, e.child FROM live l
      JOIN edges e ON e.repo_key = l.repo_key AND e.image = l.image AND e.parent = l.digest
  )`;

/** A blob row `b` still inside its grace window (`$GRACE` = seconds): committed or linked recently. */
const YOUNG = (grace: string) => `(
  GREATEST(b.created_at, b.touched_at) >= now() - make_interval(secs => ${grace}::double precision)
  OR EXISTS (SELECT 1 FROM repository_blobs l WHERE l.digest = b.digest
              AND l.created_at >= now() - make_interval(secs => ${grace}::double precision)))`;

/** Garbage-collection queries; the protocol around them is in src/registry/service/gc.ts. */
export class PgGc implements GcStore {
  constructor(private readonly db: Db) {}

  async deadManifests(opts: { untaggedRetentionSecs: number; limit: number; after?: ManifestKey }): Promise<ManifestKey[]> {
    const a = opts.after;
    const { rows } = await this.db.query<ManifestKeyRow>(
      `${LIVE_MANIFESTS}
       SELECT m.repo_key, m.image, m.digest FROM manifests m
        WHERE NOT EXISTS (SELECT 1 FROM live l WHERE l.repo_key = m.repo_key AND l.image = m.image AND l.digest = m.digest)
          AND ($3::text IS NULL OR (m.repo_key, m.image, m.digest) > ($3::text COLLATE "C", $4::text COLLATE "C", $5::text COLLATE "C"))
        ORDER BY m.repo_key, m.image, m.digest LIMIT $2`,
      [opts.untaggedRetentionSecs, opts.limit, a?.repoKey ?? null, a?.image ?? null, a?.digest ?? null],
    );
    return rows.map(toKey);
  }

  deleteManifests(manifests: ManifestKey[], untaggedRetentionSecs: number): Promise<ManifestKey[]> {
    if (manifests.length === 0) return Promise.resolve([]);
    const params = [manifests.map((m) => m.repoKey), manifests.map((m) => m.image), manifests.map((m) => m.digest)];
    return this.db.transaction(async (tx) => {
      // Row locks first: a tag insert or an index's reference (the guard trigger)
      // holds FOR KEY SHARE on the manifest, so either it committed before the
      // re-check below (which then sees it) or it waits and then fails its
      // foreign key / guard instead of pointing at a deleted manifest.
      await tx.query(
        `SELECT 1 FROM manifests m WHERE (m.repo_key, m.image, m.digest) IN (
           SELECT * FROM unnest($1::text[], $2::text[], $3::text[])) ORDER BY m.repo_key, m.image, m.digest FOR UPDATE`,
        params,
      );
      // A fresh statement, so a fresh snapshot: the re-check sees whatever committed
      // while we waited. Conservative: any manifest naming it as child or subject keeps it.
      const { rows } = await tx.query<ManifestKeyRow>(
        `DELETE FROM manifests m
          WHERE (m.repo_key, m.image, m.digest) IN (SELECT * FROM unnest($1::text[], $2::text[], $3::text[]))
            AND m.created_at < now() - make_interval(secs => $4::double precision)
            AND NOT EXISTS (SELECT 1 FROM tags t WHERE t.repo_key = m.repo_key AND t.image = m.image AND t.digest = m.digest)
            AND NOT EXISTS (SELECT 1 FROM protected_digests p WHERE p.digest = m.digest)
            AND NOT EXISTS (SELECT 1 FROM manifest_references r
                             WHERE r.repo_key = m.repo_key AND r.image = m.image AND r.child_digest = m.digest AND r.digest <> m.digest)
            AND (m.subject IS NULL OR NOT EXISTS (SELECT 1 FROM manifests s
                             WHERE s.repo_key = m.repo_key AND s.image = m.image AND s.digest = m.subject))
          RETURNING m.repo_key, m.image, m.digest`,
        [...params, untaggedRetentionSecs],
      );
      if (rows.length) {
        // Remembered for the guard trigger: an index verified before this delete is refused.
        await tx.query(
          `INSERT INTO gc_collected (digest) SELECT DISTINCT unnest($1::text[])
           ON CONFLICT (digest) DO UPDATE SET collected_at = now()`,
          [rows.map((r) => r.digest)],
        );
      }
      return rows.map(toKey);
    });
  }

  async countBlobs(): Promise<number> {
    const { rows } = await this.db.query<{ n: number }>('SELECT count(*)::int AS n FROM blobs');
    return rows[0]!.n;
  }

  async deadBlobs(opts: { graceSecs: number; limit: number; after?: string; untaggedRetentionSecs?: number }): Promise<GcBlob[]> {
    const dry = opts.untaggedRetentionSecs !== undefined;
    // Dry run: the dead manifests still exist, so only live manifests' references count.
    const referenced = dry
      ? `EXISTS (SELECT 1 FROM manifest_references r JOIN live lm
                  ON lm.repo_key = r.repo_key AND lm.image = r.image AND lm.digest = r.digest
                WHERE r.child_digest = b.digest)`
      : 'EXISTS (SELECT 1 FROM manifest_references r WHERE r.child_digest = b.digest)';
    const { rows } = await this.db.query<BlobRow>(
      `${dry ? LIVE_MANIFESTS : ''}
       SELECT b.digest, b.size, b.storage_key FROM blobs b
        WHERE ($4::text IS NULL OR b.digest > $4::text COLLATE "C")
          -- Types $1 when the live-manifest CTE (its only user) is left out.
          AND ($1::double precision IS NULL OR TRUE)
          AND NOT ${YOUNG('$2')}
          AND NOT ${referenced}
          AND NOT EXISTS (SELECT 1 FROM protected_digests p WHERE p.digest = b.digest)
        ORDER BY b.digest LIMIT $3`,
      [dry ? opts.untaggedRetentionSecs : null, opts.graceSecs, opts.limit, opts.after ?? null],
    );
    return rows.map(toBlob);
  }

  async lockBlobs(digests: string[]): Promise<void> {
    if (!this.db.inTransaction) throw new Error('lockBlobs() is only valid inside transaction()');
    if (digests.length === 0) return;
    // One statement in digest order: the manifest guard trigger locks in the same
    // order, so two lockers never wait on each other in a cycle.
    await this.db.query(
      `SELECT count(pg_advisory_xact_lock(hashtext('blob:' || d))) FROM (
         SELECT DISTINCT d COLLATE "C" AS d FROM unnest($1::text[]) AS u(d) ORDER BY 1) s`,
      [digests],
    );
  }

  async collect(digests: string[], graceSecs: number): Promise<GcBlob[]> {
    if (!this.db.inTransaction) throw new Error('collect() is only valid inside transaction()');
    if (digests.length === 0) return [];
    // Re-check after the locks (fresh snapshot): a commit, link or reference that
    // landed since the mark phase makes the blob live again.
    const { rows } = await this.db.query<BlobRow>(
      `SELECT b.digest, b.size, b.storage_key FROM blobs b
        WHERE b.digest = ANY($1::text[])
          AND NOT ${YOUNG('$2')}
          AND NOT EXISTS (SELECT 1 FROM manifest_references r WHERE r.child_digest = b.digest)
          AND NOT EXISTS (SELECT 1 FROM protected_digests p WHERE p.digest = b.digest)
        ORDER BY b.digest
        FOR UPDATE OF b`,
      [digests, graceSecs],
    );
    if (rows.length === 0) return [];
    const dead = rows.map((r) => r.digest);
    // Links go with the blob: past the grace window and referenced by no
    // manifest, a link only keeps an abandoned upload alive.
    await this.db.query('DELETE FROM repository_blobs WHERE digest = ANY($1::text[])', [dead]);
    await this.db.query('DELETE FROM blobs WHERE digest = ANY($1::text[])', [dead]);
    await this.db.query(
      `INSERT INTO gc_pending_objects (digest, storage_key)
       SELECT * FROM unnest($1::text[], $2::text[])
       ON CONFLICT (digest) DO UPDATE SET storage_key = EXCLUDED.storage_key, queued_at = now()`,
      [dead, rows.map((r) => r.storage_key)],
    );
    await this.db.query(
      `INSERT INTO gc_collected (digest) SELECT unnest($1::text[])
       ON CONFLICT (digest) DO UPDATE SET collected_at = now()`,
      [dead],
    );
    return rows.map(toBlob);
  }

  async pendingObjects(limit: number): Promise<GcBlob[]> {
    const { rows } = await this.db.query<{ digest: string; storage_key: string }>(
      'SELECT digest, storage_key FROM gc_pending_objects ORDER BY queued_at, digest LIMIT $1',
      [limit],
    );
    // The size left with the row; what matters now is the key.
    return rows.map((r) => ({ digest: r.digest, size: 0, storageKey: r.storage_key }));
  }

  async settlePending(digests: string[]): Promise<string[]> {
    if (!this.db.inTransaction) throw new Error('settlePending() is only valid inside transaction()');
    if (digests.length === 0) return [];
    const { rows } = await this.db.query<{ storage_key: string; present: boolean }>(
      `DELETE FROM gc_pending_objects q WHERE q.digest = ANY($1::text[])
       RETURNING q.storage_key, EXISTS (SELECT 1 FROM blobs b WHERE b.digest = q.digest) AS present`,
      [digests],
    );
    return rows.filter((r) => !r.present).map((r) => r.storage_key);
  }

  async touch(digest: string): Promise<void> {
    await this.db.query('UPDATE blobs SET touched_at = now() WHERE digest = $1', [digest]);
  }

  async pruneCollected(olderThanSecs: number): Promise<void> {
    await this.db.query('DELETE FROM gc_collected WHERE collected_at < now() - make_interval(secs => $1::double precision)', [
      olderThanSecs,
    ]);
  }

  async protect(input: { digest: string; reason?: string | null; pod?: string | null }): Promise<void> {
    await this.db.query(
      `INSERT INTO protected_digests (digest, reason, pod) VALUES ($1, $2, $3)
       ON CONFLICT (digest) DO UPDATE SET reason = EXCLUDED.reason, pod = EXCLUDED.pod, recorded_at = now()`,
      [input.digest, input.reason ?? null, input.pod ?? null],
    );
  }

  async unprotect(digest: string): Promise<boolean> {
    const { rowCount } = await this.db.query('DELETE FROM protected_digests WHERE digest = $1', [digest]);
    return rowCount > 0;
  }

  async listProtected(): Promise<ProtectedDigestRecord[]> {
    const { rows } = await this.db.query<{ digest: string; reason: string | null; pod: string | null; recorded_at: Date }>(
      'SELECT digest, reason, pod, recorded_at FROM protected_digests ORDER BY digest',
    );
    return rows.map((r) => ({ digest: r.digest, reason: r.reason, pod: r.pod, recordedAt: r.recorded_at }));
  }

  async saveRun(run: { startedAt: Date; finishedAt: Date | null; summary: Record<string, unknown> }): Promise<void> {
    await this.db.query(
      `INSERT INTO gc_state (id, started_at, finished_at, summary) VALUES (1, $1, $2, $3::jsonb)
       ON CONFLICT (id) DO UPDATE SET started_at = EXCLUDED.started_at, finished_at = EXCLUDED.finished_at, summary = EXCLUDED.summary`,
      [run.startedAt, run.finishedAt, JSON.stringify(run.summary)],
    );
  }

  async lastRun(): Promise<{ startedAt: Date; finishedAt: Date | null; summary: Record<string, unknown> | null } | undefined> {
    const { rows } = await this.db.query<{ started_at: Date; finished_at: Date | null; summary: Record<string, unknown> | null }>(
      'SELECT started_at, finished_at, summary FROM gc_state WHERE id = 1',
    );
    const r = rows[0];
    return r && { startedAt: r.started_at, finishedAt: r.finished_at, summary: r.summary };
  }
}
