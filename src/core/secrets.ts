/**
 * Encryption of short secrets at rest (remote repositories' upstream
 * passwords in the repository table), so a database dump or backup does not
 * hand out credentials to Docker Hub or a private registry.
 *
 * AES-256-GCM with a fresh 96-bit IV per value; the result is text that can sit
 * in any string column: `enc:v1:<iv>.<ciphertext>.<tag>` (base64url parts). The
 * version lets a later key or algorithm change tell old values apart.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

/** The part of the metadata store's settings (src/metadata/store.ts) the key lives in; structural, so core does not import metadata. */
export interface SecretKeySettings {
  setIfAbsent<T>(name: string, value: T): Promise<T>;
}

const PREFIX = 'enc:v1:';
const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEY_BYTES = 32;
/** The settings entry holding the key (base64), created on first use. */
export const SECRETS_KEY_SETTING = 'secrets.key';
/** Binds ciphertexts to this format: a value cut from elsewhere and pasted here does not decrypt. */
const AAD = Buffer.from('drydock:secret:v1');

export class SecretBox {
  readonly #key: Buffer;

  constructor(key: Uint8Array) {
    if (key.length !== KEY_BYTES) throw new RangeError(`a SecretBox key is ${KEY_BYTES} bytes, not ${key.length}`);
    // A copy: the caller's buffer may be reused or zeroed.
    this.#key = Buffer.from(key);
  }

  /**
   * The installation's box: its key from the metadata settings, generated on
   * first use. `setIfAbsent` makes pods starting together agree on one key.
   */
  static async fromSettings(store: { settings: SecretKeySettings }): Promise<SecretBox> {
    const stored = await store.settings.setIfAbsent<string>(SECRETS_KEY_SETTING, randomBytes(KEY_BYTES).toString('base64'));
    if (typeof stored !== 'string') throw new Error(`setting ${SECRETS_KEY_SETTING} is not a base64 string`);
    const key = Buffer.from(stored, 'base64');
    if (key.length !== KEY_BYTES) throw new Error(`setting ${SECRETS_KEY_SETTING} holds ${key.length} bytes, not ${KEY_BYTES}`);
    return new SecretBox(key);
  }

  /** True for values `encrypt` produced (by shape; `decrypt` checks the rest). */
  static isEncrypted(value: string): boolean {
    return value.startsWith(PREFIX);
  }

  isEncrypted(value: string): boolean {
    return SecretBox.isEncrypted(value);
  }

  encrypt(plain: string): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.#key, iv);
    cipher.setAAD(AAD);
    const ciphertext = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
    const tag = cipher.getAuthTag();
    return `${PREFIX}${iv.toString('base64url')}.${ciphertext.toString('base64url')}.${tag.toString('base64url')}`;
  }

  /** The plain text; throws when the value is not `encrypt`'s output under this key, or was altered. */
  decrypt(value: string): string {
    if (!value.startsWith(PREFIX)) throw new Error('not an encrypted secret (no enc:v1: prefix)');
    const parts = value.slice(PREFIX.length).split('.');
    if (parts.length !== 3 || parts.some((p) => !/^[A-Za-z0-9_-]*$/.test(p))) throw new Error('malformed encrypted secret');
    const [iv, ciphertext, tag] = parts.map((p) => Buffer.from(p, 'base64url')) as [Buffer, Buffer, Buffer];
    if (iv.length !== IV_BYTES || tag.length !== TAG_BYTES) throw new Error('malformed encrypted secret');
    const decipher = createDecipheriv('aes-256-gcm', this.#key, iv, { authTagLength: TAG_BYTES });
    decipher.setAAD(AAD);
    decipher.setAuthTag(tag);
    try {
      return Buffer.concat([decipher.update(ciphertext), decipher.final()]).toString('utf8');
    } catch {
      // GCM's own message ("Unsupported state or unable to authenticate data") says nothing useful.
      throw new Error('encrypted secret does not authenticate: altered, or encrypted under another key');
    }
  }
}
