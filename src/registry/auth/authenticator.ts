import { createHmac, randomBytes } from 'node:crypto';
import { RegistryError } from '../../core/errors.js';
import { LruCache } from '../../core/lru.js';
import type { MetadataStore } from '../../metadata/store.js';
import { ANONYMOUS, type Identity } from './identity.js';
import { verifyPassword } from './passwords.js';

// A hash of a password that nobody has, so unknown users cost as much as known ones.
const DUMMY_HASH = 'scrypt$32768$8$1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';

/**
 * Turns an Authorization header into an Identity. No header is the anonymous
 * identity (what it may do is the authorizer's business); wrong credentials
 * are UNAUTHORIZED. A verified Basic credential is remembered for a short
 * while under a keyed hash, so a client's hundreds of requests in a push cost
 * one memory-hard password check, not hundreds.
 */
export class Authenticator {
  private readonly verified = new LruCache<string, Identity>(10_000, 60_000);
  private readonly cacheKey = randomBytes(32);

  constructor(private readonly store: MetadataStore) {}

  async authenticate(authorization: string | undefined): Promise<Identity> {
    if (!authorization) return ANONYMOUS;
    const [scheme, value] = splitOnce(authorization.trim(), ' ');
    if (scheme.toLowerCase() !== 'basic' || !value) {
      throw new RegistryError('UNAUTHORIZED', `unsupported authorization scheme: ${scheme}`);
    }
    const decoded = Buffer.from(value.trim(), 'base64').toString('utf8');
    const [user, password] = splitOnce(decoded, ':');
    if (!user || password === undefined) throw new RegistryError('UNAUTHORIZED', 'malformed Basic credentials');
    const key = createHmac('sha256', this.cacheKey).update(decoded).digest('base64');
    const hit = this.verified.get(key);
    if (hit) return hit;
    const rec = await this.store.users.get(user);
    const ok = await verifyPassword(password, rec?.passwordHash ?? DUMMY_HASH);
    if (!rec || !rec.passwordHash || !ok) throw new RegistryError('UNAUTHORIZED', 'invalid username or password');
    const identity: Identity = { kind: 'user', name: rec.name, admin: rec.admin };
    this.verified.set(key, identity);
    return identity;
  }

  /** Forgets remembered credentials (a password or a user changed). */
  forget(): void {
    this.verified.clear();
  }
}

function splitOnce(s: string, sep: string): [string, string | undefined] {
  const i = s.indexOf(sep);
  return i < 0 ? [s, undefined] : [s.slice(0, i), s.slice(i + sep.length)];
}
