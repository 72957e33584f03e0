import { decodeJwt } from 'jose';
import { z } from 'zod';
import { RegistryError } from '../../core/errors.js';
import type { AccessTokenRecord, MetadataStore, UserRecord } from '../../metadata/store.js';
import type { Identity } from '../auth/identity.js';
import type { TokenSigner } from '../auth/tokens.js';
import type { AuditLog } from './audit.js';
import { parseBody, type Actor } from './security-common.js';

/** Default lifetime of an access token, and the longest a non-admin may ask for. */
export const ONE_YEAR_SECS = 365 * 24 * 3600;

const SCOPE_FORMS = 'applied-permissions/user, applied-permissions/admin, applied-permissions/groups:<names> or member-of-groups:<names>';
const GROUP_SCOPE_RE = /^(applied-permissions\/groups|member-of-groups):(.*)$/;

// A form body carries every value as a string: digits become a number; anything else stays for the schema to refuse.
const seconds = z.preprocess((v) => (typeof v === 'string' && /^\s*\d+\s*$/.test(v) ? Number(v) : v), z.int().min(0));

/** `POST /api/security/token`: Artifactory's form fields, or the same as JSON. */
const createSchema = z.strictObject({
  username: z.string().min(1).optional(),
  scope: z.string().optional(),
  /** Seconds; 0 = never expires. */
  expires_in: seconds.optional(),
  description: z.string().max(1024).optional(),
});

/** `POST /api/security/token/revoke`: one of the two. */
const revokeSchema = z.strictObject({ token_id: z.string().min(1).optional(), token: z.string().min(1).optional() });

/** Artifactory's answer to a token request. */
export interface CreatedToken {
  access_token: string;
  expires_in: number;
  scope: string;
  token_type: 'Bearer';
  token_id: string;
}

export interface TokenView {
  token_id: string;
  subject: string;
  scope: string;
  description: string | null;
  /** Unix seconds, as Artifactory lists them. */
  issued_at: number;
  /** Unix seconds, or null for a token that never expires. */
  expiry: number | null;
  revoked: boolean;
}

/**
 * Access tokens (Artifactory's `/api/security/token`): signed JWTs whose id is
 * stored so they can be listed and revoked. A token never carries more rights
 * than its user (the authenticator applies the scope on every use), and a
 * non-admin caller can only mint tokens for itself, within its own groups, for
 * at most a year.
 */
export class AccessTokenService {
  constructor(
    private readonly deps: { store: MetadataStore; audit: AuditLog; signer: TokenSigner; onChange?: () => void },
  ) {}

  async create(actor: Actor, body: unknown): Promise<CreatedToken> {
    const caller = actor.identity;
    const req = parseBody(createSchema, body ?? {}, 'token request');
    const subject = req.username ?? caller.name;
    if (subject !== caller.name && !caller.admin) {
      throw new RegistryError('DENIED', `${caller.name} may not create tokens for other users`);
    }
    const user = await this.deps.store.users.get(subject);
    if (!user) throw new RegistryError('NOT_FOUND', `user '${subject}' does not exist`);
    const scope = await this.resolveScope(caller, user, req.scope ?? 'applied-permissions/user');
    const expiresIn = req.expires_in ?? ONE_YEAR_SECS;
    if (!caller.admin && (expiresIn === 0 || expiresIn > ONE_YEAR_SECS)) {
      throw new RegistryError('DENIED', `only an admin may create tokens that never expire or live longer than ${ONE_YEAR_SECS} seconds (one year)`);
    }
    // Whole seconds from the next full second: a JWT's exp has one-second resolution,
    // and rounding down could end a one-second token before it is ever used.
    const expiresAt = expiresIn === 0 ? null : new Date((Math.ceil(Date.now() / 1000) + expiresIn) * 1000);
    const { token, jti } = await this.deps.signer.accessToken({ subject, scope, expiresAt });
    await this.deps.store.accessTokens.create({ id: jti, userName: subject, scope, description: req.description ?? null, expiresAt });
    await this.record(actor, 'token.create', jti, { subject, scope, expires_in: expiresIn });
    return { access_token: token, expires_in: expiresIn, scope, token_type: 'Bearer', token_id: jti };
  }

  /** The caller's own tokens; an admin sees everybody's. Newest first. */
  async list(caller: Identity): Promise<{ tokens: TokenView[] }> {
    const rows = await this.deps.store.accessTokens.list(caller.admin ? undefined : caller.name);
    return { tokens: rows.map(tokenView) };
  }

