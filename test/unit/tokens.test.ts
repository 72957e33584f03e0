import { describe, expect, it } from '@jest/globals';
import { generateKeyPairSync } from 'node:crypto';
import type { MetadataStore } from '../../src/metadata/store.js';
import { loadSigningKeys, looksLikeJwt, TokenSigner } from '../../src/registry/auth/tokens.js';

/** The one part of the store the key loader uses: settings, in memory. */
function settingsOnly(): MetadataStore {
  const m = new Map<string, unknown>();
  return {
    settings: {
      get: async (k: string) => m.get(k),
      set: async (k: string, v: unknown) => void m.set(k, v),
      setIfAbsent: async <T>(k: string, v: T) => {
        if (!m.has(k)) m.set(k, v);
        return m.get(k) as T;
      },
    },
  } as unknown as MetadataStore;
}

const ACCESS = [{ type: 'repository', name: 'docker-local/app', actions: ['pull'] }];

describe('token signer', () => {
  it('generates one key and keeps it: a second load verifies tokens of the first', async () => {
    const store = settingsOnly();
    const a = new TokenSigner(await loadSigningKeys(store));
    const b = new TokenSigner(await loadSigningKeys(store));
    const t = await a.registryToken({ subject: 'alice', access: ACCESS }, 60);
    expect(looksLikeJwt(t)).toBe(true);
    expect(await b.verifyRegistryToken(t)).toMatchObject({ subject: 'alice', access: ACCESS, expiresAt: expect.any(Date) });
  });

  it('refuses tampered, expired, foreign and cross-purpose tokens', async () => {
    const signer = new TokenSigner(await loadSigningKeys(settingsOnly()));
    const other = new TokenSigner(await loadSigningKeys(settingsOnly()));
    const t = await signer.registryToken({ subject: 'alice', access: ACCESS }, 60);
    const [h, p, s] = t.split('.') as [string, string, string];
    const payload = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>;
    const forged = Buffer.from(JSON.stringify({ ...payload, access: [{ type: 'repository', name: 'docker-local/app', actions: ['push'] }] })).toString('base64url');
    expect(await signer.verifyRegistryToken(`${h}.${forged}.${s}`)).toBeUndefined();
    expect(await signer.verifyRegistryToken(`${h}.${p}.${s.slice(0, -2)}AA`)).toBeUndefined();
    expect(await signer.verifyRegistryToken(await other.registryToken({ subject: 'alice', access: ACCESS }, 60))).toBeUndefined();
    const old = await signer.registryToken({ subject: 'alice', access: ACCESS }, 60, new Date(Date.now() - 120_000));
    expect(await signer.verifyRegistryToken(old)).toBeUndefined();
    const access = await signer.accessToken({ subject: 'alice', scope: 'applied-permissions/user', expiresAt: null });
    expect(await signer.verifyRegistryToken(access.token)).toBeUndefined();
    expect(await signer.verifyAccessToken(t)).toBeUndefined();
    expect(await signer.verifyAccessToken(access.token)).toMatchObject({ subject: 'alice', jti: access.jti, expiresAt: null });
  });

  it.each([
    ['EC P-256 (ES256)', () => generateKeyPairSync('ec', { namedCurve: 'P-256' })],
    ['RSA (RS256)', () => generateKeyPairSync('rsa', { modulusLength: 2048 })],
  ])('signs with a configured %s key', async (_name, make) => {
    const pem = make().privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
    const signer = new TokenSigner(await loadSigningKeys(settingsOnly(), pem));
    const t = await signer.registryToken({ subject: 'bob', access: [] }, 60);
    expect(await signer.verifyRegistryToken(t)).toMatchObject({ subject: 'bob', access: [] });
  });
});
