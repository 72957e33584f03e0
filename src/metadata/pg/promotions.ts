import type { PromotionRecord, PromotionsStore } from '../store.js';
import type { Db } from './db.js';

interface PromotionRow {
  id: number;
  at: Date;
  actor: string;
  source_repo: string;
  target_repo: string;
  image: string;
  target_image: string;
  tag: string;
  target_tag: string;
  digest: string;
  copy: boolean;
}

const COLUMNS = 'id, at, actor, source_repo, target_repo, image, target_image, tag, target_tag, digest, copy';

function toRecord(r: PromotionRow): PromotionRecord {
  return {
    id: r.id,
    at: r.at,
    actor: r.actor,
    sourceRepo: r.source_repo,
    targetRepo: r.target_repo,
    image: r.image,
    targetImage: r.target_image,
    tag: r.tag,
    targetTag: r.target_tag,
    digest: r.digest,
    copy: r.copy,
  };
}

/** The promotion history; ids (bigserial) give its order. */
export class PgPromotions implements PromotionsStore {
  constructor(private readonly db: Db) {}

  async record(p: Omit<PromotionRecord, 'id' | 'at'>): Promise<PromotionRecord> {
    const { rows } = await this.db.query<PromotionRow>(
      `INSERT INTO promotions (actor, source_repo, target_repo, image, target_image, tag, target_tag, digest, copy)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING ${COLUMNS}`,
      [p.actor, p.sourceRepo, p.targetRepo, p.image, p.targetImage, p.tag, p.targetTag, p.digest, p.copy],
    );
    return toRecord(rows[0]!);
  }

  async list(repoKey: string, opts: { limit: number; before?: number }): Promise<PromotionRecord[]> {
    // A UNION of two index scans rather than `source_repo = $1 OR target_repo = $1`,
    // which the planner can only serve with a scan of the whole table. A promotion
    // within one repository matches both sides; UNION keeps it once.
    const { rows } = await this.db.query<PromotionRow>(
      `SELECT ${COLUMNS} FROM (
         (SELECT ${COLUMNS} FROM promotions WHERE source_repo = $1 AND ($2::bigint IS NULL OR id < $2) ORDER BY id DESC LIMIT $3)
         UNION
         (SELECT ${COLUMNS} FROM promotions WHERE target_repo = $1 AND ($2::bigint IS NULL OR id < $2) ORDER BY id DESC LIMIT $3)
       ) AS p ORDER BY id DESC LIMIT $3`,
      [repoKey, opts.before ?? null, opts.limit],
    );
    return rows.map(toRecord);
  }
}
