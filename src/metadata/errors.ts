/**
 * Errors the metadata store throws on purpose. Anything else it lets through
 * (constraint violations, bugs) is an ordinary `Error` with the driver's `code`.
 */

/**
 * The database cannot answer right now: it refused or dropped the connection,
 * is shutting down, or a statement ran past its timeout. Services map it to
 * `UNAVAILABLE` (503); a retry later may succeed. `cause` holds the driver error.
 */
export class MetadataUnavailableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'MetadataUnavailableError';
  }
}

export function isMetadataUnavailable(e: unknown): e is MetadataUnavailableError {
  return e instanceof MetadataUnavailableError;
}
