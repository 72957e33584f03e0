import type { BlobRecord, BlobsStore } from '../store.js';
import type { Db } from './db.js';
import { deleteRow, missingRows } from './per-image.js';

interface BlobRow {
  digest: string;
  size: number;
  storage_key: string;
  created_at: Date;
}

const COLUMNS = 'b.digest, b.size, b.storage_key, b.created_at';

function toRecord(r: BlobRow): BlobRecord {
  return { digest: r.digest, size: r.size, storageKey: r.storage_key, createdAt: r.created_at };
}

/** Committed blobs (one row per digest) and their links into repository images. */
export class PgBlobs implements BlobsStore {
  constructor(private readonly db: Db) {}

  async get(digest: string): Promise<BlobRecord | undefined> {
    const { rows } = await this.db.query<BlobRow>(`SELECT ${COLUMNS} FROM blobs b WHERE b.digest = $1`, [digest]);
    return rows[0] && toRecord(rows[0]);
  }

  async put(blob: { digest: string; size: number; storageKey: string }): Promise<BlobRecord> {
    const inserted = await this.db.query<BlobRow>(
      `INSERT INTO blobs AS b (digest, size, storage_key) VALUES ($1, $2, $3)
       ON CONFLICT (digest) DO NOTHING RETURNING ${COLUMNS}`,
      [blob.digest, blob.size, blob.storageKey],
    );
    if (inserted.rows[0]) return toRecord(inserted.rows[0]);
    // A separate statement: its fresh snapshot sees a row another transaction
    // committed while our INSERT waited on it (ON CONFLICT does not return it).
    const existing = await this.get(blob.digest);
    if (!existing) throw new Error(`blob ${blob.digest} conflicted on insert but is not visible`);
    return existing;
  }

  async link(repoKey: string, image: string, digest: string): Promise<void> {
    await this.db.query(
      'INSERT INTO repository_blobs (repo_key, image, digest) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING',
      [repoKey, image, digest],
    );
  }

  async getLinked(repoKey: string, image: string, digest: string): Promise<BlobRecord | undefined> {
    const { rows } = await this.db.query<BlobRow>(
      `SELECT ${COLUMNS} FROM repository_blobs l JOIN blobs b ON b.digest = l.digest
       WHERE l.repo_key = $1 AND l.image = $2 AND l.digest = $3`,
      [repoKey, image, digest],
    );
    return rows[0] && toRecord(rows[0]);
  }

  unlink(repoKey: string, image: string, digest: string): Promise<boolean> {
    return deleteRow(this.db, 'repository_blobs', repoKey, image, digest);
  }

  missing(repoKey: string, image: string, digests: string[]): Promise<string[]> {
    return missingRows(this.db, 'repository_blobs', repoKey, image, digests);
  }
}