  /** Revokes by `token_id` or by the token itself (the form or JSON body of `POST /api/security/token/revoke`). */
  async revoke(actor: Actor, body: unknown): Promise<void> {
    const req = parseBody(revokeSchema, body ?? {}, 'revocation request');
    if ((req.token_id === undefined) === (req.token === undefined)) {
      throw new RegistryError('BAD_REQUEST', 'give either token_id or token');
    }
    return this.revokeById(actor, req.token_id ?? idOf(req.token!));
  }

  /** Revokes one token: the caller's own, or anybody's for an admin. Takes effect on the next request. */
  async revokeById(actor: Actor, id: string): Promise<void> {
    const caller = actor.identity;
    const rec = await this.deps.store.accessTokens.get(id);
    if (!rec) throw new RegistryError('NOT_FOUND', 'no such token');
    if (rec.userName !== caller.name && !caller.admin) {
      throw new RegistryError('DENIED', `${caller.name} may not revoke tokens of ${rec.userName}`);
    }
    await this.deps.store.accessTokens.revoke(id);
    this.deps.onChange?.();
    await this.record(actor, 'token.revoke', id, { subject: rec.userName });
  }

  /**
   * Checks a requested scope and answers it normalized. `api:*` (which
   * Artifactory clients add) may accompany exactly one permission scope.
   */
  private async resolveScope(caller: Identity, user: UserRecord, requested: string): Promise<string> {
    const parts = requested.split(/\s+/).filter(Boolean);
    const permission = parts.filter((p) => p !== 'api:*');
    if (permission.length !== 1 || parts.length - permission.length > 1) {
      throw new RegistryError('BAD_REQUEST', `invalid scope '${requested}': give one of ${SCOPE_FORMS}`);
    }
    const scope = permission[0]!;
    let normalized = scope;
    if (scope === 'applied-permissions/user') {
      // A token limited to some groups must not mint one with the user's full rights.
      if (caller.restrictToGroups) throw new RegistryError('DENIED', 'a group-scoped token can only create group-scoped tokens');
    } else if (scope === 'applied-permissions/admin') {
      if (!caller.admin || !user.admin) {
        throw new RegistryError('DENIED', 'applied-permissions/admin is for admin users, created by an admin');
      }
    } else {
      const m = GROUP_SCOPE_RE.exec(scope);
      if (!m) throw new RegistryError('BAD_REQUEST', `invalid scope '${requested}': give one of ${SCOPE_FORMS}`);
      const groups = [...new Set(m[2]!.split(',').map((g) => g.trim().replace(/^"(.*)"$/, '$1')).filter(Boolean))];
      if (groups.length === 0) throw new RegistryError('BAD_REQUEST', `invalid scope '${requested}': name at least one group`);
      await this.checkGroups(caller, user.name, groups);
      normalized = `${m[1]}:${groups.join(',')}`;
    }
    return parts.map((p) => (p === scope ? normalized : p)).join(' ');
  }

  /** The groups must exist; a non-admin may only name groups the user is in (and its own token is limited to). */
  private async checkGroups(caller: Identity, userName: string, groups: string[]): Promise<void> {
    const missing = [];
    for (const g of groups) if (!(await this.deps.store.groups.get(g))) missing.push(g);
    if (missing.length) throw new RegistryError('BAD_REQUEST', `scope: these groups do not exist: ${missing.join(', ')}`);
    if (caller.admin) return;
    const member = await this.deps.store.groups.ofUser(userName);
    const outside = groups.filter((g) => !member.includes(g) || (caller.restrictToGroups && !caller.restrictToGroups.includes(g)));
    if (outside.length) throw new RegistryError('DENIED', `${userName} may not create a token for groups it is not in: ${outside.join(', ')}`);
  }

  private record(actor: Actor, action: string, target: string, details: Record<string, unknown>): Promise<void> {
    return this.deps.audit.record({ actor: actor.identity.name, action, target, outcome: 'success', clientIp: actor.clientIp ?? null, details });
  }
}

/**
 * The id of a token handed back for revocation. Only read, not verified: the
 * stored record decides whose token it is, and an expired token (which
 * verification would refuse) may still be revoked.
 */
function idOf(token: string): string {
  try {
    const { jti } = decodeJwt(token);
    if (typeof jti === 'string' && jti !== '') return jti;
  } catch {
    // Not a JWT at all: the same answer as an unknown one.
  }
  throw new RegistryError('NOT_FOUND', 'no such token');
}

function tokenView(r: AccessTokenRecord): TokenView {
  return {
    token_id: r.id,
    subject: r.userName,
    scope: r.scope,
    description: r.description,
    issued_at: Math.floor(r.createdAt.getTime() / 1000),
    expiry: r.expiresAt ? Math.floor(r.expiresAt.getTime() / 1000) : null,
    revoked: r.revokedAt !== null,
  };
}
