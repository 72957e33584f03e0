import { createPrivateKey, createPublicKey, randomUUID } from 'node:crypto';
import { SignJWT, exportJWK, generateKeyPair, importJWK, jwtVerify, type CryptoKey, type JWK, type KeyObject } from 'jose';
import type { MetadataStore } from '../../metadata/store.js';
import type { TokenAccess } from './identity.js';

type Key = CryptoKey | KeyObject | Uint8Array;

/** Issuer of every token drydock signs. */
export const ISSUER = 'drydock';
/** Audience (and Docker token `service`) of registry tokens. */
export const REGISTRY_SERVICE = 'drydock';
/** Audience of access tokens (REST API, or a password for `docker login`). */
export const ACCESS_TOKEN_AUDIENCE = 'drydock-access';

const KEY_SETTING = 'auth.signingKey';

export interface SigningKeys {
  alg: 'ES256' | 'RS256';
  privateKey: Key;
  publicKey: Key;
  kid: string;
}

/**
 * The signing key: from configuration (a PKCS#8 PEM, ES256 or RS256), else
 * generated once (ES256) and stored in the database so every process and every
 * restart shares it.
 */
export async function loadSigningKeys(store: MetadataStore, configuredPem?: string): Promise<SigningKeys> {
  if (configuredPem) {
    const privateKey = createPrivateKey(configuredPem);
    const type = privateKey.asymmetricKeyType;
    if (type !== 'ec' && type !== 'rsa') throw new Error(`auth.tokenSigningKey must be an EC (P-256) or RSA private key, not ${type}`);
    return { alg: type === 'ec' ? 'ES256' : 'RS256', privateKey, publicKey: createPublicKey(privateKey), kid: 'configured' };
  }
  const generated = await generateJwk();
  const stored = await store.settings.setIfAbsent<{ jwk: JWK; kid: string }>(KEY_SETTING, generated);
  const { d: _d, ...pub } = stored.jwk;
  return {
    alg: 'ES256',
    privateKey: await importJWK(stored.jwk, 'ES256'),
    publicKey: await importJWK(pub, 'ES256'),
    kid: stored.kid,
  };
}

async function generateJwk(): Promise<{ jwk: JWK; kid: string }> {
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  return { jwk: await exportJWK(privateKey), kid: randomUUID() };
}

export interface RegistryTokenClaims {
  subject: string;
  access: TokenAccess[];
  /** Set on verified tokens. */
  expiresAt?: Date;
}

export interface AccessTokenClaims {
  subject: string;
  scope: string;
  jti: string;
  expiresAt: Date | null;
}

/** Signs and verifies registry tokens (Docker token spec) and access tokens. */
export class TokenSigner {
  constructor(private readonly keys: SigningKeys) {}

  /** A registry token for `/v2/...`: short-lived, carries the granted access. */
  async registryToken(claims: RegistryTokenClaims, ttlSeconds: number, now = new Date()): Promise<string> {
    const iat = Math.floor(now.getTime() / 1000);
    return new SignJWT({ access: claims.access })
      .setProtectedHeader({ alg: this.keys.alg, kid: this.keys.kid, typ: 'JWT' })
      .setIssuer(ISSUER)
      .setAudience(REGISTRY_SERVICE)
      .setSubject(claims.subject)
      .setIssuedAt(iat)
      .setNotBefore(iat - 1)
      .setExpirationTime(iat + ttlSeconds)
      .setJti(randomUUID())
      .sign(this.keys.privateKey);
  }

  /** Verifies signature, issuer, audience and expiry; undefined when any fails. */
  async verifyRegistryToken(token: string): Promise<RegistryTokenClaims | undefined> {
    try {
      const { payload } = await jwtVerify(token, this.keys.publicKey, { issuer: ISSUER, audience: REGISTRY_SERVICE, algorithms: [this.keys.alg] });
      if (typeof payload.sub !== 'string' || !Array.isArray(payload.access)) return undefined;
      return {
        subject: payload.sub,
        access: (payload.access as unknown[]).filter(isAccess),
        ...(payload.exp ? { expiresAt: new Date(payload.exp * 1000) } : {}),
      };
    } catch {
      return undefined;
    }
  }

  /** An access token: long-lived, revocable by its `jti`, scoped. */
  async accessToken(claims: Omit<AccessTokenClaims, 'jti'>, now = new Date()): Promise<{ token: string; jti: string }> {
    const jti = randomUUID();
    const builder = new SignJWT({ scp: claims.scope })
      .setProtectedHeader({ alg: this.keys.alg, kid: this.keys.kid, typ: 'JWT' })
      .setIssuer(ISSUER)
      .setAudience(ACCESS_TOKEN_AUDIENCE)
      .setSubject(claims.subject)
      .setIssuedAt(Math.floor(now.getTime() / 1000))
      .setJti(jti);
    if (claims.expiresAt) builder.setExpirationTime(Math.floor(claims.expiresAt.getTime() / 1000));
    return { token: await builder.sign(this.keys.privateKey), jti };
  }

  async verifyAccessToken(token: string): Promise<AccessTokenClaims | undefined> {
    try {
      const { payload } = await jwtVerify(token, this.keys.publicKey, { issuer: ISSUER, audience: ACCESS_TOKEN_AUDIENCE, algorithms: [this.keys.alg] });
      if (typeof payload.sub !== 'string' || typeof payload.jti !== 'string' || typeof payload.scp !== 'string') return undefined;
      return { subject: payload.sub, scope: payload.scp, jti: payload.jti, expiresAt: payload.exp ? new Date(payload.exp * 1000) : null };
    } catch {
      return undefined;
    }
  }
}

function isAccess(x: unknown): x is TokenAccess {
  const a = x as TokenAccess;
  return typeof a === 'object' && a !== null && typeof a.type === 'string' && typeof a.name === 'string' && Array.isArray(a.actions);
}

/** True when a string has the shape of a JWT (so a password is tried as an access token). */
export function looksLikeJwt(s: string): boolean {
  return /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(s) && s.length > 40;
}
