import { createHmac, randomBytes } from 'node:crypto';
import { RegistryError } from '../../core/errors.js';
import { LruCache } from '../../core/lru.js';
import type { MetadataStore } from '../../metadata/store.js';
import type { AuditLog } from '../service/audit.js';
import { parseAuthorization } from './authorization-header.js';
import { ANONYMOUS, type Identity } from './identity.js';
import type { LoginThrottle } from './login-throttle.js';
import { verifyPassword } from './passwords.js';
import { looksLikeJwt, type TokenSigner } from './tokens.js';

// A hash of a password that nobody has, so unknown users cost as much as known ones.
const DUMMY_HASH = 'scrypt$32768$8$1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';

/** An identity and, for tokens, when the credential stops being valid. */
interface Verified {
  identity: Identity;
  expiresAt?: Date;
}

export interface AuthenticateOptions {
  /** Client address, for the login throttle and the audit log. */
  clientIp?: string;
  /** Accept registry (Docker) tokens: only on the registry API. */
  registryTokens?: boolean;
  /** Accept Bearer at all (the token endpoint takes Basic only). */
  bearer?: boolean;
}

/**
 * Turns an Authorization header into an Identity: none is the anonymous
 * identity (what it may do is the authorizer's business); Basic with a password
 * or an access token; Bearer with a registry token (on /v2) or an access token.
 * Anything else is UNAUTHORIZED. Verified credentials are remembered for a short
 * while under a keyed hash, so the hundreds of requests of one push cost one
 * memory-hard password check; every security change clears that memory.
 */
export class Authenticator {
  private readonly verified = new LruCache<string, Identity>(10_000, 30_000);
  private readonly cacheKey = randomBytes(32);

  constructor(
    private readonly deps: { store: MetadataStore; signer: TokenSigner; throttle: LoginThrottle; audit: AuditLog },
  ) {}

  async authenticate(authorization: string | undefined, opts: AuthenticateOptions = {}): Promise<Identity> {
    const creds = parseAuthorization(authorization);
    if (creds === undefined) return ANONYMOUS;
    if (creds === 'invalid') throw new RegistryError('UNAUTHORIZED', 'malformed or unsupported Authorization header');
    // Before the cache: a Bearer credential verified elsewhere must not pass where Bearer is refused.
    if (creds.scheme === 'bearer' && opts.bearer === false) throw new RegistryError('UNAUTHORIZED', 'use Basic credentials here');
    const key = createHmac('sha256', this.cacheKey)
      .update(`${opts.registryTokens ? 'r' : 'a'}\0${authorization}`)
      .digest('base64');
    const hit = this.verified.get(key);
    if (hit) return hit;

    let verified: Verified;
    if (creds.scheme === 'bearer') {
      verified = await this.fromBearer(creds.token, opts);
    } else {
      verified = await this.fromPassword(creds.user, creds.password, opts.clientIp);
    }
    // Never remembered past the token's expiry: every request is checked against it.
    this.verified.set(key, verified.identity, verified.expiresAt ? verified.expiresAt.getTime() - Date.now() : undefined);
    return verified.identity;
  }

  /** Forgets remembered credentials (a password, token, group or user changed). */
  forget(): void {
    this.verified.clear();
  }

  private async fromBearer(token: string, opts: AuthenticateOptions): Promise<Verified> {
    if (opts.registryTokens) {
      const claims = await this.deps.signer.verifyRegistryToken(token);
      if (claims) {
        const { expiresAt } = claims;
        if (claims.subject === ANONYMOUS.name) return { identity: { ...ANONYMOUS, tokenAccess: claims.access }, expiresAt };
        const user = await this.userIdentity(claims.subject);
        if (!user) throw new RegistryError('UNAUTHORIZED', 'the token names a user that no longer exists');
        return { identity: { ...user, tokenAccess: claims.access }, expiresAt };
      }
    }
    const verified = await this.fromAccessToken(token, undefined);
    if (!verified) throw new RegistryError('UNAUTHORIZED', 'invalid, expired or revoked token');
    return verified;
  }

  private async fromPassword(user: string, password: string, clientIp: string | undefined): Promise<Verified> {
    this.deps.throttle.check(user, clientIp);
    // An access token works as a password (docker login with a token).
    if (looksLikeJwt(password)) {
      const verified = await this.fromAccessToken(password, user);
      if (verified) {
        this.deps.throttle.succeed(user);
        return verified;
      }
    }
    const rec = await this.deps.store.users.get(user);
    const ok = await verifyPassword(password, rec?.passwordHash ?? DUMMY_HASH);
    if (!rec || !rec.passwordHash || !ok) {
      this.deps.throttle.fail(user, clientIp);
      await this.deps.audit.record({ actor: user, action: 'login', outcome: 'failure', clientIp, details: { method: 'password' } });
      throw new RegistryError('UNAUTHORIZED', 'invalid username or password');
    }
    this.deps.throttle.succeed(user);
    await this.deps.audit.record({ actor: user, action: 'login', outcome: 'success', clientIp, details: { method: 'password' } });
    return { identity: { kind: 'user', name: rec.name, admin: rec.admin, groups: await this.deps.store.groups.ofUser(rec.name) } };
  }

  /** An access token's identity, or undefined when it is invalid, expired, revoked, or not `expectedUser`'s. */
  private async fromAccessToken(token: string, expectedUser: string | undefined): Promise<Verified | undefined> {
    const claims = await this.deps.signer.verifyAccessToken(token);
    if (!claims || (expectedUser !== undefined && claims.subject !== expectedUser)) return undefined;
    const rec = await this.deps.store.accessTokens.get(claims.jti);
    if (!rec || rec.revokedAt || rec.userName !== claims.subject) return undefined;
    const user = await this.userIdentity(claims.subject);
    if (!user) return undefined;
    return { identity: applyTokenScope(user, claims.scope), expiresAt: claims.expiresAt ?? undefined };
  }

  private async userIdentity(name: string): Promise<Identity | undefined> {
    const rec = await this.deps.store.users.get(name);
    if (!rec) return undefined;
    return { kind: 'user', name: rec.name, admin: rec.admin, groups: await this.deps.store.groups.ofUser(rec.name) };
  }
}

/**
 * An access token never has more rights than its user: `applied-permissions/user`
 * (or `applied-permissions/admin`) is the user's own rights;
 * `applied-permissions/groups:a,b` (or Artifactory's older `member-of-groups:a,b`)
 * only what those groups — of the ones the user is in — are granted, never admin.
 */
export function applyTokenScope(user: Identity, scope: string): Identity {
  const scopes = scope.split(/\s+/).filter(Boolean);
  if (scopes.includes('applied-permissions/user') || scopes.includes('applied-permissions/admin')) return user;
  const restricted: string[] = [];
  for (const s of scopes) {
    const m = /^(?:applied-permissions\/groups|member-of-groups):(.+)$/.exec(s);
    if (m) restricted.push(...m[1]!.split(',').filter(Boolean));
  }
  return { ...user, admin: false, restrictToGroups: restricted.filter((g) => user.groups.includes(g)) };
}
