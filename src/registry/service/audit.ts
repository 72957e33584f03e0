import type { Logger } from '../../core/log.js';
import type { AuditEvent, MetadataStore } from '../../metadata/store.js';

export type AuditEntry = Omit<AuditEvent, 'id' | 'at' | 'details' | 'clientIp' | 'target'> & {
  target?: string | null;
  clientIp?: string | null;
  details?: Record<string, unknown> | null;
};

/**
 * The audit trail: logins, permission changes, every registry write and delete.
 * A failure to record is logged, never turned into a failed request (the
 * action has already happened by then).
 */
export class AuditLog {
  constructor(private readonly deps: { store: MetadataStore; log: Logger }) {}

  async record(entry: AuditEntry): Promise<void> {
    try {
      await this.deps.store.audit.append({
        actor: clean(entry.actor),
        action: entry.action,
        target: entry.target == null ? null : clean(entry.target),
        outcome: entry.outcome,
        clientIp: entry.clientIp ?? null,
        details: entry.details == null ? null : (JSON.parse(clean(JSON.stringify(entry.details))) as Record<string, unknown>),
      });
    } catch (err) {
      this.deps.log.error({ err, audit: entry }, 'could not write the audit log');
    }
  }

  list(opts: { limit: number; before?: number; actor?: string; action?: string }): Promise<AuditEvent[]> {
    return this.deps.store.audit.list(opts);
  }
}

/** PostgreSQL text cannot hold NUL; names from client headers might (as `\u0000` once JSON-encoded). */
function clean(s: string): string {
  return s.replace(/\u0000|\\u0000/g, '');
}
