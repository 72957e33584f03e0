import type { MetadataStore } from '../store.js';
import { migrate } from '../migrations.js';
import { openDb, type Db, type OpenDbOptions } from './db.js';
import { PgAccessTokens } from './access-tokens.js';
import { PgAudit } from './audit.js';
import { PgLeases } from './leases.js';
import { PgBlobs } from './blobs.js';
import { PgGc } from './gc.js';
import { PgGroups } from './groups.js';
import { PgManifests } from './manifests.js';
import { PgPermissions } from './permissions.js';
import { PgPromotions } from './promotions.js';
import { PgRepositories } from './repositories.js';
import { PgSettings } from './settings.js';
import { PgTags } from './tags.js';
import { PgUploads } from './uploads.js';
import { PgUsers } from './users.js';

/**
 * `MetadataStore` over a `Db` — the same SQL on a PostgreSQL server and on
 * PGlite. Every group is bound to one Db: the store's own, or inside
 * `transaction` the transaction's.
 */
export class PgMetadataStore implements MetadataStore {
  readonly repositories: PgRepositories;
  readonly blobs: PgBlobs;
  readonly manifests: PgManifests;
  readonly tags: PgTags;
  readonly uploads: PgUploads;
  readonly users: PgUsers;
  readonly groups: PgGroups;
  readonly permissions: PgPermissions;
  readonly accessTokens: PgAccessTokens;
  readonly audit: PgAudit;
  readonly leases: PgLeases;
  readonly settings: PgSettings;
  readonly promotions: PgPromotions;
  readonly gc: PgGc;

  /** Takes over `db`: `close()` closes it. The schema must be migrated already. */
  constructor(private readonly db: Db) {
    this.repositories = new PgRepositories(db);
    this.blobs = new PgBlobs(db);
    this.manifests = new PgManifests(db);
    this.tags = new PgTags(db);
    this.uploads = new PgUploads(db);
    this.users = new PgUsers(db);
    this.groups = new PgGroups(db);
    this.permissions = new PgPermissions(db);
    this.accessTokens = new PgAccessTokens(db);
    this.audit = new PgAudit(db);
    this.leases = new PgLeases(db);
    this.settings = new PgSettings(db);
    this.promotions = new PgPromotions(db);
    this.gc = new PgGc(db);
  }

  transaction<T>(fn: (tx: MetadataStore) => Promise<T>): Promise<T> {
    // On a transaction-bound store the Db hands back itself: reuse this store.
    return this.db.transaction((txDb) => fn(txDb === this.db ? this : new PgMetadataStore(txDb)));
  }

  async lock(name: string): Promise<void> {
    // Outside a transaction the lock would be released as soon as the statement ends.
    if (!this.db.inTransaction) throw new Error('lock() is only valid inside transaction()');
    await this.db.query('SELECT 1 FROM pg_advisory_xact_lock(hashtext($1))', [name]);
  }

  async ping(): Promise<void> {
    await this.db.query('SELECT 1');
  }

  async notify(channel: string, payload: string): Promise<void> {
    await this.db.query('SELECT pg_notify($1, $2)', [channel, payload]);
  }

  subscribe(channel: string, handler: (payload: string) => void): Promise<() => Promise<void>> {
    return this.db.listen(channel, handler);
  }

  close(): Promise<void> {
    return this.db.close();
  }
}

/**
 * Opens the database (`databaseUrl` → PostgreSQL server, else PGlite on
 * `dataDir` or in memory), applies pending migrations and resolves the store.
 * On a migration failure the database is closed again and the error rethrown.
 */
export async function openMetadataStore(opts: OpenDbOptions): Promise<MetadataStore> {
  const db = await openDb(opts);
  try {
    await migrate(db);
  } catch (e) {
    await db.close().catch(() => undefined);
    throw e;
  }
  return new PgMetadataStore(db);
}
