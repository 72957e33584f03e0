import type { AuditEvent, AuditOutcome, AuditStore } from '../store.js';
import type { Db } from './db.js';

interface AuditRow {
  id: number;
  at: Date;
  actor: string;
  action: string;
  target: string | null;
  outcome: AuditOutcome;
  client_ip: string | null;
  details: Record<string, unknown> | null;
}

const COLUMNS = 'id, at, actor, action, target, outcome, client_ip, details';

function toRecord(r: AuditRow): AuditEvent {
  return {
    id: r.id,
    at: r.at,
    actor: r.actor,
    action: r.action,
    target: r.target,
    outcome: r.outcome,
    clientIp: r.client_ip,
    details: r.details,
  };
}

/** The append-only audit log; ids (bigserial) give its order. */
export class PgAudit implements AuditStore {
  constructor(private readonly db: Db) {}

  async append(event: Omit<AuditEvent, 'id' | 'at'>): Promise<void> {
    await this.db.query(
      `INSERT INTO audit_log (actor, action, target, outcome, client_ip, details) VALUES ($1, $2, $3, $4, $5, $6::jsonb)`,
      [
        event.actor,
        event.action,
        event.target,
        event.outcome,
        event.clientIp,
        // SQL NULL, not the JSON value null, when there are no details.
        event.details === null ? null : JSON.stringify(event.details),
      ],
    );
  }

  async list(opts: { limit: number; before?: number; actor?: string; action?: string }): Promise<AuditEvent[]> {
    // Ordered by id, not `at`: events of one transaction share `at`, and the
    // (actor, id) and (action, id) indexes serve the filtered pages backwards.
    const { rows } = await this.db.query<AuditRow>(
      `SELECT ${COLUMNS} FROM audit_log
       WHERE ($1::bigint IS NULL OR id < $1) AND ($2::text IS NULL OR actor = $2) AND ($3::text IS NULL OR action = $3)
       ORDER BY id DESC LIMIT $4`,
      [opts.before ?? null, opts.actor ?? null, opts.action ?? null, opts.limit],
    );
    return rows.map(toRecord);
  }
}
