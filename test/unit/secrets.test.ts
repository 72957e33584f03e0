import { randomBytes } from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import { SecretBox, SECRETS_KEY_SETTING } from '../../src/core/secrets.js';

const box = new SecretBox(randomBytes(32));

/** An in-memory stand-in for the metadata store's settings (same setIfAbsent contract). */
function memorySettings() {
  const values = new Map<string, unknown>();
  return {
    values,
    settings: {
      async setIfAbsent<T>(name: string, value: T): Promise<T> {
        if (!values.has(name)) values.set(name, value);
        return values.get(name) as T;
      },
    },
  };
}

describe('SecretBox', () => {
  it('round-trips, including empty and non-ASCII secrets', () => {
    for (const plain of ['hunter2', '', 'pässwörd 🔑', 'x'.repeat(5000)]) {
      const sealed = box.encrypt(plain);
      expect(sealed).toMatch(/^enc:v1:[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]{22}$/);
      expect(sealed).not.toContain(plain || '\u0000');
      expect(box.decrypt(sealed)).toBe(plain);
    }
  });

  it('uses a fresh IV every time: one secret never encrypts the same twice', () => {
    const a = box.encrypt('same');
    const b = box.encrypt('same');
    expect(a).not.toBe(b);
    expect(a.split('.')[0]).not.toBe(b.split('.')[0]);
    expect(box.decrypt(a)).toBe(box.decrypt(b));
  });

  it('detects tampering with any part, and another key', () => {
    const sealed = box.encrypt('top secret');
    const [iv, ct, tag] = sealed.slice('enc:v1:'.length).split('.') as [string, string, string];
    const flip = (s: string) => {
      const bytes = Buffer.from(s, 'base64url');
      bytes[0]! ^= 1;
      return bytes.toString('base64url');
    };
    for (const bad of [`enc:v1:${flip(iv)}.${ct}.${tag}`, `enc:v1:${iv}.${flip(ct)}.${tag}`, `enc:v1:${iv}.${ct}.${flip(tag)}`]) {
      expect(() => box.decrypt(bad)).toThrow('does not authenticate');
    }
    expect(() => new SecretBox(randomBytes(32)).decrypt(sealed)).toThrow('does not authenticate');
    expect(() => box.decrypt(`enc:v1:${iv}.${ct}`)).toThrow('malformed');
    expect(() => box.decrypt(`enc:v1:${iv}.${ct}.${tag.slice(2)}`)).toThrow('malformed');
    expect(() => box.decrypt(`enc:v1:${iv}.${ct}.${tag}!`)).toThrow('malformed');
    expect(() => box.decrypt('plain-password')).toThrow('not an encrypted secret');
  });

  it('tells encrypted values from plain ones', () => {
    expect(box.isEncrypted(box.encrypt('a'))).toBe(true);
    expect(SecretBox.isEncrypted('a')).toBe(false);
  });

  it('takes only 32-byte keys', () => {
    expect(() => new SecretBox(randomBytes(16))).toThrow(RangeError);
  });

  it('fromSettings creates the key once and every later box shares it', async () => {
    const store = memorySettings();
    const first = await SecretBox.fromSettings(store);
    const key = store.values.get(SECRETS_KEY_SETTING);
    expect(Buffer.from(key as string, 'base64')).toHaveLength(32);
    const second = await SecretBox.fromSettings(store);
    expect(store.values.get(SECRETS_KEY_SETTING)).toBe(key);
    expect(second.decrypt(first.encrypt('shared'))).toBe('shared');
  });

  it('fromSettings refuses a corrupt stored key', async () => {
    const store = memorySettings();
    store.values.set(SECRETS_KEY_SETTING, Buffer.alloc(8).toString('base64'));
    await expect(SecretBox.fromSettings(store)).rejects.toThrow('holds 8 bytes');
  });
});
