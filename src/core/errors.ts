/**
 * The one error table. Every failure a client can see is a `RegistryError`
 * carrying one of these codes; the HTTP status lives here and nowhere else.
 * Codes are the OCI distribution spec's, plus the Docker registry's and ours.
 */
export const CODES = {
  BLOB_UNKNOWN: { status: 404, message: 'blob unknown to registry' },
  BLOB_UPLOAD_INVALID: { status: 400, message: 'blob upload invalid' },
  BLOB_UPLOAD_UNKNOWN: { status: 404, message: 'blob upload unknown to registry' },
  DIGEST_INVALID: { status: 400, message: 'provided digest did not match uploaded content' },
  MANIFEST_BLOB_UNKNOWN: { status: 400, message: 'manifest references a manifest or blob unknown to registry' },
  MANIFEST_INVALID: { status: 400, message: 'manifest invalid' },
  MANIFEST_UNKNOWN: { status: 404, message: 'manifest unknown to registry' },
  NAME_INVALID: { status: 400, message: 'invalid repository name' },
  NAME_UNKNOWN: { status: 404, message: 'repository name not known to registry' },
  SIZE_INVALID: { status: 400, message: 'provided length did not match content length' },
  TAG_INVALID: { status: 400, message: 'manifest tag did not match URI' },
  PAGINATION_NUMBER_INVALID: { status: 400, message: 'invalid number of results requested' },
  RANGE_INVALID: { status: 416, message: 'invalid content range' },
  UNAUTHORIZED: { status: 401, message: 'authentication required' },
  DENIED: { status: 403, message: 'requested access to the resource is denied' },
  UNSUPPORTED: { status: 405, message: 'the operation is unsupported' },
  MANIFEST_TOO_LARGE: { status: 413, message: 'manifest too large' },
  TOOMANYREQUESTS: { status: 429, message: 'too many requests' },
  UNAVAILABLE: { status: 503, message: 'service unavailable' },
  UNKNOWN: { status: 500, message: 'unknown error' },
  // Management API (Artifactory-shaped) failures that have no OCI code.
  BAD_REQUEST: { status: 400, message: 'bad request' },
  NOT_FOUND: { status: 404, message: 'not found' },
  CONFLICT: { status: 409, message: 'conflict' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof CODES;

/** A client-visible failure. `message` defaults to the table's text; `detail` is any JSON. */
export class RegistryError extends Error {
  readonly code: ErrorCode;
  readonly detail: unknown;
  /** Extra response headers (Range for 416, Retry-After for 429, WWW-Authenticate for 401). */
  readonly headers: Record<string, string>;

  constructor(code: ErrorCode, message?: string, detail?: unknown, headers: Record<string, string> = {}) {
    super(message ?? CODES[code].message);
    this.name = 'RegistryError';
    this.code = code;
    this.detail = detail;
    this.headers = headers;
  }

  get status(): number {
    return CODES[this.code].status;
  }
}
