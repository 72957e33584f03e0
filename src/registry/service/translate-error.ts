import { RegistryError } from '../../core/errors.js';
import { StorageNotFoundError, StorageUnavailableError } from '../../storage/driver.js';
import { MetadataUnavailableError } from '../../metadata/errors.js';

/**
 * The one place adapter errors become client-visible codes. Anything not
 * recognised stays as it is and is rendered as UNKNOWN (and logged) by the HTTP layer.
 */
export function translateError(e: unknown): unknown {
  if (e instanceof RegistryError) return e;
  if (e instanceof StorageNotFoundError) return new RegistryError('BLOB_UNKNOWN', 'blob content is missing from storage');
  if (e instanceof StorageUnavailableError) return new RegistryError('UNAVAILABLE', 'blob storage is unavailable, try again');
  if (e instanceof MetadataUnavailableError) return new RegistryError('UNAVAILABLE', 'the metadata database is unavailable, try again');
  const sqlState = (e as { code?: unknown } | null)?.code;
  if (sqlState === '40001' || sqlState === '40P01') {
    const message = (e as Error).message ?? '';
    // The garbage collector's guard (migration 005): what the manifest references was
    // collected a moment before; the client pushes it again, as for any missing blob.
    if (message.includes('garbage-collected')) {
      return new RegistryError(message.includes('index references') ? 'MANIFEST_UNKNOWN' : 'MANIFEST_BLOB_UNKNOWN', message);
    }
    return new RegistryError('UNAVAILABLE', 'a concurrent change got in the way; try again');
  }
  return e;
}
