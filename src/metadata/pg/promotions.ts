import type { PromotionRecord, PromotionRequestRecord, PromotionsStore } from '../store.js';
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

interface RequestRow {
  request_id: string;
  request: Record<string, unknown>;
  result: Record<string, unknown>;
  at: Date;
}

function toRequestRecord(r: RequestRow): PromotionRequestRecord {
  return { requestId: r.request_id, request: r.request, result: r.result, at: r.at };
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

  async getRequest(requestId: string): Promise<PromotionRequestRecord | undefined> {
    const { rows } = await this.db.query<RequestRow>('SELECT request_id, request, result, at FROM promotion_requests WHERE request_id = $1', [requestId]);
    return rows.length === 0 ? undefined : toRequestRecord(rows[0]!);
  }

  async claimRequest(requestId: string): Promise<PromotionRequestRecord | undefined> {
    // Outside a transaction the lock would be gone before the promotion starts.
    if (!this.db.inTransaction) throw new Error('claimRequest() is only valid inside transaction()');
    // A lock rather than an early placeholder row: the row is written once,
    // complete, and nothing can commit a claim without its result. Two-key
    // form: a keyspace apart from MetadataStore.lock(name)'s one-key locks,
    // and a first key apart from the migrations' ('drydock'), so no request
    // id can collide with a lock name.
    await this.db.query("SELECT 1 FROM pg_advisory_xact_lock(hashtext('promotion_requests'), hashtext($1))", [requestId]);
    // A new statement after the wait: under READ COMMITTED it sees what the
    // previous holder committed.
    return this.getRequest(requestId);
  }

  async recordRequest(input: Omit<PromotionRequestRecord, 'at'>): Promise<boolean> {
    const { rowCount } = await this.db.query(
      `INSERT INTO promotion_requests (request_id, request, result) VALUES ($1, $2::jsonb, $3::jsonb)
       ON CONFLICT (request_id) DO NOTHING`,
      [input.requestId, JSON.stringify(input.request), JSON.stringify(input.result)],
    );
    return rowCount === 1;
  }
}
